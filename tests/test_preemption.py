"""A stop signal or kill -9 at any moment of training, inference or scoring loses at most one epoch.

Each scenario interrupts ``run-experiment`` on tiny KiTS19 phantoms, checks
what the interruption left (exit status 75 and one line for SIGTERM/SIGUSR1,
the checkpointed epoch), reruns the same command and compares ``metrics.csv``
and every fold's ``log.csv`` with an uninterrupted run's, byte for byte. The
in-process scenarios send the signal to this process from inside the run
(deterministic moments); two scenarios run the real console script and stop
it from outside: SIGTERM, and kill -9.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pipeline import experiment
from pipeline.atomic_files import remove_stale_temporaries
from pipeline.data.phantoms import write_kits19
from pipeline.runner_cli import main
from pipeline.training.preemption import REQUEUE_EXIT_CODE
from pipeline.training.train import train_fold

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EPOCHS = 3


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("preemption")
    write_kits19(root / "data", 4, seed=1, size="demo")
    return root


def arguments(workspace: Path, name: str, *extra: str) -> list[str]:
    overrides = [
        f"experiment.name={name}",
        f"experiment.output_root={workspace / 'runs'}",
        f"data.root={workspace / 'data'}",
        f"preprocessing.cache_dir={workspace / 'cache'}",
        "cross_validation.splits_file=null",
        "cross_validation.folds=2",
        "preprocessing.target_spacing=[6.0, 6.0, 6.0]",
        "sampling.patch_shape=[8, 32, 32]",
        "sampling.batches_per_epoch=3",
        "sampling.val_batches=1",
        "model.n_filters=2",
        "model.depth=2",
        f"training.epochs={EPOCHS}",
        "inference.overlap=[4, 16, 16]",
    ]
    return [
        str(PROJECT_ROOT / "configs" / "demo_dice.yaml"),
        *[item for o in overrides for item in ("--set", o)],
        *extra,
    ]


def outputs(run_dir: Path) -> dict[str, str]:
    """What must not change under interruption: the scores and the training logs."""
    files = ["metrics.csv", "fold_0/log.csv", "fold_1/log.csv", "fold_0/metrics.csv", "fold_1/metrics.csv"]
    return {name: (run_dir / name).read_text() for name in files}


def assert_each_epoch_once_in_tensorboard(fold_dir: Path) -> None:
    """TensorBoard's ``epoch_loss`` has no epoch twice, and the last one (a killed writer may lose unflushed ones)."""
    steps = tensorboard_epochs(fold_dir)
    assert len(steps) == len(set(steps)) and steps[-1] == EPOCHS - 1, steps


def tensorboard_epochs(fold_dir: Path) -> list[int]:
    """The epochs TensorBoard shows for ``epoch_loss`` (one entry per logged value)."""
    import tensorflow as tf

    steps = []
    for events in sorted((fold_dir / "tensorboard" / "train").glob("events.*")):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            steps += [event.step for value in event.summary.value if value.tag == "epoch_loss"]
    return sorted(steps)


@pytest.fixture(scope="module")
def reference(workspace):
    """The uninterrupted run."""
    assert main(arguments(workspace, "straight")) == 0
    return outputs(workspace / "runs" / "straight")


def signal_self(name: str = "SIGTERM") -> None:
    os.kill(os.getpid(), getattr(signal, name))
    time.sleep(1)  # the handler raises in this thread at the next bytecode; never reached


def expect_requeue_exit(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == REQUEUE_EXIT_CODE
    error = capsys.readouterr().err
    stops = [line for line in error.splitlines() if line.startswith("stopped by SIG")]
    assert len(stops) == 1 and "Traceback" not in error, error
    return stops[0]


def checkpointed_epoch(fold_dir: Path) -> int:
    state = fold_dir / "checkpoints" / "state.json"
    return json.loads(state.read_text())["epoch"] if state.exists() else 0


@pytest.mark.slow
def test_sigterm_mid_epoch_redoes_only_that_epoch(workspace, reference, monkeypatch, capsys):
    import tensorflow as tf

    class StopInSecondEpoch(tf.keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1 and self._epoch == 1:
                signal_self("SIGTERM")

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch = epoch

    monkeypatch.setattr(
        experiment,
        "train_fold",
        lambda *args, callbacks=(), **kwargs: train_fold(*args, callbacks=[*callbacks, StopInSecondEpoch()], **kwargs),
    )
    argv = arguments(workspace, "term_training")
    assert "SIGTERM" in expect_requeue_exit(argv, capsys)
    run_dir = workspace / "runs" / "term_training"
    assert checkpointed_epoch(run_dir / "fold_0") == 1  # epoch 2 is the one to redo
    assert not (run_dir / "fold_0" / "done.json").exists()
    monkeypatch.undo()

    assert main(argv) == 0
    assert "fold_0: resuming after epoch 1" in capsys.readouterr().err
    assert outputs(run_dir) == reference
    assert_each_epoch_once_in_tensorboard(run_dir / "fold_0")  # the redone epoch shown once


@pytest.mark.slow
def test_sigusr1_during_inference_keeps_the_predictions_written(workspace, reference, monkeypatch, capsys):
    predict_case = experiment.predict_case
    calls = []

    def predict_then_stop(*args, **kwargs):
        path = predict_case(*args, **kwargs)
        calls.append(path)
        if len(calls) == 1:
            signal_self("SIGUSR1")
        return path

    monkeypatch.setattr(experiment, "predict_case", predict_then_stop)
    argv = arguments(workspace, "usr1_inference")
    assert "SIGUSR1" in expect_requeue_exit(argv, capsys)
    fold_dir = workspace / "runs" / "usr1_inference" / "fold_0"
    assert [path.name for path in (fold_dir / "predictions").iterdir()] == [calls[0].name]
    assert checkpointed_epoch(fold_dir) == EPOCHS and not (fold_dir / "metrics.csv").exists()
    monkeypatch.undo()

    assert main(argv) == 0
    assert "resuming" not in capsys.readouterr().err  # no epoch retrained
    assert outputs(workspace / "runs" / "usr1_inference") == reference


@pytest.mark.slow
def test_sigterm_during_scoring(workspace, reference, monkeypatch, capsys):
    read_label_map = experiment.read_label_map
    reads = []

    def read_then_stop(path):
        reads.append(path)
        if len(reads) == 2:
            signal_self("SIGTERM")
        return read_label_map(path)

    monkeypatch.setattr(experiment, "read_label_map", read_then_stop)
    argv = arguments(workspace, "term_scoring")
    expect_requeue_exit(argv, capsys)
    fold_dir = workspace / "runs" / "term_scoring" / "fold_0"
    assert not (fold_dir / "metrics.csv").exists() and not (fold_dir / "done.json").exists()
    monkeypatch.undo()

    assert main(argv) == 0
    assert outputs(workspace / "runs" / "term_scoring") == reference


def _console_run(workspace: Path, name: str, stop_when, stop_signal: int) -> tuple[subprocess.Popen, int]:
    """Start the console script for fold 0; send ``stop_signal`` once ``stop_when(run_dir)``; return the
    process and the epoch checkpointed at that moment."""
    process = subprocess.Popen(
        [str(PROJECT_ROOT / ".venv" / "bin" / "run-experiment"), *arguments(workspace, name, "--fold", "0")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    run_dir = workspace / "runs" / name
    deadline = time.monotonic() + 600
    while not stop_when(run_dir):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the moment to stop never came"
        time.sleep(0.05)
    epoch = checkpointed_epoch(run_dir / "fold_0")
    process.send_signal(stop_signal)
    process.wait(timeout=120)
    return process, epoch


@pytest.mark.slow
def test_console_script_sigterm_and_kill_9_then_rerun(workspace, reference, capsys):
    """The real command stopped from outside: SIGTERM gives exit 75 and one line; kill -9 loses at most an epoch."""
    terminated, _ = _console_run(
        workspace, "console_term", lambda run: checkpointed_epoch(run / "fold_0") >= 1, signal.SIGTERM
    )
    stderr = terminated.stderr.read()
    assert terminated.returncode == REQUEUE_EXIT_CODE, stderr
    assert "stopped by SIGTERM" in stderr and "Traceback" not in stderr

    killed, epoch_at_kill = _console_run(
        workspace,
        "console_kill",
        lambda run: any((run / "fold_0" / "predictions").glob("*.nii.gz")) or checkpointed_epoch(run / "fold_0") >= 2,
        signal.SIGKILL,
    )
    assert killed.returncode == -signal.SIGKILL
    fold_dir = workspace / "runs" / "console_kill" / "fold_0"
    (fold_dir / f".log.csv.{os.uname().nodename}.1.0123abcd.tmp").write_text("left by a killed writer")

    for name in ("console_term", "console_kill"):
        capsys.readouterr()
        assert main(arguments(workspace, name)) == 0
        resumed = [
            int(line.split()[-1])
            for line in capsys.readouterr().err.splitlines()
            if "fold_0: resuming after epoch" in line
        ]
        if name == "console_kill":  # at most the epoch in progress at the kill is trained again
            assert all(epoch >= epoch_at_kill for epoch in resumed)
        assert outputs(workspace / "runs" / name) == reference
        assert_each_epoch_once_in_tensorboard(workspace / "runs" / name / "fold_0")
    assert not list(fold_dir.rglob(".*.tmp*"))  # what the killed writers left was cleaned
    assert remove_stale_temporaries(fold_dir.parent) == 0


@pytest.mark.slow
def test_folds_finishing_at_once_collect_the_same_metrics(workspace, reference):
    """Every fold process that finds all folds done collects; several at once write one identical file."""
    from concurrent.futures import ThreadPoolExecutor

    from pipeline.config import load_config

    config = load_config(arguments(workspace, "straight")[0], list(arguments(workspace, "straight")[2::2]))
    for name in ("metrics.csv", "summary.json"):
        (config.run_dir / name).unlink()
    with ThreadPoolExecutor(max_workers=4) as pool:
        summaries = list(pool.map(lambda _: experiment.collect_metrics(config), range(4)))
    assert all(summary == summaries[0] for summary in summaries)
    assert (config.run_dir / "metrics.csv").read_text() == reference["metrics.csv"]
    assert not list(config.run_dir.glob(".*.tmp*"))
