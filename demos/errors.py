"""What the page shows when a handler fails: a clear message (``gr.Error``), never a stack trace."""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from typing import Callable, Iterator, ParamSpec, TypeVar

import gradio as gr
import torch

import models

from .gpu import on_zero_gpu
from .inputs import BadInput

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


def user_errors(fn: Callable[P, R] | None = None, *, gpu_seconds: int = 30):
    """Turn expected failures into a clear message in the page (``gr.Error``), never a stack trace.

    Unexpected exceptions are logged with their traceback on the server and reported to the
    user as a short, honest sentence; the server keeps serving either way. Every handler that
    runs a model has this decorator, so it is also where ZeroGPU's ``spaces.GPU`` goes
    (``gpu.on_zero_gpu``; ``gpu_seconds``: the longest a call of this handler may hold the GPU).
    """
    if fn is None:
        return functools.partial(user_errors, gpu_seconds=gpu_seconds)
    fn = on_zero_gpu(fn, gpu_seconds)
    if inspect.isgeneratorfunction(fn):  # a streaming handler fails while it is iterated, not when called

        @functools.wraps(fn)
        def streaming(*args: P.args, **kwargs: P.kwargs):
            with _as_user_errors(fn.__name__):
                yield from fn(*args, **kwargs)

        return streaming

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with _as_user_errors(fn.__name__):
            return fn(*args, **kwargs)

    return wrapper


@contextlib.contextmanager
def _as_user_errors(where: str) -> Iterator[None]:
    """The translation ``user_errors`` applies: expected failures to their message, the rest to a short sentence."""
    try:
        yield
    except gr.Error:
        raise
    except (BadInput, models.WeightsUnavailable, models.ModelServerUnavailable, ValueError, KeyError) as error:
        raise gr.Error(str(error).strip("'\"")) from None
    except (torch.OutOfMemoryError, MemoryError):
        log.exception("out of memory in %s", where)
        models.cache().release_all()  # so the next request has room
        raise gr.Error(
            "The server ran out of memory on this request. It unloaded its models to recover: try again, "
            "or with a smaller image or a smaller model."
        ) from None
    except Exception as error:  # noqa: BLE001 - last line of defence for the web page
        log.exception("unexpected error in %s", where)
        raise gr.Error(f"The model failed on this input ({type(error).__name__}). Try another input or model.") from None
