"""Private folders and files: what voiceprobe records is readable by its user only.

Recordings hold voices and conversations, so every folder voiceprobe creates in its data
folder is ``0700`` and every file ``0600``, whatever the umask: files are created with
``os.open(..., 0o600)`` and then ``fchmod``-ed (the umask can only remove bits, and a file
that already existed keeps its old mode unless changed), folders are ``chmod``-ed after
``mkdir``. Files the user asks for elsewhere (an exported report, a sample written with
``--out``) are not made private: they follow the user's umask.

On platforms without POSIX modes (Windows) the calls still create the files; the modes
are best effort there.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600

_FLAGS = {
    "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
    "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
    "x": os.O_WRONLY | os.O_CREAT | os.O_EXCL,
}


def _chmod(path: Path, mode: int) -> None:
    try:
        os.chmod(path, mode)
    except NotImplementedError:  # pragma: no cover - platforms without modes
        pass


def private_dir(path: str | Path, *, tighten: bool = False) -> Path:
    """Create folder ``path`` and any missing parents, each ``0700``.

    With ``tighten=True`` an existing ``path`` (a folder only voiceprobe uses, such as
    ``sessions``) is set to ``0700`` too; otherwise an existing folder keeps its mode (it
    may be one the user chose).

    Raises:
        OSError: a folder cannot be created or changed.
    """
    path = Path(path)
    missing: list[Path] = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    for created in missing:
        _chmod(created, PRIVATE_DIR_MODE)
    if tighten and not missing:
        _chmod(path, PRIVATE_DIR_MODE)
    return path


def open_private(path: str | Path, mode: str = "wb", **kwargs: Any) -> IO[Any]:
    """``open(path, mode, **kwargs)`` for writing, with the file's mode set to ``0600``.

    ``mode`` starts with ``w`` (truncate), ``a`` (append) or ``x`` (must not exist) and
    may add ``b``/``t``/``+``; ``kwargs`` go to :func:`os.fdopen` (``encoding``,
    ``errors``, ``newline``...). A symlink at ``path`` is not followed.

    Raises:
        OSError: the file cannot be created or opened.
    """
    flags = _FLAGS[mode[0]] | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
    if "+" in mode:
        flags = (flags & ~os.O_WRONLY) | os.O_RDWR
    fd = os.open(path, flags, PRIVATE_FILE_MODE)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, PRIVATE_FILE_MODE)
        return os.fdopen(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        raise


def private_file(path: str | Path) -> Path:
    """Create ``path`` empty if missing, and set it to ``0600`` either way.

    Raises:
        OSError: the file cannot be created or changed.
    """
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, PRIVATE_FILE_MODE)
    finally:
        os.close(fd)
    return path
