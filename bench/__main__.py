"""Command line: ``python -m bench`` prints the benchmarks of every tab as markdown tables.

    python -m bench                          # every model of every task, in process and over HTTP
    python -m bench --quick                  # the local models + small pretrained ones of each task, few repetitions
    python -m bench --task detection --quick # one task only
    python -m bench --task clip              # CLIP: the tab's latency and its speed against transformers' pipeline
    python -m bench --task retrieval         # nearest-neighbour search over 10,000 embeddings; local encoders' embedding time
    python -m bench --task captioning        # local captioners and VQA; BLIP base's full architecture and its first streamed token
    python -m bench --task diffusion         # local generation time by steps; SD-Turbo: the app against a bare pipeline call
    python -m bench --task train_yourself    # Train tab: 60-s runs' mIoU, repeatability, /segment while a run trains, stop, RSS (~8 min)
    python -m bench --task generative        # one GAN and one VAE sample against a 10-step diffusion sample, as a ratio
    python -m bench --task restoration       # the local restorer's predict time; Swin2SR's full architectures at the app's input caps
    python -m bench --models unet-shapes fcos-shapes --repeats 50 --json bench.json
    python -m bench --no-http                # in-process numbers only
    python -m bench --torch-home ~/.cache/torch --hf-home ~/.cache/huggingface   # real downloaded weights
    python -m bench gpu [--smoke]            # every pretrained model at its real size on a GPU (bench/gpu.py)

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
from models.tasks import TASKS as DECLARED

from . import api, captioning, clip, data, depth, diffusion, flow, generative, inprocess, machine, report, restoration, retrieval, targets, train_yourself
from .tasks import SEGMENTATION, TASKS, Task
from .weights import weights_for

LOCAL_WARMUP = 3  # untimed calls before timing: first-call allocations, oneDNN kernel selection
PRETRAINED_WARMUP = 1  # one suffices for a multi-second call, and keeps the default run short


SECTIONS = {  # tasks measured by a section of their own (not bench/tasks.py's table); every declared task is in one of the two
    "clip": lambda args: clip.measure(args.repeats or (10 if args.quick else 30), args.pretrained_repeats or (3 if args.quick else 10)),
    "depth": lambda args: depth.measure(args.repeats or (10 if args.quick else 30), args.pretrained_repeats or (2 if args.quick else 5)),
    "flow": lambda args: flow.measure(args.repeats or (10 if args.quick else 30), args.pretrained_repeats or (2 if args.quick else 5)),
    "retrieval": lambda args: retrieval.measure(args.repeats or (50 if args.quick else 200)),
    "captioning": lambda args: captioning.measure(args.repeats or (10 if args.quick else 30), args.pretrained_repeats or (2 if args.quick else 3)),
    "diffusion": lambda args: diffusion.measure(args.repeats or (3 if args.quick else 5), args.pretrained_repeats or (3 if args.quick else 5)),
    "train_yourself": lambda args: train_yourself.measure(args.repeats or (10 if args.quick else 20)),
    "generative": lambda args: generative.measure(args.repeats or (5 if args.quick else 10)),
    "restoration": lambda args: restoration.measure(args.repeats or (10 if args.quick else 30), args.pretrained_repeats or (1 if args.quick else 2)),
}


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=[*(task.name for task in DECLARED), "all"], default="all", help="which task to measure (default: all)")
    parser.add_argument("--models", nargs="+", metavar="NAME", help="models to run (default: all of the task; names or a,b,c)")
    parser.add_argument("--repeats", type=positive, metavar="N",
                        help="timed predictions per local model, in process and over HTTP; re-renders per model (default 30; quick 5)")
    parser.add_argument("--pretrained-repeats", type=positive, metavar="N", help="timed predictions per pretrained model (default 5; quick 2)")
    quick = "; ".join(f"{task.name}: {', '.join(task.quick)}" for task in TASKS.values())
    parser.add_argument("--quick", action="store_true", help=f"few repetitions; default models {quick}")
    parser.add_argument("--no-http", action="store_true", help="skip the end-to-end part (no app server)")
    parser.add_argument("--no-data", action="store_true",
                        help="skip ShapesWorld speed and U-Net training throughput (otherwise run with the segmentation task)")
    parser.add_argument("--json", metavar="PATH", help="also write every raw number to this JSON file")
    parser.add_argument("--torch-home", metavar="DIR", help="use the weights already in this TORCH_HOME instead of planting random ones")
    parser.add_argument("--hf-home", metavar="DIR", help="use the Hugging Face models already in this HF_HOME instead of planting them")
    parser.add_argument("--threads", type=positive, metavar="N",
                        help="torch CPU threads, in process and in the app (OMP_NUM_THREADS); default: torch's own choice")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when a target fails")
    return parser.parse_args(argv)


def chosen_tasks(args: argparse.Namespace) -> list[Task]:
    return list(TASKS.values()) if args.task == "all" else [TASKS[args.task]] if args.task in TASKS else []


def chosen_models(args: argparse.Namespace, tasks: list[Task]) -> list[str]:
    """Model names to run: local ones first (their numbers are taken with the least else loaded), then by task."""
    known = [name for task in tasks for name in task.model_names()]
    if args.models:
        wanted = [n for item in args.models for n in item.split(",") if n]
        unknown = [n for n in wanted if n not in known]
        if unknown:
            kinds = " or ".join(task.name for task in tasks)
            raise SystemExit(f"unknown {kinds} model(s): {', '.join(unknown)}; known: {', '.join(known)}")
    else:
        wanted = [n for task in tasks for n in task.model_names() if not args.quick or n in task.quick]
    return sorted(dict.fromkeys(wanted), key=lambda n: (models.spec(n).tier != "local", known.index(n)))


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["gpu"]:  # `python -m bench gpu`: the pretrained models at their real size (bench/gpu.py)
        from . import gpu

        return gpu.main(argv[1:])
    args = parse_args(argv)
    # A SIGTERM (e.g. from a CI timeout) unwinds like Ctrl-C, so the app server and temp dirs are cleaned up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    if args.threads:  # the app subprocess inherits the environment; torch reads it at start-up
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    sections = {}
    for name, measure in SECTIONS.items():
        if args.task in (name, "all") and not args.models:
            say(f"{name}: its own section")
            sections[name] = measure(args)
    if args.task in SECTIONS:
        print(sections[args.task].markdown())
        return 0
    tasks = chosen_tasks(args)
    names = chosen_models(args, tasks)
    local_repeats = args.repeats or (5 if args.quick else 30)
    pretrained_repeats = args.pretrained_repeats or (2 if args.quick else 5)
    repeats = {n: local_repeats if models.spec(n).tier == "local" else pretrained_repeats for n in names}
    warmup = {n: LOCAL_WARMUP if models.spec(n).tier == "local" else PRETRAINED_WARMUP for n in names}

    say("sampling machine conditions")
    conditions = machine.conditions(str(models.cache().device))
    say(f"models: {', '.join(names)}; preparing weights")
    torch_home, hf_home = (Path(value) if value else None for value in (args.torch_home, args.hf_home))
    with weights_for(names, torch_home, hf_home) as setup:
        setup_line = (
            f"{setup.describe()} The benchmark and the app run offline. "
            f"Repetitions: {local_repeats} per local model, {pretrained_repeats} per pretrained model, after "
            f"{LOCAL_WARMUP} untimed warm-up calls per local model / {PRETRAINED_WARMUP} per pretrained model; "
            f"{local_repeats} re-renders per model after {inprocess.RERENDER_WARMUP} untimed ones"
            + (" (--quick)." if args.quick else ".")
        )
        results = []
        for name in names:
            say(f"in process: {name} ({repeats[name]} repetitions)")
            results.append(inprocess.measure(name, repeats[name], warmup[name], local_repeats))
        api_run = None
        if not args.no_http:
            runnable = [r.name for r in results if r.load_s is not None]
            if runnable:
                say(f"end to end: starting app.py, then {', '.join(runnable)}")
                api_run = api.run(runnable, repeats, warmup)
            else:
                api_run = api.ApiRun(error="no model could be loaded in process; nothing to call")
    data_result = None
    if not args.no_data and SEGMENTATION in tasks:
        say("ShapesWorld generation speed and U-Net training throughput")
        data_result = data.measure(steps=5 if args.quick else 12)
    checked = targets.evaluate(tasks, results, api_run, data_result)
    wall_s = time.perf_counter() - started
    at_end = machine.describe_now()
    print(report.markdown(tasks, conditions, at_end, setup_line, results, api_run, checked, machine.process_peak_bytes(), wall_s, data_result))
    for section in sections.values():
        print("\n" + section.markdown())
    if args.json:
        report.write_json(
            Path(args.json),
            {
                "tasks": [task.name for task in tasks],
                "machine": conditions.to_dict(),
                "machine_at_end": at_end,
                "setup": setup_line,
                "inprocess": [r.to_dict() for r in results],
                "api": api_run.to_dict() if api_run else None,
                "data": data_result.to_dict() if data_result else None,
                **{name: section.to_dict() for name, section in sections.items()},
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
