"""Stop cleanly when a cluster preempts a job or its time runs out, so the job can be requeued.

Slurm sends SIGTERM on preemption, cancellation and at the time limit (then
SIGKILL ``KillWait`` seconds later), and, when asked with
``--signal=B:USR1@<seconds>``, SIGUSR1 that many seconds before the limit.
Commands that install :func:`stop_on_signals` turn either signal into a
:class:`Preempted` exception in the main thread: the current batch (or case
being predicted) is abandoned, every file already written stays valid
(they are all written atomically, and a fold's epoch checkpoint is complete
before ``state.json`` points to it), and the partial epoch is simply redone
by the rerun, which resumes from the last finished epoch. :func:`requeues_when_preempted`
prints one line and exits with :data:`REQUEUE_EXIT_CODE`, which
``scripts/slurm/train_array.sbatch`` turns into ``scontrol requeue`` of the task.
"""

from __future__ import annotations

import functools
import signal
import sys
import threading
from collections.abc import Callable

from pipeline.errors import REQUEUE_EXIT_CODE  # exit status "run me again" (BSD's EX_TEMPFAIL); re-exported

#: The signals a cluster sends before it ends a job.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class Preempted(BaseException):
    """A stop signal arrived. A ``BaseException``, like ``KeyboardInterrupt``, so no ``except Exception`` hides it."""

    def __init__(self, signal_name: str):
        super().__init__(signal_name)
        self.signal_name = signal_name


def _raise_preempted(number, frame):
    for stop_signal in STOP_SIGNALS:  # a second signal (TERM after USR1) must not interrupt the exit
        signal.signal(stop_signal, signal.SIG_IGN)
    raise Preempted(signal.Signals(number).name)


def stop_on_signals() -> dict:
    """Raise :class:`Preempted` in the main thread on SIGTERM or SIGUSR1; return the previous handlers."""
    return {stop_signal: signal.signal(stop_signal, _raise_preempted) for stop_signal in STOP_SIGNALS}


def requeues_when_preempted(main: Callable[..., int]) -> Callable[..., int]:
    """Install the handlers, run ``main``; on :class:`Preempted` print one line and exit with the requeue code."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs) -> int:
        if threading.current_thread() is not threading.main_thread():
            return main(*args, **kwargs)  # only the main thread may handle signals
        previous = stop_on_signals()
        try:
            return main(*args, **kwargs)
        except Preempted as stop:
            print(
                f"stopped by {stop.signal_name}: finished epochs, predictions and scores are kept; "
                f"a rerun resumes (the interrupted epoch is redone); exit {REQUEUE_EXIT_CODE} = requeue me",
                file=sys.stderr,
                flush=True,
            )
            sys.exit(REQUEUE_EXIT_CODE)
        finally:
            for stop_signal, handler in previous.items():
                signal.signal(stop_signal, handler)

    return wrapper
