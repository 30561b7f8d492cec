"""``make bench-scale``: what replicas and dynamic batching buy, on the ray backend, measured in one run.

    python -m bench.scale                      # 32 clients, 192 requests per configuration
    python -m bench.scale --requests 96 --clients 16

A local Ray with this machine's CPUs runs each configuration in turn, and 32 client threads send
distinct ShapesWorld scenes through ``RemoteModel``, the path the app's tabs take:

- the local U-Net, one replica against two (one CPU and one torch thread each, no batching);
- the local Faster R-CNN, one replica of one CPU, without batching (batch size 1) and with
  (up to 8 requests from different clients in one call).

The table gives requests per second per configuration and the two ratios against their targets
(two replicas at least 1.6x one; batching at least 1.3x).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from PIL import Image

import shapesworld

from . import machine, report
from .stats import Samples

IMAGE_SIZE = 256  # big enough that the network, not Ray's per-request overhead, dominates
TARGETS = {"replicas": 1.6, "batching": 1.3}


@dataclass
class Run:
    label: str
    model: str
    replicas: int
    max_batch_size: int
    requests_per_s: float
    latency: Samples


def images(count: int) -> list[Image.Image]:
    first = shapesworld.SPLITS["test"].start + 50_000
    return [Image.fromarray(shapesworld.generate(first + i, IMAGE_SIZE).image) for i in range(count)]


def measure(
    label: str, model_name: str, replicas: int, max_batch_size: int, inputs: list[Image.Image], clients: int, gpus: float = 0,
) -> Run:
    """Deploy ``model_name`` so (each replica one CPU and ``gpus`` of a GPU), warm every replica, then time
    ``len(inputs)`` requests from ``clients`` threads."""
    from ray import serve

    import models
    from models import serving

    serving.deploy(models.spec(model_name), replicas=replicas, cpus=1, gpus=gpus, max_batch_size=max_batch_size)
    model = serving.RemoteModelCache(models.spec).get(model_name)
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(model, inputs[: clients]))  # every replica loaded and its kernels chosen
        latency = Samples()

        def timed(image: Image.Image) -> None:
            start = time.perf_counter()
            model(image)
            latency.seconds.append(time.perf_counter() - start)

        start = time.perf_counter()
        list(pool.map(timed, inputs))
        elapsed = time.perf_counter() - start
    serve.delete(model_name)
    return Run(label, model_name, replicas, max_batch_size, len(inputs) / elapsed, latency)


def render(runs: list[Run], clients: int, conditions: str) -> str:
    rows = [
        [r.label, r.model, str(r.replicas), str(r.max_batch_size), f"{r.requests_per_s:.1f}", report.ms(r.latency.p50), report.ms(r.latency.p95), str(r.latency.n)]
        for r in runs
    ]
    by_label = {r.label: r for r in runs}
    replicas = by_label["U-Net, 2 replicas"].requests_per_s / by_label["U-Net, 1 replica"].requests_per_s
    batching = by_label["Faster R-CNN, batching"].requests_per_s / by_label["Faster R-CNN, no batching"].requests_per_s
    targets = [
        ["two replicas / one (U-Net)", f"≥ {TARGETS['replicas']}x", f"{replicas:.2f}x", "PASS" if replicas >= TARGETS["replicas"] else "FAIL"],
        ["batching / none (Faster R-CNN)", f"≥ {TARGETS['batching']}x", f"{batching:.2f}x", "PASS" if batching >= TARGETS["batching"] else "FAIL"],
    ]
    return "\n\n".join([
        "## Scale-out on Ray Serve (the ray backend)",
        f"{clients} concurrent clients, {IMAGE_SIZE}x{IMAGE_SIZE} ShapesWorld scenes, each replica one CPU and one torch thread. {conditions}",
        report.table(["configuration", "model", "replicas", "max batch", "requests/s", "p50 (ms)", "p95 (ms)", "n"], rows, right=(2, 3, 4, 5, 6, 7)),
        report.table(["target", "limit", "measured", "verdict"], targets),
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=192, help="timed requests per configuration")
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args(argv)
    os.environ.setdefault("DVL_OFFLINE", "1")
    from models import serving

    conditions = machine.describe_now()
    serving.connect(None, num_cpus=os.cpu_count())
    inputs = images(args.requests)
    plan = [
        ("U-Net, 1 replica", "unet-shapes", 1, 1),
        ("U-Net, 2 replicas", "unet-shapes", 2, 1),
        ("Faster R-CNN, no batching", "fasterrcnn-shapes", 1, 1),
        ("Faster R-CNN, batching", "fasterrcnn-shapes", 1, 8),
    ]
    runs = []
    for label, name, replicas, batch in plan:
        print(f"measuring {label}…", file=sys.stderr, flush=True)
        runs.append(measure(label, name, replicas, batch, inputs, args.clients))
    print(render(runs, args.clients, conditions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
