"""One thread owns the model: jobs run one at a time, oldest first, and a newer job for the same slot
supersedes an older one that is still waiting (or asks a running one to stop early).

Why: two computations on one model at once can corrupt each other (guided backprop swaps the
ReLUs that a Grad-CAM running beside it would differentiate through). Widget callbacks only submit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Job", "ModelWorker", "Superseded"]


class Superseded(Exception):
    """Raised by a job that stops because a newer request took its slot (it draws nothing)."""


@dataclass(eq=False)
class Job:
    """One request: fn(job) runs on the worker; on_done(job) follows unless the job was superseded.

    slot: what the job draws (a newer job for the same slot supersedes this one); result / error:
    what fn returned or raised; superseded: set when a newer job took the slot (fn may poll it to
    stop early); done: set once the job has finished or was dropped.
    """

    slot: str
    fn: Callable[[Job], Any]
    on_done: Callable[[Job], None] | None = None
    result: Any = None
    error: BaseException | None = None
    superseded: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class ModelWorker:
    """A daemon thread that runs submitted jobs one at a time (see the module's docstring)."""

    def __init__(self, name: str = "vizkit-model"):
        self._cond = threading.Condition()
        self._waiting: dict[str, Job] = {}  # slot -> newest waiting job, oldest slot first
        self._running: Job | None = None
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(
        self, slot: str, fn: Callable[[Job], Any], on_done: Callable[[Job], None] | None = None
    ) -> Job:
        """Queue fn(job) for the slot, superseding the slot's waiting job and flagging its running one."""
        job = Job(slot, fn, on_done)
        with self._cond:
            old = self._waiting.pop(slot, None)
            if old is not None:
                old.superseded = True
                old.done.set()
            if self._running is not None and self._running.slot == slot:
                self._running.superseded = True
            self._waiting[slot] = job
            self._cond.notify_all()
        return job

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no job is waiting or running; False if the timeout ran out first."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._waiting and self._running is None, timeout)

    @property
    def busy(self) -> bool:
        """True while a job is waiting or running."""
        with self._cond:
            return bool(self._waiting) or self._running is not None

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._waiting)
                job = self._waiting.pop(next(iter(self._waiting)))
                self._running = job
            try:
                job.result = job.fn(job)
            except Exception as error:  # reported through the job; the worker carries on
                job.error = error
            try:
                if job.on_done is not None and not job.superseded:
                    job.on_done(job)
            except Exception as error:
                job.error = job.error or error
            finally:
                with self._cond:
                    self._running = None
                    job.done.set()
                    self._cond.notify_all()
