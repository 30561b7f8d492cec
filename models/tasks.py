"""Every task of the app, declared once, in the order of the lecture.

A task's one name is the name of every module that serves it, so a declaration here is all the
registration a task needs:

- ``models/<name>.py``: the task's models (``specs()``), gathered by ``registry.all_specs()``;
- ``models/training/<name>.py``: ``train(name=..., ...)`` and ``evaluate(model, seed, count)`` for each
  of its local models, run by ``python -m models train|evaluate``;
- ``demos/<name>.py``: its tab (``TASK = "<name>"``), placed by ``demos.SECTIONS`` under its section;
- ``python -m bench --task <name>``: its benchmark section.

tests/test_tasks.py checks that each of these exists for every task declared here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import captioning, clip, depth, detection, diffusion, flow, generative, instances, pose, restoration, retrieval, segmentation, train_yourself
from .spec import ModelSpec

DENSE_PREDICTION = "Dense prediction"
MOTION = "Motion"  # optical flow (a dense prediction between two frames), then action recognition
DETECTION_AND_INSTANCES = "Detection and instances"
VISION_AND_LANGUAGE = "Vision and language"
REPRESENTATIONS = "Representations"
GENERATION = "Generation"
TRAINING = "Training"  # the lecture's Part 1 (optimisation, regularisation), practised last: after using the models


@dataclass(frozen=True)
class Task:
    name: str  # the task's one name: its modules in models/, models/training/ and demos/, its bench section
    section: str  # the lecture's section; the page shows the task's tab under it
    endpoints: tuple[str, ...]  # the API names its tab serves, main action first (public: never renamed)
    specs: Callable[[], list[ModelSpec]]  # every model of the task, in preference order

    @property
    def training_module(self) -> str:
        """Where its local models' ``train`` and ``evaluate`` live (imported only to train or score)."""
        return f"{__package__}.training.{self.name}"


TASKS: tuple[Task, ...] = (
    Task("segmentation", DENSE_PREDICTION, ("segment", "segment_features"), segmentation.specs),
    Task("depth", DENSE_PREDICTION, ("depth",), depth.specs),
    Task("restoration", DENSE_PREDICTION, ("restore",), restoration.specs),
    Task("flow", MOTION, ("flow",), flow.specs),
    Task("detection", DETECTION_AND_INSTANCES, ("detect",), detection.specs),
    Task("instances", DETECTION_AND_INSTANCES, ("instances",), instances.specs),
    Task("pose", DETECTION_AND_INSTANCES, ("pose",), pose.specs),
    Task("captioning", VISION_AND_LANGUAGE, ("caption", "answer"), captioning.specs),
    Task("clip", VISION_AND_LANGUAGE, ("classify",), clip.specs),
    Task("retrieval", REPRESENTATIONS, ("retrieve",), retrieval.specs),
    Task("diffusion", GENERATION, ("generate",), diffusion.specs),
    Task("generative", GENERATION, ("sample", "autoencode"), generative.specs),
    Task("train_yourself", TRAINING, ("train", "stop_training"), train_yourself.specs),
)

BY_NAME: dict[str, Task] = {task.name: task for task in TASKS}
