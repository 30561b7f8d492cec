"""ZeroGPU: where a handler borrows the GPU on Hugging Face's ZeroGPU hardware, and nowhere else.

Kept apart from error translation (``errors``): one says where a call runs, the other what the
page shows when it fails; ``errors.user_errors`` applies both to every handler that runs a model.
"""

from __future__ import annotations

from typing import Callable, ParamSpec, TypeVar

import settings

P = ParamSpec("P")
R = TypeVar("R")


def on_zero_gpu(fn: Callable[P, R], seconds: int) -> Callable[P, R]:
    """``fn`` inside ``spaces.GPU`` on Hugging Face ZeroGPU hardware, unchanged anywhere else.

    ZeroGPU lends a GPU only to functions decorated so, for at most ``seconds`` per call; the
    ``spaces`` package is present on every Space, and ``SPACES_ZERO_GPU`` is set on ZeroGPU ones.
    """
    if not settings.on_zero_gpu():
        return fn
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(duration=seconds)(fn)
