"""A throw-away single-node Slurm cluster on this machine, for tests of Slurm jobs.

Needs the Debian packages ``slurmctld slurmd slurm-client munge``
(``scripts/install_slurm.sh``) and root, because slurmd starts jobs as their
owner. Runs without systemd or cgroups (``proctrack/linuxproc``,
``task/none``). Each cluster has its own munge key and socket, state folder
and ports, so it never touches a system Slurm or another test's cluster.

    cluster = LocalSlurmCluster(tmp_path / "slurm")
    cluster.start()
    try:
        job_id = cluster.run("sbatch", "--parsable", "--wrap=true").stdout.strip()
        cluster.wait_for([job_id], timeout=60)
    finally:
        cluster.stop()

Client commands need ``SLURM_CONF``: run them through :meth:`run`, or with
``env=cluster.environment``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Sequence

REQUIRED_PROGRAMS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel")
NODE_NAME = "localhost"
PARTITION = "debug"


def unavailable_reason() -> str | None:
    """Why a local cluster cannot start here, or ``None`` if it can."""
    missing = [program for program in REQUIRED_PROGRAMS if shutil.which(program) is None]
    if missing:
        return (
            f"Slurm/munge programs not installed ({', '.join(missing)}); "
            "run scripts/install_slurm.sh (Debian packages slurmctld slurmd slurm-client munge)"
        )
    if os.geteuid() != 0:
        return "a local Slurm cluster needs root: slurmd starts each job as its owner"
    return None


def wait_until(condition, timeout: float, problem: str) -> None:
    """Poll ``condition()`` until it is true; ``TimeoutError(problem)`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{problem} within {timeout:.0f} s")
        time.sleep(0.25)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalSlurmCluster:
    """slurmctld, slurmd and munged for one test, stopped by the PIDs it started.

    Args:
        state_dir: an empty folder for the configuration, state, spool and
            logs (a test's ``tmp_path``: fresh for every run).
        cpus: CPUs the node offers to jobs (default: this machine's count).
    """

    def __init__(self, state_dir: Path, cpus: int | None = None):
        self.state_dir = Path(state_dir)
        self.cpus = cpus or os.cpu_count() or 1
        self.config_file = self.state_dir / "slurm.conf"
        self.environment = dict(os.environ, SLURM_CONF=str(self.config_file))
        self._daemons: list[subprocess.Popen] = []
        self._munge_dir: Path | None = None

    def start(self, timeout: float = 30) -> None:
        """Start munged, slurmctld and slurmd, and wait until the node accepts jobs."""
        for folder in ("state", "spool", "logs"):
            (self.state_dir / folder).mkdir(parents=True, exist_ok=True)
        # munged insists that every folder above its socket is searchable by
        # everyone, which pytest's private temporary folders are not.
        self._munge_dir = Path(tempfile.mkdtemp(prefix="unifocal-munge-"))
        self._munge_dir.chmod(0o755)
        socket_path = self._munge_dir / "munge.socket"
        key = self.state_dir / "munge.key"
        subprocess.run(["mungekey", "--create", f"--keyfile={key}"], check=True, capture_output=True)
        self._start_daemon(
            "munged",
            [
                "munged",
                "--foreground",
                f"--socket={socket_path}",
                f"--key-file={key}",
                f"--pid-file={self.state_dir / 'munged.pid'}",
                f"--seed-file={self.state_dir / 'munged.seed'}",
                f"--log-file={self.state_dir / 'logs' / 'munged.log'}",
            ],
        )
        wait_until(socket_path.exists, timeout, "munged did not create its socket")
        self.config_file.write_text(self._slurm_conf(socket_path))
        self._start_daemon("slurmctld", ["slurmctld", "-D", "-i"])
        self._start_daemon("slurmd", ["slurmd", "-D", "-N", NODE_NAME])
        wait_until(self._node_is_idle, timeout, "the node did not come up")

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a Slurm client command against this cluster."""
        completed = subprocess.run(command, capture_output=True, text=True, env=self.environment)
        if check and completed.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {completed.stderr.strip()}")
        return completed

    def wait_for(self, job_ids: Sequence[str], timeout: float) -> dict[str, dict[str, str]]:
        """Wait until the jobs (arrays: every task) have left the queue; return their final records.

        Returns:
            ``{"<job>" or "<array job>_<task>": {"JobState": ..., "ExitCode": ..., "Restarts": ...}}``

        Raises:
            TimeoutError: naming the jobs still queued or running.
        """
        ids = ",".join(job_ids)

        def queue_is_empty():
            return not self.run("squeue", "--noheader", f"--jobs={ids}", "--format=%i", check=False).stdout.strip()

        try:
            wait_until(queue_is_empty, timeout, f"jobs {ids} did not finish")
        except TimeoutError as error:
            raise TimeoutError(f"{error}; queue:\n{self.run('squeue', check=False).stdout}") from None
        return {key: record for job_id in job_ids for key, record in self.job_records(job_id).items()}

    def job_records(self, job_id: str) -> dict[str, dict[str, str]]:
        """``scontrol show job`` for a job (one record per array task), selected fields."""
        output = self.run("scontrol", "--oneliner", "show", "job", job_id).stdout
        records = {}
        for line in output.splitlines():
            fields = dict(re.findall(r"(\w+)=(\S*)", line))
            task = fields.get("ArrayTaskId")
            key = f"{fields['ArrayJobId']}_{task}" if task and task != "(null)" else fields["JobId"]
            records[key] = {
                name: fields.get(name, "")
                for name in ("JobState", "ExitCode", "Restarts", "Requeue", "Reason", "Dependency")
            }
        return records

    def stop(self, timeout: float = 30) -> None:
        """Cancel every job, then stop the daemons this object started, by their PIDs."""
        if any(daemon.poll() is None for daemon in self._daemons):
            self.run("scancel", "--full", f"--partition={PARTITION}", check=False)
            try:
                wait_until(
                    lambda: not self.run("squeue", "--noheader", check=False).stdout.strip(),
                    timeout,
                    "jobs did not end",
                )
            except TimeoutError:
                pass  # stopping slurmd below still ends its job steps' parents
        for daemon in reversed(self._daemons):
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
                try:
                    daemon.wait(timeout)
                except subprocess.TimeoutExpired:
                    daemon.kill()
                    daemon.wait()
        self._daemons.clear()
        if self._munge_dir is not None:
            shutil.rmtree(self._munge_dir, ignore_errors=True)
            self._munge_dir = None

    def log(self, name: str) -> str:
        """The end of a daemon's log (``munged``, ``slurmctld``, ``slurmd``), for failure messages."""
        path = self.state_dir / "logs" / f"{name}.out"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def _start_daemon(self, name: str, command: list[str]) -> None:
        with open(self.state_dir / "logs" / f"{name}.out", "wb") as log:
            self._daemons.append(
                subprocess.Popen(
                    command,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=self.environment,
                    start_new_session=True,
                )
            )

    def _node_is_idle(self) -> bool:
        for daemon in self._daemons:
            if daemon.poll() is not None:
                name = Path(daemon.args[0]).name
                raise RuntimeError(f"{name} exited with status {daemon.returncode}:\n{self.log(name)}")
        state = self.run("sinfo", "--noheader", f"--nodes={NODE_NAME}", "--format=%T", check=False)
        return state.stdout.strip() == "idle"

    def _slurm_conf(self, munge_socket: Path) -> str:
        # cred_expire: a requeued job waits this long before it starts again (default 120 s).
        state = self.state_dir
        return f"""\
ClusterName=unifocal-test
SlurmctldHost={NODE_NAME}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
AuthInfo=socket={munge_socket},cred_expire=5
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={state / "state"}
SlurmdSpoolDir={state / "spool"}
SlurmctldPidFile={state / "slurmctld.pid"}
SlurmdPidFile={state / "slurmd.pid"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=1
MpiDefault=none
JobRequeue=0
ReturnToService=2
MinJobAge=600
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
NodeName={NODE_NAME} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory=4000 State=UNKNOWN
PartitionName={PARTITION} Nodes={NODE_NAME} Default=YES MaxTime=INFINITE State=UP
"""
