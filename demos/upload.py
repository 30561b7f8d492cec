"""The image input every tab uses.

In its own module because Gradio writes a type stub (``upload.pyi``) beside any module that
defines a component class; here that stub describes this one class and hides nothing else.
"""

from __future__ import annotations

import base64

import gradio as gr
from gradio import processing_utils

from .inputs import BadInput, check_header


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
        if (payload.url or "").startswith("data:"):
            return self._store_data_url(payload.url)
        return payload.path

    def _store_data_url(self, url: str) -> str:
        """Store a ``data:`` URL's bytes as a file, as an upload would be, once its header passes.

        Gradio's own preprocessing decodes a data URL's image in full and re-encodes it before
        anything sees its size: a 316 KB PNG claiming 10000 x 10000 pixels took 1.3 GB. Here
        the header is read first (size in bytes already bounded by the request limit), and the
        bytes are written unchanged, so ``read_image`` treats them like any uploaded file.
        """
        try:
            data = base64.b64decode(processing_utils.extract_base64_data(url), validate=True)
            check_header(data)
        except ValueError as error:  # binascii.Error for bad base64, BadInput for a bad image
            message = str(error) if isinstance(error, BadInput) else "The image's data: URL is not valid base64."
            raise gr.Error(message) from None
        return processing_utils.save_bytes_to_cache(data, "image", self.GRADIO_CACHE)
