"""What a newcomer to the page needs: heat maps that say what their colours mean, and a page that works as it looks."""

from __future__ import annotations

import numpy as np
from PIL import Image

from demos import drawing


def _scene(size: int = 128) -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8))


def test_heat_overlay_without_a_scale_keeps_its_old_size():
    assert drawing.heat_overlay(_scene(), np.random.default_rng(1).random((8, 8))).size == (384, 384)


def test_a_scaled_heat_map_carries_a_colour_bar_from_low_at_the_bottom_to_high_at_the_top():
    scale = drawing.HeatScale(0.0, 0.02, "probability of the joint here")
    shown = drawing.heat_overlay(_scene(), np.full((8, 8), 0.02), opacity=1.0, scale=scale)
    assert shown.height == 384 and shown.width > 384 + 40  # the bar sits beside the image, as tall as it
    image, bar = np.asarray(shown)[:, :384], np.asarray(shown)[:, 384:]
    top, bottom = drawing.heatmap(np.array([[1.0]]), (0, 1))[0, 0], drawing.heatmap(np.array([[0.0]]), (0, 1))[0, 0]
    assert np.abs(image[192, 192].astype(int) - top).max() <= 2  # the value at the scale's high end gets the top colour
    column = bar[:, np.flatnonzero((bar == top).all(axis=2).any(axis=0))[0]]  # the colour strip's first column
    rows = np.flatnonzero((np.abs(column.astype(int) - top).max(axis=1) <= 2))
    low_rows = np.flatnonzero((np.abs(column.astype(int) - bottom).max(axis=1) <= 2))
    assert rows.size and low_rows.size and rows.max() < low_rows.min()


def test_the_colour_bar_writes_its_values_and_meaning():
    bar = np.asarray(drawing.colour_bar(384, (-5.0, 5.0, "logit of the class")))
    ink = (bar < 100).all(axis=2)
    assert bar.shape[1] > 60 and ink[:, bar.shape[1] // 2 :].sum() > 200  # tick labels and the meaning, right of the colour strip
    assert [drawing._tick_label(v) for v in (5.0, 2.5, 0.0, -0.0, 0.012345)] == ["5", "2.5", "0", "0", "0.0123"]


def test_a_long_meaning_is_broken_into_lines_that_fit_the_bar():
    short = drawing.colour_bar(100, (0, 1, "a rather long description of what the colour shows in this map"))
    assert short.height == 100 and short.width < 200


def test_heat_image_shows_a_map_alone_enlarged_with_its_bar():
    shown = drawing.heat_image(np.linspace(0, 1, 128 * 128).reshape(128, 128), (0, 1, "confidence"))
    assert shown.height == 384 and shown.width > 384


def test_a_count_slider_is_an_integer_in_the_api_and_in_the_handler():
    import gradio as gr

    from demos import common

    with gr.Blocks() as blocks:
        k = common.int_slider(1, 32, 8, label="Neighbours (k)")
        shown = gr.Textbox(label="what the handler got")
        k.change(lambda value: type(value).__name__, k, shown, api_name="count")
    parameter = blocks.get_api_info()["named_endpoints"]["/count"]["parameters"][0]
    assert parameter["type"]["type"] == "integer" and parameter["python_type"]["type"] == "int"
    assert k.preprocess(8.0) == 8 and isinstance(k.preprocess(8.0), int)
