"""Tests for demos.inputs: every awkward upload becomes RGB or a clear BadInput.

The files come from tests/corpus.py, generated once per session into a temporary
folder, so the repository carries no binary fixtures.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from corpus import (
    BASE_SIZE,
    FRAME_COLOURS,
    ITEM_NAMES,
    TRANSPARENT_BOX,
    CorpusItem,
    base_photo,
    make_corpus,
)
from demos import inputs
from demos.inputs import BadInput, load_image

MAX_SIDE = 512  # below the large items' size, so downscaling is exercised


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CorpusItem]:
    items = make_corpus(tmp_path_factory.mktemp("corpus"))
    return {item.name: item for item in items}


@pytest.fixture(scope="session")
def corpus_dir(corpus: dict[str, CorpusItem]) -> Path:
    return next(iter(corpus.values())).path.parent


def _load(corpus: dict[str, CorpusItem], name: str, max_side: int = MAX_SIDE) -> Image.Image:
    return load_image(corpus[name].path, max_side=max_side)


def _box_centre(box: tuple[int, int, int, int]) -> tuple[int, int]:
    left, top, right, bottom = box
    return (left + right) // 2, (top + bottom) // 2


def _assert_user_message(message: str, hint: str = "") -> None:
    """A message fit for a web user: a sentence, no traceback, no exception names."""
    assert message and message[0].isupper() and message.rstrip().endswith(".")
    assert "Traceback" not in message and 'File "' not in message
    assert "Error" not in message and "errno" not in message.lower()
    assert len(message) < 300
    assert hint.lower() in message.lower()


# ---------------------------------------------------------------- the corpus


def test_corpus_has_every_declared_item(corpus: dict[str, CorpusItem]) -> None:
    assert tuple(corpus) == ITEM_NAMES
    assert all(item.path.is_file() for item in corpus.values())
    assert sum(item.path.stat().st_size for item in corpus.values()) < 2_000_000


@pytest.mark.parametrize("name", ITEM_NAMES)
def test_corpus_item(corpus: dict[str, CorpusItem], corpus_dir: Path, name: str) -> None:
    item = corpus[name]
    if item.ok:
        image = load_image(item.path, max_side=MAX_SIDE)
        assert isinstance(image, Image.Image)
        assert image.mode == "RGB"
        assert max(image.size) <= MAX_SIDE
        assert min(image.size) >= inputs.MIN_SIDE
        assert getattr(image, "fp", None) is None  # decoded, not tied to the file
    else:
        with pytest.raises(BadInput) as caught:
            load_image(item.path, max_side=MAX_SIDE)
        message = str(caught.value)
        _assert_user_message(message, item.hint)
        assert str(corpus_dir) not in message  # never leak server paths


def test_loading_leaves_no_file_open(corpus: dict[str, CorpusItem]) -> None:
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.is_dir():
        pytest.skip("needs /proc to count open files")
    small = [item for item in corpus.values() if "large" not in item.name]
    before = len(os.listdir(fd_dir))
    for item in small:
        try:
            load_image(item.path)
        except BadInput:
            pass
    assert len(os.listdir(fd_dir)) == before


# ---------------------------------------------------------- what "correct" means


def test_exif_orientation_6_turns_landscape_into_portrait(
    corpus: dict[str, CorpusItem],
) -> None:
    plain = _load(corpus, "rgb_jpeg")
    rotated = _load(corpus, "exif6_jpeg")
    assert plain.size == BASE_SIZE
    assert rotated.size == (BASE_SIZE[1], BASE_SIZE[0])
    # Orientation 6 means "rotate 90 degrees clockwise to display".
    expected = np.asarray(plain.transpose(Image.Transpose.ROTATE_270), dtype=float)
    assert np.abs(np.asarray(rotated, dtype=float) - expected).mean() < 4.0


def test_large_sideways_jpeg_is_rotated_and_downscaled(
    corpus: dict[str, CorpusItem],
) -> None:
    image = _load(corpus, "large_exif6_jpeg", max_side=1024)
    assert image.size == (768, 1024)


def test_large_png_is_downscaled_keeping_aspect(corpus: dict[str, CorpusItem]) -> None:
    image = _load(corpus, "large_png", max_side=MAX_SIDE)
    assert image.size == (512, 384)


def test_default_max_side_is_1024(corpus: dict[str, CorpusItem]) -> None:
    assert max(load_image(corpus["large_png"].path).size) == inputs.DEFAULT_MAX_SIDE == 1024


def test_small_images_are_not_upscaled(corpus: dict[str, CorpusItem]) -> None:
    assert _load(corpus, "rgb_jpeg", max_side=4096).size == BASE_SIZE


@pytest.mark.parametrize("name", ["la_png", "rgba_png", "p_transparency_png"])
def test_transparency_is_composited_over_white(
    corpus: dict[str, CorpusItem], name: str
) -> None:
    image = _load(corpus, name)
    # The transparent box stores black pixels: dropping alpha would show black.
    assert image.getpixel(_box_centre(TRANSPARENT_BOX)) == (255, 255, 255)
    assert image.getpixel((BASE_SIZE[0] - 5, BASE_SIZE[1] - 5)) != (255, 255, 255)


@pytest.mark.parametrize("name", ["i16_png", "i16b_tiff", "i32_tiff", "f32_tiff"])
def test_wide_samples_are_rescaled_by_their_range(
    corpus: dict[str, CorpusItem], name: str
) -> None:
    grey = np.asarray(_load(corpus, name))[..., 0]
    # Clipping would give all 255; dividing by 65535 would give nearly all 0.
    assert grey.min() == 0 and grey.max() == 255
    assert 60 < grey.mean() < 200
    assert len(np.unique(grey)) > 50


def test_sixteen_bit_ramp_stays_a_ramp(corpus: dict[str, CorpusItem]) -> None:
    row = np.asarray(_load(corpus, "i16_png"), dtype=int)[0, :, 0]
    assert row[0] == 0 and row[-1] == 255
    assert np.all(np.diff(row) >= 0)


@pytest.mark.parametrize("name", ["cmyk_tiff", "cmyk_jpeg", "p_png", "rgb_webp"])
def test_colour_formats_keep_the_colours(corpus: dict[str, CorpusItem], name: str) -> None:
    reference = np.asarray(base_photo(), dtype=float)
    image = np.asarray(_load(corpus, name), dtype=float)
    assert np.abs(image - reference).mean() < 12.0


@pytest.mark.parametrize("name", ["l_png", "bilevel_png"])
def test_grey_and_bilevel_become_grey_rgb(corpus: dict[str, CorpusItem], name: str) -> None:
    pixels = np.asarray(_load(corpus, name))
    assert np.array_equal(pixels[..., 0], pixels[..., 1])
    assert np.array_equal(pixels[..., 1], pixels[..., 2])
    if name == "bilevel_png":
        assert set(np.unique(pixels)) == {0, 255}


@pytest.mark.parametrize("name", ["animated_gif", "animated_png"])
def test_animation_gives_first_frame(corpus: dict[str, CorpusItem], name: str) -> None:
    image = _load(corpus, name)
    assert image.size == BASE_SIZE
    red = np.array(FRAME_COLOURS[0])
    assert np.abs(np.array(image.getpixel((100, 60))) - red).max() < 12


def test_bomb_is_refused_from_the_header_alone(corpus: dict[str, CorpusItem]) -> None:
    # bomb.png is a valid 64 MP PNG; refusing it must not decode it.
    with pytest.raises(BadInput, match="8000 x 8000"):
        load_image(corpus["bomb_png"].path)


def test_pixel_limit_is_configurable(
    corpus: dict[str, CorpusItem], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inputs, "MAX_PIXELS", 10_000)
    with pytest.raises(BadInput, match="too large"):
        load_image(corpus["rgb_jpeg"].path)


def test_pillow_bomb_warning_escalated_to_error_is_reported_as_bad_input(
    corpus: dict[str, CorpusItem], monkeypatch: pytest.MonkeyPatch
) -> None:
    # With Pillow's limit below ours and warnings turned into errors (as under
    # `python -W error`), Image.open raises DecompressionBombWarning itself.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    with pytest.warns(Image.DecompressionBombWarning):
        with pytest.raises(BadInput, match="too large"):
            load_image(corpus["rgb_jpeg"].path)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with pytest.raises(BadInput, match="too large"):
            load_image(corpus["rgb_jpeg"].path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BadInput) as caught:
        load_image(tmp_path / "gone.png")
    _assert_user_message(str(caught.value), "upload it again")
    assert str(tmp_path) not in str(caught.value)


def test_directory_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(BadInput):
        load_image(tmp_path)


def test_accepts_str_and_path(corpus: dict[str, CorpusItem]) -> None:
    path = corpus["rgb_jpeg"].path
    assert load_image(str(path)).tobytes() == load_image(path).tobytes()


# ------------------------------------------------------------- other sources


def test_none_asks_for_an_upload() -> None:
    with pytest.raises(BadInput) as caught:
        load_image(None)
    _assert_user_message(str(caught.value), "upload an image")


def test_unsupported_type() -> None:
    with pytest.raises(BadInput):
        load_image(42)  # type: ignore[arg-type]


def test_invalid_max_side_is_a_programming_error() -> None:
    with pytest.raises(ValueError) as caught:
        load_image(np.zeros((4, 4), np.uint8), max_side=1)
    assert not isinstance(caught.value, BadInput)


def test_pil_images_of_every_mode() -> None:
    base = base_photo()
    grey = base.convert("L")
    alpha = Image.new("L", base.size, 255)
    sources = {
        "RGB": base,
        "RGBA": base.convert("RGBA"),
        "RGBa": base.convert("RGBA").convert("RGBa"),
        "LA": base.convert("LA"),
        "La": Image.merge("LA", (grey, alpha)).convert("La"),
        "PA": Image.merge("PA", (base.quantize(16), alpha)),
        "P": base.quantize(16),
        "HSV": base.convert("HSV"),
        "YCbCr": base.convert("YCbCr"),
        "LAB": base.convert("LAB"),
        "1": base.convert("1"),
        "I;16B": Image.fromarray(np.full(BASE_SIZE[::-1], 300, ">u2")),
        "I": Image.fromarray(np.asarray(grey, np.int32) * 1000, mode="I"),
        "F": Image.fromarray(np.asarray(grey, np.float32) / 7.0, mode="F"),
    }
    for mode, source in sources.items():
        assert source.mode == mode
        image = load_image(source)
        assert image.mode == "RGB" and image.size == BASE_SIZE, mode
        assert image is not source
    assert sources["RGB"].mode == "RGB"  # the caller's image is left alone


def test_constant_sixteen_bit_image_is_not_stretched() -> None:
    black = Image.fromarray(np.zeros((8, 8), np.uint16))
    assert black.mode == "I;16"
    assert np.asarray(load_image(black)).max() == 0


def test_pil_image_opened_lazily_from_a_truncated_file(
    corpus: dict[str, CorpusItem],
) -> None:
    # What gr.Image(type="pil") would hand over: opened (header only), not decoded.
    with Image.open(corpus["truncated_png"].path) as lazy:
        with pytest.raises(BadInput, match="damaged"):
            load_image(lazy)


def test_pil_animation_seeked_elsewhere_gives_first_frame(
    corpus: dict[str, CorpusItem],
) -> None:
    with Image.open(corpus["animated_gif"].path) as animation:
        animation.seek(2)
        image = load_image(animation)
    assert np.abs(np.array(image.getpixel((100, 60))) - FRAME_COLOURS[0]).max() < 12


def test_numpy_arrays() -> None:
    rgb = np.asarray(base_photo())
    height, width = rgb.shape[:2]
    assert np.array_equal(np.asarray(load_image(rgb)), rgb)
    assert np.array_equal(np.asarray(load_image(rgb.astype(np.int64))), rgb)
    assert load_image(rgb[..., 0]).mode == "RGB"
    assert load_image(rgb[..., :1]).size == (width, height)
    as_float = rgb.astype(np.float32) / 255.0
    assert np.abs(np.asarray(load_image(as_float), int) - rgb).max() <= 1
    assert np.asarray(load_image(np.ones((4, 4), bool))).min() == 255
    # Non-contiguous views are fine too.
    assert load_image(rgb[:, ::-1]).size == (width, height)


def test_numpy_rgba_is_composited_over_white() -> None:
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[:5, :5, 3] = 0  # transparent black
    pixels = np.asarray(load_image(rgba))
    assert pixels[0, 0].tolist() == [255, 255, 255]
    assert pixels[9, 9].tolist() == [0, 0, 0]
    as_float = rgba.astype(np.float64) / 255.0
    assert np.asarray(load_image(as_float))[0, 0].tolist() == [255, 255, 255]


def test_numpy_sixteen_bit_and_float_ranges_are_stretched() -> None:
    ramp16 = np.tile(np.linspace(1000, 5000, 64).astype(np.uint16), (16, 1))
    grey = np.asarray(load_image(ramp16))[..., 0]
    assert grey.min() == 0 and grey.max() == 255 and len(np.unique(grey)) > 30
    depth = np.tile(np.linspace(-3.0, 40.0, 64), (16, 1))
    depth[0, 0] = np.nan
    grey = np.asarray(load_image(depth))[..., 0]
    assert grey.max() == 255 and len(np.unique(grey)) > 30


@pytest.mark.parametrize(
    ("array", "hint"),
    [
        (np.zeros((10, 10, 2), np.uint8), "shape"),
        (np.zeros((10,), np.uint8), "shape"),
        (np.zeros((2, 10, 10, 3), np.uint8), "shape"),
        (np.zeros((1, 1, 3), np.uint8), "too small"),
        (np.zeros((10, 10), np.complex64), "complex"),
        (np.zeros((10, 10), object), "type"),
        # 64 MP without allocating it: must be refused before touching the data.
        (np.broadcast_to(np.uint8(0), (8000, 8000)), "too large"),
    ],
    ids=["two-channels", "1d", "4d", "1x1", "complex", "object", "bomb"],
)
def test_bad_arrays(array: np.ndarray, hint: str) -> None:
    with pytest.raises(BadInput) as caught:
        load_image(array)
    _assert_user_message(str(caught.value), hint)


# ------------------------------------------------------------- bytes (data: URLs)


def test_check_header_refuses_a_bomb_from_its_header_alone() -> None:
    from bench.soak import bomb_png

    with pytest.raises(BadInput, match="10000 x 10000"):
        inputs.check_header(bomb_png())


def test_check_header_refuses_empty_and_non_image_bytes_and_passes_an_image(corpus: dict[str, CorpusItem]) -> None:
    with pytest.raises(BadInput, match="empty"):
        inputs.check_header(b"")
    with pytest.raises(BadInput, match="not an image"):
        inputs.check_header(b"<html>not a picture</html>")
    inputs.check_header(corpus["rgb_jpeg"].path.read_bytes())
