"""Start-up benchmark: how fast the commands answer when they need no TensorFlow.

    .venv/bin/python scripts/bench_startup.py [--repeats 5]

Times, as a user sees them (a new process each time, wall clock):

* ``run-experiment CONFIG`` with a typo in the config, until the one-line
  error (goal: <= 2 s on an idle 2-core machine);
* ``--help`` of every command in ``pyproject.toml`` (goal: <= 1 s);
* ``list-losses``.

Prints best and median wall-clock seconds of ``--repeats`` runs and the
CPU seconds (user + system) of the best run: on a busy machine the wall clock
grows with the load, the CPU time much less; on an idle one they agree. The
load average is printed too. Exits 1 if a best wall time misses its goal.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from pipeline import console

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
COMMANDS = sorted(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])
CONFIG_ERROR_GOAL, HELP_GOAL = 2.0, 1.0


def timed(command: list[str], repeats: int, expected_status: int) -> tuple[float, float, float, str]:
    """(best, median) wall seconds of ``repeats`` runs of ``command``, the best run's CPU seconds, its stderr."""
    runs = []
    for _ in range(repeats):
        cpu_before = _children_cpu()
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        runs.append((time.perf_counter() - started, _children_cpu() - cpu_before))
        if result.returncode != expected_status:
            raise SystemExit(
                f"{' '.join(command)}: exit status {result.returncode}, expected {expected_status}\n{result.stderr}"
            )
    best = min(runs)
    return best[0], statistics.median(wall for wall, _ in runs), best[1], result.stderr


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per command (default 5)")
    console.add_arguments(parser)
    arguments = parser.parse_args()
    console.configure(arguments)

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; {arguments.repeats} runs each")
    missed = []
    with tempfile.TemporaryDirectory() as temporary:
        config = Path(temporary) / "typo.yaml"
        config.write_text(f"base: {ROOT / 'configs/demo_dice.yaml'}\ntraining: {{epochs: 2, learning_rat: 0.1}}\n")
        best, median, cpu, error = timed([str(BIN / "run-experiment"), str(config)], arguments.repeats, 2)
        print(
            f"config error   run-experiment TYPO.yaml   best {best:5.2f} s  median {median:5.2f} s  cpu {cpu:5.2f} s"
            f"  (goal <= {CONFIG_ERROR_GOAL:g} s)  -> {error.strip().rsplit(': ', 2)[-2:]}"
        )
        if best > CONFIG_ERROR_GOAL:
            missed.append("config error")
    for command in COMMANDS:
        best, median, cpu, _ = timed([str(BIN / command), "--help"], arguments.repeats, 0)
        print(
            f"--help         {command:<26} best {best:5.2f} s  median {median:5.2f} s  cpu {cpu:5.2f} s"
            f"  (goal <= {HELP_GOAL:g} s)"
        )
        if best > HELP_GOAL:
            missed.append(f"{command} --help")
    best, median, cpu, _ = timed([str(BIN / "list-losses")], arguments.repeats, 0)
    print(f"list           list-losses                best {best:5.2f} s  median {median:5.2f} s  cpu {cpu:5.2f} s")
    if missed:
        print(f"goal missed: {', '.join(missed)} (is the machine busy? `uptime`)")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
