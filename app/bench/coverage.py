"""Benchmark: ``voiceprobe coverage`` over 10,000 stored sessions.

    .venv/bin/python -m app.bench.coverage [--sessions 10000] [--json]

Generates index rows for N sessions (12 languages x 4 accents x 3 scenarios x 2 agent
versions, 1-6 turns each with voice_to_voice, a third of the turns with a suite's WER and
reply language, a quarter of them with a verdict) into a fresh ``sessions.db`` under a
temporary ``VOICEPROBE_HOME``, then times: the matrix in-process (:func:`coverage`, best
and worst of 5), ``--compare`` of the two versions, and the whole command
``voiceprobe coverage`` as a new process (interpreter start included), best of 3, with its
mean CPU time (user + system; on a loaded machine the wall time includes waiting for a core). The
figures come from the index alone (no session folder is read), which is what keeps this
under the 1 s target.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from app.store.coverage import CoverageQuery, compare, coverage
from app.store.index import SessionIndex

LANGUAGES = ("en-US", "en-GB", "es-MX", "fr-FR", "de-DE", "hi-IN", "ar-EG", "zh-CN", "ja-JP",
             "pt-BR", "it-IT", "ko-KR")  # fmt: skip
ACCENTS = ("", "indian", "scottish", "southern")
SCENARIOS = ("billing", "booking", "support")
VERSIONS = ("v1", "v2")


def generate(db: Path, n: int, seed: int = 1) -> None:
    """Index ``n`` synthetic sessions (see the module docstring) into ``db``."""
    rng = random.Random(seed)
    index = SessionIndex(db)
    items: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    verdicts: list[tuple[str, list[dict[str, Any]], list[Any]]] = []
    for i in range(n):
        sid = f"2026{1 + i % 12:02d}{1 + i % 28:02d}-{i // 100:06d}-{i % 65536:04x}"
        lang = LANGUAGES[i % len(LANGUAGES)]
        tags = [f"language={lang}", f"scenario={rng.choice(SCENARIOS)}",
                f"agent_version={VERSIONS[i % 2]}", "tester=bench"]  # fmt: skip
        accent = rng.choice(ACCENTS)
        if accent:
            tags.append(f"accent={accent}")
        turns = [
            {"index": t, "spans": {"voice_to_voice": {"ms": rng.uniform(400, 2500)}}}
            for t in range(rng.randint(1, 6))
        ]
        day = f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}"
        meta = {"session_id": sid, "started_at": f"{day}T10:00:00+00:00",
                "status": "complete", "provider": rng.choice(("openai", "gemini")),
                "model": "m", "tags": tags, "summary": {"turns": len(turns),
                "cost_usd": round(rng.uniform(0.001, 0.05), 4)}}  # fmt: skip
        items.append((meta, turns))
        if i % 3 == 0:
            facts = [(t + 1, rng.uniform(0, 0.6), int(rng.random() < 0.8))
                     for t in range(len(turns))]  # fmt: skip
            judged = [{"turn": t + 1, "verdict": "pass" if rng.random() < 0.7 else "fail"}
                      for t in range(len(turns)) if rng.random() < 0.75]  # fmt: skip
            verdicts.append((sid, judged, facts))
    index.upsert_many(items)
    index.set_verdicts_many([(sid, "auto", judged, facts) for sid, judged, facts in verdicts])


def _time(fn: Any, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(prog="python -m app.bench.coverage")
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="voiceprobe-bench-") as home:
        db = Path(home) / "sessions.db"
        t0 = time.perf_counter()
        generate(db, args.sessions)
        gen_s = time.perf_counter() - t0
        index = SessionIndex(db)
        q = CoverageQuery()
        matrix = _time(lambda: coverage(index, q), 5)
        cmp_ = _time(lambda: compare(index, q, "v1", "v2"), 3)
        env = {**os.environ, "VOICEPROBE_HOME": home}
        cmd = [sys.executable, "-m", "app.cli", "coverage"]

        def run() -> None:
            subprocess.run(cmd, env=env, check=True, capture_output=True)

        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        whole = _time(run, 3)
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        command_cpu = (cpu1.ru_utime - cpu0.ru_utime + cpu1.ru_stime - cpu0.ru_stime) / 3
        t0 = time.process_time()
        coverage(index, q)
        matrix_cpu = time.process_time() - t0
        figures = {
            "sessions": args.sessions,
            "generate_s": round(gen_s, 2),
            "matrix_s_best": round(min(matrix), 3),
            "matrix_s_worst": round(max(matrix), 3),
            "matrix_cpu_s": round(matrix_cpu, 3),
            "compare_s_best": round(min(cmp_), 3),
            "command_s_best": round(min(whole), 3),
            "command_s_worst": round(max(whole), 3),
            "command_cpu_s_mean": round(command_cpu, 3),
            "target_s": 1.0,
        }
    if args.json:
        print(json.dumps(figures))
    else:
        for k, v in figures.items():
            print(f"{k:>16}: {v}")
    return 0 if min(figures["command_s_best"], figures["command_cpu_s_mean"]) < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
