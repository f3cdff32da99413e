"""Faults inside a run fail loudly and safely: divergence, out of memory, full disks, damaged caches, vanished data.

Each end-to-end scenario provokes the fault in ``run-experiment`` on tiny
KiTS19 phantoms (for real where this machine allows: a huge learning rate, a
tmpfs mounted full, a damaged cache file, the data folder moved away; by
injecting the exception where it cannot: GPU and host memory), checks the
exit code and the one line on stderr, checks that nothing partial or damaged
was left, then reruns the same command and compares ``metrics.csv`` and
every fold's ``log.csv`` with an uninterrupted run's, byte for byte.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from pipeline import errors, experiment
from pipeline.atomic_files import atomic_target, write_atomically
from pipeline.config import load_config
from pipeline.data import open_dataset
from pipeline.data.phantoms import write_kits19
from pipeline.errors import (
    DATA_VANISHED_EXIT_CODE,
    DISK_FULL_EXIT_CODE,
    DIVERGED_EXIT_CODE,
    OUT_OF_MEMORY_EXIT_CODE,
    DiskFull,
    TrainingDiverged,
    exits_cleanly,
    human_bytes,
)
from pipeline.preprocessing import PreprocessedCache
from pipeline.runner_cli import main
from pipeline.training.memory import training_memory
from pipeline.training.train import build_model, read_retries, train_fold
from tiny_runs import tiny_kits19_overrides

from test_model import make_config, train
from test_slurm import write_cluster_env, write_config

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EPOCHS = 2
#: A learning rate that makes any model's loss NaN within its first batches.
DIVERGING = 1e30
#: DIVERGING times this is 1e-3 (in float32): the retry's rate.
TO_SANE = 1e-33


# --- the workspace and the uninterrupted run ---------------------------------------------------


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    write_kits19(root / "data", 4, seed=1, size="demo")
    return root


def overrides(workspace: Path, name: str, runs: Path | None = None, cache: Path | None = None) -> list[str]:
    return [
        f"experiment.name={name}",
        *tiny_kits19_overrides(
            runs or workspace / "runs", workspace / "data", cache or workspace / "cache", epochs=EPOCHS
        ),
    ]


def arguments(workspace: Path, name: str, *extra: str, **places) -> list[str]:
    return [
        str(PROJECT_ROOT / "configs" / "demo_dice.yaml"),
        *[item for value in overrides(workspace, name, **places) for item in ("--set", value)],
        *extra,
    ]


def outputs(run_dir: Path) -> dict[str, str]:
    files = ["metrics.csv", "fold_0/log.csv", "fold_1/log.csv", "fold_0/metrics.csv", "fold_1/metrics.csv"]
    return {name: (run_dir / name).read_text() for name in files}


@pytest.fixture(scope="module")
def reference(workspace):
    assert main(arguments(workspace, "straight")) == 0
    return outputs(workspace / "runs" / "straight")


def fails_with(code: int, argv: list[str], capsys) -> str:
    """Run ``main(argv)``; it must exit with ``code`` and one line on stderr, no traceback; return that line."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main(argv)
    error = capsys.readouterr().err
    lines = [line for line in error.splitlines() if line.startswith("error: ")]
    assert exited.value.code == code, error
    assert len(lines) == 1 and "Traceback" not in error, error
    return lines[0]


def temporaries(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if ".tmp" in path.name]


def with_callback(monkeypatch, callback_for_fold):
    """Make ``run-experiment``'s training of each fold also run ``callback_for_fold(fold)`` (if not None)."""

    def training(training_section, model, loss, seed, fold_dir, *args, callbacks=(), **kwargs):
        extra = callback_for_fold(int(Path(fold_dir).name.removeprefix("fold_")))
        return train_fold(
            training_section,
            model,
            loss,
            seed,
            fold_dir,
            *args,
            callbacks=[*callbacks, *([extra] if extra else [])],
            **kwargs,
        )

    monkeypatch.setattr(experiment, "train_fold", training)


class RaiseAtEpoch(tf.keras.callbacks.Callback):
    """Raises ``error`` when epoch ``epoch`` (0-based) begins, inside ``fit``, as a real fault would."""

    def __init__(self, epoch: int, error: BaseException):
        super().__init__()
        self.epoch, self.error = epoch, error

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise self.error


# --- exit codes ---------------------------------------------------------------------------------


def test_every_fault_has_its_own_documented_exit_code():
    codes = {
        "ok": 0,
        "bad input": errors.BAD_INPUT_EXIT_CODE,
        "diverged": DIVERGED_EXIT_CODE,
        "memory": OUT_OF_MEMORY_EXIT_CODE,
        "disk": DISK_FULL_EXIT_CODE,
        "data": DATA_VANISHED_EXIT_CODE,
        "requeue": errors.REQUEUE_EXIT_CODE,
        "interrupted": errors.INTERRUPTED_EXIT_CODE,
    }
    assert len(set(codes.values())) == len(codes) and errors.REQUEUE_EXIT_CODE == 75
    page = (PROJECT_ROOT / "docs" / "gpu-slurm-faults.md").read_text()
    table = page[page.index("### Exit codes") :]
    for code in codes.values():
        assert f"| {code} |" in table, code
    script = (PROJECT_ROOT / "scripts" / "slurm" / "train_array.sbatch").read_text()
    for name in ("DIVERGED", "OUT_OF_MEMORY", "DISK_FULL", "DATA_VANISHED", "REQUEUE"):
        assert f"{name}_EXIT_CODE={getattr(errors, f'{name}_EXIT_CODE')}" in script


@pytest.mark.parametrize(
    "raised, code, text",
    [
        (TrainingDiverged("fold 0: epoch 3: loss is nan"), 65, "error: fold 0: epoch 3: loss is nan"),
        (errors.OutOfMemory("out of GPU memory"), 71, "error: out of GPU memory"),
        (
            DiskFull("/scratch/run/metrics.csv", 2048),
            73,
            "error: /scratch/run/metrics.csv: disk full (needs about 2.0 KiB",
        ),
        (errors.DataVanished("data/x.nii.gz: gone"), 74, "error: data/x.nii.gz: gone"),
        (errors.ConfigError("training.epochs: bad"), 2, "error: training.epochs: bad"),
        (MemoryError(), 71, "error: out of host memory"),
        (
            OSError(errno.ENOSPC, "No space left on device", "/scratch/figure.png"),
            73,
            "error: /scratch/figure.png: disk full",
        ),
    ],
)
def test_commands_exit_with_the_faults_code_and_one_line(raised, code, text, capsys):
    @exits_cleanly
    def command():
        raise raised

    with pytest.raises(SystemExit) as exited:
        command()
    error = capsys.readouterr().err
    assert exited.value.code == code and error.startswith(text) and error.count("\n") == 1, error


class ResourceExhaustedError(Exception):
    """Stands for TensorFlow's, recognised by name in commands that did not name the sizes themselves."""


def test_a_gpu_out_of_memory_in_any_command_exits_71(capsys):
    @exits_cleanly
    def command():
        raise ResourceExhaustedError("OOM when allocating tensor with shape[32,2,64,64,64]\nmore")

    with pytest.raises(SystemExit) as exited:
        command()
    error = capsys.readouterr().err
    assert exited.value.code == OUT_OF_MEMORY_EXIT_CODE and error.count("\n") == 1
    assert error.startswith("error: out of GPU memory (OOM when allocating tensor with shape[32,2,64,64,64]); lower")


def test_other_os_errors_stay_bugs():
    @exits_cleanly
    def command():
        raise OSError(errno.EACCES, "Permission denied")

    with pytest.raises(PermissionError):
        command()


@pytest.mark.parametrize(
    "status, scontrol, log",
    [
        (75, "requeue", "requeueing"),
        (73, "requeuehold", "ALERT task 1: disk full"),
        (74, "requeuehold", "ALERT task 1: data vanished"),
        (65, None, "ALERT task 1: training diverged"),
        (71, None, "ALERT task 1: out of memory"),
        (2, None, None),
    ],
)
def test_the_array_task_requeues_holds_or_alerts_by_exit_code(tmp_path, status, scontrol, log):
    """The sbatch script itself, with stand-ins for run-experiment (exits ``status``) and scontrol (records)."""
    from pipeline.batch.grid import plan_grid, write_grid

    config = write_config(tmp_path, "first", folds=2)
    grid = tmp_path / "grid.tsv"
    write_grid(grid, plan_grid([config], tmp_path))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("run-experiment", f"exit {status}"), ("scontrol", f'echo "$@" >> {tmp_path}/scontrol.txt')):
        (bin_dir / name).write_text(f"#!/bin/bash\n{body}\n")
        (bin_dir / name).chmod(stat.S_IRWXU)
    environment = dict(
        os.environ,
        PATH=f"{bin_dir}:{os.environ['PATH']}",
        SLURM_ARRAY_TASK_ID="1",
        SLURM_ARRAY_JOB_ID="42",
        UNIFOCAL_GRID=str(grid),
        UNIFOCAL_CLUSTER_ENV=str(write_cluster_env(tmp_path / "cluster.env")),
    )
    result = subprocess.run(
        ["bash", str(PROJECT_ROOT / "scripts" / "slurm" / "train_array.sbatch")],
        env=environment,
        capture_output=True,
        text=True,
    )
    calls = (tmp_path / "scontrol.txt").read_text() if (tmp_path / "scontrol.txt").exists() else ""
    assert calls == (f"{scontrol} 42_1\n" if scontrol else "")
    assert result.returncode == (0 if scontrol else status)
    assert (log in result.stdout) if log else "ALERT" not in result.stdout


# --- non-finite loss or weights ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("learning_rate, named", [(DIVERGING, "loss is nan"), (1e10, "weight batch_normalization")])
def test_a_diverging_fold_stops_and_keeps_no_nonfinite_checkpoint(tmp_path, learning_rate, named):
    """1e30: the loss is NaN at once. 1e10: the loss stays finite but a batch-norm statistic overflows."""
    with pytest.raises(TrainingDiverged) as diverged:
        train(make_config(tmp_path, learning_rate=learning_rate), tmp_path / "fold_0")
    message = str(diverged.value)
    assert message.startswith("fold 0: epoch 1: ") and named in message and "\n" not in message
    assert "nothing is kept" in message and "training.on_nonfinite=restore" in message
    assert diverged.value.exit_code == DIVERGED_EXIT_CODE
    assert sorted(path.name for path in (tmp_path / "fold_0").iterdir()) == ["checkpoints", "tensorboard"]
    assert list((tmp_path / "fold_0" / "checkpoints").iterdir()) == []


class NanOnce(tf.keras.callbacks.Callback):
    """The output bias becomes NaN when epoch ``epoch`` (0-based) first begins: a divergence in mid-training."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch, self.fired = epoch, False

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch and not self.fired:
            self.fired = True
            bias = self.model.get_layer("probabilities_logits").bias
            bias.assign(np.full(bias.shape, np.nan, np.float32))


def log_rows(path: Path) -> list[list[str]]:
    return [line.split(",") for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_restore_retries_from_the_initial_weights_as_a_run_started_at_the_lower_rate(tmp_path):
    """1e30 diverges in epoch 1; the retry restarts from the seeded weights at 1e30 * 1e-33 = 1e-3 (float32), so
    its epochs equal those of a run started at 1e-3."""
    restored = train(
        make_config(tmp_path, learning_rate=DIVERGING, on_nonfinite="restore", nonfinite_lr_factor=TO_SANE),
        tmp_path / "restored",
    )
    sane = train(make_config(tmp_path, learning_rate=1e-3), tmp_path / "sane")
    assert [retry["restored_epoch"] for retry in restored.retries] == [0]
    assert restored.retries == tuple(read_retries(tmp_path / "restored"))
    assert restored.retries[0]["learning_rate"] == pytest.approx(1e-3)
    rows, expected = log_rows(tmp_path / "restored" / "log.csv"), log_rows(tmp_path / "sane" / "log.csv")
    assert rows[0] == [*expected[0], "retry"]
    assert rows[1][0] == "1" and rows[1][1:3] == ["nan", "nan"] and rows[1][4] == "0"  # the diverged attempt
    assert rows[2:] == [[*row, "1"] for row in expected[1:]]
    for a, b in zip(restored.model.get_weights(), sane.model.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_restore_from_a_checkpoint_survives_an_interruption_and_gives_up_after_its_retries(tmp_path):
    config = make_config(tmp_path, on_nonfinite="restore", nonfinite_lr_factor=0.25)
    straight = train(config, tmp_path / "straight", callbacks=[NanOnce(1)])
    assert [(retry["epoch"], retry["restored_epoch"]) for retry in straight.retries] == [(2, 1)]
    rows = log_rows(tmp_path / "straight" / "log.csv")
    assert [row[0] for row in rows[1:]] == ["1", "2", "2", "3"] and rows[2][1] == "nan"
    assert float(rows[3][3]) == pytest.approx(float(rows[1][3]) * 0.25)  # the retried epoch's rate
    assert json.loads((tmp_path / "straight" / "checkpoints" / "state.json").read_text())["epoch"] == 3

    class Interrupt(Exception):
        pass

    with pytest.raises(Interrupt):  # killed during the retried epoch: the rerun must still use the lowered rate
        train(config, tmp_path / "resumed", callbacks=[NanOnce(1), RaiseAtEpoch(2, Interrupt())])
    train(config, tmp_path / "resumed")
    assert (tmp_path / "resumed" / "log.csv").read_text() == (tmp_path / "straight" / "log.csv").read_text()

    with pytest.raises(TrainingDiverged, match=r"fold 0: epoch 1: loss is nan again after 2 retries"):
        train(
            make_config(tmp_path, learning_rate=DIVERGING, on_nonfinite="restore", nonfinite_retries=2),
            tmp_path / "hopeless" / "fold_0",
        )
    assert len(read_retries(tmp_path / "hopeless" / "fold_0")) == 2
    assert not (tmp_path / "hopeless" / "fold_0" / "checkpoints" / "best_model.h5").exists()


@pytest.mark.slow
def test_a_diverged_run_exits_65_and_resumes_with_restore_to_a_straight_restore_run(workspace, capsys):
    diverging = ["--set", f"training.learning_rate={DIVERGING}", "--set", f"training.nonfinite_lr_factor={TO_SANE}"]
    restore = ["--set", "training.on_nonfinite=restore"]
    assert main(arguments(workspace, "restore-straight", *diverging, *restore)) == 0
    straight_dir = workspace / "runs" / "restore-straight"
    summary = json.loads((straight_dir / "summary.json").read_text())
    assert sorted(summary["nonfinite_retries"]) == ["fold_0", "fold_1"]
    assert summary["nonfinite_retries"]["fold_0"] == read_retries(straight_dir / "fold_0")
    assert json.loads((straight_dir / "fold_0" / "done.json").read_text())["nonfinite_retries"] == 1

    line = fails_with(DIVERGED_EXIT_CODE, arguments(workspace, "stopped", *diverging), capsys)
    assert line.startswith("error: fold 0: epoch 1: loss is nan; training stopped")
    run_dir = workspace / "runs" / "stopped"
    assert not (run_dir / "fold_0" / "done.json").exists() and not (run_dir / "fold_0" / "nonfinite.json").exists()
    assert fails_with(DIVERGED_EXIT_CODE, arguments(workspace, "stopped", *diverging), capsys) == line  # refused again
    assert main(arguments(workspace, "stopped", *diverging, *restore)) == 0
    assert outputs(run_dir) == outputs(straight_dir)


# --- out of memory ------------------------------------------------------------------------------


@pytest.mark.slow
def test_out_of_memory_names_sizes_estimate_and_keys_then_the_rerun_resumes(workspace, reference, monkeypatch, capsys):
    oom = tf.errors.ResourceExhaustedError(
        None,
        None,
        "OOM when allocating tensor with shape[2,2,8,32,32] and type float on /job:localhost/GPU:0\n"
        "Hint: If you want to see a list of allocated tensors when OOM happens, ...",
    )
    with_callback(monkeypatch, lambda fold: RaiseAtEpoch(1, oom) if fold == 1 else None)
    line = fails_with(OUT_OF_MEMORY_EXIT_CODE, arguments(workspace, "oom"), capsys)
    config = load_config(PROJECT_ROOT / "configs" / "demo_dice.yaml", overrides(workspace, "oom"))
    memory = training_memory(lambda: build_model(config.model, 1, 3), [8, 32, 32], 2, 1)
    assert line.startswith(
        "error: out of GPU memory (OOM when allocating tensor with shape[2,2,8,32,32]): patch "
        "8x32x32, batch 2, standard U-Net (2 filters, depth 2, "
    )
    assert f"{memory.parameters:,} parameters" in line
    assert f"scripts/estimate_gpu_memory.py estimates {human_bytes(memory.estimate_bytes)}" in line
    assert "lower sampling.batch_size, sampling.patch_shape, model.n_filters or model.depth" in line
    assert "training.precision=mixed_float16" in line and "inference.batch_size" in line

    run_dir = workspace / "runs" / "oom"
    assert (run_dir / "fold_0" / "done.json").exists() and not (run_dir / "fold_1" / "done.json").exists()
    assert json.loads((run_dir / "fold_1" / "checkpoints" / "state.json").read_text())["epoch"] == 1

    def host_out_of_memory(self, case_id):
        raise MemoryError

    with monkeypatch.context() as patch:  # the host, while the cases load
        patch.setattr(PreprocessedCache, "load", host_out_of_memory)
        line = fails_with(OUT_OF_MEMORY_EXIT_CODE, arguments(workspace, "oom"), capsys)
    assert line.startswith("error: out of host memory: patch 8x32x32, batch 2, standard U-Net")
    assert "lower sampling.workers" in line and "--mem" in line

    monkeypatch.undo()
    assert main(arguments(workspace, "oom")) == 0
    assert outputs(run_dir) == reference


# --- full disks ---------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of 16 MiB under ``tmp_path`` (needs root: mount); unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); the injected ENOSPC tests cover it")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(disk: Path, leave: int) -> Path:
    """Write a ballast file that leaves ``leave`` bytes free on ``disk``; deleting it frees the space."""
    ballast = disk / "ballast"
    free = shutil.disk_usage(disk).free
    with open(ballast, "wb") as handle:
        handle.truncate(0)
        handle.write(b"\0" * max(free - leave, 0))
    return ballast


def test_a_write_on_a_full_disk_keeps_the_old_file_and_no_temporary(tmp_path):
    """Injected: the writer's own OSError(ENOSPC)."""
    target = tmp_path / "metrics.csv"
    write_atomically(target, "finished\n")
    with pytest.raises(DiskFull) as full:
        with atomic_target(target, expected_bytes=5000) as temporary:
            temporary.write_text("half")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert str(full.value).startswith(f"{target}: disk full (needs about 4.9 KiB, ")
    assert target.read_text() == "finished\n" and temporaries(tmp_path) == []


def test_a_real_full_disk_names_the_path_and_the_size_and_leaves_nothing_partial(small_disk):
    target = small_disk / "table.md"
    write_atomically(target, "finished\n")
    fill(small_disk, 64 * 1024)
    content = os.urandom(1024**2)
    with pytest.raises(DiskFull, match=rf"^{target}: disk full \(needs about 1.0 MiB, \d+(\.\d)? KiB free there\)"):
        write_atomically(target, content)
    assert target.read_text() == "finished\n" and temporaries(small_disk) == []
    (small_disk / "ballast").unlink()
    write_atomically(target, content)
    assert target.read_bytes() == content


def test_a_full_disk_while_caching_names_the_case_folder_and_the_rerun_fills_it(workspace, small_disk):
    dataset = open_dataset("kits19", workspace / "data")
    settings = load_config(
        PROJECT_ROOT / "configs" / "demo_dice.yaml", overrides(workspace, "x")
    ).preprocessing.settings()
    expected = PreprocessedCache(workspace / "cache-reference", dataset, settings).load("case_00000")
    cache = PreprocessedCache(small_disk / "cache", dataset, settings)
    ballast = fill(small_disk, 16 * 1024)
    with pytest.raises(DiskFull, match=rf"^{cache.directory / 'case_00000'}: disk full \(needs about "):
        cache.load("case_00000")
    assert sorted(path.name for path in cache.directory.iterdir()) == ["key.json"]
    ballast.unlink()
    np.testing.assert_array_equal(cache.load("case_00000").image, expected.image)


@pytest.mark.slow
def test_a_checkpoint_on_a_full_disk_keeps_the_last_complete_one(tmp_path, monkeypatch):
    """Injected: TensorFlow reports ENOSPC as its own error with the C library's text."""
    config = make_config(tmp_path, epochs=2)
    real_write = tf.train.Checkpoint.write

    def write(self, prefix, *args, **kwargs):
        if "epoch_0002" in prefix:
            real_write(self, prefix, *args, **kwargs)  # a part is written, then the disk is full
            raise tf.errors.ResourceExhaustedError(None, None, f"{prefix}.index; No space left on device")
        return real_write(self, prefix, *args, **kwargs)

    monkeypatch.setattr(tf.train.Checkpoint, "write", write)
    with pytest.raises(DiskFull, match=r"checkpoints/epoch_0002: disk full \(needs about .* KiB"):
        train(config, tmp_path / "fold_0")
    checkpoints = tmp_path / "fold_0" / "checkpoints"
    assert sorted(path.name for path in checkpoints.iterdir()) == ["best_model.h5", "epoch_0001", "state.json"]
    assert json.loads((checkpoints / "state.json").read_text())["epoch"] == 1
    monkeypatch.undo()
    resumed = train(config, tmp_path / "fold_0")
    train(config, tmp_path / "straight")
    assert resumed.resumed_after_epoch == 1
    assert (tmp_path / "fold_0" / "log.csv").read_text() == (tmp_path / "straight" / "log.csv").read_text()


@pytest.mark.slow
@pytest.mark.parametrize(
    "leave_kib, writer",
    [(50, "cache/"), (1100, "fold_0/checkpoints/epoch_0001"), (1300, "fold_0/checkpoints/best_model.h5")],
    ids=["cache", "checkpoint", "best-model"],
)
def test_a_run_on_a_full_disk_exits_73_and_resumes_to_the_same_metrics(
    workspace, reference, small_disk, leave_kib, writer, capsys
):
    """For real: the run folder and the cache on a tmpfs with ``leave_kib`` KiB free (which writer fills it
    was measured on this tiny run), then the ballast is deleted and the same command rerun."""
    runs, cache = small_disk / "runs", small_disk / "cache"
    ballast = fill(small_disk, leave_kib * 1024)
    line = fails_with(DISK_FULL_EXIT_CODE, arguments(workspace, "full", runs=runs, cache=cache), capsys)
    assert re.fullmatch(
        rf"error: {small_disk}/\S*{writer}\S*: disk full \(needs about \d+\.\d KiB, \d+(\.\d)? KiB "
        r"free there\); nothing partial was kept: free space and rerun the same command to resume",
        line,
    )
    assert temporaries(small_disk) == []
    for finished in runs.rglob("*.json"):  # what exists is complete
        json.loads(finished.read_text())
    ballast.unlink()
    assert main(arguments(workspace, "full", runs=runs, cache=cache)) == 0
    assert outputs(runs / "full") == reference


@pytest.mark.slow
@pytest.mark.parametrize("name", ["case_", "metrics.csv"], ids=["prediction", "metrics"])
def test_a_prediction_or_metrics_file_on_a_full_disk_exits_73_and_resumes(
    workspace, reference, monkeypatch, name, capsys
):
    """Injected: the first write of a fold-1 prediction (NIfTI, by nibabel) or of the run's metrics.csv writes
    half of its bytes, then finds the disk full."""
    import nibabel as nib

    real_to_filename, real_write_bytes = nib.Nifti1Image.to_filename, Path.write_bytes
    full = {"left": 1}

    def fills(path) -> bool:
        hit = (
            name in Path(path).name and "fold_1/predictions" in str(path)
            if name == "case_"
            else Path(path).name.startswith(".metrics.csv") and "fold_" not in str(path)
        )
        if hit and full["left"]:
            full["left"] -= 1
            Path(path).write_bytes(b"half")
            return True
        return False

    def to_filename(self, path, *args, **kwargs):
        if fills(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_to_filename(self, path, *args, **kwargs)

    def write_bytes(self, data):
        if fills(self):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write_bytes(self, data)

    monkeypatch.setattr(nib.Nifti1Image, "to_filename", to_filename)
    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    run = "full-prediction" if name == "case_" else "full-metrics"
    line = fails_with(DISK_FULL_EXIT_CODE, arguments(workspace, run), capsys)
    run_dir = workspace / "runs" / run
    target = "fold_1/predictions/case_" if name == "case_" else "metrics.csv"
    assert line.startswith(f"error: {run_dir}/{target}") and ": disk full (needs about " in line
    assert temporaries(run_dir) == [] and not (run_dir / "metrics.csv").exists()
    monkeypatch.undo()
    assert main(arguments(workspace, run)) == 0
    assert outputs(run_dir) == reference


# --- damaged cache ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "damage, reported",
    [
        (
            lambda path: path.write_bytes(path.read_bytes()[:-100]),
            "has .* bytes, .* recorded \\(truncated or altered\\)",
        ),
        (
            lambda path: path.write_bytes(path.read_bytes()[:-1] + bytes([path.read_bytes()[-1] ^ 1])),
            "CRC-32 differs from the recorded one \\(altered\\)",
        ),
        (lambda path: path.unlink(), "is missing"),
    ],
)
def test_a_damaged_cache_entry_is_reported_in_one_line_and_rebuilt(workspace, tmp_path, damage, reported, caplog):
    dataset = open_dataset("kits19", workspace / "data")
    settings = load_config(
        PROJECT_ROOT / "configs" / "demo_dice.yaml", overrides(workspace, "x")
    ).preprocessing.settings()
    cache = PreprocessedCache(tmp_path / "cache", dataset, settings)
    original = np.array(cache.load("case_00001").image)
    image = cache.directory / "case_00001" / "image.npy"
    damage(image)
    reopened = PreprocessedCache(tmp_path / "cache", dataset, settings)  # a later process
    with caplog.at_level("WARNING"):
        rebuilt = reopened.load("case_00001")
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert len(warnings) == 1 and "\n" not in warnings[0], warnings
    assert warnings[0].startswith(f"{image.parent}: image.npy") and "rebuilding the case" in warnings[0]
    assert re.search(reported, warnings[0]), warnings[0]
    np.testing.assert_array_equal(rebuilt.image, original)
    caplog.clear()
    with caplog.at_level("WARNING"):
        reopened.load("case_00001")
    assert not caplog.records  # the rebuilt entry is sound


def test_the_cache_records_each_arrays_size_and_crc32(workspace, tmp_path):
    import zlib

    dataset = open_dataset("kits19", workspace / "data")
    settings = load_config(
        PROJECT_ROOT / "configs" / "demo_dice.yaml", overrides(workspace, "x")
    ).preprocessing.settings()
    cache = PreprocessedCache(tmp_path / "cache", dataset, settings)
    cache.load("case_00002")
    folder = cache.directory / "case_00002"
    arrays = json.loads((folder / "meta.json").read_text())["arrays"]
    for name in ("image.npy", "label.npy"):
        data = (folder / name).read_bytes()
        assert arrays[name] == {"bytes": len(data), "crc32": zlib.crc32(data)}


# --- data that vanishes -------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["between-folds", "while-scoring"])
def test_vanished_data_exits_74_and_the_run_resumes_when_it_is_back(workspace, reference, monkeypatch, capsys, moment):
    """The data folder is moved away before fold 1 starts (its cases are read from the cache, whose check of the
    source files finds them gone), or while fold 0's predictions are scored against the masks."""
    data, away = workspace / "data", workspace / "data-unmounted"
    if moment == "between-folds":
        real_run_fold = experiment.run_fold

        def unmount_then_run_fold(config, fold, *args, **kwargs):
            if fold == 1:
                data.rename(away)
            return real_run_fold(config, fold, *args, **kwargs)

        monkeypatch.setattr(experiment, "run_fold", unmount_then_run_fold)
    else:
        real_evaluate = experiment.evaluate_cases

        def unmount_then_evaluate(*args, **kwargs):
            data.rename(away)
            return real_evaluate(*args, **kwargs)

        monkeypatch.setattr(experiment, "evaluate_cases", unmount_then_evaluate)
    run = f"vanished-{moment}"
    try:
        line = fails_with(DATA_VANISHED_EXIT_CODE, arguments(workspace, run), capsys)
    finally:
        if away.exists():
            away.rename(data)
    assert line.startswith(f"error: {data}/case_") and f"data.root {data} is gone" in line
    assert "rerun the same command to resume" in line
    run_dir = workspace / "runs" / run
    fold_0_done = (run_dir / "fold_0" / "done.json").exists()
    assert fold_0_done == (moment == "between-folds") and not (run_dir / "fold_1" / "done.json").exists()
    if moment == "while-scoring":  # trained and predicted: the rerun only scores
        assert len(list((run_dir / "fold_0" / "predictions").iterdir())) == 2
    monkeypatch.undo()
    assert main(arguments(workspace, run)) == 0
    assert outputs(run_dir) == reference


@pytest.mark.slow
def test_the_console_script_reports_a_divergence_in_one_line(workspace):
    """The installed command, not main(): exit 65, one line, no traceback."""
    finished = subprocess.run(
        [
            str(PROJECT_ROOT / ".venv" / "bin" / "run-experiment"),
            "-q",
            *arguments(workspace, "diverged-script", "--set", f"training.learning_rate={DIVERGING}"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == DIVERGED_EXIT_CODE, finished.stderr
    assert finished.stderr.startswith("error: fold 0: epoch 1: loss is nan; training stopped")
    assert finished.stderr.count("\n") == 1 and "Traceback" not in finished.stderr
