"""Benchmark: a 40-case suite (8 languages x 5 conditions, 3 turns each) against the
simulator at ``--parallel`` 1, 2, 4 and 8.

    .venv/bin/python -m app.bench.suite [--json] [--parallel 1,2,4,8]

Every case is a real call through the bridge core with its own in-process simulator, as
``voiceprobe suite run`` does. Reported per level: wall time against the sum of the
cases' call lengths (audio time) and the ideal ``total audio / parallel``; CPU of this
process (bridge, simulators, runner) per concurrent call, as a percentage of one core
(CPU seconds / audio seconds); and the latest media frame: the largest delay of any
caller frame from its nominal capture time to its audio handed to the websocket
(``caller_capture_to_ws_send`` max over every call). Probes are rendered (and the
simulator's replies synthesised) before the clock starts. Target on the 2-core
development machine: at ``--parallel 8`` no frame later than 40 ms and wall time <= 1.2 x
(total audio / 8).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from app import eventloop

LANGUAGES = {
    "en-US": ("What is the weather in Paris today", "Book a table for two", "Thank you very much"),
    "es-MX": ("Qué tiempo hace en París hoy", "Reserva una mesa para dos", "Muchas gracias"),
    "fr-FR": ("Quel temps fait il à Paris", "Réservez une table pour deux", "Merci beaucoup"),
    "de-DE": ("Wie ist das Wetter in Paris", "Einen Tisch für zwei bitte", "Vielen Dank"),
    "hi-IN": ("पेरिस में आज मौसम कैसा है", "दो लोगों के लिए टेबल बुक करें", "बहुत धन्यवाद"),
    "ar-EG": ("كيف الطقس في باريس اليوم", "احجز طاولة لشخصين", "شكرا جزيلا"),
    "zh-CN": ("巴黎今天天气怎么样", "请帮我订两个人的桌子", "非常感谢你"),
    "ja-JP": (
        "きょうの てんきは どうですか",
        "ふたりで よやく したいです",
        "ありがとう ございます",
    ),
}
REPLIES = {
    "en": "It is sunny in Paris today.",
    "es": "Hace sol en París hoy.",
    "fr": "Il fait soleil à Paris aujourd'hui.",
    "de": "In Paris scheint heute die Sonne.",
    "hi": "आज पेरिस में धूप खिली है।",
    "ar": "الجو مشمس في باريس اليوم.",
    "zh": "巴黎今天是晴天。",
    "ja": "きょうは はれです。",
}
NOISE = ("clean", "white@20", "pink@15", "babble@10", "babble@5")


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def suite_yaml() -> str:
    """The benchmark suite: 8 languages x 5 noise conditions on the g711 line, 3 turns."""
    turns = []
    for i in range(3):
        say = ", ".join(f"{tag.split('-')[0]}: {_q(t[i])}" for tag, t in LANGUAGES.items())
        reply = ", ".join(f"{k}: {_q(v)}" for k, v in REPLIES.items())
        turns.append(
            f"      - say: {{{say}}}\n        simulate: {{reply: {{{reply}}}}}\n"
            "        expect: {heard: {max_wer: 0.2}, v2v_ms: {max: 1500}}\n"
        )
    return (
        "name: bench-40\nseed: 11\nlead_ms: 200\nidle_ms: 500\n"
        "conversations:\n  - id: bench\n    turns:\n" + "".join(turns) + "matrix:\n"
        f"  language: [{', '.join(LANGUAGES)}]\n  noise: [{', '.join(NOISE)}]\n"
        "  line: [g711]\n"
        "simulator:\n  timing: {response_delay_ms: 80, first_audio_ms: 200, "
        "transcript_delay_ms: 80, realtime_factor: 2, endpointing_ms: 400}\n"
    )


def _cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def run_level(parallel: int, workdir: Path) -> dict[str, Any]:
    """Run the suite once at ``parallel`` and return its figures."""
    from app.bridge.providers import plan_provider
    from app.profile import load_profile
    from app.suite.expand import expand
    from app.suite.load import load_suite
    from app.suite.runner import RunSettings, SuiteRunner
    from app.suite.runs import new_run_id

    path = workdir / "bench.yaml"
    suite = load_suite(path)
    profile = load_profile(suite.profile)
    plan, profile = plan_provider("sim", profile)
    root = workdir / f"data-p{parallel}"
    runner = SuiteRunner(
        suite, expand(suite), profile, plan, RunSettings(parallel, root, ["bench=1"]),
        new_run_id(root),
    )  # fmt: skip
    prepared = runner.prepare()
    cpu0 = _cpu_s()
    eventloop.run(runner.run(prepared))
    cpu = _cpu_s() - cpu0
    cases = runner.results
    audio = sum(float(c["audio_s"]) for c in cases)
    frames = [
        c["bridge"]["caller_capture_to_ws_send"]["max_ms"]
        for c in cases
        if c.get("bridge") and c["bridge"]["caller_capture_to_ws_send"]["max_ms"] is not None
    ]
    p95 = [
        c["bridge"]["caller_capture_to_ws_send"]["p95_ms"]
        for c in cases
        if c.get("bridge") and c["bridge"]["caller_capture_to_ws_send"]["p95_ms"] is not None
    ]
    return {
        "parallel": parallel,
        "cases": len(cases),
        "passed": sum(1 for c in cases if c["passed"]),
        "errors": sum(1 for c in cases if c.get("error")),
        "wall_s": round(runner.wall_s, 2),
        "audio_s": round(audio, 2),
        "ideal_wall_s": round(audio / parallel, 2),
        "wall_over_ideal": round(runner.wall_s / (audio / parallel), 3) if audio else None,
        "cpu_s": round(cpu, 2),
        "cpu_percent_per_call": round(100 * cpu / audio, 2) if audio else None,
        "latest_frame_ms": round(max(frames), 2) if frames else None,
        "frame_p95_ms_worst_call": round(max(p95), 2) if p95 else None,
        "v2v_p95_ms": runner.snapshot(True)["summary"]["v2v_p95_ms"],
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures (a table, or JSON with ``--json``)."""
    ap = argparse.ArgumentParser(prog="app.bench.suite")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--parallel", default="1,2,4,8", help="comma-separated levels")
    args = ap.parse_args(argv)
    levels = [int(x) for x in args.parallel.split(",") if x.strip()]
    workdir = Path(tempfile.mkdtemp(prefix="vp-bench-suite-"))
    (workdir / "bench.yaml").write_text(suite_yaml(), encoding="utf-8")
    rows = []
    for level in levels:
        t = time.monotonic()
        rows.append(run_level(level, workdir))
        if not args.json:
            r = rows[-1]
            print(
                f"parallel {level}: {r['cases']} cases ({r['passed']} passed, {r['errors']} "
                f"errors), wall {r['wall_s']} s, audio {r['audio_s']} s, ideal "
                f"{r['ideal_wall_s']} s (x{r['wall_over_ideal']}), CPU/call "
                f"{r['cpu_percent_per_call']} %, latest frame {r['latest_frame_ms']} ms "
                f"[{time.monotonic() - t:.0f} s]",
                flush=True,
            )
    if args.json:
        print(json.dumps({"levels": rows}, indent=2))
    target = next((r for r in rows if r["parallel"] == 8), None)
    if target is None:
        return 0
    ok = (target["latest_frame_ms"] or 0) <= 40 and (target["wall_over_ideal"] or 9) <= 1.2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
