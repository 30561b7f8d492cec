"""Command line: ``python -m bench`` prints the segmentation benchmark as markdown tables.

    python -m bench                          # every segmentation model, in process and over HTTP (~5 min on 2 cores)
    python -m bench --quick                  # U-Net + the two MobileNet models, few repetitions (~1 min)
    python -m bench --models unet-shapes lraspp-mobilenet --repeats 50 --json bench.json
    python -m bench --no-http                # in-process numbers only
    python -m bench --torch-home ~/.cache/torch   # real downloaded weights instead of planted random ones

Progress goes to stderr, the tables to stdout.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

import models
import torch

from . import api, data, inprocess, machine, report, targets
from .weights import torch_home_for

QUICK_MODELS = ("unet-shapes", "lraspp-mobilenet", "deeplabv3-mobilenet")
LOCAL_WARMUP = 3  # untimed calls before timing: first-call allocations, oneDNN kernel selection
PRETRAINED_WARMUP = 1  # one suffices for a multi-second call, and keeps the default run short


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", metavar="NAME", help="segmentation models to run (default: all; names or a,b,c)")
    parser.add_argument("--repeats", type=positive, metavar="N", help="timed predictions per local model, in process and over HTTP (default 30; quick 5)")
    parser.add_argument("--pretrained-repeats", type=positive, metavar="N", help="timed predictions per pretrained model (default 5; quick 2)")
    parser.add_argument("--quick", action="store_true", help=f"few repetitions; default models {', '.join(QUICK_MODELS)}")
    parser.add_argument("--no-http", action="store_true", help="skip the end-to-end part (no app server)")
    parser.add_argument("--no-data", action="store_true", help="skip ShapesWorld speed and training throughput")
    parser.add_argument("--json", metavar="PATH", help="also write every raw number to this JSON file")
    parser.add_argument("--torch-home", metavar="DIR", help="use the weights already in this TORCH_HOME instead of planting random ones")
    parser.add_argument("--threads", type=positive, metavar="N",
                        help="torch CPU threads, in process and in the app (OMP_NUM_THREADS); default: torch's own choice")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when a target fails")
    return parser.parse_args(argv)


def chosen_models(args: argparse.Namespace) -> list[str]:
    """Model names to run: local ones first (their numbers are taken with the least else loaded)."""
    known = [s.name for s in models.for_task("segmentation")]
    if args.models:
        wanted = [n for item in args.models for n in item.split(",") if n]
        unknown = [n for n in wanted if n not in known]
        if unknown:
            raise SystemExit(f"unknown segmentation model(s): {', '.join(unknown)}; known: {', '.join(known)}")
    else:
        wanted = [n for n in known if n in QUICK_MODELS] if args.quick else known
    return sorted(dict.fromkeys(wanted), key=lambda n: (models.spec(n).tier != "local", known.index(n)))


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # A SIGTERM (e.g. from a CI timeout) unwinds like Ctrl-C, so the app server and temp dirs are cleaned up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    if args.threads:  # the app subprocess inherits the environment; torch reads it at start-up
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    names = chosen_models(args)
    local_repeats = args.repeats or (5 if args.quick else 30)
    pretrained_repeats = args.pretrained_repeats or (2 if args.quick else 5)
    repeats = {n: local_repeats if models.spec(n).tier == "local" else pretrained_repeats for n in names}
    warmup = {n: LOCAL_WARMUP if models.spec(n).tier == "local" else PRETRAINED_WARMUP for n in names}

    say("sampling machine conditions")
    conditions = machine.conditions(str(models.cache().device))
    say(f"models: {', '.join(names)}; preparing weights")
    with torch_home_for(names, existing=Path(args.torch_home).expanduser() if args.torch_home else None) as setup:
        planted = ", ".join(f"{n} {s:.1f} s" for n, s in setup.planted.items())
        setup_line = (
            f"Pretrained models: {setup.kind}"
            + (f" (TORCH_HOME={setup.torch_home})" if setup.existing else "")
            + (f" in a temporary TORCH_HOME, deleted afterwards; planting took {planted}" if planted else "")
            + ". The benchmark and the app run offline. "
            f"Repetitions: {local_repeats} per local model, {pretrained_repeats} per pretrained model, after "
            f"{LOCAL_WARMUP} untimed warm-up calls per local model / {PRETRAINED_WARMUP} per pretrained model"
            + (" (--quick)." if args.quick else ".")
        )
        results = []
        for name in names:
            say(f"in process: {name} ({repeats[name]} repetitions)")
            results.append(inprocess.measure(name, repeats[name], warmup[name]))
        api_run = None
        if not args.no_http:
            runnable = [r.name for r in results if r.load_s is not None]
            if runnable:
                say(f"end to end: starting app.py, then {', '.join(runnable)}")
                api_run = api.run(runnable, repeats, warmup)
            else:
                api_run = api.ApiRun(error="no model could be loaded in process; nothing to call")
    data_result = None
    if not args.no_data:
        say("ShapesWorld generation speed and U-Net training throughput")
        data_result = data.measure(steps=5 if args.quick else 12)
    checked = targets.evaluate(results, api_run, data_result)
    wall_s = time.perf_counter() - started
    at_end = machine.describe_now()
    print(report.markdown(conditions, at_end, setup_line, results, api_run, checked, machine.process_peak_bytes(), wall_s, data_result))
    if args.json:
        report.write_json(
            Path(args.json),
            {
                "machine": conditions.to_dict(),
                "machine_at_end": at_end,
                "setup": setup_line,
                "inprocess": [r.to_dict() for r in results],
                "api": api_run.to_dict() if api_run else None,
                "data": data_result.to_dict() if data_result else None,
                "targets": [t.to_dict() for t in checked],
                "process_peak_rss_bytes": machine.process_peak_bytes(),
                "wall_s": wall_s,
            },
        )
        say(f"raw numbers written to {args.json}")
    failed = any(t.passed is False for t in checked)
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
