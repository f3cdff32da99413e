"""Atomic file writes: a reader (or a resumed run) never sees half a file.

Everything is written under a temporary name in the destination's folder and
then moved into place with ``os.replace``, which is atomic on POSIX file
systems. A crash leaves at most a stray ``.<name>.<host>.<pid>.<token>.tmp``
file, never a truncated result under the real name. The host name and a random
token keep two Slurm tasks on different nodes (which may share a PID) from
writing the same temporary file on a shared file system. ``remove_stale_temporaries``
clears what killed writers left behind.

A write that finds the disk (or the quota) full raises ``DiskFull`` naming
the destination and about how much it needed; its temporary file is removed,
and the destination keeps its previous content.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import uuid
from pathlib import Path
from typing import Iterator

from pipeline.errors import DiskFull, is_disk_full


@contextlib.contextmanager
def atomic_target(path, suffix: str = "", expected_bytes: int | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` if the block succeeds.

    Args:
        path: the destination file.
        suffix: appended to the temporary name, for writers that choose the
            format by extension (e.g. ``".h5"``).
        expected_bytes: about how large the file will be, for the message of a
            full disk (else the bytes written before it filled are named).

    Raises:
        DiskFull: the block (or the folder's creation) found no space left.
    """
    path = Path(path)
    token = f"{temporary_owner()}.{uuid.uuid4().hex[:8]}"
    temporary = path.with_name(f".{path.name}.{token}.tmp{suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield temporary
        os.replace(temporary, path)
    except Exception as error:
        if isinstance(error, DiskFull) or not is_disk_full(error, path.parent):
            raise
        written = _size(temporary)
        temporary.unlink(missing_ok=True)  # first, so that the message counts the space it held as free
        raise DiskFull(path, expected_bytes or written or None) from None
    finally:
        temporary.unlink(missing_ok=True)


def write_atomically(path, content: str | bytes) -> None:
    """Write text (UTF-8) or bytes to ``path`` atomically."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    with atomic_target(path, expected_bytes=len(data)) as temporary:
        temporary.write_bytes(data)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


#: Temporary files of this module (``.<name>.<host>.<pid>.<token>.tmp[suffix]``) and staging folders (``.<name>.tmp``).
_TEMPORARY = re.compile(r"\..+\.tmp(\.\w+)*")


def temporary_owner() -> str:
    """``<host>.<pid>``: what a temporary name carries so that a later run can tell whether its writer lives."""
    return f"{socket.gethostname()}.{os.getpid()}"


def remove_stale_temporaries(folder, exclusive: bool = False) -> int:
    """Delete temporary files and staging folders under ``folder`` that no live writer owns; return how many.

    Args:
        folder: searched recursively.
        exclusive: the caller is the only writer there (e.g. the one process
            of a fold): every temporary is stale. Otherwise only those of
            processes of this host that no longer run are removed (another
            node's writer cannot be checked).
    """
    removed = 0
    owned_here = re.compile(rf"\..+\.{re.escape(socket.gethostname())}\.(\d+)\.\w+\.tmp(\.\w+)*")
    for path in sorted(Path(folder).rglob(".*.tmp*"), reverse=True):
        if not _TEMPORARY.fullmatch(path.name):
            continue
        if not exclusive:
            mine = owned_here.fullmatch(path.name)
            if mine is None or _running(int(mine[1])):
                continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed += 1
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
