"""On-disk cache of preprocessed cases, shared by every loss and fold of an experiment.

Layout::

    <cache_dir>/<key>/key.json                   what the key stands for (data set, settings)
    <cache_dir>/<key>/<case_id>/image.npy        float32 (D', H', W', M)
    <cache_dir>/<key>/<case_id>/label.npy        uint8 (D', H', W')
    <cache_dir>/<key>/<case_id>/meta.json        geometry, the source files' sizes and times, and each
                                                 array file's size and CRC-32 ("arrays")

``key`` hashes the data set's fingerprint (name, root, modalities, label
map) and the preprocessing settings: any change gives a new folder, and runs
that agree share one. A case whose source files changed (size or
modification time) is recomputed. A case folder appears only complete: it is
written under a temporary name and renamed, so a crash or a bad case leaves
nothing partial behind, and concurrent runs (e.g. folds on a cluster) may
fill the same cache.

Integrity: a cached case is used only if its array files have the recorded
sizes (checked at every opening) and CRC-32s (checked once per process and
file version, at about 3 GB/s). A truncated or altered file, or a folder
cached before checksums were recorded, is reported in one warning line and
the case is rebuilt from the data set. A full disk while storing raises
``DiskFull`` naming the case folder and the bytes it needed; nothing partial stays.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable

import numpy as np

from pipeline import console
from pipeline.atomic_files import remove_stale_temporaries, temporary_owner, write_atomically
from pipeline.errors import DiskFull, is_disk_full
from pipeline.data.dataset import NiftiDataset
from pipeline.preprocessing.preprocess import Geometry, PreprocessedCase, preprocess_case
from pipeline.config import PreprocessingSettings

logger = logging.getLogger(__name__)

#: Bump when the files' format or the preprocessing's results change.
CACHE_FORMAT = 1
#: The array files of a case folder; meta.json records each one's size and CRC-32.
ARRAY_FILES = ("image.npy", "label.npy")
#: Bytes read at a time while computing a checksum.
CHUNK_BYTES = 64 * 1024**2


def cache_key(dataset: NiftiDataset, settings: PreprocessingSettings) -> tuple[str, dict]:
    """The cache folder's name for ``dataset`` under ``settings``, and what it stands for (``key.json``)."""
    description = {"format": CACHE_FORMAT, "dataset": dataset.fingerprint(), "settings": settings.as_dict()}
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:16], description


class PreprocessedCache:
    """Preprocessed cases of ``dataset`` under ``settings``, computed once and then read from disk.

    Args:
        cache_dir: folder of all caches (created); each (data set, settings) gets a subfolder.
        dataset: an opened data set (``pipeline.data.open_dataset``).
        settings: the preprocessing.
    """

    def __init__(self, cache_dir, dataset: NiftiDataset, settings: PreprocessingSettings):
        self.dataset = dataset
        self.settings = settings
        self.key, description = cache_key(dataset, settings)
        self.directory = Path(cache_dir) / self.key
        self.directory.mkdir(parents=True, exist_ok=True)
        self._verified: set[tuple] = set()  # (path, size, mtime_ns) of array files whose CRC-32 matched
        remove_stale_temporaries(self.directory)  # case folders half-written by killed processes of this host
        if not (self.directory / "key.json").exists():
            write_atomically(self.directory / "key.json", json.dumps(description, indent=1, sort_keys=True))

    def load(self, case_id: str) -> PreprocessedCase:
        """The preprocessed case: from disk if cached and current, else computed and stored."""
        folder = self.directory / case_id
        sources = self._sources(case_id)
        meta = self._read_meta(folder)
        if meta is not None and meta["sources"] == sources and "arrays" not in meta:
            logger.info("%s: cached without sizes and checksums (an older cache); rebuilding it", folder)
            meta = None
        if meta is not None and meta["sources"] == sources:
            problem = self._damage(folder, meta)
            if problem is not None:
                logger.warning("%s: %s; not used, rebuilding the case from the data set", folder, problem)
                meta = None
        if meta is None or meta["sources"] != sources:
            self._store(case_id, sources, stale=folder.exists())
            meta = self._read_meta(folder)
        return PreprocessedCase(
            case_id=case_id,
            image=np.load(folder / "image.npy", mmap_mode="r"),
            label=np.load(folder / "label.npy", mmap_mode="r"),
            geometry=Geometry.from_json(meta["geometry"]),
        )

    def prepare(self, case_ids: Iterable[str] | None = None, workers: int | None = None) -> None:
        """Fill the cache for ``case_ids`` (default: all), ``workers`` cases at a time.

        Threads suffice (decompression and numpy release the GIL); each holds
        one case in memory (~0.5 GB for a KiTS19 case), so the default is
        ``min(4, os.cpu_count())``.
        """
        case_ids = self.dataset.case_ids() if case_ids is None else list(case_ids)
        with ThreadPoolExecutor(max_workers=workers or min(4, os.cpu_count() or 1)) as pool:
            for _ in console.progress(pool.map(self.load, case_ids), len(case_ids), "preprocess", unit="case"):
                pass

    def _sources(self, case_id: str) -> list[list]:
        """(name relative to the root, size, mtime_ns) of every file the case is read from."""
        sources = []
        for path in self.dataset.source_files(case_id):
            status = path.stat()
            sources.append([str(path.relative_to(self.dataset.root)), status.st_size, status.st_mtime_ns])
        return sources

    @staticmethod
    def _read_meta(folder: Path) -> dict | None:
        try:
            return json.loads((folder / "meta.json").read_text())
        except (OSError, ValueError):
            return None

    def _damage(self, folder: Path, meta: dict) -> str | None:
        """What is wrong with the case folder's array files (size, then checksum), or ``None``."""
        recorded = meta["arrays"]
        for name in ARRAY_FILES:
            path = folder / name
            try:
                status = path.stat()
            except OSError:
                return f"{name} is missing"
            if status.st_size != recorded[name]["bytes"]:
                return f"{name} has {status.st_size} bytes, {recorded[name]['bytes']} recorded (truncated or altered)"
            version = (str(path), status.st_size, status.st_mtime_ns)
            if version not in self._verified:
                if _crc32(path) != recorded[name]["crc32"]:
                    return f"{name}'s CRC-32 differs from the recorded one (altered)"
                self._verified.add(version)
        return None

    def _store(self, case_id: str, sources: list, stale: bool) -> None:
        started = time.perf_counter()
        case = self.dataset.load(case_id)
        pre = preprocess_case(case, self.settings, num_classes=self.dataset.num_classes)
        folder = self.directory / case_id
        try:
            temporary = Path(
                tempfile.mkdtemp(prefix=f".{case_id}.{temporary_owner()}.", suffix=".tmp", dir=self.directory)
            )
        except OSError as error:
            if is_disk_full(error):
                raise DiskFull(folder, pre.image.nbytes + pre.label.nbytes) from None
            raise
        try:
            np.save(temporary / "image.npy", pre.image)
            np.save(temporary / "label.npy", pre.label)
            arrays = {
                name: {"bytes": (temporary / name).stat().st_size, "crc32": _crc32(temporary / name)}
                for name in ARRAY_FILES
            }
            meta = {"case_id": case_id, "sources": sources, "geometry": pre.geometry.to_json(), "arrays": arrays}
            write_atomically(temporary / "meta.json", json.dumps(meta, indent=1))
            if stale:
                shutil.rmtree(folder, ignore_errors=True)
            try:
                os.rename(temporary, folder)
            except OSError:
                if self._read_meta(folder) is None:  # neither ours nor a complete concurrent result
                    raise
        except Exception as error:
            if isinstance(error, DiskFull) or is_disk_full(error, self.directory):
                shutil.rmtree(temporary, ignore_errors=True)
                raise DiskFull(folder, pre.image.nbytes + pre.label.nbytes) from None
            raise
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
        logger.info("preprocessed %s in %.1f s", case_id, time.perf_counter() - started)


def _crc32(path: Path) -> int:
    """CRC-32 of the file's bytes (zlib's, read in chunks)."""
    checksum = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            checksum = zlib.crc32(chunk, checksum)
    return checksum
