"""The upsampling panel under the segmentation tab: the lecture's operators on matrices a student types.

Wiring only: every edit re-renders the HTML of ``upsampling_html.explain``; the slide presets
load the transposed-convolution cases of the lecture.
"""

from __future__ import annotations

import gradio as gr

from .upsampling_html import OPERATORS, explain
from .upsampling_math import MAX_PADDING, MAX_STRIDE

__all__ = ["PRESETS", "build_upsampling_panel"]

#: The slide cases for transposed convolution: each loads an input, a kernel, stride,
#: padding and output_padding.
PRESETS: dict[str, dict] = {
    "2x2 → 4x4: kernel 2x2, stride 2": dict(
        input="1 2\n3 4", kernel="1 1\n1 1", stride=2, padding=0, output_padding=0
    ),
    "2x2 → 3x3: kernel 2x2, stride 1": dict(
        input="1 2\n3 4", kernel="1 1\n1 1", stride=1, padding=0, output_padding=0
    ),
    "2x2 → 4x4: kernel 3x3, stride 2, padding 1, output_padding 1": dict(
        input="1 2\n3 4",
        kernel="0.25 0.5 0.25\n0.5 1 0.5\n0.25 0.5 0.25",
        stride=2,
        padding=1,
        output_padding=1,
    ),
    "1-D slide: [a b] with filter [x y z], stride 2": dict(
        input="1 2", kernel="1 10 100", stride=2, padding=0, output_padding=0
    ),
}


_DEFAULTS = dict(operator="nearest", matrix="1 2\n3 4",
                 pool_source="1 2 6 3\n3 5 2 1\n1 2 2 1\n7 3 4 8",
                 kernel="1 1\n1 1", stride=2, padding=0, output_padding=0)


def _apply_preset(name, operator, matrix, pool_source, kernel, stride, padding,
                  output_padding):
    """Preset dropdown -> (operator, input, kernel, stride, padding, output_padding, html)."""
    p = PRESETS.get(name)
    if p is not None:
        operator, matrix, kernel = "transposed", p["input"], p["kernel"]
        stride, padding, output_padding = p["stride"], p["padding"], p["output_padding"]
    html_out = explain(operator, matrix, pool_source, kernel, stride, padding, output_padding)
    return operator, matrix, kernel, stride, padding, output_padding, html_out


def build_upsampling_panel() -> None:
    """Accordion "Upsampling operators (lecture)"; call inside a ``gr.Blocks``/``gr.Tab``.

    Only wiring: every edit re-renders the HTML through :func:`explain`. The listeners
    are private so they stay out of the app's public API.
    """
    d = _DEFAULTS
    with gr.Accordion("Upsampling operators (lecture)", open=False):
        gr.Markdown("How a segmentation network gets back to full resolution. Type small "
                    "matrices: rows on separate lines or split by `;`, entries by spaces "
                    "or commas.")
        with gr.Row():
            operator = gr.Radio([(v, k) for k, v in OPERATORS.items()], value=d["operator"],
                                label="Operator")
            preset = gr.Dropdown(list(PRESETS), value=None, label="Transposed-conv slide "
                                 "presets", info="Loads input, kernel, stride and padding")
        with gr.Row():
            matrix = gr.Textbox(d["matrix"], label="Input matrix", lines=3)
            pool_source = gr.Textbox(d["pool_source"], lines=4,
                                     label="Max-pool source (max unpooling)")
            kernel = gr.Textbox(d["kernel"], lines=3, label="Kernel (transposed conv)")
        with gr.Row():
            stride = gr.Number(d["stride"], label="Stride", precision=0, minimum=1,
                               maximum=MAX_STRIDE)
            padding = gr.Number(d["padding"], label="Padding", precision=0, minimum=0,
                                maximum=MAX_PADDING)
            output_padding = gr.Number(d["output_padding"], label="Output padding",
                                       precision=0, minimum=0, maximum=MAX_STRIDE - 1)
        out = gr.HTML(explain(*(d[k] for k in ("operator", "matrix", "pool_source", "kernel",
                                               "stride", "padding", "output_padding"))))

    fields = [operator, matrix, pool_source, kernel, stride, padding, output_padding]
    gr.on([f.input for f in fields], explain, fields, out, api_visibility="private",
          show_progress="hidden")
    preset.input(_apply_preset, [preset, *fields],
                 [operator, matrix, kernel, stride, padding, output_padding, out],
                 api_visibility="private", show_progress="hidden")
