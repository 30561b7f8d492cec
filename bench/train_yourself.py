"""The Train tab's bars: what a 60-second run learns, whether it repeats, and what a run costs the rest of the server.

In process (``models.train_yourself.train``, each run in its own child process as in the app):
the default U-Net recipe for 60 s (validation mIoU on 50 unseen scenes, and whether its curve
rises within noise), the same without batch norm and with a learning rate 100x the default
(what the tab says about it), and two 15-s runs of one seed compared step by step. Over HTTP
(the app in its own process, ``bench.server.AppServer``): ``/segment`` latency idle and while a
run trains, how long a stopped run's process takes to be gone, and the server's RSS over 20 runs.
Run it on an idle machine: another process on the cores slows the runs and the requests alike.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

import shapesworld
from models.recipe import Recipe
from models.train_yourself import Progress, train

from .report import table
from .server import AppServer
from .stats import Samples

MIOU_BAR = 0.60
NOISE = 0.10  # a validation score may dip this far below the best so far and still count as rising
LATENCY_RATIO_BAR = 2.0
STOP_BAR_S = 2.0
RSS_BAR = 0.10
RSS_RUNS = 20


@dataclass
class TrainBench:
    runs: dict[str, Progress] = field(default_factory=dict)
    same_curve: bool = False
    compared_steps: int = 0
    idle: Samples = field(default_factory=Samples)
    training: Samples = field(default_factory=Samples)
    stop_s: float = 0.0
    rss_start: int = 0
    rss_end: int = 0

    def markdown(self) -> str:
        rows = []
        for label, progress in self.runs.items():
            rows.append([label, f"{progress.metric:.3f}", str(progress.steps), f"{progress.elapsed:.0f}", f"{largest_dip(progress):.3f}", progress.verdict()])
        default = self.runs.get("default recipe")
        no_bn = self.runs.get("no batch norm")
        ratio = self.training.p50 / self.idle.p50 if self.idle.n and self.training.n else float("nan")
        rss_change = self.rss_end / self.rss_start - 1 if self.rss_start else float("nan")
        targets = [
            ["default recipe, 60 s: validation mIoU", f">= {MIOU_BAR}", f"{default.metric:.3f}" if default else "—", _verdict(default and default.metric >= MIOU_BAR)],
            ["its curve rises (largest dip below the best so far)", f"<= {NOISE}", f"{largest_dip(default):.3f}" if default else "—", _verdict(default and largest_dip(default) <= NOISE)],
            ["no batch norm: lower mIoU than the default", "lower", f"{no_bn.metric:.3f}" if no_bn else "—", _verdict(no_bn and default and no_bn.metric < default.metric)],
            ["same seed, same curve (losses and validations, bit for bit)", "equal", f"{self.compared_steps} steps", _verdict(self.same_curve)],
            ["/segment p50 while a run trains / idle", f"<= {LATENCY_RATIO_BAR}x", f"{ratio:.2f}x", _verdict(ratio <= LATENCY_RATIO_BAR)],
            ["Stop to the run's process gone", f"<= {STOP_BAR_S} s", f"{self.stop_s:.2f} s", _verdict(self.stop_s <= STOP_BAR_S)],
            [f"server RSS after {RSS_RUNS} runs vs before", f"within {RSS_BAR:.0%}", f"{rss_change:+.1%}", _verdict(abs(rss_change) <= RSS_BAR)],
        ]
        latency = [[f"/segment, {what}", f"{s.p50 * 1e3:.0f}", f"{s.p95 * 1e3:.0f}", str(s.n)] for what, s in (("idle", self.idle), ("while a run trains", self.training))]
        return "\n\n".join(
            [
                "## Train it yourself (`/train`)",
                table(["run (U-Net, 64 px)", "validation mIoU (50 scenes)", "steps", "s", "largest dip", "what the tab says"], rows),
                table(["request", "p50 (ms)", "p95 (ms)", "n"], latency, right=(1, 2, 3)),
                table(["target", "limit", "measured", "verdict"], targets),
            ]
        )


def _verdict(ok) -> str:
    return "PASS" if ok else "FAIL"


def largest_dip(progress: Progress | None) -> float:
    """How far the validation score ever fell below its best so far (0 for a curve that only rises)."""
    if progress is None or not progress.val:
        return float("nan")
    best, dip = 0.0, 0.0
    for _, _, _, metric in progress.val:
        best = max(best, metric)
        dip = max(dip, best - metric)
    return dip


def run_to_end(recipe: Recipe, out: Path) -> Progress:
    progress = None
    for progress in train(recipe, out):
        pass
    return progress


def same_curve(out: Path, budget_s: float = 15) -> tuple[bool, int]:
    """Two runs of one recipe: equal losses and validations over the steps both reached."""
    first, second = (run_to_end(Recipe(budget_s=budget_s), out) for _ in range(2))
    steps = min(first.steps, second.steps)
    losses = [[loss for step, _, loss in run.train if step <= steps] for run in (first, second)]
    validations = [{step: (loss, metric) for step, _, loss, metric in run.val} for run in (first, second)]
    both = validations[0].keys() & validations[1].keys()  # a run's last validation is at the step it ended on
    return losses[0] == losses[1] and all(validations[0][step] == validations[1][step] for step in both), steps


def _children(pid: int) -> list[psutil.Process]:
    return [p for p in psutil.Process(pid).children(recursive=True) if "train_yourself" in " ".join(p.cmdline())]


def _train_args(budget: float = 60) -> list:
    return ["unet", budget, 0.004, 8, "adamw", False, True, 0, True, 0]


def over_http(bench: TrainBench, repeats: int) -> None:
    from gradio_client import Client, handle_file

    with AppServer() as server, tempfile.TemporaryDirectory() as folder:
        scene = Path(folder) / "scene.png"
        from PIL import Image

        Image.fromarray(shapesworld.generate(shapesworld.SPLITS["test"].start + 1).image).save(scene)
        user, student = Client(server.url, verbose=False), Client(server.url, verbose=False)

        def segment() -> float:
            start = time.perf_counter()
            user.predict(handle_file(str(scene)), "unet-shapes", 0.6, api_name="/segment")
            return time.perf_counter() - start

        for _ in range(3):
            segment()
        bench.idle.seconds = [segment() for _ in range(repeats)]
        bench.rss_start = psutil.Process(server.pid).memory_info().rss
        job = student.submit(*_train_args(), api_name="/train")
        while not (job.outputs() and job.outputs()[-1][-1]["status"] == "training"):
            time.sleep(0.2)
        while not job.done():
            bench.training.seconds.append(segment())
        children = []
        for _ in range(RSS_RUNS):  # each run started, then stopped once it trains: the stop timed on the last
            job = student.submit(*_train_args(), api_name="/train")
            while not (job.outputs() and job.outputs()[-1][-1]["status"] == "training"):
                time.sleep(0.1)
            children = _children(server.pid)
            asked = time.perf_counter()
            student.predict(api_name="/stop_training")
            psutil.wait_procs(children, timeout=10)
            bench.stop_s = max(bench.stop_s, time.perf_counter() - asked)
            job.result(timeout=30)
        bench.rss_end = psutil.Process(server.pid).memory_info().rss


def measure(repeats: int = 20) -> TrainBench:
    bench = TrainBench()
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        for label, recipe in (("default recipe", Recipe()), ("no batch norm", Recipe(batch_norm=False)), ("learning rate ×100", Recipe(lr=0.4))):
            bench.runs[label] = run_to_end(recipe, out)
        bench.same_curve, bench.compared_steps = same_curve(out)
    over_http(bench, repeats)
    return bench
