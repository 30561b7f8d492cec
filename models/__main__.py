"""Command line of the model layer.

    python -m models list                                  # every model, tier, and whether it can run here
    python -m models prefetch [NAMES...] [--all]           # fill the library caches (Space build, air-gapped lab)
    python -m models train NAME [--steps N] [--seed S] [--threads T]
    python -m models evaluate NAME --seed 2000000 --count 500 [--json] [--write-card]
    python -m models serve [NAMES...] [--address auto] [--replicas R]   # Ray Serve deployments (app: --backend ray)
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

import shapesworld

from . import registry
from .sources import WeightsUnavailable
from .tasks import TASKS


@dataclass(frozen=True)
class Trainer:
    """How to train one local model (``train(**kwargs) -> card``) and score it (``evaluate(model, seed, count)``)."""

    train: Callable[..., dict]
    evaluate: Callable[..., dict]


def trainers() -> dict[str, Trainer]:
    """Every local model of every declared task, trained and scored by its task's models/training/<task>.py."""
    found = {}
    for task in TASKS:
        names = [spec.name for spec in task.specs() if spec.tier == "local"]
        if names:  # the training code is imported only to train or score
            module = importlib.import_module(task.training_module)
            found |= {name: Trainer(functools.partial(module.train, name=name), module.evaluate) for name in names}
    return found


def cmd_list(_: argparse.Namespace) -> int:
    rows = [("name", "task", "tier", "params", "weights", "title")]
    for spec in registry.all_specs().values():
        rows.append((spec.name, spec.task, spec.tier, f"{spec.params / 1e6:.1f}M", spec.availability().value, spec.title))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))
    return 0


def cmd_prefetch(args: argparse.Namespace) -> int:
    names = list(registry.all_specs()) if args.all or not args.names else args.names
    failed = 0
    for name in names:
        try:
            print(registry.spec(name).source.fetch(), flush=True)
        except (WeightsUnavailable, KeyError, OSError) as error:
            failed += 1
            print(f"{name}: {error}", file=sys.stderr)
    return 1 if failed else 0


def cmd_train(args: argparse.Namespace) -> int:
    trainer = _trainer(args.name)
    if args.threads:
        torch.set_num_threads(args.threads)  # two runs side by side must not starve each other
    kwargs = {"seed": args.seed, "eval_count": args.eval_count} | ({"steps": args.steps} if args.steps else {})
    kwargs |= {"device": args.device} if args.device != "cpu" else {}
    card = trainer.train(**kwargs, **({"out": Path(args.out)} if args.out else {}))
    print(json.dumps(card["metrics"], indent=2))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    trainer = _trainer(args.name)
    metrics = trainer.evaluate(registry.get(args.name), seed=args.seed, count=args.count)
    if args.write_card:
        source = registry.spec(args.name).source
        card = source.card()
        card["metrics"] = metrics
        card["metrics_command"] = "python -m models " + " ".join(sys.argv[1:])
        source.path.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        for key, value in metrics.items():
            print(f"{key}: {value}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Start Ray Serve deployments of the named models and keep serving until Ctrl-C."""
    from . import serving  # imports Ray: pip install -r requirements-ray.txt

    names = args.names or [spec.name for spec in registry.all_specs().values() if spec.tier == "local" and spec.task in serving.SERVED]
    unknown = [name for name in names if name not in registry.all_specs()]
    if unknown:
        raise SystemExit(f"unknown models: {', '.join(unknown)}")
    autoscale = tuple(int(n) for n in args.autoscale.split(":")) if args.autoscale else None
    serving.connect(args.address)
    for name in names:
        serving.deploy(registry.spec(name), replicas=args.replicas, cpus=args.cpus, gpus=args.gpus, max_batch_size=args.max_batch_size, autoscale=autoscale)
        count = f"{autoscale[0]} to {autoscale[1]} replicas" if autoscale else f"{args.replicas} replica(s)"
        print(f"serving {name}: {count}, {args.cpus} CPU and {args.gpus} GPU each", flush=True)
    if args.address:  # the cluster keeps the deployments after this command ends
        return 0
    print("serving from a Ray started by this command, until Ctrl-C", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0


def _trainer(name: str) -> Trainer:
    found = trainers()
    if name not in found:
        raise SystemExit(f"{name!r} is not a local model; trainable: {', '.join(found)}")
    return found[name]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list models and whether their weights are here").set_defaults(run=cmd_list)
    p = sub.add_parser("prefetch", help="download pretrained weights into the library caches")
    p.add_argument("names", nargs="*")
    p.add_argument("--all", action="store_true")
    p.set_defaults(run=cmd_prefetch)
    p = sub.add_parser("train", help="train a local model on ShapesWorld into weights/")
    p.add_argument("name")
    p.add_argument("--steps", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write the weights and card here instead of weights/")
    p.add_argument("--eval-count", type=int, default=500, help="unseen test scenes scored at the end")
    p.add_argument("--threads", type=int, help="CPU threads for this run (default: torch's choice)")
    p.add_argument("--device", default="cpu", help="train on this torch device (cuda: faster; the recipe is the same)")
    p.set_defaults(run=cmd_train)
    p = sub.add_parser("evaluate", help="score a local model on ShapesWorld scenes it never saw")
    p.add_argument("name")
    p.add_argument("--seed", type=int, default=shapesworld.SPLITS["test"].start)
    p.add_argument("--count", type=int, default=500)
    p.add_argument("--json", action="store_true")
    p.add_argument("--write-card", action="store_true", help="store these metrics in the model's card (a metric's definition changed)")
    p.set_defaults(run=cmd_evaluate)
    p = sub.add_parser("serve", help="run models as Ray Serve deployments (the app's --backend ray)")
    p.add_argument("names", nargs="*", help="registry names (default: every local model of a served task)")
    p.add_argument("--address", help="the Ray cluster (auto: the one `ray start --head` runs here); unset: a local Ray in this process")
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("--autoscale", metavar="MIN:MAX", help="let Serve scale between MIN and MAX replicas (instead of --replicas)")
    p.add_argument("--cpus", type=float, default=1, help="CPUs per replica (also its torch threads)")
    p.add_argument("--gpus", type=float, default=0, help="GPUs per replica (0.5: two replicas share one)")
    p.add_argument("--max-batch-size", type=int, default=8, help="requests from different users run as one batch (1: no batching)")
    p.set_defaults(run=cmd_serve)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
