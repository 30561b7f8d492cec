"""Markdown tables for people, JSON for machines: the only module that formats numbers.

Tables go to stdout (paste them into an issue or PR); ``--json PATH`` keeps every raw sample.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from .api import ApiResult, ApiRun
from .data import DataResult
from .inprocess import InProcessResult
from .machine import MB, MachineConditions
from .targets import Target
from .tasks import Task


CONTENDED = (
    "**Warning: other processes were using the CPU during this run, so these numbers are not representative.** "
    "With torch's default thread count, two processes competing for the same cores can slow a small network by "
    "an order of magnitude (threads spin-wait on each other). Rerun on an idle machine, or compare `--threads 1`."
)


def section(title: str, intro: str, rows: list[list[str]], targets: list[list[str]]) -> str:
    """A task's own benchmark section: heading, what was measured on, the timings, the targets."""
    return "\n\n".join(
        [
            f"## {title}",
            intro,
            table(["what", "p50 (ms)", "p95 (ms)", "n"], rows, right=(1, 2, 3)),
            table(["target", "limit", "measured", "verdict"], targets),
        ]
    )


def table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """A GitHub markdown table; columns listed in ``right`` are right-aligned (numbers)."""
    align = ["---:" if i in right else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1e3:,.1f}"


def sec(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds:.2f}"


def mb(n_bytes: int | None) -> str:
    return "—" if not n_bytes else f"{n_bytes / MB:,.0f}"


def inprocess_table(task: Task, results: list[InProcessResult]) -> str:
    header = ["model", "tier", "image → network input", "params (M)", "load (s)", "predict p50 (ms)", "p95 (ms)", "n",
              f"new {task.control} p50 (ms)", "RSS after load (MB)", "load adds (MB)", "peak while predicting (MB)"]
    rows = []
    for r in results:
        if r.error and r.load_s is None:
            rows.append([r.name, r.tier, r.input_size, "—", "—", r.error, "—", "0", "—", "—", "—", "—"])
            continue
        grew = r.rss_after_load - r.rss_before_load if r.rss_after_load else None
        rows.append([
            r.name, r.tier, f"{r.input_size} → {r.network_size}", f"{r.params / 1e6:.2f}", sec(r.load_s), ms(r.predict.p50), ms(r.predict.p95),
            str(r.predict.n), ms(r.rerender.p50), mb(r.rss_after_load), "—" if grew is None else f"{grew / MB:+,.0f}", mb(r.peak_during_predict),
        ])
    return table(header, rows, right=range(3, 12))


def api_table(results: list[ApiResult], inprocess: list[InProcessResult]) -> str:
    by_name = {r.name: r for r in inprocess}
    header = ["model", "first request (s, incl. load)", "gradio_client p50 (ms)", "p95 (ms)", "REST p50 (ms)", "p95 (ms)", "n",
              "in-process p50 (ms)", "REST adds (ms)", "gradio_client adds (ms)", "server RSS after (MB)"]
    rows = []
    for r in results:
        local = by_name.get(r.name)
        base = local.predict.p50 if local else None
        trip, rest = r.round_trip.p50, r.rest_round_trip.p50
        client_extra = ms(trip - base) if trip is not None and base is not None else "—"
        rest_extra = ms(rest - base) if rest is not None and base is not None else "—"
        p50 = ms(trip) if not r.error else f"error: {r.error}"
        rows.append([r.name, sec(r.first_request_s), p50, ms(r.round_trip.p95), ms(rest), ms(r.rest_round_trip.p95),
                     str(r.round_trip.n), ms(base), rest_extra, client_extra, mb(r.server_rss_after)])
    return table(header, rows, right=range(1, 11))


def data_table(data: DataResult) -> str:
    rows = [[f"ShapesWorld scenes per second at {size}x{size}", f"{rate:,.0f}"] for size, rate in data.scenes_per_second.items()]
    rows.append([f"U-Net training step (batch {data.batch}, 128x128, generation included), p50", f"{ms(data.train_step.p50)} ms"])
    projected = data.projected_train_s
    rows.append([f"projected `python -m models train unet-shapes` ({data.card_steps} steps, as the shipped card)",
                 "—" if projected is None else f"{projected / 60:.1f} min"])
    return table(["what", "measured"], rows, right=[1])


def targets_table(targets: list[Target]) -> str:
    return table(["target (from the issue)", "limit", "measured", "result"],
                 [[t.what, t.limit, t.measured, f"**{t.verdict}**"] for t in targets])


def controls_text(task: Task) -> str:
    """The re-renders' keyword arguments, e.g. ``score_threshold=0.3, nms_iou=0.5; ...``."""
    return "; ".join(", ".join(f"{key}={value}" for key, value in controls.items()) for controls in task.controls)


def inprocess_section(tasks: list[Task], results: list[InProcessResult], process_peak: int) -> list[str]:
    parts = ["## In process: `models.get(name)` (first load), then the model object on a PIL image"]
    for task in tasks:
        parts += [
            f"### {task.name.capitalize()}: `{task.call}`",
            inprocess_table(task, [r for r in results if r.task == task.name]),
            f"- predict: wall clock of `{task.call}` ({task.call_covers}), after the warm-up calls, same image each time.\n"
            f"- new {task.control}: `{task.rerender_name}` again on the same image with other {task.control} "
            f"({controls_text(task)} in turn): the app's cached prediction, re-rendered; what a slider move costs.",
        ]
    parts.append(
        "- load: the first `models.get` (the app's cached loader): build the architecture, read the checkpoint "
        "(just written, so in the OS page cache: no cold-disk read), `eval()`, move to the device.\n"
        "- RSS is process-wide and cumulative: the models measured earlier stay loaded in the cache. "
        "'peak while predicting' is the process's RSS high-water mark from warm-up to the last repetition "
        f"(Linux VmHWM, reset per model). Process peak RSS over the whole run (ru_maxrss): {mb(process_peak)} MB."
    )
    return parts


def api_section(tasks: list[Task], api: ApiRun, inprocess: list[InProcessResult]) -> list[str]:
    parts = ["## End to end: the app's API over HTTP (gradio_client and REST)"]
    if api.error:
        parts.append(f"**The HTTP part failed:** {api.error}")
    parts.append(
        f"App ready (Popen of `python app.py --offline` until `GET /` answers 200): **{sec(api.ready_s)} s**; "
        f"`Client(url)`: {sec(api.client_connect_s)} s; first request of all (unknown model name, no load): "
        f"{sec(api.stack_warmup_s)} s; server peak RSS: {mb(api.server_peak_rss)} MB."
    )
    for task in tasks:
        results = [r for r in api.results if r.task == task.name]
        parts += [
            f"### {task.name.capitalize()}: `/{task.endpoint}`",
            api_table(results, inprocess) if results else "(no model measured)",
            f"- after predicting, a round trip includes {task.response_covers}.",
        ]
    parts.append(
        "- Each request sends a *different* PNG (one pixel's lowest bit flipped, at a new position per request), "
        "so the app's per-(model, image) prediction cache never answers: every round trip runs the network.\n"
        "- A round trip covers upload, queue, image validation, predict, rendering the results, the "
        "streamed answer and the client downloading the result files; 'adds' = round-trip p50 minus "
        "in-process predict p50. The server runs on the same cores as the client.\n"
        "- REST = Gradio's documented HTTP protocol over one persistent connection (what server and network add); "
        "gradio_client opens a new connection and TLS context for each of its ~6 calls per request, about "
        "100 ms of client-side cost here. Requests alternate between the two, each on its own image.\n"
        "- first request: the server's first request for that model, so it includes loading the model there."
    )
    return parts


def markdown(
    tasks: list[Task],
    conditions: MachineConditions,
    at_end: str,
    setup_line: str,
    inprocess: list[InProcessResult],
    api: ApiRun | None,
    targets: list[Target],
    process_peak: int,
    wall_s: float,
    data: DataResult | None = None,
) -> str:
    measured = [task for task in tasks if any(r.task == task.name for r in inprocess)]
    parts = [
        f"# Deep Vision Lab benchmark: {', '.join(task.name for task in tasks)}",
        f"Machine at the start: {conditions.describe()}.  \nAt the end: {at_end}.",
        *([CONTENDED] if conditions.busy_processes or "busy processes: none seen" not in at_end else []),
        setup_line,
        *inprocess_section(measured, inprocess, process_peak),
    ]
    if api is not None:
        parts += api_section(measured, api, inprocess)
    if data is not None:
        parts += ["## ShapesWorld and training", data_table(data)]
    parts += ["## Targets", targets_table(targets), f"Whole benchmark (after imports): {wall_s:.0f} s."]
    return "\n\n".join(parts)


def write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
