"""Text-to-image: the local model's bar, its sampling, SD-Turbo through the app's loader, the tab's functions."""

from __future__ import annotations

import gradio as gr
import numpy as np
import pytest
import torch

import models
from demos import diffusion as tab
from demos import segmentation
from models.text_to_image import SCHEDULERS, DenoisingStep, Request, check_request, run
from models.nets.diffusion import parse_prompt
from models.sources import Availability, WeightsUnavailable
from models.training import diffusion as training
from tests.conftest import planted_hugging_face


@pytest.fixture(scope="module")
def local():
    return models.get("diffusion-shapes")


def test_prompts_are_read_word_by_word_and_the_rest_is_named():
    assert parse_prompt("A BIG red Stars on the moon") == parse_prompt("a large red star moon") and parse_prompt("a large red star moon").ignored == ("moon",)
    read = parse_prompt("a small blue ring")
    assert (read.size, read.colour, read.shape, read.ignored) == ("small", "blue", "ring", ())
    assert parse_prompt("a green shape").text() == "a green shape" and parse_prompt("a green shape").rows()[2] == 5  # shape unspecified
    assert not parse_prompt("一个红色的三角形").known and not parse_prompt("").known


@pytest.mark.parametrize(
    "change, hint",
    [
        ({"prompt": "  "}, "Write a prompt"),
        ({"steps": -3}, "Steps must be between 1 and 100"),
        ({"count": 1000}, "between 1 and 8"),
        ({"scheduler": "Heun"}, "Unknown scheduler"),
        ({"guidance": -1.0}, "Guidance scale"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_requests_are_refused_before_any_work(change, hint):
    with pytest.raises(ValueError, match=hint):
        check_request(Request(**{"prompt": "a red star", **change}))


def test_the_shipped_local_model_draws_the_asked_shape_and_colour_on_unseen_seeds(local):
    """A fast subset of the bar: 60 generations (every colour-shape pair in both sizes), judged by the mini-CLIP."""
    metrics = training.evaluate(local, seed=training.TEST_SEED, count=60)
    assert metrics["generation_accuracy"] >= 0.80, metrics
    assert metrics["colour_accuracy"] >= 0.95, metrics
    card = models.spec("diffusion-shapes").source.card()
    assert card["metrics"]["generation_accuracy"] >= 0.80 and card["metrics"]["eval_count"] >= 200
    assert card["file_bytes"] <= 8 * 2**20


def test_the_same_seed_gives_the_same_images_and_every_scheduler_samples(local):
    request = Request("a large blue square", seed=7, steps=6, count=2)
    first, again = run(local, request), run(local, request)
    assert [np.asarray(a).tolist() == np.asarray(b).tolist() for a, b in zip(first.images, again.images)] == [True, True]
    assert not np.array_equal(np.asarray(first.images[0]), np.asarray(first.images[1]))  # a batch's images get their own noise
    for scheduler in SCHEDULERS:
        result = run(local, Request("a large blue square", seed=7, steps=6, scheduler=scheduler))
        assert result.images[0].size == (32, 32) and np.asarray(result.images[0]).std() > 10, scheduler


def test_every_pictured_step_has_its_noisy_input_and_clean_estimate_and_noise_fades(local):
    result = run(local, Request("a large yellow star", seed=3, steps=10), capture=range(1, 11))
    assert [s.index for s in result.steps] == list(range(1, 11)) and all(s.noisy is not None and s.predicted is not None for s in result.steps)
    timesteps = [s.timestep for s in result.steps]
    assert timesteps == sorted(timesteps, reverse=True) and timesteps[0] == 999  # trailing spacing: starts from pure noise
    roughness = [np.abs(np.diff(np.asarray(s.noisy, dtype=float), axis=0)).mean() for s in result.steps]
    assert roughness[-1] < roughness[0] / 2  # pixel-to-pixel noise falls as the sample is denoised (t=99 keeps a little)
    final = np.asarray(result.images[0], dtype=float)
    assert np.abs(np.asarray(result.steps[-1].predicted, dtype=float) - final).mean() < 12  # the last estimate is the image


def test_stopping_ends_the_run_between_steps(local):
    stream = local.denoise(Request("a small red circle", steps=50))
    seen = [next(stream) for _ in range(3)]
    stream.close()  # what the Stop button does to the handler's generator
    assert [s.index for s in seen] == [1, 2, 3]
    with pytest.raises(StopIteration):
        next(stream)


def test_prompts_the_local_model_cannot_read_are_answered_honestly(local):
    result = run(local, Request("一只戴着宇航员头盔的猫", steps=2))
    assert "unconditional sample" in result.notices[0] and len(result.images) == 1
    result = run(local, Request("a large red triangle on the moon", negative_prompt="blue", steps=2))
    assert any("moon" in n for n in result.notices) and any("negative prompt" in n for n in result.notices)


def test_captured_steps_cover_short_runs_and_spread_over_long_ones():
    assert tab.captured_steps(4) == [1, 2, 3, 4]
    assert tab.captured_steps(50) == [1, 8, 15, 22, 29, 36, 43, 50]


def test_the_judge_reads_real_renders_through_the_same_round_trip():
    assert training.judge_on_renders(training.TEST_SEED, 100) >= 0.95


def test_eval_prompts_cover_every_pair_in_both_sizes():
    prompts = training.eval_prompts(60)
    assert len(set(prompts)) == 60 and len({p.split(maxsplit=2)[2] for p in prompts[:30]}) == 30


# ---------------------------------------------------------------- the tab's handler, without a server


def no_progress(*args, **kwargs) -> None:
    pass


def test_the_handler_clears_then_streams_steps_then_the_images_and_notes(local):
    updates = list(tab._generate_ui("a small green ring", "", 5, 4, 2.0, "DDIM", 3, "diffusion-shapes", progress=no_progress))
    first, *during, (images, notes, steps, reached) = updates
    assert first == ([], "", [], [])  # the last run's results go at once: a failure cannot leave them under its message
    assert [u[1] for u in during] == [f"Denoising… step {k} of 4" for k in range(1, 5)]
    assert [step.index for step in during[-1][3]] == [1, 2, 3, 4]  # the page's state: what Stop keeps
    assert len(images) == 3 and images[0][0].size == (256, 256) and "3 image(s)" in notes and "seed 5" in notes
    assert len(steps) == 8 and "noisy input" in steps[0][1] and "predicted clean image" in steps[1][1]
    assert reached == []  # finished: nothing for Stop to keep


def test_a_long_run_pictures_spread_steps_and_sends_the_strip_only_when_it_changes(local):
    updates = list(tab._generate_ui("a large red star", "", 0, 20, 4.0, "DPM-Solver++", 1, "diffusion-shapes", progress=no_progress))
    during = updates[1:-1]
    sent = [u[3][-1].index for u in during if isinstance(u[2], list)]
    assert sent == tab.captured_steps(20)
    assert [s.index for s in during[10][3]] == [1, 4, 6, 9, 11]  # the spread steps so far, and the one reached


def test_stop_keeps_the_steps_reached_and_says_where_the_run_stopped(local):
    run = tab._generate_ui("a large red star", "", 0, 20, 4.0, "DPM-Solver++", 1, "diffusion-shapes", progress=no_progress)
    updates = [next(run) for _ in range(12)]  # the clearing update, then steps 1 to 11
    run.close()  # what cancelling does to the handler's generator
    reached = updates[-1][3]
    images, notes, strip, state = tab._stopped_ui(reached)
    assert notes == "Stopped at step 11 of 20."
    steps_shown = [caption.split(" · ")[0] for _, caption in strip]
    assert steps_shown == [f"step {k}/20" for k in (1, 1, 4, 4, 6, 6, 9, 9, 11, 11)]  # x_t and x̂_0 of each; 11 is where it stopped
    assert state == [] and not isinstance(images, list)  # the images are left as they are (the run cleared them)


def test_a_run_that_failed_before_any_step_leaves_nothing_behind():
    assert tab._stopped_ui([]) == ([], "", [], [])


@pytest.mark.parametrize("module, whole_numbers", [(tab, {"seed", "steps", "count"}), (segmentation, set())])
def test_the_api_types_whole_numbers_integer_and_names_every_output(module, whole_numbers):
    """What /gradio_api/info tells a client: counts are integers, and no output is an unnamed ``value_123``."""
    with gr.Blocks() as demo:
        module.build()
    endpoint = demo.get_api_info()["named_endpoints"][f"/{module.ENDPOINT}"]
    types = {p["parameter_name"]: p["type"].get("type") for p in endpoint["parameters"]}
    assert {name for name, kind in types.items() if kind == "integer"} == whole_numbers, types
    labels = [r["label"] for r in endpoint["returns"]]
    assert all(label and not label.startswith("value_") for label in labels), labels


def test_the_guidance_comparison_keeps_the_seed(local):
    pictures = tab._guidance_ui("a large purple square", "", 11, 8, 3.0, "DPM-Solver++", "diffusion-shapes", 1.0, progress=no_progress)
    assert [caption for _, caption in pictures] == ["guidance 1", "guidance 3"]
    assert not np.array_equal(np.asarray(pictures[0][0]), np.asarray(pictures[1][0]))


# ---------------------------------------------------------------- SD-Turbo, planted in a Hugging Face cache


@pytest.fixture(scope="module")
def planted_turbo(tmp_path_factory):
    """Random-init SD-Turbo pipeline classes (tiny configs) and safety checker, under the real repo ids, offline."""
    with planted_hugging_face(tmp_path_factory, "sd-turbo") as snapshot:
        yield snapshot


def test_sd_turbo_without_weights_says_how_to_get_both_repos(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    spec = models.spec("sd-turbo")
    assert spec.availability() is Availability.UNAVAILABLE and "Non-Commercial" in spec.license
    with pytest.raises(WeightsUnavailable, match="prefetch"):
        spec.load(spec)


def test_sd_turbo_equals_the_pipeline_call_diffusers_documents(planted_turbo):
    """The app's images = ``pipe(prompt, num_inference_steps=n, guidance_scale=0.0)`` with the same generator."""
    spec = models.spec("sd-turbo")
    assert spec.availability() is Availability.CACHED
    model = models.get("sd-turbo")
    assert model.pipe.safety_checker is not None and model.image_size == 64
    for steps in (1, 2):
        ours = run(model, Request("a cat wearing a helmet", seed=4, steps=steps, guidance=0.0, scheduler="Euler", count=2))
        theirs = model.pipe(
            "a cat wearing a helmet", num_inference_steps=steps, guidance_scale=0.0, num_images_per_prompt=2,
            generator=torch.Generator("cpu").manual_seed(4),
        ).images
        assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(ours.images, theirs))
        assert not any(ours.blocked) and [s.index for s in ours.steps] == list(range(1, steps + 1))


def test_sd_turbo_cuts_long_prompts_with_a_notice_and_pictures_each_step(planted_turbo):
    model = models.get("sd-turbo")
    result = run(model, Request("a cat " * 60, steps=3, guidance=0.0, scheduler="Euler"), capture=[1, 2, 3])
    assert any("77 tokens" in n and "45 tokens were ignored" in n for n in result.notices)
    assert all(s.predicted is not None and s.noisy is None for s in result.steps)
    result = run(model, Request("a cat", negative_prompt="dog", steps=1, guidance=0.0, scheduler="Euler"))
    assert any("guidance above 1" in n for n in result.notices)
    with pytest.raises(ValueError, match="between 1 and 4"):
        tab.request_from("a cat", "", 0, 5, 0.0, "Euler", 1, model.max_steps)


def test_a_blocked_image_is_replaced_by_a_notice(planted_turbo):
    model = models.get("sd-turbo")
    checker = model.pipe.safety_checker
    saved = checker.concept_embeds_weights.detach().clone()
    checker.concept_embeds_weights.data.fill_(-2.0)  # every image now scores above every concept's threshold
    try:
        result = run(model, Request("a cat", steps=1, guidance=0.0, scheduler="Euler"))
    finally:
        checker.concept_embeds_weights.data.copy_(saved)
    assert result.blocked == [True] and "blocked 1 of 1" in result.notices[-1]
    (shown, caption), = tab.shown_images(result)
    assert caption.endswith("blocked") and np.asarray(shown).std() > 5  # the notice's text, not the pipeline's black square


def test_stopping_sd_turbo_interrupts_the_pipeline(planted_turbo):
    model = models.get("sd-turbo")
    stream = model.denoise(Request("a cat", steps=4, guidance=0.0, scheduler="Euler"))
    first = next(stream)
    stream.close()
    assert isinstance(first, DenoisingStep) and first.index == 1


def test_streaming_errors_become_clear_messages():
    import gradio as gr

    from demos import errors

    @errors.user_errors
    def failing():
        yield 1
        raise ValueError("Write a prompt first")

    stream = failing()
    assert next(stream) == 1
    with pytest.raises(gr.Error, match="Write a prompt first"):
        next(stream)
