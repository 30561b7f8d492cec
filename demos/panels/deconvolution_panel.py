"""The deblurring panel under the restoration tab: the inverse filter and the Wiener filter, with the kernel known.

Wiring only: the tab hands over how to get an input's clean image and its degradation, the
arithmetic is ``deconvolution_math`` and the pictures ``deconvolution_drawing``.
"""

from __future__ import annotations

from typing import Callable

import gradio as gr
import numpy as np

from shapesworld import Degradation

from .. import errors, wiring
from .deconvolution_drawing import pictures
from .deconvolution_math import deconvolve

__all__ = ["build_deconvolution_panel"]

CleanOf = Callable[..., tuple[np.ndarray | None, Degradation, int]]
"""(the tab's inputs) -> the clean image (None when not known), the degradation set, the noise seed."""


def build_deconvolution_panel(inputs: list, clean_of: CleanOf) -> None:
    """The accordion: ``inputs`` are the tab's image and degradation controls, passed to ``clean_of``."""
    with gr.Accordion("Deblurring with the kernel known: inverse and Wiener filters", open=False):
        gr.Markdown(
            "A blur multiplies the image's spectrum by the kernel's transfer function H, so dividing by H undoes it, "
            "exactly, when nothing else happened. A camera also adds noise, and H is tiny at high frequencies: dividing "
            "multiplies the noise there by 1/|H|. The Wiener filter conj(H)·S / (|H|²·S + N) divides only where the signal's "
            "power S outweighs the noise's N; told the clean image's spectrum, it is the best a linear filter can do. A "
            "network learns the same trade-off without being told the kernel. Uses the blur, noise and JPEG set above on the clean image."
        )
        show = gr.Button("Deblur with the known kernel")
        views = gr.Gallery(label="Inverse and Wiener filters", columns=4, height="auto", object_fit="contain", elem_classes="dvl-fit")

        @errors.user_errors
        def _deconvolve_ui(*values):
            clean, degradation, seed = clean_of(*values)
            if clean is None:
                raise ValueError("The filters need the clean image and the kernel: choose “Clean: degrade it here”.")
            if degradation.blur == "none" or degradation.length <= 0:
                raise ValueError("Choose a motion or defocus blur with a length above 0: with no blur there is nothing to divide by.")
            return pictures(deconvolve(clean, degradation, seed), clean)

        shown = show.click(_deconvolve_ui, inputs, views, api_visibility="private")
        wiring.clear_on_failure(shown, [views])
