"""The probe render cache: audio stored under a hash of everything that made it.

``<data dir>/probe-cache/<key>.wav`` holds one mono PCM16 WAV per key, where the key is
the SHA-256 of a JSON object of the inputs (text, voice, rate, pitch, conditions, seed,
digests of any input files) and :data:`CACHE_VERSION`. Same inputs, same key, same file:
nothing is synthesised twice. Files are written to a temporary name and renamed into
place, so concurrent renderers (threads or processes) never see a half-written file; a
cached file that cannot be read is made again. Folders are ``0700`` and files ``0600``.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from app.audio.pcm import int16_to_bytes
from app.audio.wavio import read_wav, wav_header
from app.errors import AudioFormatError, ConfigError, StoreError
from app.private_files import open_private, private_dir
from app.store.paths import data_dir

#: Bump when rendering changes in a way that alters audio for the same inputs.
CACHE_VERSION = 1

#: Sample rate of every cached file and of every rendered probe, in Hz.
PROBE_RATE = 16000


def probe_cache_dir(root: Path | None = None) -> Path:
    """``<data dir>/probe-cache`` (or ``root/probe-cache``), created ``0700`` on demand.

    Raises:
        StoreError: the folder cannot be created.
    """
    return ensure_cache_dir((root if root is not None else data_dir()) / "probe-cache")


def ensure_cache_dir(path: Path) -> Path:
    """Create the cache folder ``path`` (and parents) ``0700`` if needed and return it.

    Raises:
        StoreError: the folder cannot be created.
    """
    try:
        return private_dir(path, tighten=True)
    except OSError as exc:
        raise StoreError(f"cannot create folder {path} ({exc.strerror or exc})") from None


def content_key(fields: Mapping[str, object]) -> str:
    """Return the hex SHA-256 of ``fields`` (JSON-serialisable) and :data:`CACHE_VERSION`."""
    blob = json.dumps({"v": CACHE_VERSION, **fields}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def file_digest(path: Path, *, field: str = "file") -> str:
    """Return the hex SHA-256 of a file's bytes.

    Raises:
        ConfigError: the file is missing or unreadable (the message names it).
    """
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except FileNotFoundError:
        raise ConfigError("file not found", path=str(path), field=field) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read file ({exc.strerror or exc})", path=str(path), field=field
        ) from None


def cached_audio(
    key: str, make: Callable[[], NDArray[np.int16]], cache_dir: Path
) -> tuple[Path, NDArray[np.int16]]:
    """Return ``(path, samples)`` for ``key``, calling ``make()`` only when not cached.

    ``make`` must return mono int16 samples at :data:`PROBE_RATE`. The returned array is
    read-only.

    Raises:
        StoreError: the cache file cannot be written.
        ConfigError: whatever ``make`` raises.
    """
    path = cache_dir / f"{key}.wav"
    if path.exists():
        try:
            samples, rate = read_wav(path)
            if rate == PROBE_RATE:
                samples.flags.writeable = False
                return path, samples
        except AudioFormatError:
            pass  # a damaged entry: make it again below
    samples = np.ascontiguousarray(make(), dtype=np.int16)
    payload = int16_to_bytes(samples)
    tmp = cache_dir / f".{key}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        with open_private(tmp, "wb") as fh:
            fh.write(wav_header(1, PROBE_RATE, len(payload)))
            fh.write(payload)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"cannot write {path} ({exc.strerror or exc})") from None
    samples.flags.writeable = False
    return path, samples
