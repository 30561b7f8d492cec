"""A library's step callback turned into a generator: the one bridge every streaming model uses.

transformers' ``generate`` and diffusers' pipelines report each step through a callback, on the
thread that runs them; a page wants a generator it can iterate, and stop by closing it (the Stop
button). ``stream_steps`` runs the library call on another thread, hands every step it emits
through a queue, and returns the call's result.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Callable, Generator, Generic, TypeVar

S = TypeVar("S")
R = TypeVar("R")

Run = Callable[[Callable[[S], None], threading.Event], R]
"""``run(emit, stopped)``: calls the library, ``emit``s each step, and checks ``stopped`` to end early."""


class Stopped(Exception):
    """Raised by a step callback to end a run nobody reads any more; the bridge swallows it."""


@dataclass
class _Finished(Generic[R]):
    value: R


@dataclass
class _Failed:
    error: BaseException


def stream_steps(run: Run[S, R], executor: Executor | None = None, name: str = "model-stream") -> Generator[S, None, R]:
    """Yield what ``run`` emits as it comes, then return what ``run`` returns (``result = yield from stream_steps(...)``).

    ``run`` goes to ``executor`` (a model's own worker, which serialises its runs) or to a new
    daemon thread called ``name``. An error in ``run`` is raised here, in the caller's thread.
    When the caller stops iterating (the generator is closed), ``stopped`` is set and the run is
    waited for, so it has ended before the caller moves on.
    """
    events: queue.Queue = queue.Queue()
    stopped = threading.Event()

    def work() -> None:
        try:
            events.put(_Finished(run(events.put, stopped)))
        except Stopped:
            pass  # the caller has gone: nobody reads what follows
        except BaseException as error:  # handed to the caller's thread, which raises it
            events.put(_Failed(error))

    if executor is None:
        thread = threading.Thread(target=work, daemon=True, name=name)
        thread.start()
        wait = thread.join
    else:
        wait = executor.submit(work).result
    try:
        while True:
            item = events.get()
            if isinstance(item, _Failed):
                raise item.error
            if isinstance(item, _Finished):
                return item.value
            yield item
    finally:
        stopped.set()  # a run that checks it ends at its next step...
        wait()  # ...and has ended before the caller moves on
