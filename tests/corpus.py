"""A small corpus of awkward image files, generated on the fly for the input tests.

Real uploads arrive in every colour mode Pillow knows, rotated by EXIF, animated, huge,
tiny, truncated, or not images at all. Checking such files into the repository would be
bulky and opaque, so this module writes them (with Pillow and numpy only) in well under
a second. Each item records whether ``demos.inputs.load_image`` must accept it; bad
items also name a word the user-facing error message must contain, so the tests check
that the message says *why*, not just that something failed.

The pictures are built from a real photo (scikit-image's "chelsea" cat, read straight
from the installed package so ``skimage`` need not be imported) when available, and from
a synthetic gradient otherwise; both are landscape, which the EXIF test relies on.
"""

from __future__ import annotations

import importlib.util
import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, features

__all__ = [
    "BASE_SIZE",
    "BOMB_SIZE",
    "GIANT_HEADER_SIZE",
    "LARGE_SIZE",
    "TRANSPARENT_BOX",
    "CorpusItem",
    "ITEM_NAMES",
    "base_photo",
    "make_corpus",
]

#: (width, height) of the base photo: landscape, small enough to keep files tiny.
BASE_SIZE: tuple[int, int] = (150, 100)
#: Allowed but must be downscaled (12 MP, a typical phone photo).
LARGE_SIZE: tuple[int, int] = (4000, 3000)
#: A real, valid PNG above ``inputs.MAX_PIXELS`` (64 MP) but below Pillow's own limit
#: (~89 MP), so only *our* header check can refuse it.
BOMB_SIZE: tuple[int, int] = (8000, 8000)
#: A PNG header claiming 400 MP: above twice Pillow's limit, so ``Image.open`` itself
#: raises ``DecompressionBombError``, which must still reach the user as BadInput.
GIANT_HEADER_SIZE: tuple[int, int] = (20000, 20000)
#: (left, top, right, bottom) of the fully transparent region in transparent items.
TRANSPARENT_BOX: tuple[int, int, int, int] = (0, 0, 40, 30)
#: Colours of the frames of the animated items; the first one must be the one loaded.
FRAME_COLOURS: tuple[tuple[int, int, int], ...] = ((220, 20, 20), (20, 200, 20), (20, 20, 220))


@dataclass(frozen=True)
class CorpusItem:
    """One generated file.

    Attributes:
        name: a stable identifier (used as the pytest id).
        path: where the file was written.
        ok: whether ``load_image`` must succeed on it.
        hint: for bad items, a word (lower case) the BadInput message must contain.
    """

    name: str
    path: Path
    ok: bool
    hint: str = ""


Maker = Callable[[Path, Image.Image], Path]
_MAKERS: list[tuple[str, bool, str, Maker]] = []


def _item(name: str, ok: bool = True, hint: str = "") -> Callable[[Maker], Maker]:
    """Register a maker: ``maker(directory, base_photo) -> path of the written file``."""

    def register(maker: Maker) -> Maker:
        _MAKERS.append((name, ok, hint, maker))
        return maker

    return register


def make_corpus(directory: Path) -> list[CorpusItem]:
    """Write every corpus file into ``directory`` and describe them, in a fixed order."""
    directory.mkdir(parents=True, exist_ok=True)
    base = base_photo()
    return [
        CorpusItem(name, maker(directory, base), ok, hint)
        for name, ok, hint, maker in _MAKERS
    ]


def base_photo() -> Image.Image:
    """A landscape RGB photo of :data:`BASE_SIZE` (a synthetic gradient as fallback)."""
    spec = importlib.util.find_spec("skimage")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            photo = Path(folder) / "data" / "chelsea.png"
            if photo.is_file():
                with Image.open(photo) as image:
                    return image.convert("RGB").resize(BASE_SIZE, Image.Resampling.BOX)
    return _gradient(BASE_SIZE)


def _gradient(size: tuple[int, int]) -> Image.Image:
    """A colourful RGB gradient (red across, green down, blue diagonal)."""
    width, height = size
    x = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    rgb = np.dstack([x, y, (x + y) / 2]).astype(np.uint8)
    return Image.fromarray(rgb, mode="RGB")


def _alpha_mask(size: tuple[int, int]) -> Image.Image:
    """Opaque everywhere except :data:`TRANSPARENT_BOX`, which is fully transparent."""
    alpha = Image.new("L", size, 255)
    alpha.paste(0, TRANSPARENT_BOX)
    return alpha


def _blacken_box(image: Image.Image) -> Image.Image:
    """Paint the transparent box black, so dropping alpha (instead of compositing
    over white) would be visible in the output."""
    image = image.copy()
    image.paste(0, TRANSPARENT_BOX)
    return image


def _save(image: Image.Image, path: Path, **params: object) -> Path:
    image.save(path, **params)
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _grey_png(size: tuple[int, int], rows: int | None = None) -> bytes:
    """A black 8-bit greyscale PNG of ``size``, written directly (no pixel buffer).

    Streams the compressed rows, so even a 64 MP image costs a fraction of a second and
    ~60 KB. With ``rows`` smaller than the height, the pixel data stops early: only
    the header is trustworthy, which is all a bomb check may read.
    """
    width, height = size
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    compressor = zlib.compressobj(6)
    row = bytes(width + 1)  # filter byte 0 + black pixels
    block = row * max(1, 1_000_000 // len(row))
    rows_left = height if rows is None else rows
    parts = []
    while rows_left > 0:
        count = min(rows_left, len(block) // len(row))
        parts.append(compressor.compress(block[: count * len(row)]))
        rows_left -= count
    parts.append(compressor.flush())
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", b"".join(parts))
        + _png_chunk(b"IEND", b"")
    )


def _animation(size: tuple[int, int]) -> list[Image.Image]:
    """Three solid frames in :data:`FRAME_COLOURS`, each with a marker square."""
    frames = []
    for colour in FRAME_COLOURS:
        frame = Image.new("RGB", size, colour)
        frame.paste((255, 255, 255), (4, 4, 12, 12))
        frames.append(frame)
    return frames


def _sixteen_bit(size: tuple[int, int], low: int, high: int) -> np.ndarray:
    """A horizontal ramp from ``low`` to ``high`` (a narrow slice of the 16-bit range,
    so clipping gives all-white and dividing by 257 gives near-black)."""
    width, height = size
    ramp = np.linspace(low, high, width)[None, :].repeat(height, 0)
    return np.rint(ramp)


# ------------------------------------------------------------------ must load


@_item("rgb_jpeg")
def _rgb_jpeg(directory: Path, base: Image.Image) -> Path:
    return _save(base, directory / "rgb.jpg", quality=90)


@_item("rgb_webp")
def _rgb_webp(directory: Path, base: Image.Image) -> Path:
    if not features.check("webp"):  # fall back to BMP: still a different decoder
        return _save(base, directory / "rgb.bmp")
    return _save(base, directory / "rgb.webp", quality=80)


@_item("l_png")
def _l_png(directory: Path, base: Image.Image) -> Path:
    return _save(base.convert("L"), directory / "l.png")


@_item("la_png")
def _la_png(directory: Path, base: Image.Image) -> Path:
    grey = _blacken_box(base.convert("L"))
    image = Image.merge("LA", (grey, _alpha_mask(base.size)))
    return _save(image, directory / "la.png")


@_item("p_png")
def _p_png(directory: Path, base: Image.Image) -> Path:
    return _save(base.quantize(colors=64), directory / "p.png")


@_item("p_transparency_png")
def _p_transparency_png(directory: Path, base: Image.Image) -> Path:
    """Palette image whose index 255 (black) is declared transparent via tRNS."""
    image = base.quantize(colors=255)
    palette = image.getpalette() or []
    palette = (palette + [0] * 768)[:768]
    palette[255 * 3 : 256 * 3] = [0, 0, 0]
    image.putpalette(palette)
    image.paste(255, TRANSPARENT_BOX)
    return _save(image, directory / "p_transparency.png", transparency=255)


@_item("rgba_png")
def _rgba_png(directory: Path, base: Image.Image) -> Path:
    image = _blacken_box(base).convert("RGBA")
    image.putalpha(_alpha_mask(base.size))
    return _save(image, directory / "rgba.png")


@_item("i16_png")
def _i16_png(directory: Path, base: Image.Image) -> Path:
    ramp = _sixteen_bit(base.size, 1000, 5000).astype(np.uint16)
    return _save(Image.fromarray(ramp), directory / "i16.png")


@_item("i16b_tiff")
def _i16b_tiff(directory: Path, base: Image.Image) -> Path:
    ramp = _sixteen_bit(base.size, 30000, 34000).astype(">u2")
    image = Image.frombytes("I;16B", base.size, ramp.tobytes())
    return _save(image, directory / "i16b.tiff")


@_item("i32_tiff")
def _i32_tiff(directory: Path, base: Image.Image) -> Path:
    ramp = _sixteen_bit(base.size, -100_000, 300_000).astype(np.int32)
    return _save(Image.fromarray(ramp, mode="I"), directory / "i32.tiff")


@_item("f32_tiff")
def _f32_tiff(directory: Path, base: Image.Image) -> Path:
    grey = np.asarray(base.convert("L"), dtype=np.float32)
    depth = grey / 255.0 * 40.0 - 7.5  # e.g. a depth map in metres, partly negative
    return _save(Image.fromarray(depth, mode="F"), directory / "f32.tiff")


@_item("cmyk_tiff")
def _cmyk_tiff(directory: Path, base: Image.Image) -> Path:
    return _save(base.convert("CMYK"), directory / "cmyk.tiff")


@_item("cmyk_jpeg")
def _cmyk_jpeg(directory: Path, base: Image.Image) -> Path:
    return _save(base.convert("CMYK"), directory / "cmyk.jpg", quality=90)


@_item("exif6_jpeg")
def _exif6_jpeg(directory: Path, base: Image.Image) -> Path:
    """A landscape JPEG tagged 'rotate 90 CW to display': must load as portrait."""
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation
    return _save(base, directory / "exif6.jpg", exif=exif, quality=90)


@_item("animated_gif")
def _animated_gif(directory: Path, base: Image.Image) -> Path:
    first, *rest = _animation(base.size)
    return _save(first, directory / "animated.gif", save_all=True, append_images=rest,
                 duration=100, loop=0)


@_item("animated_png")
def _animated_png(directory: Path, base: Image.Image) -> Path:
    first, *rest = _animation(base.size)
    return _save(first, directory / "animated.png", save_all=True, append_images=rest,
                 duration=100, loop=0)


@_item("bilevel_png")
def _bilevel_png(directory: Path, base: Image.Image) -> Path:
    return _save(base.convert("1"), directory / "bilevel.png")


@_item("large_png")
def _large_png(directory: Path, base: Image.Image) -> Path:
    """12 MP, cheap to write: a greyscale gradient blown up with NEAREST."""
    image = Image.linear_gradient("L").resize(LARGE_SIZE, Image.Resampling.NEAREST)
    return _save(image, directory / "large.png", compress_level=1)


@_item("large_exif6_jpeg")
def _large_exif6_jpeg(directory: Path, base: Image.Image) -> Path:
    """A 12 MP landscape phone photo stored sideways: exercises JPEG draft decoding,
    rotation and downscaling together (must come out portrait, 768 x 1024)."""
    ramp = Image.linear_gradient("L").resize(LARGE_SIZE, Image.Resampling.BILINEAR)
    image = Image.merge("RGB", (ramp, ramp.transpose(Image.Transpose.FLIP_LEFT_RIGHT), ramp))
    exif = Image.Exif()
    exif[0x0112] = 6
    return _save(image, directory / "large_exif6.jpg", exif=exif, quality=75)


# ------------------------------------------------------------------ must refuse


@_item("bomb_png", ok=False, hint="too large")
def _bomb_png(directory: Path, base: Image.Image) -> Path:
    path = directory / "bomb.png"
    path.write_bytes(_grey_png(BOMB_SIZE))
    return path


@_item("giant_header_png", ok=False, hint="too large")
def _giant_header_png(directory: Path, base: Image.Image) -> Path:
    path = directory / "giant_header.png"
    path.write_bytes(_grey_png(GIANT_HEADER_SIZE, rows=1))
    return path


@_item("tiny_1x1_png", ok=False, hint="too small")
def _tiny_1x1_png(directory: Path, base: Image.Image) -> Path:
    return _save(Image.new("RGB", (1, 1), (10, 20, 30)), directory / "tiny_1x1.png")


@_item("thin_1x500_png", ok=False, hint="too small")
def _thin_1x500_png(directory: Path, base: Image.Image) -> Path:
    return _save(Image.new("L", (1, 500), 128), directory / "thin_1x500.png")


@_item("empty_png", ok=False, hint="empty")
def _empty_png(directory: Path, base: Image.Image) -> Path:
    path = directory / "empty.png"
    path.write_bytes(b"")
    return path


@_item("truncated_png", ok=False, hint="damaged")
def _truncated_png(directory: Path, base: Image.Image) -> Path:
    buffer = io.BytesIO()
    base.save(buffer, format="PNG")
    data = buffer.getvalue()
    path = directory / "truncated.png"
    path.write_bytes(data[: len(data) // 2])
    return path


@_item("truncated_jpeg", ok=False, hint="damaged")
def _truncated_jpeg(directory: Path, base: Image.Image) -> Path:
    buffer = io.BytesIO()
    base.save(buffer, format="JPEG", quality=90)
    data = buffer.getvalue()
    path = directory / "truncated.jpg"
    path.write_bytes(data[: len(data) // 2])
    return path


@_item("text_as_png", ok=False, hint="not an image")
def _text_as_png(directory: Path, base: Image.Image) -> Path:
    path = directory / "notes.png"
    path.write_text("These are my lecture notes, not a picture.\n" * 20, encoding="utf-8")
    return path


@_item("random_bytes_jpg", ok=False, hint="not an image")
def _random_bytes_jpg(directory: Path, base: Image.Image) -> Path:
    path = directory / "random.jpg"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    return path


@_item("svg_drawing", ok=False, hint="not an image")
def _svg_drawing(directory: Path, base: Image.Image) -> Path:
    """Vector graphics: browsers show them, Pillow cannot decode them."""
    path = directory / "drawing.svg"
    path.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
        '<circle cx="32" cy="32" r="20" fill="red"/></svg>\n',
        encoding="utf-8",
    )
    return path


#: Names of all items, in generation order; known at import time so tests can be
#: parametrised before the files exist.
ITEM_NAMES: tuple[str, ...] = tuple(name for name, _, _, _ in _MAKERS)
