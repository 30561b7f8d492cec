"""The image input every tab uses.

In its own module because Gradio writes a type stub (``upload.pyi``) beside any module that
defines a component class; here that stub describes this one class and hides nothing else.
"""

from __future__ import annotations

import gradio as gr


class UploadedImage(gr.Image):
    """An image input whose handler receives the uploaded file's path untouched.

    Gradio's own ``Image.preprocess`` opens every upload with Pillow first; an empty, non-image
    or giant file then fails inside Gradio and the page shows a bare "Error". Passing the raw
    path on lets ``read_image`` give every bad file a clear message instead.
    """

    is_template = True  # keeps the block name "image", so the normal Image frontend is used

    def __init__(self, **kwargs) -> None:
        super().__init__(type="filepath", image_mode=None, **kwargs)

    def get_config(self, cls=None):
        # Gradio reads a component's props from its class's __init__ signature; ours only has
        # **kwargs, so describe it to the frontend as the plain gr.Image it is.
        return super().get_config(cls or gr.Image)

    def preprocess(self, payload):
        if payload is None:
            return None
        if payload.path and not (payload.url or "").startswith("data:"):
            return payload.path
        return super().preprocess(payload)  # base64 data URLs (webcam streaming)
