"""The Train tab: recipes checked before anything starts, runs repeatable bit for bit, the shared loop, the U-Net's
switches, and the /train stream through gradio_client (progress, a stop mid-run, a second run waiting in line).

The measured bars (a 60-second run's mIoU, /segment latency during a run, memory over 20 runs) take minutes:
``python -m bench --task train_yourself`` measures them; the README has the figures.
"""

from __future__ import annotations

import math
import time

import psutil
import pytest
import torch

import models
from demos import train_yourself as tab
from models.nets.unet import UNet, UNetConfig
from models.recipe import BadRecipe, Recipe
from models.training import train_yourself as trainer
from models.training.loop import Step, fit

BAD = [
    ({"budget_s": 0}, "time budget"),
    ({"batch": 0}, "batch size"),
    ({"batch": 10_000}, "batch size"),
    ({"lr": -0.1}, "learning rate"),
    ({"lr": math.nan}, "learning rate"),
    ({"dropout": 1.5}, "Dropout"),
    ({"optimiser": "lbfgs"}, "optimiser"),
]


@pytest.mark.parametrize(("change", "named"), BAD, ids=[next(iter(c)) + "=" + str(next(iter(c.values()))) for c, _ in BAD])
def test_a_bad_setting_is_refused_with_a_message_naming_it(change, named):
    with pytest.raises(BadRecipe, match=named):
        Recipe(**change).checked()


def test_a_run_is_labelled_by_what_it_changed():
    assert Recipe().changes() == "default recipe"
    assert Recipe(lr=Recipe().lr * 10, skips=False).changes() == "lr ×10 · no skip connections"
    assert Recipe(model="classifier", skips=False, batch_norm=False).changes() == "no batch norm"  # a classifier has no skips


def _events(recipe: Recipe, steps: int) -> list[dict]:
    events: list[dict] = []
    count = {"asked": 0}

    def should_stop() -> bool:  # asked once per step
        count["asked"] += 1
        return count["asked"] >= steps

    trainer.run(recipe, events.append, should_stop)
    return events


def test_the_same_recipe_gives_the_same_curve_bit_for_bit():
    recipe = Recipe(batch=2, augment=True, dropout=0.1)
    first, second = (_events(recipe, 8) for _ in range(2))
    losses = [[loss for e in run if e["kind"] == "steps" for _, _, loss in e["points"]] for run in (first, second)]
    assert len(losses[0]) == 8 and losses[0] == losses[1]
    validations = [[(e["loss"], e["metric"]) for e in run if e["kind"] == "validation"] for run in (first, second)]
    assert validations[0] == validations[1] and len(validations[0]) == 2  # before the first step, and at the stop
    done = first[-1]
    assert done["kind"] == "done" and done["reason"] == "stopped" and done["steps"] == 8 and done["weights"]
    other_seed = _events(Recipe(batch=2, augment=True, dropout=0.1, seed=1), 8)
    assert [e["metric"] for e in other_seed if e["kind"] == "validation"][-1] != validations[0][-1][1]


def test_a_classifier_run_reports_accuracy_and_its_guesses():
    events = _events(Recipe(model="classifier", batch=4, batch_norm=False), 3)
    validation = [e for e in events if e["kind"] == "validation"][-1]
    assert 0 <= validation["metric"] <= 1 and len(validation["predictions"]) == trainer.SHOWN
    assert validation["predictions"][0].shape == (5,)


def test_a_diverging_run_stops_and_hands_back_no_weights(monkeypatch):
    nan_after_two = iter([1.0, 1.0] + [math.nan] * 100)  # the validation before training, step 1, then step 2 goes NaN
    criterion = trainer.segmentation_criterion
    monkeypatch.setattr(trainer, "segmentation_criterion", lambda logits, targets: (criterion(logits, targets)[0] * next(nan_after_two), None))
    done = _events(Recipe(batch=2), 50)[-1]
    assert done["reason"] == "diverged" and done["steps"] == 2 and done["weights"] == b""


def test_the_verdict_says_in_plain_words_whether_it_learned():
    from models.train_yourself import Progress

    learned = Progress(Recipe(), status="done", steps=300, elapsed=60, val=[(0, 0, 2.0, 0.05), (300, 60, 0.5, 0.65)])
    assert learned.verdict().startswith("It learned: validation mIoU went from 0.05 to 0.65")
    stalled = Progress(Recipe(lr=0.4), status="done", steps=300, val=[(0, 0, 2.0, 0.01), (300, 60, 1.9, 0.12)])
    assert stalled.verdict().startswith("It did not learn") and "ten times lower" in stalled.verdict()
    assert "diverged" in Progress(Recipe(lr=0.4), status="diverged", steps=3).verdict()


def test_the_loop_stops_when_a_callback_says_so():
    model = torch.nn.Linear(2, 1)
    seen = []
    steps = fit(
        model, torch.optim.SGD(model.parameters(), lr=0.1), lambda step: (torch.ones(4, 2), torch.zeros(4, 1)),
        lambda m, batch: (torch.nn.functional.mse_loss(m(batch[0]), batch[1]), {}), None,
        callbacks=[lambda step: seen.append(step) or step.number == 5],
    )
    assert steps == 5 and [s.number for s in seen] == [1, 2, 3, 4, 5] and isinstance(seen[0], Step)


def test_the_unet_switches_change_the_network_and_the_defaults_keep_the_shipped_layout():
    shipped = {k: v.shape for k, v in models.spec("unet-shapes").source.state_dict().items()}
    assert {k: v.shape for k, v in UNet(UNetConfig()).state_dict().items()} == shipped
    x = torch.randn(1, 3, 64, 64)
    for config in (UNetConfig(skips=False), UNetConfig(batch_norm=False, dropout=0.2)):
        network = UNet(config).eval()
        assert network(x).shape == (1, 7, 64, 64)
        assert {k: v.shape for k, v in network.state_dict().items()} != shipped


def test_a_run_in_its_own_process_streams_and_its_unet_joins_the_segmentation_picker(tmp_path, monkeypatch):
    """Through the runner: a real child process, stopped after its first validation; the result is a usable U-Net."""
    monkeypatch.setattr("models.recipe.BUDGET_S", (1, 120))  # a test's run is short
    from models import train_yourself as runner

    seen = []
    for progress in runner.train(Recipe(budget_s=8, batch=2), tmp_path, owner="test-session", poll_s=0.1):
        seen.append(progress.status)
        if progress.status == "training" and progress.steps >= 4:
            assert runner.stop("test-session")
    assert "training" in seen and progress.status == "stopped" and progress.result is not None
    assert not _training_processes()
    models.add_trained(progress.result.spec, "test-session")
    assert progress.result.name in [s.name for s in models.for_task("segmentation", "test-session")]
    assert progress.result.name not in [s.name for s in models.for_task("segmentation", "someone-else")]
    output = models.get(progress.result.name)(tab._scene_image(2_000_000)[0].resize((128, 128)))
    assert output.labels.shape == (128, 128)


# ---------------------------------------------------------------- through the API


@pytest.fixture(scope="module")
def client(app_url):
    gradio_client = pytest.importorskip("gradio_client")
    return gradio_client.Client(app_url, verbose=False)


def _train(client, budget=15, **recipe):
    values = {**dict(model="unet", budget_s=budget, lr=0.004, batch=2, optimiser="adamw", augment=False, batch_norm=True, dropout=0, skips=True, seed=0), **recipe}
    return client.submit(*values.values(), api_name="/train")


def _summary(outputs) -> dict:
    return outputs[-1]


def _wait_until(job, predicate, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        outputs = job.outputs()
        if outputs and predicate(_summary(outputs[-1])):
            return _summary(outputs[-1])
        time.sleep(0.2)
    raise AssertionError(f"not reached in {timeout} s: {job.outputs()[-1:]}")


API_BAD = [(change, "minimum value 15" if "budget_s" in change else named) for change, named in BAD[:4]]  # the slider's own check


def _training_processes() -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["cmdline"]) if "models.training.train_yourself" in " ".join(p.info["cmdline"] or [])]


@pytest.mark.parametrize(("change", "named"), API_BAD, ids=[next(iter(c)) + "=" + str(next(iter(c.values()))) for c, _ in API_BAD])
def test_the_api_refuses_a_bad_setting_and_starts_nothing(client, change, named):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match=named):
        _train(client, **change).result(timeout=30)
    assert not _training_processes()


def test_a_nan_learning_rate_sent_over_http_is_refused(app_url):
    """JSON has no NaN (gradio_client cannot send one); Python's parser, and so the server, accept the bare word."""
    import httpx

    values = '["unet", 15, NaN, 2, "adamw", false, true, 0, true, 0]'
    event = httpx.post(f"{app_url}gradio_api/call/train", content='{"data": ' + values + "}", headers={"content-type": "application/json"}, timeout=30)
    stream = httpx.get(f"{app_url}gradio_api/call/train/{event.json()['event_id']}", timeout=30).text
    assert "event: error" in stream and "learning rate must be a number" in stream, stream
    assert not _training_processes()


def test_the_api_streams_a_run_stops_it_and_queues_a_second_one(client, app_url):
    from gradio_client import Client

    first = _train(client)
    _wait_until(first, lambda s: s["status"] == "training" and s["steps"] > 0)
    other = Client(app_url, verbose=False)
    second = _train(other, seed=1)
    deadline = time.monotonic() + 10
    while second.status().code.name not in ("IN_QUEUE",) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert second.status().code.name == "IN_QUEUE" and second.status().rank is not None  # waits, and knows its place
    assert client.predict(api_name="/stop_training").startswith("Stopping")
    final = _summary(first.result(timeout=30))
    assert final["status"] == "stopped" and final["value"] is not None and final["model"] and final["verdict"]
    statuses = [_summary(o)["status"] for o in first.outputs()]
    assert statuses.count("training") >= 1 and statuses[-1] == "stopped"
    _wait_until(second, lambda s: s["status"] == "training")
    other.predict(api_name="/stop_training")
    assert _summary(second.result(timeout=30))["status"] == "stopped"


# ---------------------------------------------------------------- the ray backend


def test_under_the_ray_backend_a_run_is_a_ray_task_that_declares_its_cpu(tmp_path, monkeypatch):
    serving = pytest.importorskip("models.serving", reason="the ray backend's tests need requirements-ray.txt")
    import ray

    from models import train_yourself as runner

    monkeypatch.setattr("models.recipe.BUDGET_S", (1, 120))
    monkeypatch.setenv("DVL_BACKEND", "ray")
    started_here = not ray.is_initialized()
    serving.connect(None, num_cpus=2)
    try:
        held = []
        for progress in runner.train(Recipe(budget_s=20, batch=2), tmp_path, owner="ray-session", poll_s=0.2):
            if progress.status == "training" and progress.steps >= 3 and not held:
                held.append(ray.cluster_resources()["CPU"] - ray.available_resources().get("CPU", 0))
                assert runner.stop("ray-session")
        assert held == [1.0]  # the task holds the one CPU it declared (settings.train_threads)
        assert progress.status == "stopped" and progress.result is not None and progress.steps >= 3
    finally:
        if started_here:
            ray.shutdown()
