"""Every local model behind every endpoint, fed what users send: odd files, real photos, random noise.

The running app answers each valid image (or refuses it with a message about the input), and
never with "The model failed on this input": that sentence means a crash the app did not foresee.
The captioning crash this would have caught hid because every earlier test fed scenes a model
could caption. Arguments are found by name in the endpoint's own API description, and every
other argument keeps its default, so the test follows the endpoints as they change.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

import models
from demos import ALL, captioning, generative
from models.generative import can_autoencode
from tests.corpus import make_corpus

CRASH = "model failed on this input"
NOISE_SIDES = (32, 128, 700)
PHOTOS = ("astronaut", "chelsea", "coffee")

# endpoint -> the task whose models it serves
ENDPOINT_TASKS = {f"/{demo.ENDPOINT}": demo.TASK for demo in ALL} | {f"/{captioning.ANSWER_ENDPOINT}": captioning.ANSWER_TASK}
ENDPOINT_TASKS |= {f"/{generative.AUTOENCODE_ENDPOINT}": generative.TASK}
PROMPT_ENDPOINTS = ("/generate", f"/{generative.ENDPOINT}")  # a prompt in, no image
IMAGE_ENDPOINTS = sorted(endpoint for endpoint in ENDPOINT_TASKS if endpoint not in PROMPT_ENDPOINTS)


def local_models(task: str) -> list[str]:
    return [spec.name for spec in models.for_task(task) if spec.tier == "local"]


CASES = [
    (endpoint, name) for endpoint in IMAGE_ENDPOINTS for name in local_models(ENDPOINT_TASKS[endpoint])
    if endpoint != f"/{generative.AUTOENCODE_ENDPOINT}" or can_autoencode(name)  # the GAN has no encoder
]


@pytest.fixture(scope="module")
def client(app_url) -> Client:
    return Client(app_url, verbose=False)


@pytest.fixture(scope="module")
def endpoints(client) -> dict:
    return client.view_api(print_info=False, return_format="dict")["named_endpoints"]


@pytest.fixture(scope="module")
def user_images(tmp_path_factory) -> list[tuple[str, Path]]:
    """The valid odd files of the corpus, three real photos, and random noise at three sizes."""
    from skimage import data

    folder = tmp_path_factory.mktemp("users")
    images = [(item.name, item.path) for item in make_corpus(folder / "corpus") if item.ok]
    for name in PHOTOS:
        path = folder / f"{name}.jpg"
        Image.fromarray(getattr(data, name)()).convert("RGB").save(path, quality=90)
        images.append((name, path))
    rng = np.random.default_rng(0)
    for side in NOISE_SIDES:
        path = folder / f"noise-{side}.png"
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(path)
        images.append((f"noise-{side}", path))
    return images


def arguments(endpoints: dict, endpoint: str, image: Path, model: str) -> dict:
    """The image and the model by parameter name; every other parameter keeps its default."""
    parameters = endpoints[endpoint]["parameters"]
    chosen = {}
    for parameter in parameters:
        name, kind = parameter["parameter_name"], str(parameter["python_type"]["type"])
        if "model" in name and "model" not in chosen.values():
            chosen[name] = model
        elif kind == "filepath" and (not parameter["parameter_has_default"] or not any(isinstance(value, dict) for value in chosen.values())):
            # the image (again for a second required frame: /flow's pair is the image twice); lists of files keep their default
            chosen[name] = handle_file(str(image))
        elif not parameter["parameter_has_default"]:
            pytest.fail(f"{endpoint}: {name} has no default, so an API client must always send it")
    return chosen


@pytest.mark.parametrize(("endpoint", "model"), CASES, ids=[f"{e[1:]}-{m}" for e, m in CASES])
def test_every_user_image_is_answered_or_refused_clearly(client, endpoints, user_images, endpoint, model):
    crashed, refused = [], []
    for name, path in user_images:
        try:
            client.predict(**arguments(endpoints, endpoint, path, model), api_name=endpoint)
        except AppError as error:
            (crashed if CRASH in str(error).lower() else refused).append((name, str(error)[:160]))
    assert not crashed, crashed
    # a valid image may be refused only for its size (too small for the model), with a message saying so
    assert all("small" in message.lower() or "pixels" in message.lower() for _, message in refused), refused


@pytest.mark.parametrize("model", local_models("diffusion"))
@pytest.mark.parametrize("prompt", ["a large red star", "an astronaut riding a horse on the moon", "🙂" * 40, "   "])
def test_generate_answers_or_refuses_every_prompt_clearly(client, model, prompt):
    try:
        client.predict(prompt=prompt, model_name=model, api_name="/generate")
    except AppError as error:
        assert CRASH not in str(error).lower(), str(error)
        assert prompt.strip() == "", f"a prompt with words was refused: {error}"


@pytest.mark.parametrize("model", local_models(generative.TASK))
@pytest.mark.parametrize("prompt", ["a large red star", "an astronaut riding a horse on the moon", "🙂" * 40, "   "])
def test_sample_answers_or_refuses_every_prompt_clearly(client, model, prompt):
    try:
        client.predict(prompt=prompt, model_name=model, api_name=f"/{generative.ENDPOINT}")
    except AppError as error:
        assert CRASH not in str(error).lower(), str(error)
        assert prompt.strip() == "", f"a prompt with words was refused: {error}"
