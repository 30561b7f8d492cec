"""The one model loader: lazy, thread-safe, memory-bounded (LRU), device-aware.

Every model in the app comes through ``ModelCache.get``. Ten concurrent first requests for the
same model load it once (a lock per name); loading one model does not block requests for a
model already loaded (the map itself has its own short-lived lock). When the budget would be
exceeded, the least recently used models are dropped first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Callable, Hashable, TypeVar

import torch
from torch import nn

import settings

from .spec import ModelSpec

log = logging.getLogger(__name__)
T = TypeVar("T")


class ModelServerUnavailable(RuntimeError):
    """No server of a model answered in time (the ray backend): a clear message for the user, not a crash."""


def module_bytes(module: nn.Module) -> int:
    """Memory held by a module's parameters and buffers: what eviction frees."""
    tensors = [*module.parameters(), *module.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


class Memo:
    """A bounded least-recently-used memo, safe across threads: expensive derived state computed once per key."""

    def __init__(self, entries: int) -> None:
        self._values: OrderedDict[Hashable, object] = OrderedDict()
        self._entries = entries
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The value kept for ``key``, else ``compute()`` kept for next time; the computation runs outside the lock."""
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]  # type: ignore[return-value]
        value = compute()
        with self._lock:
            self._values[key] = value
            while len(self._values) > self._entries:
                self._values.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


class ModelCache:
    def __init__(
        self,
        resolve: Callable[[str], ModelSpec],
        budget_bytes: int | None = None,
        device: torch.device | None = None,
        derived_entries: int = 64,
    ) -> None:
        self._resolve = resolve
        self.budget_bytes = settings.memory_budget_bytes() if budget_bytes is None else budget_bytes
        self.device = device or settings.device()
        self._models: OrderedDict[str, nn.Module] = OrderedDict()
        self._derived = Memo(derived_entries)
        self._lock = threading.Lock()
        self._name_locks: dict[str, threading.Lock] = {}

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._models)

    def used_bytes(self) -> int:
        with self._lock:
            return sum(module_bytes(m) for m in self._models.values())

    def get(self, name: str, on_load: Callable[[str], None] | None = None) -> nn.Module:
        """The ready model ``name`` on the cache's device; loads it on first use.

        ``on_load`` is called with a message before a (slow) load, so the UI can show progress.
        """
        model = self._hit(name)
        if model is not None:
            return model
        with self._lock:
            name_lock = self._name_locks.setdefault(name, threading.Lock())
        with name_lock:
            model = self._hit(name)  # another thread may have loaded it while we waited
            if model is not None:
                return model
            spec = self._resolve(name)
            if on_load:
                on_load(f"Loading {spec.title} ({spec.params / 1e6:.1f} M parameters)…")
            start = time.perf_counter()
            model = self._prepare(spec.load(spec), spec)
            self._insert(name, model)
            log.info("loaded %s in %.2f s", name, time.perf_counter() - start)
            return model

    def release_all(self) -> int:
        """Drop every loaded model and derived result (after running out of memory); returns how many models."""
        with self._lock:
            dropped = len(self._models)
            self._models.clear()
        self._derived.clear()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        log.warning("released %d models and every cached result to recover memory", dropped)
        return dropped

    def derived(self, key: Hashable, compute: Callable[[], T]) -> T:
        """Memoise expensive derived state (a model's raw output for an image, an embedding...).

        Used e.g. so that moving an opacity slider re-blends a cached mask instead of re-running
        the network. Bounded LRU (``Memo``).
        """
        return self._derived.get(key, compute)

    def _hit(self, name: str) -> nn.Module | None:
        with self._lock:
            model = self._models.get(name)
            if model is not None:
                self._models.move_to_end(name)
            return model

    def _prepare(self, model: nn.Module, spec: ModelSpec) -> nn.Module:
        model.eval().requires_grad_(False)
        model = model.to(self.device)
        if self.device.type == "cuda" and spec.half_precision_ok:
            model = model.half()
        return model

    def _insert(self, name: str, model: nn.Module) -> None:
        size = module_bytes(model)
        with self._lock:
            while self._models and sum(module_bytes(m) for m in self._models.values()) + size > self.budget_bytes:
                evicted, _ = self._models.popitem(last=False)
                log.info("evicted %s to stay within %d MB", evicted, self.budget_bytes >> 20)
            self._models[name] = model
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
