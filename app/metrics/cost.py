"""What a call cost: token usage summed per turn and per call, priced by a price table.

Pure functions and frozen records; no I/O except :func:`load_price_table`, which reads the
table files. The rules (``docs/cost.md``):

* A price table gives, per model, USD per 1M tokens for ``text_input``,
  ``text_cached_input``, ``audio_input``, ``audio_cached_input``, ``text_output`` and
  ``audio_output``. A figure may be ``null``: not published, or not found.
* Cached tokens are a subset of the input tokens (both vendors count them so), so
  ``cost = (text_in − cached_text)·text_input + cached_text·text_cached_input
  + (audio_in − cached_audio)·audio_input + cached_audio·audio_cached_input
  + text_out·text_output + audio_out·audio_output``, all ÷ 1e6.
* A cost is never guessed: a model the table does not know, a needed figure that is
  ``null``, or tokens of another modality (image, video, unattributed) make the cost
  ``None``, with one notice saying why.
* The shipped table (``resources/prices.yaml``) is overridden per model by
  ``prices.yaml`` in the config folder, and that by a file given explicitly
  (``voiceprobe call --prices FILE``): a model's entry in a later file replaces the whole
  entry of that model.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.bounded_yaml import load_yaml
from app.errors import ConfigError
from app.events import Usage
from app.profile import RESOURCES, read_text_file

#: The price table shipped with voiceprobe.
SHIPPED_PRICES = RESOURCES / "prices.yaml"
#: The name of the user's override file in the config folder.
USER_PRICES_NAME = "prices.yaml"

#: Token counts of a usage record, as :class:`~app.events.Usage` names them.
TOKEN_FIELDS = (
    "text_input",
    "audio_input",
    "other_input",
    "cached_text_input",
    "cached_audio_input",
    "cached_other_input",
    "text_output",
    "audio_output",
    "other_output",
)
#: Figures of a price-table entry (USD per 1M tokens).
PRICE_FIELDS = (
    "text_input",
    "text_cached_input",
    "audio_input",
    "audio_cached_input",
    "text_output",
    "audio_output",
)
_ENTRY_KEYS = frozenset(PRICE_FIELDS) | {"provider", "source", "retrieved", "note", "aliases"}
_TOP_KEYS = frozenset({"version", "currency", "unit", "models"})


# --- usage records ---------------------------------------------------------------------


def usage_record(usages: Iterable[Usage]) -> dict[str, Any] | None:
    """The JSON usage record of some responses (the ``usage`` of a turn): token counts
    summed, plus ``input_tokens``, ``output_tokens``, ``total_tokens``, ``responses`` and
    ``model`` (``None`` if the responses name different models). ``None`` if empty.
    """
    items = list(usages)
    if not items:
        return None
    rec: dict[str, Any] = {name: sum(getattr(u, name) for u in items) for name in TOKEN_FIELDS}
    models = {u.model for u in items}
    return _finish(rec, models.pop() if len(models) == 1 else None, len(items))


def add_usage(records: Iterable[Mapping[str, Any] | None]) -> dict[str, Any] | None:
    """The sum of usage records (the ``usage`` of a call from those of its turns)."""
    items = [r for r in records if r]
    if not items:
        return None
    rec: dict[str, Any] = {name: sum(int(r.get(name) or 0) for r in items) for name in TOKEN_FIELDS}
    models = {r.get("model") for r in items}
    responses = sum(int(r.get("responses") or 0) for r in items)
    return _finish(rec, models.pop() if len(models) == 1 else None, responses)


def _finish(rec: dict[str, Any], model: str | None, responses: int) -> dict[str, Any]:
    rec["input_tokens"] = rec["text_input"] + rec["audio_input"] + rec["other_input"]
    rec["output_tokens"] = rec["text_output"] + rec["audio_output"] + rec["other_output"]
    rec["total_tokens"] = rec["input_tokens"] + rec["output_tokens"]
    rec["responses"] = responses
    rec["model"] = model
    return rec


# --- the price table -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """One model's entry of a price table.

    Attributes:
        model: the table key.
        figures: USD per 1M tokens for each of :data:`PRICE_FIELDS` (``None``: unknown).
        source: where the figures come from (a URL), as the file says.
        retrieved: the date they were read there, as the file says.
        table: the file the entry was read from.
        aliases: other model names priced by this entry.
    """

    model: str
    figures: Mapping[str, float | None]
    source: str
    retrieved: str
    table: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PriceTable:
    """Model prices, looked up by model name (see :meth:`lookup`)."""

    models: Mapping[str, ModelPrice]

    def lookup(self, model: str | None) -> ModelPrice | None:
        """The entry for ``model``: its key or one of its aliases, case-insensitively,
        with a leading ``models/`` (Gemini's resource name) ignored. ``None`` if absent;
        no name is ever guessed from a similar one (snapshots may be priced differently).
        """
        if not model:
            return None
        name = _norm(model)
        for entry in self.models.values():
            if name == _norm(entry.model) or name in (_norm(a) for a in entry.aliases):
                return entry
        return None


def _norm(model: str) -> str:
    return model.strip().casefold().removeprefix("models/")


def read_price_file(path: Path) -> dict[str, ModelPrice]:
    """Read and check one price-table file.

    Raises:
        ConfigError: one line naming the file and the field that is wrong.
    """
    where = str(path)
    data = load_yaml(read_text_file(path), where, "YAML")
    if not isinstance(data, dict):
        raise ConfigError("a price table must be a mapping with a 'models' key", where)
    for key in data:
        if key not in _TOP_KEYS:
            known = ", ".join(sorted(_TOP_KEYS))
            raise ConfigError(f"unknown key (known: {known})", where, str(key))
    if data.get("currency", "USD") != "USD":
        raise ConfigError("only USD is supported", where, "currency")
    models = data.get("models")
    if not isinstance(models, dict):
        raise ConfigError("must be a mapping of model name to prices", where, "models")
    out: dict[str, ModelPrice] = {}
    for name, entry in models.items():
        field = f"models.{name}"
        if not isinstance(name, str) or not name.strip():
            raise ConfigError("a model name must be text", where, field)
        if not isinstance(entry, dict):
            raise ConfigError("must be a mapping of prices", where, field)
        for key in entry:
            if key not in _ENTRY_KEYS:
                known = ", ".join(sorted(_ENTRY_KEYS))
                raise ConfigError(f"unknown key (known: {known})", where, f"{field}.{key}")
        figures: dict[str, float | None] = {}
        for key in PRICE_FIELDS:
            value = entry.get(key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0
            ):
                raise ConfigError(
                    "must be a number ≥ 0 (USD per 1M tokens) or null", where, f"{field}.{key}"
                )
            figures[key] = None if value is None else float(value)
        aliases = entry.get("aliases") or []
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise ConfigError("must be a list of model names", where, f"{field}.aliases")
        retrieved = entry.get("retrieved", "")
        if isinstance(retrieved, _dt.date):
            retrieved = retrieved.isoformat()
        out[name.strip()] = ModelPrice(
            model=name.strip(),
            figures=figures,
            source=str(entry.get("source") or ""),
            retrieved=str(retrieved or ""),
            table=where,
            aliases=tuple(a.strip() for a in aliases),
        )
    return out


def load_price_table(explicit: Path | None = None, config_folder: Path | None = None) -> PriceTable:
    """The shipped table, overridden per model by ``<config folder>/prices.yaml`` (if it
    exists) and then by ``explicit`` (if given).

    Args:
        explicit: a file named by the user (``--prices``); it must exist.
        config_folder: the settings folder; default :func:`app.store.paths.config_dir`.

    Raises:
        ConfigError: a file is missing (``explicit`` only), unreadable or invalid.
    """
    if config_folder is None:
        from app.store.paths import config_dir

        config_folder = config_dir()
    models = dict(read_price_file(SHIPPED_PRICES))
    files = [config_folder / USER_PRICES_NAME]
    if explicit is not None:
        files.append(explicit)
    for i, path in enumerate(files):
        if i == 0 and not path.exists():
            continue
        for name, entry in read_price_file(path).items():
            # A later file's entry replaces the model's entry, under any of its names.
            for old in [k for k, e in models.items() if _same_model(e, entry)]:
                del models[old]
            models[name] = entry
    return PriceTable(models)


def _same_model(a: ModelPrice, b: ModelPrice) -> bool:
    names_a = {_norm(a.model), *(_norm(x) for x in a.aliases)}
    return _norm(b.model) in names_a or any(_norm(x) in names_a for x in b.aliases)


# --- pricing ---------------------------------------------------------------------------

_TERMS = (
    # (tokens, cached part subtracted, price field, what it is called in a notice)
    ("text_input", "cached_text_input", "text_input", "text input"),
    ("cached_text_input", None, "text_cached_input", "cached text input"),
    ("audio_input", "cached_audio_input", "audio_input", "audio input"),
    ("cached_audio_input", None, "audio_cached_input", "cached audio input"),
    ("text_output", None, "text_output", "text output"),
    ("audio_output", None, "audio_output", "audio output"),
)


@dataclass(frozen=True, slots=True)
class Priced:
    """A cost, or why there is none.

    Attributes:
        usd: the cost in US dollars, or ``None`` when it cannot be known.
        notice: why ``usd`` is ``None`` (one line), else ``None``.
        price: the table entry used, if the model was found.
    """

    usd: float | None
    notice: str | None = None
    price: ModelPrice | None = None


def price_usage(usage: Mapping[str, Any] | None, table: PriceTable) -> Priced:
    """The cost of one usage record (see the module docstring for the formula)."""
    if not usage:
        return Priced(None, "no token usage was reported")
    model = usage.get("model")
    entry = table.lookup(model)
    if entry is None:
        return Priced(None, f"no price for model {model!r} in the price table")
    if usage.get("other_input") or usage.get("other_output"):
        return Priced(
            None,
            f"{model}: tokens of a modality other than text and audio have no price",
            entry,
        )
    total = 0.0
    for tokens, cached, field, what in _TERMS:
        n = int(usage.get(tokens) or 0) - (int(usage.get(cached) or 0) if cached else 0)
        if n == 0:
            continue
        figure = entry.figures.get(field)
        if figure is None:
            return Priced(None, f"{model}: the price table has no {what} price", entry)
        total += n * figure
    return Priced(total / 1e6, None, entry)


@dataclass(frozen=True, slots=True)
class CallCost:
    """The cost of a call, turn by turn.

    Attributes:
        turns: the turn records, each with ``cost_usd`` added (``None`` for a turn with
            no reported usage, or when the cost cannot be known).
        cost_usd: the call's total, priced from the call's summed usage.
        usage: the call's usage record plus ``price`` (the table entry used: ``model``,
            ``source``, ``retrieved``, ``table``) and ``notice``; ``None`` when no
            usage was reported at all.
        notice: why ``cost_usd`` is ``None``, once for the call (``None`` if it is known
            or if no usage was reported).
    """

    turns: list[dict[str, Any]]
    cost_usd: float | None
    usage: dict[str, Any] | None
    notice: str | None


def price_call(turns: list[dict[str, Any]], table: PriceTable) -> CallCost:
    """Price every turn (from its ``usage``) and the call (from the sum of them).

    ``turns`` are left as they are; the returned records are copies.
    """
    priced_turns = []
    for turn in turns:
        usage = turn.get("usage")
        priced_turns.append({**turn, "cost_usd": price_usage(usage, table).usd if usage else None})
    usage = add_usage(t.get("usage") for t in turns)
    if usage is None:
        return CallCost(priced_turns, None, None, None)
    call = price_usage(usage, table)
    entry = call.price
    usage["price"] = (
        {"model": entry.model, "source": entry.source, "retrieved": entry.retrieved,
         "table": entry.table}
        if entry is not None
        else None
    )  # fmt: skip
    notice = f"cost unknown: {call.notice}" if call.notice else None
    usage["notice"] = notice
    return CallCost(priced_turns, call.usd, usage, notice)
