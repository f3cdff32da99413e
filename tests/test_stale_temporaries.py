"""What killed writers leave (temporary files, checkpoint staging and cache case folders) is removed, and only that."""

import os
import socket
import subprocess
import sys

from pipeline.atomic_files import remove_stale_temporaries, write_atomically
from pipeline.data.phantoms import write_kits19


def dead_pid() -> int:
    """The PID of a process that has ended (and was reaped)."""
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    return int(finished.stdout)


def test_only_temporaries_of_ended_writers_of_this_host_are_removed(tmp_path):
    host, dead = socket.gethostname(), dead_pid()
    stale = [f".metrics.csv.{host}.{dead}.0123abcd.tmp", f".best_model.h5.{host}.{dead}.89abcdef.tmp.h5"]
    alive = [f".log.csv.{host}.{os.getpid()}.0123abcd.tmp", f".log.csv.other-node.{dead}.0123abcd.tmp"]
    kept = ["metrics.csv", ".hidden", "notes.tmp"]
    for name in stale + alive + kept:
        (tmp_path / "fold_0" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "fold_0" / name).write_text("x")
    (tmp_path / "fold_0" / "checkpoints" / ".epoch_0002.tmp").mkdir(parents=True)

    assert remove_stale_temporaries(tmp_path) == 2
    assert sorted(path.name for path in (tmp_path / "fold_0").iterdir()) == sorted(alive + kept + ["checkpoints"])
    # The one writer of a fold (a rerun of it) owns everything temporary in its folder.
    assert remove_stale_temporaries(tmp_path / "fold_0", exclusive=True) == 3
    assert sorted(path.name for path in (tmp_path / "fold_0").iterdir()) == sorted(kept + ["checkpoints"])
    assert not list((tmp_path / "fold_0" / "checkpoints").iterdir())


def test_a_cache_case_folder_half_written_by_a_killed_process_is_removed(tmp_path):
    from pipeline.config import PreprocessingSettings
    from pipeline.data import open_dataset
    from pipeline.preprocessing import PreprocessedCache

    write_kits19(tmp_path / "data", 1, seed=0, size="demo")
    dataset = open_dataset("kits19", tmp_path / "data", exclude=())
    cache = PreprocessedCache(tmp_path / "cache", dataset, PreprocessingSettings())
    half = cache.directory / f".case_00000.{socket.gethostname()}.{dead_pid()}.k2j4x9_a.tmp"
    half.mkdir()
    write_atomically(half / "image.npy", b"half")
    cache.load("case_00000")
    temporaries = [path for path in cache.directory.iterdir() if path.name.endswith(".tmp")]
    assert temporaries == [half]  # the load's own temporary folder was renamed into place
    assert half.exists()  # not yet: only a new cache object looks for leftovers

    PreprocessedCache(tmp_path / "cache", dataset, PreprocessingSettings())
    assert not half.exists()
    assert (cache.directory / "case_00000" / "image.npy").exists()
