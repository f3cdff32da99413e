#!/usr/bin/env bash
# Install what tests/test_slurm.py needs for its throw-away single-node Slurm
# cluster: the Debian packages slurmctld, slurmd, slurm-client and munge.
#
# Idempotent, and never fails the caller: where the packages are already there
# it does nothing; where apt-get or root is unavailable, or the install fails,
# it says so and exits 0, and the Slurm tests are skipped with that reason.
# The packages' services are not started here (the tests start their own
# daemons with their own configuration).
set -u

programs=(slurmctld slurmd sbatch munged mungekey)
missing=()
for program in "${programs[@]}"; do
    command -v "$program" >/dev/null 2>&1 || missing+=("$program")
done
if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install_slurm: Slurm and munge already installed"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_slurm: no apt-get here; the Slurm tests will be skipped" >&2
    exit 0
fi
sudo=()
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo=(sudo -n)
    else
        echo "install_slurm: needs root (or passwordless sudo); the Slurm tests will be skipped" >&2
        exit 0
    fi
fi

export DEBIAN_FRONTEND=noninteractive
if "${sudo[@]}" apt-get update -q \
    && "${sudo[@]}" apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge; then
    echo "install_slurm: installed slurmctld slurmd slurm-client munge"
else
    echo "install_slurm: apt-get failed; the Slurm tests will be skipped" >&2
fi
exit 0
