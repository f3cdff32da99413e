"""Verify every case of a data set before a run writes anything (nnU-Net's ``--verify_dataset_integrity``).

A bad file found in the middle of training costs hours and leaves a run
folder behind; found here, it costs one line and nothing is written. Each
case is read exactly as training reads it (``dataset.load``), which checks:

* headers: every file is a readable NIfTI volume, 3-D, and the image
  channels and the mask share one shape and affine;
* voxels: the data decompress completely, images are finite (no NaN or
  Inf), masks hold only the data set's label values.

Cases are read in threads (decompression and NumPy release the GIL) with a
progress bar on stderr. Verified cases are remembered in
``<record_dir>/verified-<hash>.json`` (``<hash>``: the data set's
fingerprint), each with its files' (path, size, mtime): a rerun reads only
new or changed cases. The record is written only once every case passed, so
bad input writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pipeline import console
from pipeline.atomic_files import write_atomically

#: Bump when what a verification checks changes: older records are then ignored.
VERIFY_FORMAT = 1


def record_path(dataset, record_dir: Path) -> Path:
    """Where the verified cases of ``dataset`` are remembered."""
    description = json.dumps({"format": VERIFY_FORMAT, "dataset": dataset.fingerprint()}, sort_keys=True)
    return Path(record_dir) / f"verified-{hashlib.sha256(description.encode()).hexdigest()[:16]}.json"


def file_stamps(dataset, case_id: str) -> list[list]:
    """(path, size, mtime_ns) of every file the case is read from."""
    stamps = []
    for path in dataset.source_files(case_id):
        status = Path(path).stat()
        stamps.append([str(Path(path).resolve()), status.st_size, status.st_mtime_ns])
    return stamps


def verify_dataset(dataset, record_dir: Path | None = None, workers: int | None = None, progress: bool = True) -> int:
    """Read every case of ``dataset`` once; return how many were read (the others were remembered).

    Args:
        dataset: an opened data set (``pipeline.data.open_dataset``).
        record_dir: folder of the record of verified cases (e.g. the
            preprocessing cache folder); ``None``: verify all, remember nothing.
        workers: threads reading cases (default ``min(4, cpu count)``; each holds one case).
        progress: show a progress bar on stderr (``pipeline.console``: a terminal, not ``-q``).

    Raises:
        DataError: the first bad case in case-id order, naming its file and the problem.
    """
    path = None if record_dir is None else record_path(dataset, record_dir)
    remembered = _read_record(path)
    stamps = {case_id: file_stamps(dataset, case_id) for case_id in dataset.case_ids()}
    # A case whose reader names no files (some MIScnn interfaces) cannot be remembered: it is always read.
    pending = [case_id for case_id, stamp in stamps.items() if not stamp or remembered.get(case_id) != stamp]
    if pending:
        _read_cases(dataset, pending, workers or min(4, os.cpu_count() or 1), progress)
    if path is not None and pending:
        write_atomically(path, json.dumps({**remembered, **stamps}, indent=1, sort_keys=True) + "\n")
    return len(pending)


def _read_cases(dataset, case_ids: list[str], workers: int, progress: bool) -> None:
    """Load every case; on the first failure (in ``case_ids`` order) cancel the rest and raise it."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_check_case, dataset, case_id) for case_id in case_ids]
        shown = (
            console.progress(
                futures, total=len(futures), description=f"verifying {dataset.name}", unit="case", leave=False
            )
            if progress
            else futures
        )
        try:
            for future in shown:
                future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _check_case(dataset, case_id: str) -> None:
    dataset.load(case_id)  # every check of the readers; the arrays are dropped at once


def _read_record(path: Path | None) -> dict:
    if path is None:
        return {}
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}
