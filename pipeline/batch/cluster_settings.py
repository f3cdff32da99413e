"""Cluster-specific job settings, read from ``scripts/slurm/cluster.env``.

``cluster.env`` is a bash file, the one place a user adapts to a cluster: the
sbatch options below and ``unifocal_setup`` (modules to load, virtualenv to
activate), which every job runs first. It is read by bash itself, so it may
use any shell syntax; an empty or unset variable means "do not pass the
option" (the cluster's default applies).

* ``PARTITION`` -> ``--partition`` and ``ACCOUNT`` -> ``--account`` (both jobs);
* ``GPUS_PER_TASK`` -> ``--gres=gpu:N``, none for 0 (training tasks);
* ``CPUS_PER_TASK`` -> ``--cpus-per-task`` (training tasks);
* ``MEMORY`` -> ``--mem`` (both jobs);
* ``TIME_LIMIT`` -> ``--time`` of each training task, ``COMPARE_TIME_LIMIT``
  -> ``--time`` of the comparison job;
* ``EXTRA_SBATCH_FLAGS``: any other options, split like a shell command (both jobs).
"""

from __future__ import annotations

import dataclasses
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from pipeline.errors import ConfigError

VARIABLES = {
    "PARTITION": "partition",
    "ACCOUNT": "account",
    "GPUS_PER_TASK": "gpus_per_task",
    "CPUS_PER_TASK": "cpus_per_task",
    "MEMORY": "memory",
    "TIME_LIMIT": "time_limit",
    "COMPARE_TIME_LIMIT": "compare_time_limit",
    "EXTRA_SBATCH_FLAGS": "extra_sbatch_flags",
}
WHOLE_NUMBERS = ("GPUS_PER_TASK", "CPUS_PER_TASK")

# Prints each variable named in the arguments after the file, NUL-separated;
# whatever the file itself prints goes to stderr.
_PRINT_VARIABLES = 'source "$1" >&2 || exit 1; shift; for name; do printf "%s\\0" "${!name-}"; done'


@dataclass(frozen=True)
class ClusterSettings:
    """The sbatch options of a grid; ``None`` leaves an option to the cluster's default."""

    partition: Optional[str] = None
    account: Optional[str] = None
    gpus_per_task: Optional[int] = None
    cpus_per_task: Optional[int] = None
    memory: Optional[str] = None
    time_limit: Optional[str] = None
    compare_time_limit: Optional[str] = None
    extra_sbatch_flags: tuple[str, ...] = ()

    def updated(self, **values) -> "ClusterSettings":
        """These settings with the given values replaced; ``None`` values are ignored."""
        return dataclasses.replace(self, **{key: value for key, value in values.items() if value is not None})

    def training_options(self) -> list[str]:
        """sbatch options of the training array tasks."""
        options = self._shared_options()
        if self.gpus_per_task:
            options.append(f"--gres=gpu:{self.gpus_per_task}")
        if self.cpus_per_task:
            options.append(f"--cpus-per-task={self.cpus_per_task}")
        if self.time_limit:
            options.append(f"--time={self.time_limit}")
        return options + list(self.extra_sbatch_flags)

    def compare_options(self) -> list[str]:
        """sbatch options of the comparison job (no GPU: it only reads CSV files and plots)."""
        options = self._shared_options()
        if self.compare_time_limit:
            options.append(f"--time={self.compare_time_limit}")
        return options + list(self.extra_sbatch_flags)

    def _shared_options(self) -> list[str]:
        options = []
        if self.partition:
            options.append(f"--partition={self.partition}")
        if self.account:
            options.append(f"--account={self.account}")
        if self.memory:
            options.append(f"--mem={self.memory}")
        return options


def read_cluster_settings(path: Path) -> ClusterSettings:
    """Source ``path`` with bash and read the variables listed in this module's docstring.

    Raises:
        ConfigError: the file is missing, bash fails on it, or a count is not
            a whole number; the message names the file (and variable).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: cluster settings file not found")
    completed = subprocess.run(
        ["bash", "-c", _PRINT_VARIABLES, "cluster-env", str(path), *VARIABLES],
        capture_output=True,
        text=True,
    )
    if completed.returncode != 0:
        problem = completed.stderr.strip().splitlines()[-1:] or [f"exit status {completed.returncode}"]
        raise ConfigError(f"{path}: bash cannot source it: {problem[0]}")
    values = dict(zip(VARIABLES, completed.stdout.split("\0")))
    settings = {}
    for variable, field in VARIABLES.items():
        value = values[variable].strip()
        if not value:
            continue
        if variable in WHOLE_NUMBERS:
            if not value.isdigit():
                raise ConfigError(f"{path}: {variable}: expected a whole number, got {value!r}")
            settings[field] = int(value)
        elif variable == "EXTRA_SBATCH_FLAGS":
            settings[field] = tuple(shlex.split(value))
        else:
            settings[field] = value
    return ClusterSettings(**settings)
