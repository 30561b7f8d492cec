"""Every task declared in models/tasks.py is served whole: a tab, models, training, endpoints, a benchmark, README rows.

The declaration is the one list of tasks; these checks replace the hand-kept lists that used to
say the same thing in several places.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

import app
import demos
import models
from bench import __main__ as bench_main
from bench.tasks import TASKS as BENCH_TABLE
from models.__main__ import trainers
from models.tasks import TASKS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
DECLARED = [pytest.param(task, id=task.name) for task in TASKS]


@pytest.fixture(scope="module")
def named_endpoints() -> set[str]:
    return set(app.build_app().get_api_info()["named_endpoints"])


def test_names_are_unique_and_the_sections_follow_each_other():
    assert len({task.name for task in TASKS}) == len(TASKS)
    sections = [task.section for task in TASKS]
    assert sections == sorted(sections, key=sections.index), "a section's tasks sit together, in the lecture's order"


@pytest.mark.parametrize("task", DECLARED)
def test_each_task_has_its_tab_under_its_section(task):
    tab = importlib.import_module(f"demos.{task.name}")
    assert tab.TASK == task.name and tab.ENDPOINT == task.endpoints[0]
    assert tab in demos.ALL and tab in demos.SECTIONS[task.section]


TRAINED_IN_THE_PAGE = {"train_yourself"}
"""Tasks that ship no model: every network they show is trained in the page by models/training/<name>.py's ``run``."""


@pytest.mark.parametrize("task", DECLARED)
def test_each_task_has_a_local_model_with_a_shipped_card_and_its_trainer(task):
    assert task.specs.__module__ == f"models.{task.name}"
    if task.name in TRAINED_IN_THE_PAGE:
        assert task.specs() == [] and callable(importlib.import_module(task.training_module).run)
        return
    local = [spec.name for spec in task.specs() if spec.tier == "local"]
    assert [name for name in local if (ROOT / "weights" / f"{name}.json").exists()], f"{task.name}: no local model with a card"
    module = importlib.import_module(task.training_module)
    assert callable(module.train) and callable(module.evaluate)
    found = trainers()
    assert all(found[name].evaluate is module.evaluate for name in local)


def test_every_local_model_is_trainable_and_every_model_belongs_to_a_task():
    local = {spec.name for spec in models.all_specs().values() if spec.tier == "local"}
    assert set(trainers()) == local
    declared = {spec.name for task in TASKS for spec in task.specs()}
    assert declared == set(models.all_specs())


def test_the_app_serves_exactly_the_declared_endpoints(named_endpoints):
    assert named_endpoints == {f"/{endpoint}" for task in TASKS for endpoint in task.endpoints}


@pytest.mark.parametrize("task", DECLARED)
def test_each_task_has_a_bench_section(task):
    assert task.name in BENCH_TABLE or task.name in bench_main.SECTIONS


def test_the_bench_measures_only_declared_tasks():
    assert {*BENCH_TABLE, *bench_main.SECTIONS} <= {task.name for task in TASKS}


@pytest.mark.parametrize("task", DECLARED)
def test_the_readme_tabs_table_names_each_tab_and_its_endpoints(task):
    title = importlib.import_module(f"demos.{task.name}").TITLE
    row = next((line for line in README.splitlines() if line.startswith(f"| {title} |")), None)
    assert row, f"README's Tabs table has no row for {title!r}"
    assert all(f"`/{endpoint}`" in row for endpoint in task.endpoints), row


def test_the_readme_models_table_lists_every_registered_model():
    section = README.split("\n## Models\n", 1)[1].split("\n## ", 1)[0]
    rows = {m.group(1) for m in re.finditer(r"^\| `([a-z0-9.-]+)`", section, re.MULTILINE)}
    assert rows == set(models.all_specs()), f"missing: {set(models.all_specs()) - rows}; unknown: {rows - set(models.all_specs())}"
