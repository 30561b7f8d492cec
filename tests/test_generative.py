"""VAE and GAN: the local models' bars, determinism per seed, interpolation, SD's autoencoder against diffusers, the tab.

The SD autoencoder runs on planted random weights of SD-Turbo's ``vae`` subfolder (the tiny
``AutoencoderKL`` of ``models.planting.sd_turbo_parts``), loaded by the app's own loader.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

import models
import shapesworld
from demos import generative as tab
from models.generative import SDAutoencoder, slerp, training_snapshots
from models.judging import eval_prompts, score
from tests.conftest import planted_hugging_face

LOCAL = ("gan-shapes", "vae-shapes")
BARS = {"gan-shapes": 0.80, "vae-shapes": 0.60}
TEST_SEED = shapesworld.SPLITS["test"].start


def pixels(images: list[Image.Image]) -> np.ndarray:
    return np.stack([np.asarray(image, dtype=np.int16) for image in images])


SHORT = {  # the sampling bars the shipped models miss (README: "The local VAE and GAN")
    "gan-shapes": "gan-shapes samples are judged right 0.462 of the time (bar 0.80): stars and triangles drawn as blobs",
    "vae-shapes": "vae-shapes samples are judged right 0.426 of the time (bar 0.60): its prior's samples stray",
}


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=SHORT[name])) for name in LOCAL])
def test_the_shipped_models_meet_their_sampling_bars_on_unseen_seeds(name):
    """The cards' figures (500 unseen seeds, the diffusion bar's prompts) and a fast re-measure on 60 of them."""
    metrics = models.spec(name).source.card()["metrics"]
    assert metrics["eval_count"] >= 200 and metrics["diversity"] > 0.25 * metrics["diversity_of_real_renders"], metrics
    prompts = eval_prompts(60)
    model = models.get(name)
    images = [model.sample(prompt, TEST_SEED + i).images[0] for i, prompt in enumerate(prompts)]
    live, _ = score(images, prompts)
    assert live["generation_accuracy"] >= BARS[name] - 0.1, live
    assert metrics["generation_accuracy"] >= BARS[name], metrics


def test_the_vae_reconstructs_unseen_objects_above_24_db():
    metrics = models.spec("vae-shapes").source.card()["metrics"]
    assert metrics["recon_psnr_db"] >= 24.0 and metrics["eval_count"] >= 200, metrics


def test_the_local_weights_fit_in_4_mb_together():
    assert sum(models.spec(name).source.path.stat().st_size for name in LOCAL) <= 4 * 2**20


@pytest.mark.parametrize("name", LOCAL)
def test_a_seed_gives_the_same_sample_alone_or_in_a_batch(name):
    model = models.get(name)
    batch = model.sample("a small green star", seed=11, count=3).images
    again = model.sample("a small green star", seed=11, count=3).images
    assert np.array_equal(pixels(batch), pixels(again))
    alone = [model.sample("a small green star", seed=11 + k).images[0] for k in range(3)]
    assert np.abs(pixels(batch) - pixels(alone)).max() <= 1  # batched convolutions may round differently by one level
    assert not np.array_equal(pixels(batch[:1]), pixels(batch[1:2]))


@pytest.mark.parametrize("name", LOCAL)
def test_interpolation_ends_at_the_two_seeds_samples(name):
    model = models.get(name)
    strip = model.interpolate("a large purple ring", 3, 9, frames=5).images
    ends = [model.sample("a large purple ring", seed).images[0] for seed in (3, 9)]
    assert len(strip) == 5
    assert np.abs(pixels([strip[0], strip[-1]]) - pixels(ends)).max() <= 1


def test_slerp_stays_on_the_noise_shell():
    a, b = torch.randn(64, generator=torch.Generator().manual_seed(0)), torch.randn(64, generator=torch.Generator().manual_seed(1))
    middle = slerp(a, b, 0.5)
    assert abs(float(middle.norm()) - float((a.norm() + b.norm()) / 2)) < 0.05 * float(a.norm())
    assert float(((a + b) / 2).norm()) < 0.8 * float(a.norm())  # the straight line's midpoint falls inside the shell


def test_the_vae_round_trip_of_an_unseen_object_keeps_it():
    image, prompt = shapesworld.single_object(TEST_SEED + 7, 64)
    result = models.get("vae-shapes").autoencode(Image.fromarray(image), prompt)
    assert result.original.size == (32, 32) and result.latents.shape == (32,) and result.compression == 96
    assert result.psnr_db >= 20
    _, figures = tab.autoencode(Image.fromarray(image), "vae-shapes", "")  # no prompt: the judge reads it
    assert "the judge read the picture as" in figures["notices"][0] and figures["latent_shape"] == [32]


def test_the_sd_autoencoder_round_trip_equals_diffusers_documented_calls(tmp_path_factory):
    """The app's encode/decode on planted weights equals ``vae.encode(x).latent_dist`` / ``vae.decode(z).sample``."""
    from diffusers import AutoencoderKL

    photo = Image.fromarray(np.random.default_rng(0).integers(0, 256, (45, 70, 3), dtype=np.uint8))
    with planted_hugging_face(tmp_path_factory, "sd-vae") as snapshot:
        app = models.get("sd-vae")
        assert isinstance(app, SDAutoencoder)
        result = app.autoencode(photo)
        vae = AutoencoderKL.from_pretrained(snapshot, subfolder="vae").eval()
    scale = app.scale  # 8 for SD's autoencoder; 2 for the planted tiny one (two blocks)
    width, height = 70 // scale * scale, 45 // scale * scale
    cropped = photo.crop((0, 0, width, height))
    x = torch.from_numpy(np.asarray(cropped).copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        latents = vae.encode(x).latent_dist.mode()
        decoded = vae.decode(latents).sample
    expected = ((decoded[0] / 2 + 0.5).clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    assert result.original.size == (width, height) and result.latents.shape == (4, height // scale, width // scale)
    assert np.allclose(result.latents, latents[0].numpy(), atol=1e-5)
    assert np.abs(np.asarray(result.reconstruction, dtype=np.int16) - expected).max() <= 1
    assert result.compression == 3 * scale**2 / 4 and any(f"Cropped to {width}x{height}" in n for n in result.notices)
    with pytest.raises(ValueError, match=f"at least {scale}x{scale} pixels"):
        app.autoencode(Image.new("RGB", (1, 30)))


@pytest.mark.parametrize(("prompt", "hint"), [("   ", "Write a prompt"), ("", "Write a prompt")])
def test_an_empty_prompt_is_refused_with_the_text_to_image_message(prompt, hint):
    with pytest.raises(ValueError, match=hint):
        tab.sample(prompt, "gan-shapes", 0, 2)


def test_unknown_words_are_named_and_a_prompt_with_none_draws_unconditionally():
    _, figures = tab.sample("a red star on the moon", "vae-shapes", 0, 1)
    assert any("moon" in notice for notice in figures["notices"])
    _, figures = tab.sample("an astronaut", "gan-shapes", 0, 1)
    assert any("unconditional sample" in notice for notice in figures["notices"])


def test_models_that_cannot_do_an_action_say_so():
    with pytest.raises(ValueError, match="no encoder"):
        tab.autoencode(Image.new("RGB", (32, 32)), "gan-shapes")
    with pytest.raises(ValueError, match="does not draw"):
        tab.sample("a red star", "sd-vae", 0, 1)


def test_the_family_comparison_has_a_row_per_family_with_time_accuracy_and_diversity():
    rows, gallery = tab.compare("a large blue circle", 0, 2)
    assert [row[0] for row in rows] == ["GAN", "VAE", "Diffusion"] and len(gallery) == 6
    assert all(row[2] > 0 and 0 <= row[6] <= 2 for row in rows)
    assert rows[0][3] * 5 < rows[2][3], "one GAN forward pass is far quicker than ten guided diffusion steps"


def test_the_latent_map_and_the_snapshots_are_pictures():
    assert tab.latent_map("a large red square", side=3).size[0] > 3 * 64
    snapshots = training_snapshots()
    assert snapshots is not None and Image.open(snapshots).width > 300


@pytest.fixture(scope="module")
def client(app_url) -> Client:
    return Client(app_url, verbose=False)


def test_sample_and_autoencode_through_gradio_client(client, tmp_path):
    gallery, figures = client.predict("a small yellow triangle", "gan-shapes", 4, 3, api_name="/sample")
    assert len(gallery) == 3 and all(item["image"].endswith(".png") for item in gallery)
    assert figures["seeds"] == [4, 5, 6] and figures["model"] == "gan-shapes"
    path = tmp_path / f"shapesworld-object-{TEST_SEED}.png"
    Image.fromarray(shapesworld.single_object(TEST_SEED, 64)[0]).save(path)
    pictures, coded = client.predict(handle_file(str(path)), "vae-shapes", "", api_name="/autoencode")
    assert len(pictures) == 3 and coded["latent_shape"] == [32] and coded["psnr_db"] > 15
    with pytest.raises(AppError, match="Write a prompt"):
        client.predict("", "vae-shapes", 0, 1, api_name="/sample")
    text = tmp_path / "not-an-image.png"
    text.write_text("hello")
    with pytest.raises(AppError) as refused:
        client.predict(handle_file(str(text)), "vae-shapes", "", api_name="/autoencode")
    assert "failed on this input" not in str(refused.value).lower()
