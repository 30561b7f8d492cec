"""ShapesWorld degradations: exact pairs, kept kernels, and the inverse filter that undoes a blur exactly."""

from __future__ import annotations

import numpy as np
import pytest

import shapesworld
from shapesworld import degrade
from shapesworld.degrade import Degradation

SEEDS = range(shapesworld.SPLITS["test"].start, shapesworld.SPLITS["test"].start + 30)


def clean(seed: int) -> np.ndarray:
    return shapesworld.generate(seed, 64, noise=0.0).image


def test_noise_free_scene_is_the_same_scene():
    """Restoration's clean target (noise=0) differs from the default scene only by the pixel noise."""
    noisy, plain = shapesworld.generate(2_000_003), shapesworld.generate(2_000_003, noise=0.0)
    assert np.array_equal(noisy.semantic, plain.semantic) and noisy.caption == plain.caption and noisy.qa == plain.qa
    assert 3 < np.abs(noisy.image.astype(int) - plain.image).mean() < 7


def test_draw_is_deterministic_and_within_levels():
    drawn = [degrade.draw(s) for s in SEEDS]
    assert drawn == [degrade.draw(s) for s in SEEDS]
    assert len(set(drawn)) == len(drawn)
    for d in drawn:
        low, high = degrade.LEVELS["motion_length" if d.blur == "motion" else "defocus_radius"]
        assert d.blur == "none" or low <= d.length <= high
        assert degrade.LEVELS["noise_sigma"][0] <= d.noise <= degrade.LEVELS["noise_sigma"][1]
        assert d.jpeg is None or degrade.LEVELS["jpeg_quality"][0] <= d.jpeg <= degrade.LEVELS["jpeg_quality"][1]
    assert {d.blur for d in drawn} == set(degrade.BLURS) and {d.jpeg is None for d in drawn} == {True, False}


def test_kept_parameters_reproduce_the_degraded_image_bit_for_bit():
    for seed in SEEDS[:8]:
        image = clean(seed)
        degraded, d = degrade.degraded_pair(image, seed)
        again = degrade.apply(image, Degradation(**d.to_dict()), seed)
        assert again.dtype == np.uint8 and again.shape == image.shape
        assert np.array_equal(degraded, again)
        assert not np.array_equal(degraded, image)
    assert not np.array_equal(degrade.apply(image, d, 1), degrade.apply(image, d, 2))  # the noise comes from the seed


@pytest.mark.parametrize(
    "d", [Degradation("motion", 7.0, 30.0), Degradation("motion", 4.5, 90.0), Degradation("defocus", 1.5), Degradation("defocus", 2.5)]
)
def test_kernel_is_normalised_centred_and_undone_exactly_by_its_transfer_function(d):
    kernel = d.kernel()
    assert kernel.shape[0] == kernel.shape[1] and kernel.shape[0] % 2 == 1
    assert kernel.sum() == pytest.approx(1.0) and (kernel >= 0).all()
    assert np.allclose(kernel, kernel[::-1, ::-1])  # symmetric about its centre: the blur does not shift the image
    image = clean(SEEDS[0]).astype(np.float64)
    assert np.abs(degrade.transfer_function(kernel, image.shape[:2])).min() > 1e-6  # small, yet no frequency is lost
    blurred = degrade.blur(image, kernel)
    assert np.abs(blurred - image).mean() > 1.0
    assert np.allclose(degrade.unblur(blurred, kernel), image, atol=1e-6)


def test_motion_kernel_has_its_length_and_direction():
    horizontal = Degradation("motion", 7.0, 0.0).kernel()
    centre = horizontal.shape[0] // 2
    assert np.count_nonzero(horizontal[centre]) == 7 and horizontal.sum(1)[centre] == pytest.approx(1.0)
    assert np.allclose(Degradation("motion", 7.0, 90.0).kernel(), horizontal.T)


def test_no_degradation_is_identity_and_jpeg_alone_is_lossy():
    image = clean(SEEDS[1])
    assert np.array_equal(degrade.apply(image, Degradation()), image)
    assert Degradation().describe() == "nothing"
    compressed = degrade.apply(image, Degradation(jpeg=20))
    assert not np.array_equal(compressed, image) and np.abs(compressed.astype(int) - image).mean() < 20


@pytest.mark.parametrize("bad", [dict(blur="gauss"), dict(length=-1.0), dict(noise=-2.0), dict(jpeg=0), dict(jpeg=100)])
def test_bad_parameters_are_refused(bad):
    with pytest.raises(ValueError):
        Degradation(**bad)
