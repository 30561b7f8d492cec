"""Everything about models and nothing about UI: registry, weight sources, the cached loader.

    import models
    segmenter = models.get("unet-shapes")       # loaded once, cached, on the chosen device
    models.for_task("segmentation")             # ModelSpecs, best first
"""

from .cache import ModelServerUnavailable
from .registry import add_trained, all_specs, cache, default_for, for_task, get, spec
from .sources import Availability, WeightsUnavailable
from .spec import ModelSpec

__all__ = ["Availability", "ModelServerUnavailable", "ModelSpec", "WeightsUnavailable", "add_trained", "all_specs", "cache", "default_for", "for_task", "get", "spec"]
