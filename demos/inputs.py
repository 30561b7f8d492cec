"""One place that turns whatever a user hands the app into a clean RGB picture.

Every demo starts from an image a stranger uploaded. Browsers and phones send files in
every colour format Pillow knows (palette GIFs, 16-bit PNGs from microscopes, CMYK TIFFs
from print shops, rotated phone JPEGs, animations) and sometimes files that are not
images at all. Instead of letting each demo discover those cases through a stack trace,
:func:`load_image` normalises every input to the one thing the models expect (an 8-bit
RGB ``PIL.Image`` of bounded size) and turns every failure into :class:`BadInput`, whose
message is a sentence a web user can act on. The UI layer shows that message as-is
(``gr.Error(str(err))``), so this module deliberately does not import Gradio.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

import settings

__all__ = [
    "BadInput",
    "DEFAULT_MAX_SIDE",
    "MAX_PIXELS",
    "MIN_SIDE",
    "NO_IMAGE",
    "SUPPORTED_FORMATS",
    "ImageSource",
    "check_header",
    "load_image",
]

#: Largest image (width x height, read from the file header *before* decoding) that is
#: accepted. Decoding costs memory proportional to this, and a small file can claim a
#: huge size (a "decompression bomb"), so the check must happen before any pixel is
#: decoded. 50 MP covers every phone and most DSLR photos. Pillow's own, larger limit
#: (``Image.MAX_IMAGE_PIXELS``) still applies on top and is reported the same way.
MAX_PIXELS: int = 50_000_000

#: Smallest accepted width and height. A 1-pixel-wide image cannot be resized,
#: convolved or displayed meaningfully, and is almost always an upload mistake.
MIN_SIDE: int = 2

#: Default clamp for the longer side: the models are run at far lower resolutions, and
#: 2 CPU cores should not spend seconds resizing a 12 MP photo they then shrink anyway.
DEFAULT_MAX_SIDE: int = settings.MAX_IMAGE_SIDE

#: Named in messages so the user knows what to upload instead.
SUPPORTED_FORMATS: str = "PNG, JPEG, WebP, GIF, BMP or TIFF"

#: What every tab says when asked to run without an image.
NO_IMAGE: str = f"Pick or upload an image first ({SUPPORTED_FORMATS})."

#: Transparent pixels are shown over white, like a browser or an image viewer does.
#: Pillow's plain ``convert("RGB")`` would drop alpha and reveal whatever colour the
#: transparent pixels happen to store (often black), which users read as a bug.
BACKGROUND: tuple[int, int, int] = (255, 255, 255)

ImageSource = Union[str, "os.PathLike[str]", Image.Image, np.ndarray, None]

# Modes that carry an alpha channel (premultiplied ones included).
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
# Single-band modes with more than 8 bits per sample: must be rescaled, not clipped.
_WIDE_MODES = frozenset({"I", "F", "I;16", "I;16L", "I;16B", "I;16N"})


class BadInput(ValueError):
    """A problem with the user's input, worded for the user.

    The message is a complete sentence saying what was wrong and what to do about it;
    it never contains a traceback or an internal path, so the web UI can show it
    verbatim. It subclasses ``ValueError`` so code that does not know about it still
    treats it as an invalid argument.
    """


def load_image(source: ImageSource, max_side: int = DEFAULT_MAX_SIDE) -> Image.Image:
    """Return ``source`` as an RGB image whose longer side is at most ``max_side``.

    ``source`` may be a file path (what ``gr.Image(type="filepath")`` passes), a PIL
    image, or a numpy array (H x W, H x W x 1/3/4; uint8, uint16, other integers, bool
    or float). The result is always a new, fully decoded ``PIL.Image`` in mode "RGB"
    with EXIF orientation applied, transparency composited over white, wide (16/32-bit,
    float) samples rescaled to 8 bits by their actual range, animations reduced to
    their first frame, and the longer side shrunk with LANCZOS when above ``max_side``.

    Raises:
        BadInput: for anything a user could have uploaded wrongly: nothing, an empty or
            non-image file, a damaged/truncated file, an image that is too large
            (decompression bomb) or too small, or an unusable array.
        ValueError: if ``max_side`` itself is invalid (a programming error).
    """
    if max_side < MIN_SIDE:
        raise ValueError(f"max_side must be at least {MIN_SIDE}, got {max_side}")
    if source is None:
        raise BadInput(NO_IMAGE)
    if isinstance(source, (str, os.PathLike)):
        image = _load_file(Path(source), max_side)
    elif isinstance(source, Image.Image):
        image = _load_pil(source)
    elif isinstance(source, np.ndarray):
        image = _load_array(source)
    else:
        raise BadInput(
            f"Expected an image, but received a value of type {type(source).__name__}. "
            f"Please upload an image ({SUPPORTED_FORMATS})."
        )
    _check_min_size(image.size)
    return _fit(image, max_side)


def check_header(data: bytes, name: str = "the image") -> None:
    """Refuse ``data`` (an encoded image) that is no image or too large, from its header alone.

    For images that arrive as bytes (``data:`` URLs) rather than as an uploaded file: the same
    checks :func:`load_image` makes before decoding, so a small file claiming a huge size is
    refused before anything decodes it or writes it to disk.
    """
    if not data:
        raise BadInput(f"The image '{name}' is empty (0 bytes). Please send the image again.")
    with _open(io.BytesIO(data), name) as opened:
        _check_max_size(opened.size)
        _check_min_size(opened.size)


def _load_file(path: Path, max_side: int) -> Image.Image:
    """Decode the first frame of the file at ``path`` into a new, file-independent image.

    The size checks run on the header, before decoding, so a bomb costs nothing. The
    ``with`` block closes the file whatever happens; the image returned is a converted
    copy that no longer needs it.
    """
    name = path.name or "the file"
    _check_file_exists(path, name)
    with _open(path, name) as opened:
        _check_max_size(opened.size)
        _check_min_size(opened.size)
        _decode(opened, name, max_side)
        return _normalise(opened)


def _open(path: Path | io.BytesIO, name: str) -> Image.Image:
    """``Image.open`` (header only), with its failures worded for the user."""
    try:
        return Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        # Pillow's own limit; raised at open time for sizes far above MAX_PIXELS (or
        # a warning, when an application has made warnings errors).
        raise BadInput(
            f"The image '{name}' is too large to process safely (over "
            f"{_pixel_limit() / 1e6:.0f} megapixels). Please upload a smaller image."
        ) from err
    except UnidentifiedImageError as err:
        raise BadInput(
            f"The file '{name}' is not an image that can be opened. "
            f"Please upload a picture in a common format ({SUPPORTED_FORMATS})."
        ) from err
    except Exception as err:  # e.g. a header that parses halfway, then breaks
        raise _damaged(name) from err


def _decode(image: Image.Image, name: str, max_side: int) -> None:
    """Decode all pixels of the first frame now, so a truncated file fails *here*.

    Pillow decodes lazily; without an explicit ``load()`` a damaged file would only
    fail later, deep inside a model, with an unhelpful error. Any exception while
    decoding means the file's data is bad, so all of them become BadInput.
    """
    try:
        image.seek(0)  # the first frame of an animation; a no-op for still images
        # JPEG only: decode directly at a reduced scale (still >= max_side on both
        # sides), which makes large phone photos several times cheaper to load.
        image.draft(None, (max_side, max_side))
        image.load()
    except MemoryError as err:
        raise BadInput(
            f"The image '{name}' needs more memory than the server can spare. "
            "Please upload a smaller image."
        ) from err
    except Exception as err:  # truncated data, corrupt chunk, bad checksum, ...
        raise _damaged(name) from err


def _damaged(name: str) -> BadInput:
    """The message for a file that starts like an image but cannot be decoded."""
    return BadInput(
        f"The image '{name}' could not be read completely: the file seems damaged "
        "or cut short (for example by an interrupted download). "
        "Please upload an intact copy."
    )


def _check_file_exists(path: Path, name: str) -> None:
    """Fail early, with a specific message, for a missing, non-regular or empty file."""
    try:
        size = path.stat().st_size
    except OSError as err:
        raise BadInput(
            f"The file '{name}' could not be found on the server. Please upload it again."
        ) from err
    if not path.is_file():
        raise BadInput(f"'{name}' is not a file. Please upload an image file.")
    if size == 0:
        raise BadInput(
            f"The file '{name}' is empty (0 bytes). Please upload the image again."
        )


# ------------------------------------------------------------------ other sources


def _load_pil(image: Image.Image) -> Image.Image:
    """Normalise a PIL image given by the caller (e.g. ``gr.Image(type="pil")``).

    Such an image may still be lazily bound to a file, so decoding it can fail exactly
    like a file can; it is also checked against the size limit first.
    """
    _check_max_size(image.size)
    try:
        if getattr(image, "is_animated", False) and image.tell() != 0:
            image.seek(0)
        image.load()
    except Exception as err:
        raise BadInput(
            "The image could not be read completely: the data seems damaged or cut "
            "short. Please upload an intact copy."
        ) from err
    return _normalise(image)


def _load_array(array: np.ndarray) -> Image.Image:
    """Turn a numpy image into RGB, scaling its samples to 8 bits.

    Arrays follow the numpy/scikit-image conventions: floats in [0, 1] are fractions of
    full brightness, and signed integers in [0, 255] are ordinary 8-bit pixels that
    arithmetic promoted; any other data (uint16, other floats, ...) is stretched over
    its actual range, like 16-bit files, so that one colour transform applies to all
    channels alike. Alpha (a 4th channel) is scaled by its nominal range, never
    stretched, so "fully opaque" stays opaque.
    """
    array = _squeeze_channels(array)
    height, width = array.shape[:2]
    _check_max_size((width, height))
    _check_min_size((width, height))
    if array.ndim == 3 and array.shape[2] == 4:
        rgb = _to_uint8(array[..., :3])
        alpha = _alpha_to_uint8(array[..., 3])
        rgba = np.dstack([rgb, alpha])
        return _composite(Image.fromarray(rgba, mode="RGBA"))
    pixels = _to_uint8(array)
    mode = "L" if pixels.ndim == 2 else "RGB"
    return Image.fromarray(pixels, mode=mode).convert("RGB")


def _squeeze_channels(array: np.ndarray) -> np.ndarray:
    """Validate the array's shape and dtype; drop a trailing single channel."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise BadInput(
            f"The image data has shape {tuple(array.shape)}; expected height x width "
            "(greyscale), height x width x 3 (RGB) or height x width x 4 (RGBA)."
        )
    if not (array.dtype == np.bool_ or np.issubdtype(array.dtype, np.number)):
        raise BadInput(f"The image data has unsupported type {array.dtype}.")
    if np.issubdtype(array.dtype, np.complexfloating):
        raise BadInput("The image data is complex-valued; expected real numbers.")
    return array


def _to_uint8(array: np.ndarray) -> np.ndarray:
    """Map samples of any numeric dtype to uint8 (see :func:`_load_array`)."""
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if array.dtype == np.bool_:
        return np.ascontiguousarray(array, dtype=np.uint8) * np.uint8(255)
    values = array.astype(np.float64)
    finite = values[np.isfinite(values)]
    in_range = finite.size > 0 and finite.min() >= 0.0
    if np.issubdtype(array.dtype, np.floating) and in_range and finite.max() <= 1.0:
        return _float_to_uint8(np.nan_to_num(values, nan=0.0) * 255.0)
    if np.issubdtype(array.dtype, np.signedinteger) and in_range and finite.max() <= 255:
        # uint8 pixels that numpy arithmetic promoted to int32/int64: keep as they are.
        return array.astype(np.uint8)
    return _stretch(values, nominal_max=_nominal_max(array.dtype))


def _alpha_to_uint8(alpha: np.ndarray) -> np.ndarray:
    """Scale an alpha channel by the full range of its dtype (1.0 for floats)."""
    if alpha.dtype == np.uint8:
        return alpha
    if alpha.dtype == np.bool_:
        return alpha.astype(np.uint8) * np.uint8(255)
    if np.issubdtype(alpha.dtype, np.floating):
        return _float_to_uint8(np.nan_to_num(alpha.astype(np.float64)) * 255.0)
    return _float_to_uint8(alpha.astype(np.float64) * (255.0 / _nominal_max(alpha.dtype)))


def _nominal_max(dtype: np.dtype) -> float:
    """Full-scale value of a dtype: 65535 for uint16, 1.0 for floats."""
    if np.issubdtype(dtype, np.integer):
        return float(np.iinfo(dtype).max)
    return 1.0


# --------------------------------------------------------------- mode conversion


def _normalise(image: Image.Image) -> Image.Image:
    """Apply EXIF orientation and convert any Pillow mode to a new RGB image."""
    image = _exif_transpose(image)
    mode = image.mode
    if mode == "La":  # premultiplied L+alpha: Pillow only converts it via LA
        image, mode = image.convert("LA"), "LA"
    if mode in _WIDE_MODES:  # (a rare tRNS colour on a 16-bit image is ignored)
        return _wide_to_rgb(image)
    if mode in _ALPHA_MODES or "transparency" in image.info:
        # "transparency" is a tRNS colour/palette entry of an L, RGB or P image.
        return _composite(image.convert("RGBA"))
    try:
        # RGB (copy), L, 1, P, CMYK, YCbCr, HSV, LAB, and rarer modes Pillow knows.
        return image.convert("RGB")
    except (ValueError, OSError) as err:
        raise BadInput(
            f"The image uses the colour format '{mode}', which is not supported. "
            "Please save it as an ordinary RGB PNG or JPEG and upload it again."
        ) from err


def _exif_transpose(image: Image.Image) -> Image.Image:
    """Rotate/flip as the camera recorded, so phone photos are not shown sideways.

    A corrupt EXIF block must not cost the user their upload: the picture is then
    used as stored. Always returns a new image, so the caller may close the file.
    """
    try:
        rotated = ImageOps.exif_transpose(image)
    except Exception:
        rotated = None
    if rotated is None or rotated is image:
        return image.copy()
    return rotated


def _composite(rgba: Image.Image) -> Image.Image:
    """Flatten an RGBA image over :data:`BACKGROUND`."""
    background = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _wide_to_rgb(image: Image.Image) -> Image.Image:
    """Rescale a 16-bit, 32-bit integer or float image to 8 bits by its actual range.

    Clipping would turn most 16-bit photos and depth maps pure white, and dividing by
    the nominal maximum would turn 12-bit sensor data nearly black; stretching the
    actual range keeps the structure visible, which is what a user expects to see.
    """
    values = np.asarray(image).astype(np.float64)
    nominal = 65535.0 if image.mode.startswith("I;16") else 255.0
    grey = _stretch(values, nominal_max=nominal)
    return Image.fromarray(grey, mode="L").convert("RGB")


def _stretch(values: np.ndarray, nominal_max: float) -> np.ndarray:
    """Linearly map [min, max] of the finite samples onto [0, 255].

    A constant image has no range to stretch; it is scaled by ``nominal_max`` instead,
    so an all-black 16-bit image stays black rather than becoming grey or white.
    """
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(values.shape, dtype=np.uint8)
    low = float(values[finite].min())
    high = float(values[finite].max())
    values = np.where(finite, values, low)
    if high > low:
        return _float_to_uint8((values - low) * (255.0 / (high - low)))
    return _float_to_uint8(values * (255.0 / nominal_max))


def _float_to_uint8(values: np.ndarray) -> np.ndarray:
    """Round and clip floats to uint8 (clipping only guards against rounding drift)."""
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------- size handling


def _check_max_size(size: tuple[int, int]) -> None:
    """Refuse images above the pixel limit, using only the claimed size."""
    width, height = size
    limit = _pixel_limit()
    if width * height > limit:
        raise BadInput(
            f"The image is too large: {width} x {height} pixels "
            f"({width * height / 1e6:.1f} megapixels); the limit is "
            f"{limit / 1e6:.0f} megapixels. Please upload a smaller image."
        )


def _check_min_size(size: tuple[int, int]) -> None:
    """Refuse images too small to be processed (see :data:`MIN_SIDE`)."""
    width, height = size
    if width < MIN_SIDE or height < MIN_SIDE:
        raise BadInput(
            f"The image is too small: {width} x {height} pixels; both width and height "
            f"must be at least {MIN_SIDE} pixels. Please upload a larger image."
        )


def _pixel_limit() -> int:
    """The stricter of :data:`MAX_PIXELS` and Pillow's own bomb limit (if enabled)."""
    pil_limit = Image.MAX_IMAGE_PIXELS
    return min(MAX_PIXELS, int(pil_limit)) if pil_limit else MAX_PIXELS


def _fit(image: Image.Image, max_side: int) -> Image.Image:
    """Shrink so the longer side is ``max_side``, keeping the aspect ratio.

    ``reducing_gap`` lets Pillow first reduce by an integer factor (cheap), then finish
    with LANCZOS; the result is visually identical and much faster on large photos.
    The shorter side never drops below :data:`MIN_SIDE`, the size we promise.
    """
    width, height = image.size
    longer = max(width, height)
    if longer <= max_side:
        return image
    scale = max_side / longer
    size = (
        max(MIN_SIDE, round(width * scale)),
        max(MIN_SIDE, round(height * scale)),
    )
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
