"""Opening an input file someone handed us: a regular file, read with a size bound, never blocking.

A FIFO would block ``open()`` until a writer appears and ``/dev/zero`` never ends, so anything
that is not a regular file is refused before it is read, with a message saying what it is.
The file is opened with ``O_NONBLOCK`` and checked again with ``fstat`` so a path swapped for a
FIFO between the two checks cannot hang the run either. Sizes are not taken from ``stat``
(``/proc`` files report 0): at most ``max_bytes + 1`` bytes are read, and more is an error.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from engram_audit.errors import InputError, Problem

# Policies and waivers are a few kilobytes; the YAML parser reads about 0.5 MB/s.
MAX_YAML_BYTES = 1 << 20
# Snapshots and reports: a 30 KB snapshot per server leaves room for a fleet of ~2,000 servers.
MAX_JSON_BYTES = 64 << 20
# POSIX NAME_MAX and PATH_MAX on Linux: longer names fail in the kernel with ENAMETOOLONG.
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4096

_READ_CHUNK = 1 << 20
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


def special_kind(mode: int) -> str | None:
    """What a file that is not a regular file is, in words; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def path_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a file on this system (NUL byte, overlong), or None."""
    if "\x00" in name:
        return "contains a NUL byte"
    try:
        encoded = os.fsencode(name)
    except UnicodeError:
        return "cannot be encoded as a file name"
    if len(encoded) > MAX_PATH_BYTES:
        return f"is longer than {MAX_PATH_BYTES} bytes"
    if any(len(part) > MAX_NAME_BYTES for part in encoded.split(b"/")):
        return f"has a path component longer than {MAX_NAME_BYTES} bytes"
    return None


def _refuse(shown: str, message: str) -> InputError:
    return InputError([Problem(shown, 1, 1, "", message)])


def _open_regular(path: Path, shown: str) -> int:
    name_problem = path_name_problem(os.fspath(path))
    if name_problem:
        raise _refuse(shown, f"cannot read file: the path {name_problem}")
    try:
        kind = special_kind(os.stat(path).st_mode)
        if kind:
            raise _refuse(shown, f"cannot read file: it is {kind}, not a regular file")
        descriptor = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        raise _refuse(shown, "file not found") from None
    except OSError as error:
        raise _refuse(shown, f"cannot read file: {error.strerror or error}") from None
    kind = special_kind(os.fstat(descriptor).st_mode)
    if kind:
        os.close(descriptor)
        raise _refuse(shown, f"cannot read file: it is {kind}, not a regular file")
    return descriptor


def read_bytes(path: Path, shown: str, *, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; anything else is an InputError."""
    descriptor = _open_regular(path, shown)
    chunks: list[bytes] = []
    total = 0
    try:
        while True:
            chunk = os.read(descriptor, min(_READ_CHUNK, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise _refuse(
                    shown, f"file is larger than {max_bytes:,} bytes, the limit for this input"
                )
    except OSError as error:
        raise _refuse(shown, f"cannot read file: {error.strerror or error}") from None
    finally:
        os.close(descriptor)
    return b"".join(chunks)


def read_input(path: Path, shown: str, *, max_bytes: int = MAX_YAML_BYTES) -> str:
    """An input file's UTF-8 text; special files, oversize files and bad UTF-8 are InputErrors."""
    raw = read_bytes(path, shown, max_bytes=max_bytes)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        raise InputError(
            [Problem(shown, line, column, "", f"cannot read file: not UTF-8 text ({error.reason})")]
        ) from None
