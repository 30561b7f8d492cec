"""The tabs of Deep Vision Lab, in order. Each module has TITLE, TASK and ``build()``."""

from . import segmentation

ALL = [segmentation]
