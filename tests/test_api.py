"""End to end: the real app in its own process, called over HTTP with gradio_client."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

import shapesworld
from tests.corpus import make_corpus

SCENE_SEED = shapesworld.SPLITS["test"].start + 4242


@pytest.fixture(scope="module")
def client(app_url) -> Client:
    return Client(app_url, verbose=False)


@pytest.fixture(scope="module")
def scene_file(tmp_path_factory) -> tuple[Path, shapesworld.Scene]:
    scene = shapesworld.generate(SCENE_SEED)
    path = tmp_path_factory.mktemp("api") / "scene.png"
    Image.fromarray(scene.image).save(path)
    return path, scene


def test_the_api_lists_the_public_endpoints_only(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/segment", "/segment_features"} <= set(endpoints)
    assert all(name.startswith("/segment") for name in endpoints), endpoints  # UI-only listeners stay private


def test_segment_a_shapesworld_scene_with_the_local_unet(client, scene_file):
    path, scene = scene_file
    overlay, legend, mask_path, shares, confidence = client.predict(handle_file(str(path)), "unet-shapes", 0.6, api_name="/segment")
    assert Image.open(overlay).size == Image.open(confidence).size == (128, 128)
    mask = np.asarray(Image.open(mask_path))
    assert (mask == scene.semantic).mean() > 0.95
    assert set(shares) <= set(shapesworld.CLASSES) and abs(sum(shares.values()) - 1) < 1e-3
    assert "background" in legend and "%" in legend


def test_segment_a_real_photo_with_a_pretrained_model(client):
    from skimage import data

    photo = Path(__file__).parent.parent / "test-artifacts" / "coffee.jpg"
    photo.parent.mkdir(exist_ok=True)
    Image.fromarray(data.coffee()).save(photo)
    overlay, _, mask_path, shares, _ = client.predict(handle_file(str(photo)), "lraspp-mobilenet", 0.5, api_name="/segment")
    assert Image.open(overlay).size == (600, 400)
    assert Image.open(mask_path).size == (600, 400)
    assert set(shares) <= set(__import__("models").spec("lraspp-mobilenet").source.weights.meta["categories"])


def test_feature_maps_through_the_api(client, scene_file):
    path, _ = scene_file
    gallery = client.predict(handle_file(str(path)), "unet-shapes", api_name="/segment_features")
    assert len(gallery) == 7 and gallery[0]["caption"].startswith("encoder 1")


def test_an_unavailable_model_is_a_clear_error(client, scene_file):
    path, _ = scene_file
    with pytest.raises(AppError, match="prefetch"):
        client.predict(handle_file(str(path)), "deeplabv3-resnet101", 0.5, api_name="/segment")


def test_concurrent_requests_all_succeed(client, scene_file):
    path, _ = scene_file
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda o: client.predict(handle_file(str(path)), "unet-shapes", o, api_name="/segment"), [0.1, 0.3, 0.5, 0.7]))
    assert len(results) == 4 and all(Path(r[0]).exists() for r in results)


def test_bad_files_get_clear_errors_and_the_server_keeps_serving(client, scene_file, tmp_path):
    answered = []
    for item in make_corpus(tmp_path):
        if item.ok:
            overlay, *_ = client.predict(handle_file(str(item.path)), "unet-shapes", 0.5, api_name="/segment")
            assert max(Image.open(overlay).size) <= 1024, item.name
        else:
            with pytest.raises(AppError) as error:
                client.predict(handle_file(str(item.path)), "unet-shapes", 0.5, api_name="/segment")
            message = str(error.value)
            assert item.hint.lower() in message.lower(), (item.name, message)
            assert "Traceback" not in message and "Error:" not in message, (item.name, message)
        answered.append(item.name)
    assert len(answered) >= 25
    path, _ = scene_file  # and a normal request still works afterwards
    overlay, *_ = client.predict(handle_file(str(path)), "unet-shapes", 0.5, api_name="/segment")
    assert Path(overlay).exists()
