"""The ``ray`` backend: each model in a Ray Serve deployment, behind the same ``models.get`` interface.

With ``DVL_BACKEND=ray`` the registry's cache is a ``RemoteModelCache``: ``models.get(name)``
returns a ``RemoteModel`` whose predictions (the wrapper's ``SERVED`` methods) run in a Serve
replica of that model, and the tabs do not change. What stays in the app process:

- plain attributes (categories, a detector's skeleton, CLIP's logit scale) come from the
  replica once, as a snapshot;
- teaching panels that reach inside a network (a detector's RPN, RoIAlign) load an in-process
  copy on first use;
- captioning and diffusion, which stream step by step from their wrapper, run in process.

Each replica runs one model from its own in-process cache with as many torch threads as CPUs it
was given, and batches requests from all users with ``serve.batch``: single-image calls
(segmentation, detection) go through the wrapper's ``forward_batch``; list calls (retrieval
embeddings, CLIP's image encoder) are concatenated into one call and split back.

A replica that dies mid-request (a crash, a lost node) fails the requests it held; ``RemoteModel``
retries them, and Serve routes the retry to a live replica while it replaces the dead one. Only
when no replica answers within ``DVL_RAY_RETRY_S`` does the request fail, with a clear message.

This module imports Ray; the registry imports it only for the ray backend, so the base install
runs without Ray (``requirements-ray.txt``).
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch

# Ray's background threads (a Serve handle's router pushes metrics) call ray.init() by themselves when
# Ray is not running, e.g. after a shutdown: a second, silent Ray. This module connects explicitly.
os.environ.setdefault("RAY_ENABLE_AUTO_CONNECT", "0")
import ray
from ray import serve
from ray.exceptions import ActorUnavailableError, RayActorError
from ray.serve.exceptions import DeploymentUnavailableError, RayServeException
from torch import nn

import settings

from .cache import ModelCache, ModelServerUnavailable
from .spec import ModelSpec

log = logging.getLogger(__name__)

Batching = Literal["items", "lists", "none"]
SERVED: dict[str, dict[str, Batching]] = {
    "segmentation": {"forward": "items"},
    "detection": {"forward": "items"},
    "instances": {"forward": "items"},
    "pose": {"forward": "items"},
    "retrieval": {"embed": "lists"},
    "clip": {"encode_images": "lists", "class_embeddings": "none"},
}
"""Per task, the wrapper methods that run in the replica and how calls from different users batch:
``items``: one input each, run together by ``forward_batch``; ``lists``: a list each, concatenated.
Tasks not listed (captioning, diffusion) run in the app process."""
NAMESPACE = "deepvisionlab"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
RETRYABLE = (RayActorError, ActorUnavailableError, DeploymentUnavailableError, TimeoutError)
"""A replica died or none is up: try again, on another replica (ray's GetTimeoutError is a TimeoutError)."""
SNAPSHOT_TYPES = (str, int, float, bool, type(None), list, tuple, dict)


def connect(address: str | None = None, num_cpus: int | None = None) -> None:
    """Join the Ray cluster at ``address`` ("auto": the one ``ray start`` runs here), or start a local one.

    Replicas import this project from the same path as this process (a cluster's image holds it
    there too, see deploy/serve-config.yaml). ``num_cpus`` limits a new local Ray (tests, benchmarks).
    """
    if not ray.is_initialized():
        runtime_env = {"env_vars": {"PYTHONPATH": str(PROJECT_ROOT)}}
        ray.init(
            address=address, num_cpus=num_cpus, namespace=NAMESPACE, runtime_env=runtime_env, log_to_driver=False, include_dashboard=False
        )


@serve.deployment(max_ongoing_requests=32, ray_actor_options={"num_cpus": 1})
class ModelServer:
    """One model in one Serve replica: its spec's wrapper, with users' calls batched together.

    The spec travels with the deployment (pickled by Ray), so a replica needs no registry.
    """

    def __init__(self, spec: ModelSpec) -> None:
        os.environ["DVL_BACKEND"] = "local"  # a replica runs its model in process, whatever the app's setting
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
        torch.set_num_threads(max(1, int(cpus)))  # a replica with one CPU must not run 16 threads
        self.name = spec.name
        self.task = spec.task
        self.model = ModelCache({spec.name: spec}.__getitem__).get(spec.name)

    def reconfigure(self, config: dict) -> None:
        """Serve's ``user_config``: the batch size and how long a batch waits to fill."""
        self.batched.set_max_batch_size(int(config.get("max_batch_size", 8)))
        self.batched.set_batch_wait_timeout_s(float(config.get("batch_wait_timeout_s", 0.005)))

    def snapshot(self) -> dict[str, Any]:
        """The wrapper's plain public attributes and properties (categories, logit scale...)."""
        values = {}
        for attribute in dir(self.model):
            if attribute.startswith("_") or attribute == "T_destination":
                continue
            try:
                value = getattr(self.model, attribute)
            except Exception:  # noqa: BLE001, S112 - a property that cannot be read here is simply not in the snapshot
                continue
            if isinstance(value, SNAPSHOT_TYPES):
                values[attribute] = value
        return values

    async def call(self, method: str, args: tuple, kwargs: dict) -> Any:
        batching = SERVED.get(self.task, {}).get(method)
        if batching is None:
            raise ValueError(f"{method} of {self.name} is not served remotely")
        if batching != "none" and len(args) == 1 and not kwargs:
            return await self.batched((method, batching, args[0]))
        return getattr(self.model, method)(*args, **kwargs)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.005)
    async def batched(self, requests: list[tuple[str, Batching, Any]]) -> list[Any]:
        """Requests from all users that arrived together; one network call per method."""
        answers: list[Any] = [None] * len(requests)
        for method in {method for method, _, _ in requests}:
            indices = [i for i, (m, _, _) in enumerate(requests) if m == method]
            inputs = [requests[i][2] for i in indices]
            for i, answer in zip(indices, run_together(self.model, method, requests[indices[0]][1], inputs)):
                answers[i] = answer
        return answers


def run_together(model: nn.Module, method: str, batching: Batching, inputs: list[Any]) -> list[Any]:
    """One call of ``method`` for many users' inputs, split back into one answer each."""
    if batching == "items":
        together = getattr(model, f"{method}_batch", None)  # DETR has no forward_batch: one call each
        return together(inputs) if together else [getattr(model, method)(x) for x in inputs]
    stacked = getattr(model, method)([item for x in inputs for item in x])
    ends = list(itertools.accumulate(len(x) for x in inputs))
    return [stacked[end - len(x) : end] for x, end in zip(inputs, ends)]


def application(spec: ModelSpec, args: dict) -> serve.Application:
    """The Serve application of one model; ``args`` may set ``max_batch_size`` and ``batch_wait_timeout_s``."""
    config = {key: args[key] for key in ("max_batch_size", "batch_wait_timeout_s") if key in args}
    return ModelServer.options(user_config=config or {"max_batch_size": 8}).bind(spec)


def deploy(
    spec: ModelSpec,
    replicas: int = 1,
    cpus: float = 1,
    gpus: float = 0,
    max_batch_size: int = 8,
    batch_wait_timeout_s: float = 0.005,
    autoscale: tuple[int, int] | None = None,
) -> None:
    """Start (or update) the Serve application of ``spec`` (named as the model): ``replicas`` copies of it.

    ``autoscale`` (min, max) lets Serve choose the number of replicas instead, aiming at four
    requests in flight per replica.
    """
    scaling = (
        {"autoscaling_config": {"min_replicas": autoscale[0], "max_replicas": autoscale[1], "target_ongoing_requests": 4}}
        if autoscale
        else {"num_replicas": replicas}
    )
    application = ModelServer.options(
        **scaling,
        ray_actor_options={"num_cpus": cpus, "num_gpus": gpus},
        user_config={"max_batch_size": max_batch_size, "batch_wait_timeout_s": batch_wait_timeout_s},
    ).bind(spec)
    serve.start(proxy_location="Disabled")  # the app calls through handles; no HTTP proxy (a no-op where Serve runs)
    serve.run(application, name=spec.name, route_prefix=None)


class RemoteModel:
    """Stands in for a model wrapper: its served methods run in a replica, its attributes read a snapshot.

    Anything else (a teaching panel reaching into the network) reads the in-process copy that
    ``local`` loads on first use.
    """

    def __init__(self, name: str, task: str, handle: serve.handle.DeploymentHandle, local: Callable[[], nn.Module]) -> None:
        self._name = name
        self._served = SERVED[task]
        self._handle = handle
        self._local = local
        self._snapshot: dict[str, Any] | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._remote("forward", args, kwargs)

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("_"):
            raise AttributeError(attribute)
        if attribute in self._served:
            return lambda *args, **kwargs: self._remote(attribute, args, kwargs)
        if self._snapshot is None:
            self._snapshot = self._retrying(lambda timeout: self._handle.snapshot.remote().result(timeout_s=timeout))
        if attribute in self._snapshot:
            return self._snapshot[attribute]
        return getattr(self._local(), attribute)

    def _remote(self, method: str, args: tuple, kwargs: dict) -> Any:
        return self._retrying(lambda timeout: self._handle.call.remote(method, args, kwargs).result(timeout_s=timeout))

    def _retrying(self, request: Callable[[float], Any]) -> Any:
        """``request`` until a replica answers; retried while Serve replaces a dead one, for ``DVL_RAY_RETRY_S``."""
        deadline = time.monotonic() + settings.ray_retry_s()
        pause = 0.1
        while True:
            left = deadline - time.monotonic()
            try:
                return request(max(left, 1.0))
            except RETRYABLE as error:
                if time.monotonic() + pause > deadline:
                    raise ModelServerUnavailable(
                        f"No server of {self._name} answered within {settings.ray_retry_s():.0f} s: its Ray Serve "
                        "replicas are down or still starting. Try again in a minute."
                    ) from error
                log.warning("%s: %s; retrying on another replica", self._name, type(error).__name__)
                time.sleep(pause)
                pause = min(pause * 2, 2.0)


class RemoteModelCache(ModelCache):
    """The registry's cache for the ray backend: served tasks come back as ``RemoteModel``s.

    The Serve application of a model is started on first use if the cluster does not run it yet
    (one replica, one CPU); a cluster deployed from ``deploy/serve-config.yaml`` already runs them.
    """

    def __init__(self, resolve: Callable, address: str | None = None) -> None:
        super().__init__(resolve)
        connect(address)
        self._remote: dict[str, RemoteModel] = {}
        self._remote_lock = threading.Lock()

    def get(self, name: str, on_load: Callable[[str], None] | None = None) -> nn.Module:
        spec = self._resolve(name)
        if spec.task not in SERVED:
            return super().get(name, on_load)
        with self._remote_lock:
            if name not in self._remote:
                self._remote[name] = RemoteModel(name, spec.task, self._handle(spec, on_load), lambda: super(RemoteModelCache, self).get(name))
            return self._remote[name]  # type: ignore[return-value]

    @staticmethod
    def _handle(spec: ModelSpec, on_load: Callable[[str], None] | None) -> serve.handle.DeploymentHandle:
        try:
            return serve.get_app_handle(spec.name)
        except RayServeException:
            if on_load:
                on_load(f"Starting a Ray Serve deployment of {spec.name}…")
            deploy(spec)
            return serve.get_app_handle(spec.name)
