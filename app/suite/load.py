"""Read a suite file into :class:`app.suite.model.Suite`, validating every field.

Every problem raises :class:`~app.errors.ConfigError` whose message is one line
``FILE:LINE: FIELD: problem`` (the line of the offending value, from the YAML node marks),
for example ``smoke.yaml:12: conversations[0].turns[1].say: no text for language hi-IN``.
Checked here: YAML syntax (within the budget of :mod:`app.bounded_yaml`), unknown keys,
types, ranges, language tags (shape, and the IANA registry via ``langcodes``), that an
espeak-ng voice exists for every language/accent the matrix names (asked of
:func:`app.probes.voices.voice_for`), condition names
(:func:`app.probes.conditions.parse_condition`), regular expressions, that every file
named (profile, recordings, noise) exists, and that every recording and noise file is a
WAV the probe library plays (read here, once per file). The format is in
``docs/suites.md``.

One module on purpose (over 500 lines): it is the suite format's one validator, field by
field in the order of ``docs/suites.md``; the checks it asks of other modules live there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import langcodes
import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from app.bounded_yaml import MAX_TEXT_CHARS, FieldReader, load_yaml, shown_key
from app.errors import ConfigError
from app.probes.conditions import parse_condition
from app.probes.lang import canonical_tag, primary_subtag
from app.probes.speech import load_recording
from app.probes.voices import voice_for
from app.profile import RESOURCES, read_text_file
from app.sim.scenario import TIMING_KEYS
from app.suite.model import (
    Bounds,
    CallExpect,
    Conversation,
    LanguageCell,
    Matrix,
    SimRule,
    SimSettings,
    SimTurn,
    SimWhen,
    Suite,
    SuiteTurn,
    ToolExpectation,
    TurnExpect,
)

#: Longest text value in a suite (a probe, a reply, a pattern).
MAX_TEXT = 2_000
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
Path_ = tuple[str | int, ...]


class _Lines:
    """Maps a field path (keys and indices) to its line in the file, from the composed
    node tree (aliases are shared nodes, so composing is linear in the file's size)."""

    def __init__(self, text: str, path: Path) -> None:
        """Compose ``text``.

        Raises:
            ConfigError: ``FILE:LINE: not valid YAML (problem)``.
        """
        if len(text) > MAX_TEXT_CHARS:
            raise ConfigError(f"too large ({len(text)} characters; at most {MAX_TEXT_CHARS})",
                              str(path))  # fmt: skip
        try:
            self.root: Node | None = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else 1
            problem = getattr(exc, "problem", None) or "syntax error"
            raise ConfigError(f"not valid YAML ({problem})", f"{path}:{line}") from None
        except (ValueError, RecursionError) as exc:
            raise ConfigError(f"not valid YAML ({type(exc).__name__})", str(path)) from None

    def line(self, path: Path_, *, key: bool = False) -> int:
        """1-based line of the value at ``path`` (of its key with ``key=True``); the
        nearest enclosing node's line where the path cannot be followed."""
        node = self.root
        if node is None:
            return 1
        best: int = node.start_mark.line + 1
        for i, step in enumerate(path):
            last = i == len(path) - 1
            if isinstance(node, MappingNode) and isinstance(step, str):
                found = None
                for k, v in node.value:
                    if isinstance(k, ScalarNode) and k.value == step:
                        found = (k, v)
                if found is None:
                    return best
                node = found[0] if (last and key) else found[1]
            elif isinstance(node, SequenceNode) and isinstance(step, int):
                if not 0 <= step < len(node.value):
                    return best
                node = node.value[step]
            else:
                return best
            best = int(node.start_mark.line) + 1
        return best


def _dotted(path: Path_) -> str:
    out = ""
    for step in path:
        if isinstance(step, int):
            out += f"[{step}]"
        else:
            shown = shown_key(step)
            out += f".{shown}" if out else shown
    return out


class _SuiteReader(FieldReader[Path_]):
    """Validation helpers that raise ``FILE:LINE: FIELD: problem``; a place is the path of
    keys and indices from the document's root. Text must not be blank unless said."""

    max_text = MAX_TEXT

    def __init__(self, path: Path, lines: _Lines) -> None:
        self.path = path
        self.lines = lines
        #: WAV files read so far (path, as noise?): the problem found (None: usable).
        self.wav_problems: dict[tuple[Path, bool], str | None] = {}

    def fail(self, where: Path_, problem: str, *, key: bool = False) -> ConfigError:
        line = self.lines.line(where, key=key)
        return ConfigError(problem, f"{self.path}:{line}", _dotted(where) or None)

    def at(self, where: Path_, step: str | int) -> Path_:
        return (*where, step)

    def text(self, value: object, where: Path_, *, nonempty: bool = True) -> str:
        return super().text(value, where, nonempty=nonempty)

    def ident(self, value: object, where: Path_) -> str:
        text = self.text(value, where)
        if not _ID.fullmatch(text):
            raise self.fail(where, "expected an id of letters, digits, '_', '.', '-' (<= 64)")
        return text

    def language(self, value: object, where: Path_) -> str:
        text = self.text(value, where)
        try:
            tag = canonical_tag(text)
        except ConfigError as exc:
            raise self.fail(where, exc.problem) from None
        if not langcodes.tag_is_valid(tag):
            raise self.fail(where, f"unknown language code {text!r} (not in the IANA registry)")
        return tag

    def language_key(self, value: object, where: Path_) -> str:
        """A ``say``/``reply`` key: a language tag or primary subtag, lower-cased."""
        return self.language(value, where).lower()

    def regex(self, value: object, where: Path_) -> str:
        text = self.text(value, where)
        try:
            re.compile(text)
        except re.error as exc:
            raise self.fail(where, f"invalid regular expression ({exc})") from None
        return text

    def patterns(self, value: object, where: Path_) -> tuple[str, ...]:
        items = [value] if isinstance(value, str) else self.listing(value, where)
        base = where if isinstance(value, str) else None
        return tuple(
            self.regex(v, base if base is not None else (*where, i)) for i, v in enumerate(items)
        )

    def bounds(self, value: object, where: Path_, hi: float = 1e9) -> Bounds:
        d = self.mapping(value, where, ("min", "max"))
        if not d:
            raise self.fail(where, "give max: or min:")
        lo_v = None if d.get("min") is None else self.number(d["min"], (*where, "min"), hi=hi)
        hi_v = None if d.get("max") is None else self.number(d["max"], (*where, "max"), hi=hi)
        if lo_v is not None and hi_v is not None and lo_v > hi_v:
            raise self.fail(where, "min is greater than max")
        return Bounds(lo_v, hi_v)

    def file(self, value: object, where: Path_) -> Path:
        text = self.text(value, where)
        p = Path(text).expanduser()
        p = p if p.is_absolute() else self.path.parent / p
        if not p.is_file():
            raise self.fail(where, f"file {str(p)!r} not found")
        return p

    def recording(self, value: object, where: Path_) -> Path:
        """A turn's ``file``: it must exist and be a WAV the probe library plays."""
        p = self.file(value, where)
        self.check_wav(p, where, noise=False)
        return p

    def check_wav(self, path: Path, where: Path_, *, noise: bool) -> None:
        """Stop at ``where`` unless ``path`` is a usable recording or noise file
        (:func:`_wav_problem`; each file is read once)."""
        key = (path, noise)
        if key not in self.wav_problems:
            self.wav_problems[key] = _wav_problem(path, noise=noise)
        problem = self.wav_problems[key]
        if problem is not None:
            what = "noise file" if noise else "recording"
            raise self.fail(where, f"file {str(path)!r} is not a usable {what}: {problem}")

    def condition(self, value: object, where: Path_, kind: str) -> str:
        text = self.text(value, where).strip()
        try:
            cond = parse_condition(text, base_dir=self.path.parent)
        except ConfigError as exc:
            raise self.fail(where, exc.problem) from None
        if cond.kind != kind:
            raise self.fail(where, f"{text!r} is a {cond.kind} condition, not a {kind} one")
        if cond.file is not None:
            self.check_wav(cond.file, where, noise=True)
        return text


def _wav_problem(path: Path, *, noise: bool) -> str | None:
    """Why the WAV at ``path`` cannot be played, or None: it is read as the probe library
    will read it (decoded and converted to 16 kHz, :func:`app.probes.speech.load_recording`),
    so a file that is not a WAV, a corrupt one or one of a refused encoding, sample size or
    rate stops the run at load time, before any call. A noise file must not be silent
    either (the noise library refuses it)."""
    try:
        pcm = load_recording(path)
    except ConfigError as exc:
        return exc.problem  # the suite's line names the file
    if noise and not pcm.any():
        return "it is digital silence"
    return None


# --- sections ----------------------------------------------------------------------------


def _texts_by_language(r: _SuiteReader, value: object, where: Path_) -> dict[str, str]:
    if isinstance(value, str):
        return {"*": r.text(value, where)}
    d = r.mapping(value, where, tuple(value) if isinstance(value, Mapping) else ())
    if not d:
        raise r.fail(where, "must name at least one language")
    out: dict[str, str] = {}
    for k, v in d.items():
        out[r.language_key(k, (*where, k))] = r.text(v, (*where, k))
    return out


def _turn_expect(r: _SuiteReader, value: object, where: Path_) -> TurnExpect:
    keys = ("heard", "reply_language", "says", "not_says", "tool", "v2v_ms", "ttfb_ms",
            "no_barge_in")  # fmt: skip
    d = r.mapping(value, where, keys)
    max_wer = None
    if "heard" in d:
        h = r.mapping(d["heard"], (*where, "heard"), ("max_wer",), ("max_wer",))
        max_wer = r.number(h["max_wer"], (*where, "heard", "max_wer"), hi=100.0)
    reply_language: bool | str | None = None
    if "reply_language" in d:
        v = d["reply_language"]
        if isinstance(v, bool):
            reply_language = v or None
        else:
            reply_language = r.language(v, (*where, "reply_language"))
    tool = None
    if "tool" in d:
        tw = (*where, "tool")
        t = r.mapping(d["tool"], tw, ("name", "arguments", "count"), ("name",))
        args = {} if t.get("arguments") is None else t["arguments"]
        args = r.mapping(args, (*tw, "arguments"), tuple(args) if isinstance(args, Mapping) else ())
        for k, v in args.items():
            if isinstance(v, str):
                r.regex(v, (*tw, "arguments", k))
        count = None if t.get("count") is None else r.integer(t["count"], (*tw, "count"), 0, 1000)
        tool = ToolExpectation(r.text(t["name"], (*tw, "name")), args, count)
    return TurnExpect(
        max_wer=max_wer,
        reply_language=reply_language,
        says=r.patterns(d["says"], (*where, "says")) if "says" in d else (),
        not_says=r.patterns(d["not_says"], (*where, "not_says")) if "not_says" in d else (),
        tool=tool,
        v2v_ms=r.bounds(d["v2v_ms"], (*where, "v2v_ms")) if "v2v_ms" in d else None,
        ttfb_ms=r.bounds(d["ttfb_ms"], (*where, "ttfb_ms")) if "ttfb_ms" in d else None,
        no_barge_in=r.boolean(d["no_barge_in"], (*where, "no_barge_in"))
        if "no_barge_in" in d
        else False,
    )


def _sim_turn(r: _SuiteReader, value: object, where: Path_) -> SimTurn:
    d = r.mapping(value, where, ("reply", "tool_call", "after_result"))
    reply = _texts_by_language(r, d["reply"], (*where, "reply")) if "reply" in d else {}
    after = {}
    if "after_result" in d:
        after = _texts_by_language(r, d["after_result"], (*where, "after_result"))
    name, args = None, {}
    if d.get("tool_call") is not None:
        tw = (*where, "tool_call")
        t = r.mapping(d["tool_call"], tw, ("name", "arguments"), ("name",))
        name = r.text(t["name"], (*tw, "name"))
        raw = {} if t.get("arguments") is None else t["arguments"]
        args = r.mapping(raw, (*tw, "arguments"), tuple(raw) if isinstance(raw, Mapping) else ())
    return SimTurn(reply=reply, tool_name=name, tool_arguments=args, after_result=after)


def _turn(r: _SuiteReader, value: object, where: Path_) -> SuiteTurn:
    keys = ("say", "file", "voice", "expect", "timeout_ms", "simulate")
    d = r.mapping(value, where, keys, ("say",))
    return SuiteTurn(
        say=_texts_by_language(r, d["say"], (*where, "say")),
        file=r.recording(d["file"], (*where, "file")) if d.get("file") is not None else None,
        voice=r.text(d["voice"], (*where, "voice")) if d.get("voice") is not None else None,
        expect=_turn_expect(r, d["expect"], (*where, "expect"))
        if d.get("expect") is not None
        else TurnExpect(),
        timeout_ms=r.integer(d["timeout_ms"], (*where, "timeout_ms"), 100, 600_000)
        if d.get("timeout_ms") is not None
        else None,
        simulate=_sim_turn(r, d["simulate"], (*where, "simulate"))
        if d.get("simulate") is not None
        else None,
        line=r.lines.line(where),
    )


def _conversations(r: _SuiteReader, value: object) -> tuple[Conversation, ...]:
    where: Path_ = ("conversations",)
    items = r.listing(value, where, nonempty=True)
    out: list[Conversation] = []
    seen: set[str] = set()
    for i, c in enumerate(items):
        cw = (*where, i)
        d = r.mapping(c, cw, ("id", "turns"), ("id", "turns"))
        cid = r.ident(d["id"], (*cw, "id"))
        if cid in seen:
            raise r.fail((*cw, "id"), f"duplicate conversation id {cid!r}")
        seen.add(cid)
        turns = r.listing(d["turns"], (*cw, "turns"), nonempty=True)
        out.append(
            Conversation(
                cid,
                tuple(_turn(r, t, (*cw, "turns", j)) for j, t in enumerate(turns)),
                r.lines.line(cw),
            )
        )
    return tuple(out)


def _language_cell(r: _SuiteReader, value: object, where: Path_) -> LanguageCell:
    text = r.text(value, where)
    tag, sep, accent = text.partition("/")
    cell_tag = r.language(tag, where)
    if sep and not accent.strip():
        raise r.fail(where, "empty accent after '/'")
    return LanguageCell(cell_tag, accent.strip() if sep else None)


def _matrix(r: _SuiteReader, value: object) -> Matrix:
    where: Path_ = ("matrix",)
    d = r.mapping(value, where, ("language", "accent", "noise", "line", "speed", "level"),
                  ("language",))  # fmt: skip

    def axis(name: str, kind: str) -> tuple[str, ...]:
        items = r.listing(d[name], (*where, name), nonempty=True)
        vals = tuple(r.condition(v, (*where, name, i), kind) for i, v in enumerate(items))
        if len(set(vals)) != len(vals):
            raise r.fail((*where, name), "lists a value twice")
        return vals

    langs = r.listing(d["language"], (*where, "language"), nonempty=True)
    cells = tuple(_language_cell(r, v, (*where, "language", i)) for i, v in enumerate(langs))
    if len({c.label for c in cells}) != len(cells):
        raise r.fail((*where, "language"), "lists a language twice")
    accents: tuple[str | None, ...] = (None,)
    if "accent" in d:
        raw = r.listing(d["accent"], (*where, "accent"), nonempty=True)
        accents = tuple(
            None if v is None else r.text(v, (*where, "accent", i)).strip()
            for i, v in enumerate(raw)
        )
        if any(c.accent for c in cells):
            raise r.fail((*where, "accent"), "accents are given both here and as language/accent")
    return Matrix(
        language=cells,
        accent=accents,
        noise=axis("noise", "noise") if "noise" in d else ("clean",),
        line=axis("line", "line") if "line" in d else ("wideband",),
        speed=axis("speed", "speed") if "speed" in d else (None,),
        level=axis("level", "level") if "level" in d else (None,),
    )


def _call_expect(r: _SuiteReader, value: object) -> CallExpect:
    where: Path_ = ("expect_call",)
    d = r.mapping(value, where, ("v2v_p95_ms", "cost_usd", "errors", "completed"))
    return CallExpect(
        v2v_p95_ms=r.bounds(d["v2v_p95_ms"], (*where, "v2v_p95_ms")) if "v2v_p95_ms" in d else None,
        cost_usd=r.bounds(d["cost_usd"], (*where, "cost_usd")) if "cost_usd" in d else None,
        errors=r.integer(d["errors"], (*where, "errors"), 0, 10_000) if "errors" in d else None,
        completed=r.boolean(d["completed"], (*where, "completed")) if "completed" in d else None,
    )


def _simulator(r: _SuiteReader, value: object) -> SimSettings:
    where: Path_ = ("simulator",)
    d = r.mapping(value, where, ("timing", "rules", "voice_rate"))
    timing: dict[str, Any] = {}
    if d.get("timing") is not None:
        tw = (*where, "timing")
        for k, v in r.mapping(d["timing"], tw, TIMING_KEYS).items():
            if k == "endpointing_ms":
                timing[k] = r.integer(v, (*tw, k), 10, 60_000)
            else:
                timing[k] = r.number(v, (*tw, k), hi=3_600_000.0)
    rules: list[SimRule] = []
    raw_rules = [] if d.get("rules") is None else r.listing(d["rules"], (*where, "rules"))
    for i, raw in enumerate(raw_rules):
        rw = (*where, "rules", i)
        keys = ("when", "word_errors", "hears", "reply_in", "reply", "first_audio_ms",
                "skip_tool", "error")  # fmt: skip
        rd = r.mapping(raw, rw, keys)
        when = SimWhen()
        if rd.get("when") is not None:
            ww = (*rw, "when")
            wd = r.mapping(rd["when"], ww, ("language", "accent", "conversation", "turn",
                                            "noise", "line"))  # fmt: skip
            when = SimWhen(
                language=r.language_key(wd["language"], (*ww, "language"))
                if "language" in wd
                else None,
                accent=r.text(wd["accent"], (*ww, "accent")).strip() if "accent" in wd else None,
                conversation=r.ident(wd["conversation"], (*ww, "conversation"))
                if "conversation" in wd
                else None,
                turn=r.integer(wd["turn"], (*ww, "turn"), 1, 10_000) if "turn" in wd else None,
                noise=r.text(wd["noise"], (*ww, "noise")).strip() if "noise" in wd else None,
                line=r.text(wd["line"], (*ww, "line")).strip() if "line" in wd else None,
            )
        rules.append(
            SimRule(
                when=when,
                word_errors=r.integer(rd.get("word_errors", 0), (*rw, "word_errors"), 0, 1000),
                hears=r.text(rd["hears"], (*rw, "hears"), nonempty=False)
                if rd.get("hears") is not None
                else None,
                reply_in=r.language_key(rd["reply_in"], (*rw, "reply_in"))
                if rd.get("reply_in") is not None
                else None,
                reply=r.text(rd["reply"], (*rw, "reply"), nonempty=False)
                if rd.get("reply") is not None
                else None,
                first_audio_ms=r.number(rd["first_audio_ms"], (*rw, "first_audio_ms"), hi=600_000)
                if rd.get("first_audio_ms") is not None
                else None,
                skip_tool=r.boolean(rd.get("skip_tool", False), (*rw, "skip_tool")),
                error=r.ident(rd["error"], (*rw, "error")) if rd.get("error") is not None else None,
                line=r.lines.line(rw),
            )
        )
    rate = r.integer(d.get("voice_rate", 175), (*where, "voice_rate"), 80, 450)
    return SimSettings(timing=timing, rules=tuple(rules), voice_rate=rate)


def _voices(r: _SuiteReader, value: object) -> dict[str, str]:
    where: Path_ = ("voices",)
    d = r.mapping(value, where, tuple(value) if isinstance(value, Mapping) else ())
    out: dict[str, str] = {}
    for k, v in d.items():
        tag = k.partition("/")[0]
        r.language(tag, (*where, k))
        out[k] = r.text(v, (*where, k))
    return out


def say_text(say: Mapping[str, str], language: str) -> str | None:
    """The text of a ``say``/``reply`` mapping for ``language``: the exact tag first, then
    the primary subtag, then a text given for every language (``"*"``); None if none."""
    tag = language.lower()
    if tag in say:
        return say[tag]
    primary = primary_subtag(language)
    for key, text in say.items():
        if key != "*" and primary_subtag(key) == primary and "-" not in key:
            return text
    for key, text in say.items():
        if key != "*" and primary_subtag(key) == primary:
            return text
    return say.get("*")


def _check_coverage(r: _SuiteReader, suite: Suite) -> None:
    """Every turn speaks every matrix language; every language/accent has a voice."""
    for ci, conv in enumerate(suite.conversations):
        for ti, turn in enumerate(conv.turns):
            for cell in suite.matrix.language:
                if say_text(turn.say, cell.tag) is None:
                    have = ", ".join(sorted(turn.say))
                    raise r.fail(
                        ("conversations", ci, "turns", ti, "say"),
                        f"no text for language {cell.tag} (have: {have})",
                    )
    if all(t.file is not None for c in suite.conversations for t in c.turns):
        return  # recordings only: no voice needed
    for li, cell in enumerate(suite.matrix.language):
        accents = (cell.accent,) if cell.accent else suite.matrix.accent
        for accent in accents:
            try:
                voice_for(cell.tag, accent, overrides=suite.voices)
            except ConfigError as exc:
                raise r.fail(("matrix", "language", li), exc.problem) from None
    for ci, conv in enumerate(suite.conversations):
        for ti, turn in enumerate(conv.turns):
            if turn.voice and turn.file is None:
                try:
                    voice_for(suite.matrix.language[0].tag, voice=turn.voice)
                except ConfigError as exc:
                    where = ("conversations", ci, "turns", ti, "voice")
                    raise r.fail(where, exc.problem) from None


def _profile_ref(r: _SuiteReader, value: object) -> str:
    text = r.text(value, ("profile",)).strip()
    p = Path(text).expanduser()
    if p.suffix or "/" in text:
        full = p if p.is_absolute() else r.path.parent / p
        if not full.is_file():
            raise r.fail(("profile",), f"profile file {str(full)!r} not found")
        return str(full)
    if not (RESOURCES / "profiles" / f"{text}.yaml").is_file():
        known = sorted(q.stem for q in (RESOURCES / "profiles").glob("*.yaml"))
        raise r.fail(("profile",), f"no profile named {text!r} (built-in: {', '.join(known)})")
    return text


def suite_from_text(text: str, path: Path) -> Suite:
    """Validate a suite's YAML text (read from ``path``) into a :class:`Suite`.

    Raises:
        ConfigError: ``FILE:LINE: FIELD: problem`` for the first problem found.
    """
    lines = _Lines(text, path)
    data = load_yaml(text, str(path))
    r = _SuiteReader(path, lines)
    keys = ("name", "description", "profile", "seed", "voices", "conversations", "matrix",
            "repeat", "expect_call", "simulator", "turn_timeout_ms", "idle_ms",
            "lead_ms")  # fmt: skip
    d = r.mapping(data, (), keys, ("name", "conversations", "matrix"))
    if "description" in d and d["description"] is not None:
        r.text(d["description"], ("description",), nonempty=False)
    suite = Suite(
        name=r.ident(d["name"], ("name",)),
        path=path,
        profile=_profile_ref(r, d["profile"]) if d.get("profile") is not None else "default",
        seed=r.integer(d.get("seed", 0), ("seed",), 0, 2**63 - 1),
        conversations=_conversations(r, d["conversations"]),
        matrix=_matrix(r, d["matrix"]),
        repeat=r.integer(d.get("repeat", 1), ("repeat",), 1, 1000),
        expect_call=_call_expect(r, d["expect_call"])
        if d.get("expect_call") is not None
        else CallExpect(),
        voices=_voices(r, d["voices"]) if d.get("voices") is not None else {},
        simulator=_simulator(r, d["simulator"])
        if d.get("simulator") is not None
        else SimSettings(),
        turn_timeout_ms=r.integer(
            d.get("turn_timeout_ms", 20_000), ("turn_timeout_ms",), 100, 600_000
        ),  # fmt: skip
        idle_ms=r.integer(d.get("idle_ms", 600), ("idle_ms",), 100, 60_000),
        lead_ms=r.integer(d.get("lead_ms", 300), ("lead_ms",), 0, 60_000),
    )
    _check_coverage(r, suite)
    return suite


def load_suite(path: str | Path) -> Suite:
    """Read and validate a suite file.

    Raises:
        ConfigError: the file is missing, unreadable, not UTF-8, not YAML, or invalid; one
            line ``FILE:LINE: FIELD: problem`` (``FILE: problem`` for the first four).
    """
    p = Path(path)
    return suite_from_text(read_text_file(p, "suite file"), p)
