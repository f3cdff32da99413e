"""The output tail shared by ``compare-losses``, ``sweep-report`` and ``rank-losses``.

Each command checks ``--out`` before any work (so a bad folder costs nothing),
builds its files in memory as ``{name: content}``, then hands them to
``write_outputs``: every file written atomically into ``--out``, the Markdown
tables printed to stdout, and one log line saying how many files went where.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from pipeline.atomic_files import write_atomically
from pipeline.errors import UnifocalError

logger = logging.getLogger(__name__)


def check_out_dir(out) -> Path:
    """``--out`` as a path; refuse one that exists and is not a folder (before anything is read or written)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UnifocalError(f"{out}: --out exists and is not a folder")
    return out


def write_outputs(out, outputs: Mapping[str, str | bytes], printed: Sequence[str] | None = None) -> None:
    """Write every ``{name: content}`` atomically into ``out``, then print the Markdown tables.

    Args:
        out: the ``--out`` folder (created if missing).
        outputs: file name -> text or bytes, written in this order.
        printed: the names whose content goes to stdout, joined by newlines;
            default every ``.md`` file, in the order of ``outputs``.
    """
    out = Path(out)
    for name, content in outputs.items():
        write_atomically(out / name, content)
    names = [name for name in outputs if name.endswith(".md")] if printed is None else list(printed)
    if names:
        print("\n".join(outputs[name] for name in names))
    logger.info("wrote %d files to %s", len(outputs), out)
