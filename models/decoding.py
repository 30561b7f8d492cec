"""How a captioner or answerer picks its tokens: the decoding settings, their bounds, and the streaming of each step.

One ``Decoding`` names a method as transformers' generation guide does (greedy, beam search,
nucleus sampling), checks a request before any work starts, and turns into ``generate``'s
arguments; ``seeded`` makes sampling reproducible per request, ``StepObserver`` and ``stream``
hand every step's partial texts to the page.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
from transformers import LogitsProcessor

from .streaming import Stopped, stream_steps

DECODING_METHODS = ("greedy", "beam search", "nucleus sampling")
MAX_SEQUENCES = 8
MAX_NEW_TOKENS = 60


@dataclass(frozen=True)
class Decoding:
    """How to pick each next token; ``count`` sequences (beam search: the best ``count`` beams)."""

    method: str = "greedy"
    beams: int = 3
    top_p: float = 0.9
    temperature: float = 1.0
    max_tokens: int = 20
    count: int = 1
    seed: int = 0

    def check(self) -> None:
        """Raise ValueError with a message a user can act on, before any work starts."""
        if self.method not in DECODING_METHODS:
            raise ValueError(f"Unknown decoding method {self.method!r}; pick one of {', '.join(DECODING_METHODS)}.")
        if not 1 <= self.max_tokens <= MAX_NEW_TOKENS:
            raise ValueError(f"Maximum length must be between 1 and {MAX_NEW_TOKENS} tokens (got {self.max_tokens}).")
        if not 1 <= self.count <= MAX_SEQUENCES:
            raise ValueError(f"Number of captions must be between 1 and {MAX_SEQUENCES} (got {self.count}).")
        if self.method == "beam search" and not self.count <= self.beams <= 16:
            raise ValueError(f"Beam search keeps {self.beams} beams, so it can return at most that many captions; the beam width must be 1 to 16 and at least the number of captions ({self.count}).")
        if self.method == "nucleus sampling" and not (0 < self.top_p <= 1 and 0 < self.temperature <= 5):
            raise ValueError("Nucleus sampling needs 0 < top-p <= 1 and 0 < temperature <= 5.")

    @property
    def sequences(self) -> int:
        """Greedy decoding has exactly one answer, however many are asked for."""
        return 1 if self.method == "greedy" else self.count

    def within(self, limit: int, reason: str) -> tuple[Decoding, list[str]]:
        """This decoding with at most ``limit`` new tokens, and a notice saying why when that lowers the asked length."""
        if self.max_tokens <= limit:
            return self, []
        return dataclasses.replace(self, max_tokens=limit), [f"Maximum length lowered from {self.max_tokens} to {limit} tokens: {reason}."]

    def generate_kwargs(self) -> dict:
        """The ``generate`` arguments of this method, as transformers' generation guide names them."""
        common = {"max_new_tokens": self.max_tokens, "num_return_sequences": self.sequences}
        if self.method == "beam search":
            return common | {"num_beams": self.beams, "do_sample": False, "early_stopping": True}
        if self.method == "nucleus sampling":
            return common | {"do_sample": True, "top_p": self.top_p, "temperature": self.temperature, "top_k": 0, "num_beams": 1}
        return common | {"do_sample": False, "num_beams": 1}


_SAMPLING = threading.Lock()


@contextlib.contextmanager
def seeded(decoding: Decoding) -> Iterator[None]:
    """Sampling draws from torch's global generator (``generate`` takes no other): seed it, one sampler at a time.

    Otherwise two users sampling at once would draw from each other's stream, and the same seed
    would not give the same captions.
    """
    if decoding.method != "nucleus sampling":
        yield
        return
    with _SAMPLING:
        torch.manual_seed(decoding.seed)
        yield


class StepObserver(LogitsProcessor):
    """Hands every decoding step's sequences so far to ``callback``; leaves the scores untouched.

    A logits processor is ``generate``'s documented hook into each step, for every method (with
    beam search, the sequences are the live beams, best first after the first step).
    """

    def __init__(self, callback: Callable[[torch.LongTensor], None]) -> None:
        self.callback = callback

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.callback(input_ids)
        return scores


@dataclass
class Generated:
    """Decoded texts (``count`` per image, in order) and their token ids (special tokens included)."""

    texts: list[str]
    ids: list[list[int]]
    notices: list[str] = field(default_factory=list)
    seconds: float = 0.0

def stream(run: Callable[[Callable[[torch.LongTensor], None]], Generated], decode: Callable[[torch.LongTensor], list[str]]) -> Iterator[list[str] | Generated]:
    """Run ``run(on_step)`` on a thread; yield the decoded partial texts after each step, then the result.

    A stream closed before its end stops ``generate`` at its next step.
    """

    def observed(emit: Callable[[list[str]], None], stopped: threading.Event) -> Generated:
        def on_step(ids: torch.LongTensor) -> None:
            if stopped.is_set():
                raise Stopped
            emit(decode(ids))

        return run(on_step)

    result = yield from stream_steps(observed, name="caption-stream")
    yield result
