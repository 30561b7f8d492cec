"""Captions and questions: each model's time per caption or answer, and the pretrained caption's first token.

Local rows time the wrappers' ``generate`` (processor, network, decoding: what ``/caption`` and
``/answer`` run before explaining) on an unseen 128x128 ShapesWorld scene, greedy, and the whole
tab handler (which adds the step table and the Grad-CAM). Target: p50 at most 100 ms.

The pretrained rows use BLIP base's full architecture with random weights (``models.planting.blip_parts``):
a greedy caption of at most 20 tokens (random weights never stop early, so every caption is the
longest) and an answer, at 384x384 on an astronaut photo. "First token" is the time from the end of
the image encoding (a forward hook on the vision model) to the first partial caption the stream
hands out, which is what the page receives next (target 1.5 s).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from PIL import Image

import models
import shapesworld
from demos import captioning as tab
from demos.examples import example_images
from models.captioning import Answerer, Captioner
from models.decoding import Decoding

from .report import ms, section
from .stats import Samples, seconds

LOCAL_LIMIT_MS = 100.0
FIRST_TOKEN_LIMIT_S = 1.5
LOCAL = ("blip-caption-shapes", "lstm-caption-shapes", "blip-vqa-shapes")


@dataclass
class CaptioningBench:
    rows: dict[str, Samples] = field(default_factory=dict)
    local_predict: dict[str, Samples] = field(default_factory=dict)
    first_token: Samples | None = None
    setup: str = ""

    def markdown(self) -> str:
        rows = [[what, ms(s.p50), ms(s.p95), str(s.n)] for what, s in self.rows.items()]
        targets = []
        for name, samples in self.local_predict.items():
            value = samples.p50 * 1000
            targets.append([f"{name}: greedy {'caption' if 'caption' in name else 'answer'}, p50", f"<= {LOCAL_LIMIT_MS:g} ms", f"{value:.1f} ms", "PASS" if value <= LOCAL_LIMIT_MS else "FAIL"])
        if self.first_token is not None:
            value = self.first_token.p50
            targets.append(["BLIP base: first streamed token after the image encoding, p50", f"<= {FIRST_TOKEN_LIMIT_S:g} s", f"{value:.3f} s", "PASS" if value <= FIRST_TOKEN_LIMIT_S else "FAIL"])
        return section("Captions and questions (`/caption`, `/answer`)", f"Pretrained: {self.setup}", rows, targets)

    def to_dict(self) -> dict:
        return {
            "rows": {k: s.summary() for k, s in self.rows.items()},
            "first_token": self.first_token.summary() if self.first_token else None,
            "setup": self.setup,
        }


def measure(local_repeats: int = 30, pretrained_repeats: int = 3) -> CaptioningBench:
    bench = CaptioningBench()
    scene = shapesworld.generate(shapesworld.SPLITS["test"].start + 11)
    image = Image.fromarray(scene.image)
    path = next(p for p in example_images() if "shapesworld" in p)
    for name in LOCAL:
        if not models.spec(name).availability().usable:
            continue
        model = models.get(name)
        call = _caption_call(model, image) if isinstance(model, Captioner) else _answer_call(model, image, scene.qa[0].question)
        samples = _timed(call, local_repeats, warmup=3)
        bench.local_predict[name] = samples
        bench.rows[f"{name}: greedy generate, 128x128 scene"] = samples
        handler = (
            (lambda: list(tab._caption_ui(path, name, "", "greedy", 3, 0.9, 1.0, 20, 1, 0)))
            if isinstance(model, Captioner)
            else (lambda: list(tab._answer_ui(path, name, scene.qa[0].question)))
        )
        bench.rows[f"{name}: the tab's whole handler (+ steps, top-5, Grad-CAM)"] = _timed(handler, max(3, local_repeats // 3), warmup=1)
    _measure_pretrained(bench, pretrained_repeats)
    return bench


def _measure_pretrained(bench: CaptioningBench, repeats: int) -> None:
    from skimage import data as skdata

    from models.planting import blip_parts

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    where = f"float16 on {torch.cuda.get_device_name()}" if device.type == "cuda" else f"float32 on the CPU, {torch.get_num_threads()} torch thread(s)"
    bench.setup = f"BLIP base's full architecture (ViT-B/16 at 384x384, BERT-base text sides) with random weights, {where}."
    photo = Image.fromarray(skdata.astronaut())
    network, processor = blip_parts("caption", full=True)
    captioner = Captioner(network.to(device, dtype), processor.image_processor, processor.tokenizer, "blip-caption-base")
    decoding = Decoding(max_tokens=20)
    bench.rows["blip-caption-base: greedy caption, 20 tokens"] = _timed(lambda: captioner.generate([photo], decoding), repeats, warmup=1)
    bench.first_token = first_token_waits(captioner, photo, decoding, repeats)
    bench.rows["blip-caption-base: image encoded -> first streamed token"] = bench.first_token
    del captioner, network
    network, processor = blip_parts("answer", full=True)
    answerer = Answerer(network.to(device, dtype), processor.image_processor, processor.tokenizer, "blip-vqa-base")
    bench.rows["blip-vqa-base: greedy answer, at most 10 tokens"] = _timed(
        lambda: answerer.generate([photo], ["what is she holding?"], Decoding(max_tokens=10)), repeats, warmup=1
    )


def first_token_waits(captioner: Captioner, photo: Image.Image, decoding: Decoding, repeats: int) -> Samples:
    """Seconds from the end of the image encoding (a hook on the vision model) to the first partial caption streamed.

    What a page waits for once the image is encoded; each stream runs to its end, so the next run
    does not share the device with a leftover one. One extra run first, as a warm-up.
    """
    encoded_at: list[float] = []
    hook = captioner.network.vision_model.register_forward_hook(lambda *_: encoded_at.append(seconds_now()))
    waits = []
    try:
        for _ in range(repeats + 1):
            encoded_at.clear()
            first = None
            for item in captioner.stream(photo, decoding):
                if first is None and isinstance(item, list) and any(item):
                    first = seconds_now()
            waits.append(first - encoded_at[0])
    finally:
        hook.remove()
    return Samples(waits[1:])


def seconds_now() -> float:
    """A clock reading with the GPU's queued work finished first, so a hook's time is when the work ended."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter()


def _caption_call(model: Captioner, image: Image.Image):
    return lambda: model.generate([image], Decoding(max_tokens=20))


def _answer_call(model: Answerer, image: Image.Image, question: str):
    return lambda: model.generate([image], [question], Decoding(max_tokens=5))


def _timed(fn, repeats: int, warmup: int) -> Samples:
    for _ in range(warmup):
        fn()
    times = [seconds(fn) for _ in range(repeats)]
    return Samples(times)
