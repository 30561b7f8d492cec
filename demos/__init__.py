"""The tabs of Deep Vision Lab: one module per task declared in models/tasks.py, named as the task.

Each tab module has TITLE, TASK (its task's name), ENDPOINT (its main API name) and ``build()``.
``ALL`` lists them in the lecture's order; ``SECTIONS`` groups them under the lecture's sections,
the page's first level of tabs.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from models.tasks import TASKS


def _sections(tabs: list[ModuleType]) -> dict[str, list[ModuleType]]:
    grouped: dict[str, list[ModuleType]] = {}
    for task, tab in zip(TASKS, tabs):
        grouped.setdefault(task.section, []).append(tab)
    return grouped


ALL: list[ModuleType] = [importlib.import_module(f"{__name__}.{task.name}") for task in TASKS]
SECTIONS: dict[str, list[ModuleType]] = _sections(ALL)
