"""Where a Train-tab run happens, and whose turn it is.

``Line``: runs take turns, ``slots()`` at a time, the others waiting first come, first served,
each told how many runs are ahead of it. ``ProcessRun``: a run in a child process of its own
(``python -m models.training.train_yourself``), killed on the way out, so a stop frees its memory
and its thread at once whatever it was doing. ``RayRun``: the same run as a Ray task that declares
its CPUs and memory, for the ray backend, where a cluster runs many at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .train_yourself import decode

if TYPE_CHECKING:
    from models.recipe import Recipe

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Run(Protocol):
    def start(self) -> None: ...
    def events(self, timeout: float) -> list[dict]:
        """Every event the run sent since the last call, waiting up to ``timeout`` for the first."""
    def stop(self) -> bool:
        """Ask the run to stop after its current step and hand back what it learned."""
    def stop_overdue(self, grace: float) -> bool:
        """Whether a stop was asked more than ``grace`` seconds ago and the run still has not finished."""
    def alive(self) -> bool: ...
    def kill(self) -> None:
        """End it now, freeing its memory and thread; safe to call twice."""


@dataclass(eq=False)
class Ticket:
    owner: str
    cancelled: bool = False


class Line:
    """Runs take turns: ``slots()`` at once, the rest wait in the order they came."""

    def __init__(self, slots: Callable[[], int], poll_s: float = 0.5) -> None:
        self._slots = slots
        self._poll_s = poll_s
        self._changed = threading.Condition()
        self._waiting: list[Ticket] = []
        self._running: list[Ticket] = []

    @contextlib.contextmanager
    def turn(self, owner: str) -> Iterator["Turn"]:
        """Join the line; iterating the turn yields how many runs are ahead until it is this one's (or it is cancelled)."""
        ticket = Ticket(owner)
        with self._changed:
            self._waiting.append(ticket)
        try:
            yield Turn(self, ticket)
        finally:
            with self._changed:
                for held in (self._waiting, self._running):
                    if ticket in held:
                        held.remove(ticket)
                self._changed.notify_all()

    def cancel(self, owner: str) -> bool:
        """Take ``owner``'s waiting runs out of the line; False if it has none waiting."""
        with self._changed:
            found = [t for t in self._waiting if t.owner == owner]
            for ticket in found:
                ticket.cancelled = True
            self._changed.notify_all()
        return bool(found)

    def ahead_of(self, ticket: Ticket) -> int | None:
        """Runs ahead of ``ticket``; None once it may start (it is then counted as running)."""
        with self._changed:
            position = self._waiting.index(ticket)
            if position == 0 and len(self._running) < self._slots():
                self._running.append(self._waiting.pop(0))
                return None
            return len(self._running) + position

    def wait(self) -> None:
        with self._changed:
            self._changed.wait(self._poll_s)


class Turn:
    def __init__(self, line: Line, ticket: Ticket) -> None:
        self._line = line
        self._ticket = ticket

    @property
    def cancelled(self) -> bool:
        return self._ticket.cancelled

    def __iter__(self) -> Iterator[int]:
        while not self._ticket.cancelled:
            ahead = self._line.ahead_of(self._ticket)
            if ahead is None:
                return
            yield ahead
            self._line.wait()


class ProcessRun:
    """A run in a child process; its events come back as JSON lines through a pipe a thread reads."""

    def __init__(self, recipe: Recipe, threads: int, memory_mb: float) -> None:
        self._args = ["--recipe", json.dumps(asdict(recipe)), "--threads", str(threads), "--memory-mb", str(memory_mb)]
        self._threads = threads
        self._events: queue.Queue = queue.Queue()
        self._process: subprocess.Popen | None = None
        self._stop_asked: float | None = None

    def start(self) -> None:
        read, write = os.pipe()
        env = {**os.environ, "OMP_NUM_THREADS": str(self._threads), "MKL_NUM_THREADS": str(self._threads), "PYTHONPATH": str(PROJECT_ROOT)}
        command = [sys.executable, "-m", "models.training.train_yourself", "--fd", str(write), *self._args]
        self._process = subprocess.Popen(command, pass_fds=(write,), cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL)
        os.close(write)
        threading.Thread(target=self._read, args=(read,), daemon=True, name="training-events").start()

    def _read(self, fd: int) -> None:
        with os.fdopen(fd) as lines:
            for line in lines:
                self._events.put(decode(line))

    def events(self, timeout: float) -> list[dict]:
        found = []
        with contextlib.suppress(queue.Empty):
            found.append(self._events.get(timeout=timeout))
            while True:
                found.append(self._events.get_nowait())
        return found

    def stop(self) -> bool:
        if self._process is None or self._process.poll() is not None:
            return False
        self._stop_asked = self._stop_asked or time.monotonic()
        self._process.send_signal(signal.SIGINT)
        return True

    def stop_overdue(self, grace: float) -> bool:
        return self._stop_asked is not None and time.monotonic() - self._stop_asked > grace

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
        if self._process is not None:
            self._process.wait(timeout=5)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None


class RayRun:
    """A run as a Ray task declaring ``threads`` CPUs and ``memory_mb`` of memory; events and the stop go through Ray queues."""

    def __init__(self, recipe: Recipe, threads: int, memory_mb: float) -> None:
        self._recipe = recipe
        self._threads = threads
        self._memory_mb = memory_mb
        self._ref = None
        self._stop_asked: float | None = None

    def start(self) -> None:
        import ray
        from ray.util.queue import Queue

        from models import serving

        serving.connect()
        self._events, self._stops = Queue(), Queue()
        options = {"num_cpus": self._threads, **({"memory": int(self._memory_mb * 2**20)} if self._memory_mb > 0 else {})}
        self._ref = ray.remote(_ray_task).options(**options).remote(self._recipe, self._threads, self._events, self._stops)

    def events(self, timeout: float) -> list[dict]:
        from ray.util.queue import Empty

        found = []
        with contextlib.suppress(Empty):
            found.append(self._events.get(timeout=timeout))
            found.extend(self._events.get_nowait_batch(self._events.qsize()))
        return found

    def stop(self) -> bool:
        if self._ref is None:
            return False
        self._stop_asked = self._stop_asked or time.monotonic()
        self._stops.put(True)
        return True

    def stop_overdue(self, grace: float) -> bool:
        return self._stop_asked is not None and time.monotonic() - self._stop_asked > grace

    def alive(self) -> bool:
        import ray

        return self._ref is not None and not ray.wait([self._ref], timeout=0)[0]

    def kill(self) -> None:
        import ray

        if self._ref is not None and self.alive():
            ray.cancel(self._ref, force=True)
        for actor in (getattr(self, "_events", None), getattr(self, "_stops", None)):
            if actor is not None:
                actor.shutdown()
        self._ref = None


def _ray_task(recipe: Recipe, threads: int, events, stops) -> None:
    """The Ray task's body: the same ``run``, with the stop read from a queue at most every quarter second."""
    import torch

    from .train_yourself import run

    torch.set_num_threads(threads)
    asked = {"at": 0.0, "stop": False}

    def should_stop() -> bool:
        if not asked["stop"] and time.monotonic() - asked["at"] > 0.25:
            asked["at"], asked["stop"] = time.monotonic(), not stops.empty()
        return asked["stop"]

    run(recipe, events.put, should_stop)
