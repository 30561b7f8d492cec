"""Optical flow tab: how every pixel of one frame moves to the next, and how RAFT refines its answer.

Pure functions first (``estimate``, ``render``, ``truth_view``, the ShapesWorld clip pairs), then
``build()``, which only wires them. Two frames come from uploads, from an uploaded video (two
frames ``gap`` apart from a chosen time, ``demos/video.py``) or from a ShapesWorld clip; the flow is
shown in torchvision's colour coding with its wheel, as arrows, after each update of RAFT's
recurrent unit, as the second frame warped back onto the first with the photometric error left
and, on a ShapesWorld clip, beside the exact flow and the per-pixel end-point error.
"""

from __future__ import annotations

import functools
import io
import random
import re
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

import models
import shapesworld
from models.flow import FlowField, epe, warp_back
from shapesworld import clips

from . import common, drawing, errors, flow_drawing, picker, video, wiring
from .files import examples_folder
from .upload import UploadedImage

TITLE = "Optical flow"
TASK = "flow"
ENDPOINT = "flow"  # the tab's main action, served at /flow
CLIP_NAME = re.compile(r"shapesworld-clip-(\d+)-(\d+)-([12])\.png$")
FIRST_DRAWN = 1_000  # test clips below this seed are left to the examples
NO_TRUTH = "The exact flow is known for a ShapesWorld clip pair only (an example, or **New unseen ShapesWorld clip**)."
PHOTOMETRIC_SCALE = drawing.HeatScale(0, 80, "|frame 1 - warped frame 2|, grey levels")


@functools.lru_cache(maxsize=32)
def clip_pair(seed: int, t: int) -> tuple[np.ndarray, np.ndarray, clips.Flow]:
    """Frames t and t + 1 of ShapesWorld clip ``seed`` and their exact flow (cached: the truth is asked at every redraw)."""
    return clips.plan(seed).pair(t)


def clip_files(seed: int, t: int) -> tuple[str, str]:
    """The two frames of clip ``seed`` at t as PNGs in the examples folder (written once), named so their truth can be found."""
    first, second, _ = clip_pair(seed, t)
    paths = []
    for index, frame in ((1, first), (2, second)):
        path = examples_folder() / f"shapesworld-clip-{seed}-{t}-{index}.png"
        if not path.exists():
            Image.fromarray(frame).save(path)
        paths.append(str(path))
    return paths[0], paths[1]


def new_clip_files() -> tuple[str, str]:
    test = shapesworld.SPLITS["test"]
    return clip_files(random.randrange(test.start + FIRST_DRAWN, test.stop), random.randrange(clips.FRAMES - 1))


def truth_of(first_path: str | None, second_path: str | None) -> clips.Flow | None:
    """The exact flow, when the two files are frames t and t + 1 of one clip, pixel for pixel; else None."""
    found = [CLIP_NAME.search(Path(p).name) if p else None for p in (first_path, second_path)]
    if not all(found) or found[0].group(1, 2) != found[1].group(1, 2) or (found[0].group(3), found[1].group(3)) != ("1", "2"):
        return None
    first, second, flow = clip_pair(int(found[0].group(1)), int(found[0].group(2)))
    shown = [np.asarray(Image.open(p).convert("RGB")) for p in (first_path, second_path)]
    return flow if np.array_equal(shown[0], first) and np.array_equal(shown[1], second) else None


def estimate(first: Image.Image, second: Image.Image, model_name: str, progress: gr.Progress | None = None) -> FlowField:
    """The model's flow from ``first`` to ``second``; cached per (model, frames), so redraws cost nothing."""
    model = common.load_model(model_name, progress)
    key = ("flow", model_name, common.image_key(first), common.image_key(second))
    return models.cache().derived(key, lambda: model(first, second))


@dataclass
class FlowView:
    picture: Image.Image  # the flow in colour, with its colour wheel
    arrows: Image.Image  # frame 1 with arrows on a grid
    updates: Image.Image  # the flow after each update of the recurrent unit
    warped: Image.Image  # frame 2 warped back by the flow, beside the photometric error left
    numbers: dict
    flow: np.ndarray  # (H, W, 2) as (dx, dy), the .npy download


def render(first: Image.Image, second: Image.Image, output: FlowField, truth: clips.Flow | None = None) -> FlowView:
    """Every view of one flow; with ``truth`` (a ShapesWorld pair), each update's end-point error in its caption and the numbers."""
    flow = output.flow
    colours, scale = flow_colours_with_updates(output)
    captions = [f"update {i + 1}" + (f" · EPE {epe(f, truth.flow):.2f} px" if truth is not None else "") for i, f in enumerate(output.iterations)]
    warped, inside = warp_back(np.asarray(second.convert("RGB")), flow)
    error = np.abs(np.asarray(first.convert("RGB"), np.float32) - warped.astype(np.float32)).mean(-1)
    magnitude = np.sqrt((flow.astype(np.float64) ** 2).sum(-1))
    numbers = {
        "model": output.model, "size": [first.width, first.height], "working_size": list(output.working_size), "updates": len(output.iterations),
        "mean_length_px": round(float(magnitude.mean()), 3), "max_length_px": round(float(magnitude.max()), 3),
        "mean_dx_px": round(float(flow[..., 0].mean()), 3), "mean_dy_px": round(float(flow[..., 1].mean()), 3),
        "photometric_error": round(float(error[inside].mean()) if inside.any() else 0.0, 3),
        "photometric_error_zero_flow": round(float(np.abs(np.asarray(first, np.float32) - np.asarray(second, np.float32)).mean()), 3),
        "points_leaving_frame": round(float(1 - inside.mean()), 4),
        "npy": "float32 (H, W, 2): (dx, dy) in px from frame 1 to frame 2",
    }
    if truth is not None:
        numbers |= {"epe_px": round(epe(flow, truth.flow), 4), "epe_zero_px": round(epe(np.zeros_like(flow), truth.flow), 4),
                    "epe_visible_px": round(epe(flow, truth.flow, ~truth.occluded), 4), "occluded_share": round(float(truth.occluded.mean()), 4)}
    side = Image.new("RGB", (first.width * 2 + 4, first.height), (255, 255, 255))
    side.paste(Image.fromarray(warped), (0, 0))
    side.paste(Image.fromarray(drawing.heatmap(error, (PHOTOMETRIC_SCALE.low, PHOTOMETRIC_SCALE.high))), (first.width + 4, 0))
    return FlowView(
        picture=flow_drawing.with_wheel(colours[-1], scale), arrows=flow_drawing.arrows(first, flow),
        updates=flow_drawing.strip(colours, captions),
        warped=drawing.with_colour_bar(drawing.upscale_for_display(side, 640), PHOTOMETRIC_SCALE),
        numbers=numbers, flow=flow,
    )


def flow_colours_with_updates(output: FlowField) -> tuple[list[np.ndarray], float]:
    """Each update's flow in colour on the final flow's scale (earlier, shorter guesses look paler), the last one the answer."""
    scale = max(float(np.sqrt((output.flow.astype(np.float64) ** 2).sum(-1)).max()), 1e-6)
    return flow_drawing.flow_colours(*output.iterations, radius=scale)


def truth_view(output: FlowField, truth: clips.Flow) -> tuple[Image.Image, Image.Image, str]:
    """The exact flow and the prediction on one colour scale, and the per-pixel end-point error with its scale."""
    (true_colours, predicted), scale = flow_drawing.flow_colours(truth.flow, output.flow)
    error = np.sqrt(((output.flow - truth.flow) ** 2).sum(-1))
    pair = np.concatenate([true_colours, np.full((true_colours.shape[0], 4, 3), 255, np.uint8), predicted], axis=1)
    heat = drawing.heat_image(error, (0.0, max(2.0, float(np.percentile(error, 99))), "end-point error, px"))
    text = (
        f"Exact flow (left) and the model's (right) on one scale (rim {scale:.1f} px). End-point error: "
        f"**{epe(output.flow, truth.flow):.3f} px** over every pixel, {epe(output.flow, truth.flow, ~truth.occluded):.3f} px where the point "
        f"stays visible; no motion at all would score {epe(np.zeros_like(truth.flow), truth.flow):.3f} px. "
        f"{truth.occluded.mean():.1%} of the pixels are hidden or leave the frame in frame 2: there no photometric "
        "match exists, and a model must guess from the neighbours."
    )
    return flow_drawing.with_wheel(pair, scale, target=640), heat, text


def flow_npy(flow: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, flow.astype(np.float32))
    return buffer.getvalue()


# ---------------------------------------------------------------- UI


@errors.user_errors
def _flow_ui(first_path: str, second_path: str, model_name: str, progress: gr.Progress = gr.Progress()):
    """Optical flow between two frames: how each pixel of the first moves to the second.

    Args:
        first_path: the first frame (a file path or URL; PNG, JPEG or WebP).
        second_path: the second frame, the same size as the first.
        model_name: an optical-flow model's name from the picker, e.g. "raft-flow-shapes" (local) or "raft-small".

    Returns:
        The flow in torchvision's colour coding with its colour wheel, frame 1 with arrows on a grid, the flow after each update of RAFT's recurrent unit, frame 2 warped back onto frame 1 beside the photometric error left, JSON (the model, sizes, mean and largest motion, photometric error with and without the flow, and on a ShapesWorld clip pair epe_px and epe_zero_px) and the flow as a .npy file (float32 H x W x 2, dx and dy in px).
    """
    if not first_path or not second_path:
        raise gr.Error("Give two frames: the first and the second (or take them from a video or a ShapesWorld clip).")
    first, second = common.read_image(first_path), common.read_image(second_path)
    output = estimate(first, second, model_name, progress)
    view = render(first, second, output, truth_of(first_path, second_path))
    return view.picture, view.arrows, view.updates, view.warped, view.numbers, common.save_output(flow_npy(view.flow), "flow", ".npy")


@errors.user_errors
def _truth_ui(first_path: str | None, second_path: str | None, model_name: str):
    """Beside a ShapesWorld clip pair's flow, its exact flow and the per-pixel error; empty, with a note, for any other pair."""
    truth = truth_of(first_path, second_path)
    if truth is None or not models.spec(model_name).availability().usable:
        return None, None, NO_TRUTH
    output = estimate(common.read_image(first_path), common.read_image(second_path), model_name)  # cached: the tab has just run it
    return truth_view(output, truth)


@errors.user_errors
def _video_ui(video_path: str | None, seconds: float, gap: float):
    """Two frames of the uploaded video, ``gap`` frames apart from ``seconds`` on, into the two frame inputs."""
    if not video_path:
        raise gr.Error("Upload a video first.")
    first, second, read = video.frame_pair(video_path, float(seconds), int(gap))
    paths = [common.save_output(frame, f"video-frame-{i}") for i, frame in ((1, first), (2, second))]
    return paths[0], paths[1], read


def _examples() -> list[list[str]]:
    """Two unseen ShapesWorld clip pairs, and a photo panned by a known shift (a camera moving over a still scene)."""
    start = shapesworld.SPLITS["test"].start
    rows = [list(clip_files(start, 3)), list(clip_files(start + 1, 7))]
    try:
        from skimage.data import astronaut
    except ImportError:
        return rows
    photo = Image.fromarray(astronaut())
    paths = []
    for index, (x, y) in enumerate(((60, 40), (66, 43)), start=1):  # the view moves right 6 px and down 3: the scene flows (-6, -3)
        path = examples_folder() / f"astronaut-pan-{index}.png"
        if not path.exists():
            photo.crop((x, y, x + 320, y + 240)).save(path)
        paths.append(str(path))
    return [*rows, paths]


def build() -> None:
    gr.Markdown(
        "Where does every pixel of one frame go in the next? Optical flow is a dense prediction: a 2-D vector per pixel "
        "(FlowNet, 2015; RAFT, 2020). RAFT compares every pixel's features with every other's (a 4-D correlation volume) and "
        "refines one flow field over and over with a recurrent unit; watch each update below. On a ShapesWorld clip the exact "
        "flow is known: every object moves by a known map."
    )
    with gr.Row():
        with gr.Column():
            with gr.Row():
                first = UploadedImage(label="Frame 1", sources=["upload", "clipboard"], height=220, elem_classes="dvl-image", min_width=160)
                second = UploadedImage(label="Frame 2", sources=["upload", "clipboard"], height=220, elem_classes="dvl-image", min_width=160)
            new_clip = gr.Button("New unseen ShapesWorld clip", variant="secondary", size="sm")
            with gr.Accordion("Or take two frames from a video", open=False):
                movie = gr.File(label=f"Video (at most {video.MAX_BYTES // 2**20} MB; {video.MAX_DECODED} frames are decoded at most)", file_types=["video"])
                with gr.Row():
                    seconds = gr.Number(0.0, label="from time (s)", minimum=0, min_width=100)
                    gap = common.int_slider(1, 10, 1, label="frames apart", min_width=140)
                take = gr.Button("Take the two frames", size="sm")
                read = gr.JSON(label="What was read from the video")
            model = picker.model_picker(TASK)
            run = gr.Button("Estimate the flow", variant="primary")
            card = gr.Markdown(picker.model_card_markdown(model.value))
        with gr.Column():
            picture = gr.Image(label="Flow: colour = direction, saturation = length (wheel beside)", type="pil", format="png", interactive=False, elem_classes="dvl-image")
            arrows = gr.Image(label="Flow as arrows from a grid on frame 1", type="pil", format="png", interactive=False, elem_classes="dvl-image")
            numbers = gr.JSON(label="The flow in numbers")
            npy = gr.File(label="Flow as .npy (float32 H x W x 2: dx, dy in px)")
    examples = gr.Examples(_examples(), inputs=[first, second], label="Examples: unseen ShapesWorld clips and a panned photo")
    with gr.Accordion("RAFT's iterative refinement: the flow after each update of its recurrent unit", open=True):
        updates = gr.Image(label="Each update, on the final flow's colour scale", type="pil", format="png", interactive=False)
    with gr.Accordion("Frame 2 warped back by the flow, and the photometric error left", open=True):
        gr.Markdown("Each pixel of frame 1 looks up frame 2 where the flow says it went. Where the flow is right the warp is frame 1 again; what is left shows errors, occlusions and points that left the frame.")
        warped = gr.Image(label="Warped frame 2 (left) and |frame 1 - warped| (right)", type="pil", format="png", interactive=False)
    with gr.Accordion("On a ShapesWorld clip: the exact flow and the per-pixel error", open=True):
        with gr.Row():
            truth = gr.Image(label="Exact flow (left) and the model's (right)", type="pil", format="png", interactive=False, min_width=260)
            error = gr.Image(label="End-point error per pixel", type="pil", format="png", interactive=False, min_width=240)
        scores = gr.Markdown(NO_TRUTH)

    inputs, outputs = [first, second, model], [picture, arrows, updates, warped, numbers, npy]
    endpoint = wiring.named_endpoint(_flow_ui, ENDPOINT)
    events = [run.click(endpoint, inputs, outputs, api_name=ENDPOINT)]
    wiring.run_on_example(examples, _flow_ui, inputs, outputs)
    drawn = new_clip.click(new_clip_files, None, [first, second], api_visibility="private", show_progress="hidden")
    events.append(drawn.then(_flow_ui, inputs, outputs, api_visibility="private"))
    taken = take.click(_video_ui, [movie, seconds, gap], [first, second, read], api_visibility="private")
    wiring.clear_on_failure(taken, [read])
    events.append(taken.success(_flow_ui, inputs, outputs, api_visibility="private"))
    for event in events:
        wiring.clear_on_failure(event, outputs)
    picture.change(_truth_ui, inputs, [truth, error, scores], api_visibility="private", show_progress="hidden")
    model.change(picker.model_picked, model, card, api_visibility="private")
