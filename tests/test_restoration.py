"""Image restoration: the bar on unseen scenes, Swin2SR against transformers' own recipe, the tab and its endpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

import models
import shapesworld
from demos import restoration as tab
from models.nets.restoration import RestorationNet
from models.restoration import local_restorer, scores
from models.training import restoration as training
from shapesworld import Degradation

PHOTO = Image.fromarray(data.astronaut()[60:96, 180:224])  # 44x36: not a multiple of 8, so the padding is cropped off
SCENE_SEED = shapesworld.SPLITS["test"].start + 7
BLUR = Degradation("motion", 6.0, 30.0, 8.0)


def planted(name: str, hf_home) -> object:
    from models.planting import plant_random_weights

    return plant_random_weights(models.spec(name), hf_home=hf_home)


# ---------------------------------------------------------------- the local model's bar on unseen scenes


@pytest.fixture(scope="module")
def local_metrics() -> dict:
    return training.evaluate(models.get("restore-shapes"), count=500)


@pytest.mark.xfail(strict=True, reason="not yet met: the shipped weights gain 2.19 dB and reach SSIM 0.779 (README, 'The local restorer')")
def test_the_local_restorer_meets_its_bars_on_500_unseen_scenes(local_metrics):
    assert local_metrics["psnr_gain_db"] >= 6.0, local_metrics
    assert local_metrics["ssim"] >= 0.90, local_metrics


def test_the_local_restorer_improves_unseen_scenes_as_its_card_says(local_metrics):
    assert local_metrics["eval_count"] == 500 and local_metrics["degraded_ssim"] < 0.7
    assert local_metrics["psnr_gain_db"] >= 2.0 and local_metrics["ssim"] >= local_metrics["degraded_ssim"] + 0.1, local_metrics


def test_the_card_reports_what_evaluate_measures(local_metrics):
    card = models.spec("restore-shapes").source.card()
    assert card["metrics"]["psnr_gain_db"] == pytest.approx(local_metrics["psnr_gain_db"], abs=0.05)
    assert card["file_dtype"] == "float16" and card["file_bytes"] <= 3 * 2**20


def test_an_untrained_network_is_the_identity_and_any_size_comes_back_whole():
    restorer = local_restorer(RestorationNet().eval())  # the last convolution starts at zero: residual 0
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8))
    output = restorer(image)
    assert output.restored.shape == (37, 53, 3) and output.scale == 1 and output.downscaled_from is None
    assert np.array_equal(output.restored, np.asarray(image))


# ---------------------------------------------------------------- Swin2SR: planted weights, transformers' recipe


@pytest.mark.parametrize("name", ["swin2sr-realworld-x4", "swin2sr-classical-x2"])
def test_swin2sr_output_equals_transformers_documented_inference(hf_home, name):
    """The model card's recipe: processor -> pixel_values -> model -> reconstruction -> clamp -> x255 -> uint8."""
    from transformers import Swin2SRForImageSuperResolution, Swin2SRImageProcessor

    snapshot = planted(name, hf_home)
    restorer = models.get(name)
    processor = Swin2SRImageProcessor.from_pretrained(snapshot)
    model = Swin2SRForImageSuperResolution.from_pretrained(snapshot).eval()
    with torch.no_grad():
        outputs = model(**processor(PHOTO, return_tensors="pt"))
    expected = outputs.reconstruction.data.squeeze().float().cpu().clamp_(0, 1).numpy()
    expected = (np.moveaxis(expected, source=0, destination=-1) * 255.0).round().astype(np.uint8)
    got = restorer(PHOTO)
    s = model.config.upscale
    assert got.scale == s and got.restored.shape == (PHOTO.height * s, PHOTO.width * s, 3)
    assert np.array_equal(got.restored, expected[: PHOTO.height * s, : PHOTO.width * s])  # the recipe leaves the padding on


def test_a_large_image_is_shrunk_for_swin2sr_and_the_page_says_so(hf_home):
    planted("swin2sr-classical-x2", hf_home)
    big = Image.fromarray(data.astronaut())  # 512 px
    result = tab.restore(big, "swin2sr-classical-x2", Degradation(noise=5.0), False, (0.5, 0.5, 0.3))
    side = models.get("swin2sr-classical-x2").max_side
    assert result.metrics["input_size"] == [side, side] and result.metrics["output_size"] == [2 * side, 2 * side]
    assert result.metrics["clean_known"] and "shrunk from 512×512" in result.summary and "resized back" in result.summary
    assert result.restored.size == (2 * side, 2 * side)
    already = tab.restore(big, "swin2sr-classical-x2", Degradation(), True, (0.5, 0.5, 0.3))  # shrunk by the model: no clean image at its size
    assert already.metrics["input_shrunk_from"] == [512, 512] and not already.metrics["clean_known"]


def test_missing_pretrained_weights_say_how_to_get_them(hf_home):
    with pytest.raises(models.WeightsUnavailable, match="prefetch"):
        tab.restore(PHOTO, "swin2sr-classical-x2", BLUR, False, (0.5, 0.5, 0.3))


# ---------------------------------------------------------------- the tab


def test_a_scene_is_scored_against_its_noise_free_rendering():
    scene = shapesworld.generate(SCENE_SEED)
    result = tab.restore(Image.fromarray(scene.image), "restore-shapes", BLUR, False, (0.3, 0.6, 0.25), scene)
    clean = shapesworld.generate(SCENE_SEED, noise=0.0).image
    degraded = shapesworld.degrade.apply(clean, BLUR, tab.NOISE_SEED)
    m = result.metrics
    assert m["clean_known"] and m["degradation"] == BLUR.to_dict() and m["scale"] == 1
    assert m["degraded"] == vars(scores(degraded, clean))
    assert m["restored"]["psnr"] > m["degraded"]["psnr"] + 1.5 and m["psnr_gain_db"] > 1.5
    assert "motion blur 6.0 px at 30°" in result.summary and "PSNR" in result.summary
    assert result.zoom.size == (3 * tab.ZOOM_TILE + 16, tab.ZOOM_TILE + tab.LABEL_SIZE + 14)  # input, restored, clean
    assert result.residual.height >= 384 and result.degraded.width == 384


def test_an_already_degraded_photo_is_restored_as_it_is_without_scores():
    result = tab.restore(PHOTO, "restore-shapes", BLUR, True, (0.5, 0.5, 0.5))
    assert not result.metrics["clean_known"] and result.metrics["degradation"] is None and "psnr_gain_db" not in result.metrics
    assert "No clean image is known" in result.summary and result.restored.size == PHOTO.size
    assert result.zoom.size == (2 * tab.ZOOM_TILE + 8, tab.ZOOM_TILE + tab.LABEL_SIZE + 14)


def test_crop_boxes_stay_inside_the_image():
    assert tab.crop_box((128, 128), 0.5, 0.5, 0.25) == (48, 48, 80, 80)
    assert tab.crop_box((128, 64), 1.0, 0.0, 0.5) == (96, 0, 128, 32)
    assert tab.crop_box((10, 10), 0.5, 0.5, 0.1) == (3, 3, 7, 7)  # at least 4 px


def test_the_deblurring_panel_is_exact_without_noise_explodes_with_it_and_wiener_does_better():
    from demos.panels.deconvolution_drawing import pictures
    from demos.panels.deconvolution_math import deconvolve, to_uint8

    clean = shapesworld.generate(SCENE_SEED, noise=0.0).image
    for d, lost in ((Degradation("defocus", 2.0, 0.0, 6.0), 0), (Degradation("motion", 6.0, 0.0, 6.0), 128)):  # a 6 px box zeroes a column of H
        result = deconvolve(clean, d, tab.NOISE_SEED)
        assert result.lost == lost
        if not lost:
            assert np.allclose(result.exact, clean, atol=1e-6)
        degraded, inverse, wiener = (scores(to_uint8(x), clean).psnr for x in (result.degraded, result.inverse, result.wiener))
        assert inverse < degraded - 10 and wiener > degraded
    captions = [caption for _, caption in pictures(result, clean)]
    assert len(captions) == 7 and "128 frequencies lost for good" in captions[3] and "explodes" in captions[5]


def test_the_panel_asks_for_a_clean_image_and_a_blur():
    from demos import scenes

    path = scenes.scene_file(SCENE_SEED)
    clean, d, seed = tab._clean_of(path, tab.DEGRADE_HERE, "motion", 5.0, 45.0, 4.0, 0)
    assert np.array_equal(clean, shapesworld.generate(SCENE_SEED, noise=0.0).image) and d.length == 5.0 and seed == tab.NOISE_SEED
    assert tab._clean_of(path, tab.ALREADY_DEGRADED, "motion", 5.0, 45.0, 4.0, 0)[0] is None


def test_the_ui_handler_reads_a_scene_file_and_returns_json_ready_metrics(tmp_path):
    from demos import scenes

    path = scenes.scene_file(SCENE_SEED)
    degraded, restored, zoom, residual, metrics, summary = tab._restore_ui(path, "restore-shapes", tab.DEGRADE_HERE, "defocus", 2.0, 0, 6.0, 60, 0.5, 0.5, 0.3)
    assert restored.size == (128, 128) and metrics["degradation"]["jpeg"] == 60 and metrics["clean_known"]
    json.dumps(metrics)


def test_the_api_returns_the_restored_png_and_the_metrics(app_url, tmp_path):
    from gradio_client import Client, handle_file

    from demos import scenes

    client = Client(app_url, verbose=False)
    out = client.predict(handle_file(scenes.scene_file(SCENE_SEED)), "restore-shapes", api_name="/restore")
    degraded, restored, zoom, residual, metrics, summary = out
    assert Image.open(restored).format == "PNG" and Image.open(restored).size == (128, 128)
    assert metrics["clean_known"] and metrics["psnr_gain_db"] > 1.5
    rng = np.random.default_rng(1)
    noise = tmp_path / "noise.png"
    Image.fromarray(rng.integers(0, 256, (96, 80, 3), dtype=np.uint8)).save(noise)
    out = client.predict(handle_file(str(noise)), "restore-shapes", tab.ALREADY_DEGRADED, api_name="/restore")
    assert Image.open(out[1]).size == (80, 96) and not out[4]["clean_known"]
