"""Frames from an uploaded video, with a hard bound on the work: the motion tabs' video input.

Decoded with PyAV (FFmpeg's libraries, the decoder torchvision's own video reader used): the file
is opened, the stream seeked to the asked time and only the frames from there are decoded, at most
``MAX_DECODED`` of them, so a long video costs what a short one does. A file that is not a video,
a video without two frames, or a time past its end gets a clear message.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from PIL import Image

from .inputs import BadInput

MAX_DECODED = 120  # frames decoded at most per request, wherever in the video they are
MAX_BYTES = 200 * 1024 * 1024
MAX_SIDE = 1024  # a decoded frame's longer side is brought down to this


def frame_pair(path: str | Path, seconds: float = 0.0, gap: int = 1) -> tuple[Image.Image, Image.Image, dict]:
    """Frames n and n + ``gap`` of the video, n the first frame at or after ``seconds``, and what was read.

    Raises BadInput for a file that is not a video, a video with fewer than two frames from there on,
    or one whose frames from ``seconds`` on do not reach ``gap`` within ``MAX_DECODED`` frames.
    """
    import av

    path = Path(path)
    if not path.is_file():
        raise BadInput("the video file is missing; upload it again")
    if path.stat().st_size > MAX_BYTES:
        raise BadInput(f"the video is larger than {MAX_BYTES // 2**20} MB; cut the part you want first")
    gap = max(1, int(gap))
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise BadInput("the file holds no video stream")
            stream = container.streams.video[0]
            duration = _duration(container, stream)
            if duration is not None and seconds > duration:
                raise BadInput(f"the video lasts {duration:.1f} s: pick a time before its end")
            if seconds > 0 and stream.time_base is not None:
                container.seek(int(seconds / stream.time_base), stream=stream, backward=True)
            frames, decoded = [], 0
            for frame in container.decode(stream):
                decoded += 1
                if frame.time is None or frame.time + 1e-6 >= seconds:  # a seek lands on the keyframe before the time
                    frames.append(frame)
                if len(frames) > gap or decoded >= MAX_DECODED:
                    break
    except BadInput:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as error:
        raise BadInput(f"this file is not a video that can be read ({type(error).__name__})") from None
    if len(frames) <= gap:
        if decoded <= 1:
            raise BadInput("the video has a single frame: optical flow needs two")
        raise BadInput(f"the video has no frame {gap} after the one at {seconds:.2f} s within {MAX_DECODED} decoded frames")
    first, second = (_image(frames[0]), _image(frames[gap]))
    return first, second, {
        "time_s": round(float(frames[0].time or 0.0), 3), "gap_frames": gap, "frames_decoded": decoded,
        "fps": float(stream.average_rate) if stream.average_rate else None, "duration_s": duration, "size": list(first.size),
    }


def _duration(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return float(Fraction(container.duration, 1_000_000)) if container.duration else None


def _image(frame) -> Image.Image:
    image = frame.to_image().convert("RGB")
    if max(image.size) > MAX_SIDE:
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return image
