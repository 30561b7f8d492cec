"""The tabs of Deep Vision Lab, in order. Each module has TITLE, TASK, ENDPOINT (its main API name) and ``build()``."""

from . import captioning, classify, detection, diffusion, instances, pose, retrieve, segmentation

ALL = [segmentation, detection, instances, pose, captioning, classify, retrieve, diffusion]
