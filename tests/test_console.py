"""The console every command shares: -v/-q/--version, logging, progress bars, quiet TensorFlow, list-losses."""

from __future__ import annotations

import importlib
import json
import logging
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from pipeline import console, list_losses

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def entry_point(target: str):
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_version_verbose_and_quiet(command, capsys):
    main = entry_point(COMMANDS[command])
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"{command} (unifocal) {console.version()}"
    with pytest.raises(SystemExit):
        main(["--help"])
    usage = capsys.readouterr().out
    assert "-v, --verbose" in usage and "-q, --quiet" in usage and "--version" in usage


def test_verbosity_sets_the_log_level_and_progress_bars():
    try:
        console.configure(console.QUIET)
        assert logging.getLogger().level == logging.WARNING and not console.progress_bars_enabled()
        items = [1, 2, 3]
        assert console.progress(items, 3, "x") is items  # no bar: the iterable itself
        console.configure(console.VERBOSE)
        assert logging.getLogger().level == logging.DEBUG
        assert (
            sum(
                isinstance(h, logging.StreamHandler) and type(h).__name__ == "_ProgressAwareHandler"
                for h in logging.getLogger().handlers
            )
            == 1
        )  # configuring twice keeps one handler
    finally:
        console.configure(console.NORMAL)


def test_progress_bars_only_on_a_terminal(monkeypatch):
    console.configure(console.NORMAL)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert not console.progress_bars_enabled()
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert console.progress_bars_enabled()
    bar = console.progress(range(3), 3, "x")
    assert list(bar) == [0, 1, 2] and bar is not range(3)


def test_durations_read_naturally():
    assert [console.duration(s) for s in (4, 89, 600, 5399, 7500)] == ["4 s", "89 s", "10 min", "90 min", "2 h 05 min"]


def test_list_losses_names_every_loss_with_its_parameters(capsys):
    assert list_losses.main([]) == 0
    text = capsys.readouterr().out
    from losses import catalog

    for name in catalog.names():
        assert f"\n{name}: " in f"\n{text}"
    assert "    delta: 0.6  " in text and "[0, 1]" in text and "arXiv:2102.04525" in text
    assert list_losses.main(["tversky", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [loss["name"] for loss in listed] == ["tversky"]
    assert listed[0]["parameters"][0] == {
        "name": "delta",
        "default": 0.7,
        "kind": "number",
        "range": "[0, 1]",
        "meaning": "weight of false negatives (false positives: 1 - delta)",
    }
    with pytest.raises(SystemExit) as exited:
        list_losses.main(["dics"])
    assert exited.value.code == 2 and "unknown loss 'dics'" in capsys.readouterr().err


def test_commands_that_need_no_tensorflow_do_not_load_it():
    code = (
        "import sys\n"
        "from pipeline import list_losses, runner_cli\n"
        "from pipeline.batch import submit\n"
        "import pipeline.config\n"
        "print(sorted(m for m in ('tensorflow', 'batchgenerators') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert result.stdout.strip() == "[]"


@pytest.mark.slow
def test_tensorflow_loads_silently_unless_verbose():
    """TF 2.21 prints oneDNN / CUDA-stub lines through absl while it loads, before any log level applies."""
    code = "from pipeline import console; console.configure(console.NORMAL); import tensorflow as tf; tf.constant(1)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={k: v for k, v in __import__("os").environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"},
    )
    assert result.stderr == ""


def test_epoch_clock_estimates_from_the_median_of_recent_epochs():
    from pipeline.training.progress import EpochClock

    clock = EpochClock(epochs_left=2 * 10)  # two folds of 10 epochs
    assert clock.seconds_left() is None
    clock.skip(4)  # the first fold resumes after epoch 4
    for seconds in (30.0, 10.0, 12.0):  # the first epoch also traces the model
        clock.record(seconds)
    assert clock.epochs_left == 13 and clock.seconds_left() == pytest.approx(12.0 * 13)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_docs_usage_lines_show_every_option(command, capsys):
    """The "Commands" section of docs/getting-started.md lists each command's options as ``--help`` shows them."""
    page = (ROOT / "docs" / "getting-started.md").read_text()
    section = page.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    with pytest.raises(SystemExit):
        entry_point(COMMANDS[command])(["--help"])
    usage = capsys.readouterr().out.split("\n\n")[0]
    options = set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", usage))
    lines = section.splitlines()
    starts = [number for number, line in enumerate(lines) if line.startswith(f"{command} [")]
    assert len(starts) == 1, f"docs/getting-started.md: no usage line for {command}"
    end = next((n for n in range(starts[0] + 1, len(lines)) if not lines[n].startswith(" ")), len(lines))
    usage_line = "\n".join(lines[starts[0] : end])
    missing = sorted(option for option in options if option not in usage_line)
    assert not missing, f"docs/getting-started.md's usage line of {command} lacks {missing}"


BENCHMARKS = sorted(
    [
        *(ROOT / "scripts").glob("bench_*.py"),
        ROOT / "scripts" / "gpu_check.py",
        ROOT / "scripts" / "estimate_gpu_memory.py",
    ]
)


@pytest.mark.parametrize(
    "argv, quieted",
    [
        ([], True),
        (["--patch", "16", "32", "32", "-q"], True),
        (["-v"], False),
        (["--shape", "2", "8", "8", "2", "--verbose"], False),
        (["--verb"], False),  # argparse takes an unambiguous prefix
        (["--ver"], True),  # ambiguous with --version: argparse refuses it
        (["--", "-v"], True),
    ],
)
def test_scripts_quiet_tensorflow_before_parsing_unless_verbose(argv, quieted, monkeypatch):
    calls = []
    monkeypatch.setattr(console, "quiet_tensorflow", lambda: calls.append(1))
    console.quiet_unless_verbose(argv)
    assert bool(calls) == quieted


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda path: path.name)
def test_benchmarks_are_as_quiet_as_the_commands(script):
    """Each benchmark takes -v/-q/--version, and quiets TensorFlow before anything can import it."""
    source = script.read_text()
    assert "console.add_arguments(parser)" in source and "console.configure(" in source, script.name
    loads = [
        match.start()
        for match in re.finditer(
            r"^(import|from) (tensorflow|losses|numpy|pipeline\.|pipeline\b(?! import console))", source, re.M
        )
    ]
    if loads and script.name not in ("bench_calibration.py", "bench_startup.py"):  # these never load TensorFlow
        assert source.index("import quiet_start") < min(loads), script.name


@pytest.mark.slow
def test_a_benchmark_prints_no_tensorflow_start_up_log_unless_verbose():
    script = str(ROOT / "scripts" / "estimate_gpu_memory.py")
    env = {k: v for k, v in __import__("os").environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    run = [sys.executable, script, "--patch", "8", "16", "16", "--filters", "4", "--depth", "2"]
    quiet = subprocess.run(run, capture_output=True, text=True, check=True, cwd=ROOT, env=env)
    assert "standard" in quiet.stdout and quiet.stderr == ""
    loud = subprocess.run([*run, "-v"], capture_output=True, text=True, check=True, cwd=ROOT, env=env)
    assert loud.stdout == quiet.stdout and loud.stderr != ""
