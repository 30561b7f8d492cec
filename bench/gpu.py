"""``make bench-gpu`` (``python -m bench gpu``): every pretrained model at its real size, the app against its library.

    python -m bench gpu                  # on a GPU machine: writes bench/results/gpu-<device>.json and .md
    python -m bench gpu --smoke          # the same code on a CPU, tiny inputs and configurations, in about a minute
    python -m bench gpu --models blip-caption-base sd-turbo --repeats 30

A GPU is lent now and then, for minutes at a time, so the whole measurement is this one command,
ready before the GPU is. For every pretrained model of every declared task it plants random-init
weights of the real architecture (``models.planting``; nothing is downloaded: latency does not
depend on the values), loads it through the app's own cache (its device and precision: half where
the model's spec allows it on a GPU), and times:

- load (files to a ready model on the device) and the first call;
- p50 and p95 over ``--repeats`` calls of the app's call against the library's documented call on
  the same input (``bench/library_calls.py``), alternated, and their ratio (target: at most 1.10);
- channels-last memory format for torchvision's convolutional networks, as a tried speed-up (reported, kept
  in the app only where a run shows it faster);

plus SD-Turbo at 512x512 for 1 and 4 steps against ``pipe(prompt, num_inference_steps=n,
guidance_scale=0.0)``, BLIP base's first streamed token, and the Ray backend: two replicas sharing
one GPU (half a GPU each) against one. ``--smoke`` runs every one of these code paths on a CPU with
one model per kind, 64 px inputs, the tiny planted SD-Turbo and BLIP, and a local model on Ray, so
the suite can run it (tests/test_bench_gpu.py) and the script cannot rot between GPU runs.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from PIL import Image

import models
from models.cache import ModelCache
from models.planting import plant_random_weights
from models.sources import TorchvisionWeights

from . import machine, report
from .library_calls import SMOKE_SIDE, builder, pair_for
from .stats import Samples, seconds

RESULTS = Path(__file__).resolve().parent / "results"
OVERHEAD_LIMIT = 1.10  # the app's p50 over the library's, every model
TURBO_STEPS = (1, 4)
TURBO_ONE_STEP_MS = 150.0
FASTER_RCNN = "fasterrcnn-resnet50-v2"
FASTER_RCNN_MS = 40.0
FIRST_TOKEN_MS = 100.0
RAY_MODEL, RAY_SMOKE_MODEL = "deeplabv3-resnet50", "unet-shapes"


@dataclass
class ModelRow:
    name: str
    task: str
    input: str = ""
    precision: str = ""
    load_s: float | None = None
    first_call_s: float | None = None
    app: Samples = field(default_factory=Samples)
    bare: Samples = field(default_factory=Samples)
    channels_last: Samples | None = None  # the app's call with the network in channels-last memory format
    error: str | None = None

    @property
    def ratio(self) -> float | None:
        return self.app.p50 / self.bare.p50 if self.app.p50 and self.bare.p50 else None

    def to_dict(self) -> dict:
        data = asdict(self)
        data.update(app=self.app.summary(), bare=self.bare.summary(), ratio=self.ratio)
        data["channels_last"] = self.channels_last.summary() if self.channels_last else None
        return data


@dataclass
class GpuBench:
    device: str
    smoke: bool
    repeats: int
    rows: list[ModelRow] = field(default_factory=list)
    turbo: dict[int, tuple[Samples, Samples]] = field(default_factory=dict)  # steps -> (app, bare)
    turbo_setup: str = ""
    first_token: Samples | None = None
    ray: dict[str, float] = field(default_factory=dict)  # configuration -> requests per second
    ray_setup: str = ""
    wall_s: float = 0.0

    def targets(self) -> list[list[str]]:
        """[target, limit, measured, verdict]; a smoke run shows the figures with no verdict (tiny inputs, a CPU)."""
        checks: list[tuple[str, str, float | None, bool | None, str]] = []
        for row in self.rows:
            ratio = row.ratio
            checks.append((f"{row.name}: app / library, p50", f"<= {OVERHEAD_LIMIT:.2f}", ratio, None if ratio is None else ratio <= OVERHEAD_LIMIT, "{:.3f}"))
        for steps, (app, bare) in self.turbo.items():
            ratio = app.p50 / bare.p50 if app.p50 and bare.p50 else None
            checks.append((f"sd-turbo {steps} step(s): app / pipeline, p50", f"<= {OVERHEAD_LIMIT:.2f}", ratio, None if ratio is None else ratio <= OVERHEAD_LIMIT, "{:.3f}"))
        if 1 in self.turbo and self.turbo[1][0].p50:
            value = self.turbo[1][0].p50 * 1e3
            checks.append(("sd-turbo one step, 512x512, the app's p50", f"<= {TURBO_ONE_STEP_MS:g} ms", value, value <= TURBO_ONE_STEP_MS, "{:.1f} ms"))
        faster = next((r for r in self.rows if r.name == FASTER_RCNN and r.app.p50), None)
        if faster:
            value = faster.app.p50 * 1e3
            checks.append((f"{FASTER_RCNN} per 800 px image, p50", f"<= {FASTER_RCNN_MS:g} ms", value, value <= FASTER_RCNN_MS, "{:.1f} ms"))
        if self.first_token and self.first_token.p50 is not None:
            value = self.first_token.p50 * 1e3
            checks.append(("blip-caption-base: first streamed token after the image encoding, p50", f"<= {FIRST_TOKEN_MS:g} ms", value, value <= FIRST_TOKEN_MS, "{:.1f} ms"))
        rows = []
        for what, limit, value, passed, fmt in checks:
            verdict = "— (smoke)" if self.smoke or passed is None else "PASS" if passed else "FAIL"
            rows.append([what, limit, "—" if value is None else fmt.format(value), verdict])
        return rows

    def markdown(self) -> str:
        header = ["model", "task", "input", "precision", "load (s)", "first call (s)", "app p50 (ms)", "app p95 (ms)",
                  "library p50 (ms)", "library p95 (ms)", "app / library", "channels-last p50 (ms)", "n"]  # fmt: skip
        rows = [
            [r.name, r.task, r.input, r.precision, report.sec(r.load_s), report.sec(r.first_call_s), report.ms(r.app.p50), report.ms(r.app.p95),
             report.ms(r.bare.p50), report.ms(r.bare.p95), "—" if r.ratio is None else f"{r.ratio:.3f}",
             report.ms(r.channels_last.p50) if r.channels_last else "—", str(r.app.n)] if r.error is None
            else [r.name, r.task, f"not run: {r.error}", *["—"] * 10]
            for r in self.rows
        ]  # fmt: skip
        for steps, (app, bare) in self.turbo.items():
            rows.append(["sd-turbo", "diffusion", f"{steps} step(s), {self.turbo_setup}", "", "—", "—", report.ms(app.p50), report.ms(app.p95),
                         report.ms(bare.p50), report.ms(bare.p95), f"{app.p50 / bare.p50:.3f}" if app.p50 and bare.p50 else "—", "—", str(app.n)])  # fmt: skip
        parts = [
            f"## Pretrained models on {self.device}" + (" (smoke run: tiny inputs and configurations, no verdicts)" if self.smoke else ""),
            f"Random-init weights of each real architecture, planted and loaded through the app's own cache; {self.repeats} timed calls "
            "of each side after one untimed call, alternated. \"library\" is the library's documented inference on the same input "
            "(`bench/library_calls.py`). Whole run: " + f"{self.wall_s / 60:.1f} min.",
            report.table(header, rows, right=tuple(range(4, 13))),
        ]
        if self.first_token:
            parts.append(f"BLIP base, image encoded -> first streamed token: p50 {report.ms(self.first_token.p50)} ms, p95 {report.ms(self.first_token.p95)} ms (n={self.first_token.n}).")
        if self.ray:
            ray_rows = [[what, f"{value:.1f}"] for what, value in self.ray.items()]
            parts += [f"### Ray backend: {self.ray_setup}", report.table(["configuration", "requests/s"], ray_rows, right=(1,))]
        parts.append(report.table(["target", "limit", "measured", "verdict"], self.targets()))
        return "\n\n".join(parts)

    def to_dict(self) -> dict:
        return {
            "device": self.device, "smoke": self.smoke, "repeats": self.repeats, "wall_s": self.wall_s,
            "models": [r.to_dict() for r in self.rows],
            "sd_turbo": {str(n): {"app": a.summary(), "bare": b.summary()} for n, (a, b) in self.turbo.items()}, "sd_turbo_setup": self.turbo_setup,
            "blip_first_token": self.first_token.summary() if self.first_token else None,
            "ray": self.ray, "ray_setup": self.ray_setup,
            "targets": [dict(zip(("target", "limit", "measured", "verdict"), t)) for t in self.targets()],
        }  # fmt: skip


def photo(smoke: bool) -> Image.Image:
    """The astronaut (512x512), the same photo for every model; 64x64 in a smoke run."""
    from skimage import data as skdata

    image = Image.fromarray(skdata.astronaut())
    return image.resize((SMOKE_SIDE, SMOKE_SIDE)) if smoke else image


@contextlib.contextmanager
def planted_homes() -> Iterator[tuple[Path, Path]]:
    """A temporary TORCH_HOME and HF_HOME, offline, for this process and its children (Ray's replicas)."""
    from huggingface_hub import constants as hub

    saved = {key: os.environ.get(key) for key in ("TORCH_HOME", "HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "DVL_OFFLINE")}
    was = hub.HF_HUB_OFFLINE, hub.HF_HUB_CACHE
    with tempfile.TemporaryDirectory(prefix="dvl-bench-gpu-") as folder:
        torch_home, hf_home = Path(folder) / "torch", Path(folder) / "hf"
        os.environ.update(TORCH_HOME=str(torch_home), HF_HOME=str(hf_home), HF_HUB_CACHE=str(hf_home / "hub"), HF_HUB_OFFLINE="1", DVL_OFFLINE="1")
        # huggingface_hub read both at import, long before this; the libraries' own calls (the library side of each
        # pair, open_clip's hf_hub_download) ask its constants at each call
        hub.HF_HUB_OFFLINE, hub.HF_HUB_CACHE = True, str(hf_home / "hub")
        try:
            yield torch_home, hf_home
        finally:
            hub.HF_HUB_OFFLINE, hub.HF_HUB_CACHE = was
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def measure_model(bench: GpuBench, name: str, device: torch.device, image: Image.Image, homes: tuple[Path, Path]) -> ModelRow:
    """Plant ``name``, load it through the app's cache, then time the app's call against the library's.

    BLIP base's captioner also times its first streamed token (``bench.first_token``).
    """
    repeats, smoke = bench.repeats, bench.smoke
    spec = models.spec(name)
    row = ModelRow(name, spec.task)
    torch_home, hf_home = homes
    planted = plant_random_weights(spec, torch_home, hf_home=hf_home, full=not smoke)
    cache = ModelCache(models.spec, device=device)
    try:
        row.load_s = seconds(lambda: cache.get(name))
        app = cache.get(name)
        pair = pair_for(spec, app, image, shrink=smoke)
        row.input = pair.input
        row.precision = str(next(app.parameters()).dtype).removeprefix("torch.")
        row.first_call_s = seconds(pair.app)
        pair.bare()
        for _ in range(repeats):
            row.app.seconds.append(seconds(pair.app))
            row.bare.seconds.append(seconds(pair.bare))
        if isinstance(spec.source, TorchvisionWeights):  # convolutional networks: the memory format cuDNN prefers
            app.network.to(memory_format=torch.channels_last)
            pair.app()
            row.channels_last = Samples([seconds(pair.app) for _ in range(repeats)])
        if name == "blip-caption-base":
            from models.decoding import Decoding

            from .captioning import first_token_waits

            bench.first_token = first_token_waits(app, image, Decoding(max_tokens=20), repeats)
    except Exception as error:  # noqa: BLE001 - a report with one failed row is worth more than none
        row.error = f"{type(error).__name__}: {error}"
    finally:
        cache = app = pair = None  # the app's model, its derived results, and the library's copy in the pair's closures
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        shutil.rmtree(planted if planted.is_dir() else planted.parent, ignore_errors=True)
    return row


def measure_ray(smoke: bool, device: torch.device, homes: tuple[Path, Path], requests: int) -> tuple[dict[str, float], str]:
    """Requests per second through the ray backend: one replica with a whole GPU against two sharing it."""
    from models import serving

    from . import scale

    name = RAY_SMOKE_MODEL if smoke else RAY_MODEL
    if not smoke:
        plant_random_weights(models.spec(name), homes[0], hf_home=homes[1])
    serving.connect(None, num_cpus=os.cpu_count())
    inputs = scale.images(requests)
    whole, half = (0, 0) if device.type != "cuda" else (1, 0.5)
    runs = [
        scale.measure("1 replica, a whole GPU" if whole else "1 replica (no GPU here)", name, 1, 8, inputs, 16, gpus=whole),
        scale.measure("2 replicas, half a GPU each" if half else "2 replicas (no GPU here)", name, 2, 8, inputs, 16, gpus=half),
    ]
    setup = f"{name}, {scale.IMAGE_SIZE}x{scale.IMAGE_SIZE} scenes, {len(inputs)} requests from 16 clients, dynamic batches of up to 8"
    return {run.label: run.requests_per_s for run in runs}, setup


def run(names: list[str], repeats: int, smoke: bool, with_ray: bool, ray_requests: int) -> GpuBench:
    """Every model of ``names`` (``sd-turbo`` measured its own way), then the ray backend."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    label = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"
    bench = GpuBench(label, smoke, repeats)
    started = time.perf_counter()
    image = photo(smoke)
    with planted_homes() as homes:
        for name in (n for n in names if n != "sd-turbo"):
            say(name)
            bench.rows.append(measure_model(bench, name, device, image, homes))
        if "sd-turbo" in names:
            say("sd-turbo")
            from .diffusion import turbo_against_bare, turbo_pipeline

            pipe, bench.turbo_setup = turbo_pipeline(full=not smoke)
            if device.type == "cuda":
                pipe = pipe.to(device, torch.float16)
            for steps in TURBO_STEPS:
                bench.turbo[steps] = turbo_against_bare(pipe, steps, repeats)
            del pipe
        if with_ray:
            say("ray backend")
            bench.ray, bench.ray_setup = measure_ray(smoke, device, homes, ray_requests)
    bench.wall_s = time.perf_counter() - started
    return bench


def say(text: str) -> None:
    print(f"[bench gpu] {text}", file=sys.stderr, flush=True)


def device_slug(bench: GpuBench) -> str:
    return "cpu-smoke" if bench.smoke else re.sub(r"[^a-z0-9]+", "-", bench.device.lower()).strip("-")


def default_models(smoke: bool) -> list[str]:
    """Every pretrained model with a library pair, SD-Turbo last (measured its own way).

    The smoke run takes one model of each task and kind of pair (the same code for the others):
    the one marked fast on a CPU, else the smallest.
    """
    pretrained = [s for s in models.registry.all_specs().values() if s.tier == "pretrained" and builder(s)]
    if smoke:
        chosen: dict = {}
        for spec in sorted(pretrained, key=lambda s: (not s.fast_on_cpu, s.params)):
            chosen.setdefault((spec.task, builder(spec)), spec)
        pretrained = [s for s in pretrained if s in chosen.values()]
    return [s.name for s in pretrained] + ["sd-turbo"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench gpu", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="the same code on a CPU: one model per kind, tiny inputs (about a minute)")
    parser.add_argument("--models", nargs="+", metavar="NAME", help="pretrained models to run (default: all; sd-turbo is measured its own way)")
    parser.add_argument("--repeats", type=int, help="timed calls of each side (default 20; smoke 2)")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray backend's replicas")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"where gpu-<device>.json and .md go (default {RESULTS})")
    args = parser.parse_args(argv)
    repeats = args.repeats or (2 if args.smoke else 20)
    names = args.models or default_models(args.smoke)
    say(f"conditions: {machine.describe_now()}")
    bench = run(names, repeats, args.smoke, not args.no_ray, 8 if args.smoke else 64)
    text = bench.markdown()
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"gpu-{device_slug(bench)}"
    stem.with_suffix(".md").write_text(text + "\n")
    stem.with_suffix(".json").write_text(json.dumps(bench.to_dict(), indent=2) + "\n")
    say(f"written {stem}.md and .json in {bench.wall_s:.0f} s")
    return 0
