"""The Ray Serve application of a registry model, by name: what a Serve config file's ``import_path`` names.

    import_path: models.serve_config:build
    args: {name: deeplabv3-resnet50, max_batch_size: 16}

It sits above the registry, so that ``models/serving.py`` (which the registry uses for the ray
backend) never imports the registry back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import registry
from .serving import application  # first: it sets how Ray connects before importing it

if TYPE_CHECKING:
    from ray import serve


def build(args: dict) -> serve.Application:
    """``args``: ``name`` (a registry name), and optionally ``max_batch_size`` and ``batch_wait_timeout_s``."""
    return application(registry.spec(args["name"]), args)
