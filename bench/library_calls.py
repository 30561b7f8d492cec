"""Every pretrained model twice on the same input: the app's own call, and its library's documented inference.

``make bench-gpu`` times the two and reports their ratio, so "what the app adds" is measured, not
assumed. The app's side is the model wrapper the tab calls (``segmenter(image)``, ``detector(image)``,
``captioner.generate(...)``...), loaded through the app's cache (its device and precision). The
library's side is built from the same planted files by the library's own loader and run as its
documentation shows:

- torchvision: ``builder(weights=W).eval()`` and ``model(W.transforms()(image)...)``;
- transformers: ``Processor.from_pretrained(repo, local_files_only=True)`` and ``Model.from_pretrained(repo, local_files_only=True)``, the model
  card's recipe (with its post-processing where the card has one);
- open_clip: ``create_model_and_transforms(name, pretrained=tag)``, ``get_tokenizer(name)``, the
  README's zero-shot example;
- diffusers: ``AutoencoderKL.from_pretrained(repo, subfolder="vae")``, ``encode(x).latent_dist``, ``decode``.

Both sides run on the app's device in the app's precision. ``shrink`` (the CPU smoke run) lowers
the input size on both sides alike, so the code is exercised in seconds; the real run keeps every
model at its native size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from PIL import Image
from torch import nn

from models.spec import ModelSpec

SMOKE_SIDE = 64  # the input side of a smoke run, on both sides of every pair
SMOKE_PROPOSALS = 20  # a two-stage detector's region proposals in a smoke run (1,000 at full size)
SMOKE_LABELS = 3  # CLIP's labels in a smoke run
LABELS = ["astronaut", "rocket", "cat", "dog", "car", "flower", "cup of coffee", "bicycle", "tree", "house"]
TEMPLATE = "a photo of a {}."
QUESTION = "what is she holding?"
CAPTION_TOKENS = 20
ANSWER_TOKENS = 10


@dataclass
class Pair:
    """One model's two calls on one input: the app's and the library's."""

    input: str  # what both sides are given, for the table
    app: Callable[[], object]
    bare: Callable[[], object]


def _on(module: nn.Module, like: nn.Module) -> nn.Module:
    """``module`` in eval mode on the device and in the precision of the app's network ``like``."""
    parameter = next(like.parameters())
    return module.eval().requires_grad_(False).to(parameter.device, parameter.dtype)


def _placed(like: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    parameter = next(like.parameters())
    return lambda tensor: tensor.to(parameter.device, parameter.dtype)


def _side(image: Image.Image) -> str:
    return f"{image.width}x{image.height} photo"


def _torchvision_segmentation(spec: ModelSpec, app: nn.Module, image: Image.Image, shrink: bool) -> Pair:
    weights, builder = spec.source.weights, spec.source.builder
    network = _on(builder(weights=weights), app.network)
    preprocess, place = weights.transforms(), _placed(app.network)
    if shrink:
        preprocess.resize_size = app.transform.resize_size = [SMOKE_SIDE]
    size = preprocess.resize_size[0]

    @torch.inference_mode()
    def bare() -> torch.Tensor:
        return network(place(preprocess(image).unsqueeze(0)))["out"].softmax(dim=1)

    return Pair(f"{_side(image)}, shorter side resized to {size}", lambda: app(image), bare)


def _torchvision_detection(spec: ModelSpec, app: nn.Module, image: Image.Image, shrink: bool) -> Pair:
    weights, builder = spec.source.weights, spec.source.builder
    network = _on(builder(weights=weights), app.network)
    preprocess, place = weights.transforms(), _placed(app.network)
    if shrink:  # a smaller image, and few proposals: the two-stage heads run once per proposal
        for detector in (network, app.network):
            detector.transform.min_size, detector.transform.max_size = (SMOKE_SIDE,), SMOKE_SIDE
            if hasattr(detector, "rpn"):
                detector.rpn._pre_nms_top_n["testing"] = detector.rpn._post_nms_top_n["testing"] = SMOKE_PROPOSALS
    size = network.transform.min_size[0]

    @torch.inference_mode()
    def bare() -> list[dict]:
        return network([place(preprocess(image))])

    return Pair(f"{_side(image)}, the network's own resize to {size}", lambda: app(image), bare)


def _torchvision_classifier(spec: ModelSpec, app: nn.Module, image: Image.Image, shrink: bool) -> Pair:
    weights, builder = spec.source.weights, spec.source.builder
    network = _on(builder(weights=weights), app.network)
    preprocess, place = weights.transforms(), _placed(app.network)

    @torch.inference_mode()
    def bare() -> torch.Tensor:
        return network(place(preprocess(image).unsqueeze(0))).softmax(-1)

    return Pair(f"{_side(image)}, centre crop {preprocess.crop_size[0]}", lambda: app.embed([image]), bare)


def _detr(spec: ModelSpec, app: nn.Module, image: Image.Image, shrink: bool) -> Pair:
    from transformers import DetrForObjectDetection, DetrImageProcessor

    repo = spec.source.repo_id
    processor = DetrImageProcessor.from_pretrained(repo, local_files_only=True)
    network = _on(DetrForObjectDetection.from_pretrained(repo, local_files_only=True), app.network)
    if shrink:
        processor.size = app.processor.size = {"shortest_edge": SMOKE_SIDE, "longest_edge": SMOKE_SIDE}
    parameter = next(app.network.parameters())

    @torch.inference_mode()
    def bare() -> dict:
        inputs = processor(images=image, return_tensors="pt").to(parameter.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(parameter.dtype)
        outputs = network(**inputs)
        return processor.post_process_object_detection(outputs, threshold=0.9, target_sizes=[(image.height, image.width)])[0]

    return Pair(f"{_side(image)}, shorter side resized to {processor.size['shortest_edge']}", lambda: app(image), bare)


def _dinov2(spec: ModelSpec, app: nn.Module, image: Image.Image, shrink: bool) -> Pair:
    from transformers import AutoImageProcessor, Dinov2Model

    repo = spec.source.repo_id
    processor = AutoImageProcessor.from_pretrained(repo, local_files_only=True)
    network = _on(Dinov2Model.from_pretrained(repo, local_files_only=True), app.network)
    place = _placed(app.network)

    @torch.inference_mode()
    def bare() -> torch.Tensor:
        return network(pixel_values=place(processor(images=image, return_tensors="pt")["pixel_values"])).pooler_output

    return Pair(f"{_side(image)}, centre crop {processor.crop_size['height']}", lambda: app.embed([image]), bare)


def _blip(spec: ModelSpec, app: nn.Module, image: Image.Image, shrink: bool) -> Pair:
    from transformers import BlipForConditionalGeneration, BlipForQuestionAnswering, BlipProcessor

    from models.decoding import Decoding

    repo = spec.source.repo_id
    answers = spec.name.startswith("blip-vqa")
    processor = BlipProcessor.from_pretrained(repo, local_files_only=True)
    network = _on((BlipForQuestionAnswering if answers else BlipForConditionalGeneration).from_pretrained(repo, local_files_only=True), app.network)
    parameter = next(app.network.parameters())
    tokens = ANSWER_TOKENS if answers else CAPTION_TOKENS
    text = {"text": QUESTION} if answers else {}

    @torch.inference_mode()
    def bare() -> str:
        inputs = processor(images=image, return_tensors="pt", **text).to(parameter.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(parameter.dtype)
        return processor.decode(network.generate(**inputs, max_new_tokens=tokens)[0], skip_special_tokens=True)

    if answers:
        app_call = lambda: app.generate([image], [QUESTION], Decoding(max_tokens=tokens))
        what = f"greedy answer, at most {tokens} tokens"
    else:
        app_call = lambda: app.generate([image], Decoding(max_tokens=tokens))
        what = f"greedy caption, at most {tokens} tokens"
    return Pair(f"{_side(image)} at {processor.image_processor.size['height']}, {what}", app_call, bare)


def _open_clip(spec: ModelSpec, app: nn.Module, image: Image.Image, shrink: bool) -> Pair:
    import open_clip
    import torch.nn.functional as F

    from models.clip import zero_shot

    source = spec.source
    network, _, preprocess = open_clip.create_model_and_transforms(source.model_name, pretrained=source.tag)
    network = _on(network, app.model)
    tokenizer = open_clip.get_tokenizer(source.model_name)
    place = _placed(app.model)
    labels = LABELS[:SMOKE_LABELS] if shrink else LABELS
    texts = [TEMPLATE.format(label) for label in labels]

    @torch.inference_mode()
    def bare() -> torch.Tensor:
        image_features = F.normalize(network.encode_image(place(preprocess(image).unsqueeze(0))), dim=-1)
        text_features = F.normalize(network.encode_text(tokenizer(texts).to(image_features.device)), dim=-1)
        return (100.0 * image_features @ text_features.T).softmax(dim=-1)

    return Pair(
        f"{_side(image)}, {len(labels)} labels (the app keeps their text embeddings; the example encodes them per call)",
        lambda: zero_shot(app, [image], labels, [TEMPLATE]), bare,
    )


def _hugging_face_depth(spec: ModelSpec, app: nn.Module, image: Image.Image, shrink: bool) -> Pair:
    from transformers import AutoImageProcessor, AutoModelForDepthEstimation

    repo = spec.source.repo_id
    processor = AutoImageProcessor.from_pretrained(repo, local_files_only=True)
    network = _on(AutoModelForDepthEstimation.from_pretrained(repo, local_files_only=True), app.network)
    parameter = next(app.network.parameters())

    @torch.inference_mode()
    def bare() -> torch.Tensor:
        inputs = processor(images=image, return_tensors="pt").to(parameter.device)
        outputs = network(pixel_values=inputs["pixel_values"].to(parameter.dtype))
        return processor.post_process_depth_estimation(outputs, target_sizes=[(image.height, image.width)])[0]["predicted_depth"]

    return Pair(f"{_side(image)}, the processor's resize to {spec.input_size}", lambda: app(image), bare)


def _sd_autoencoder(spec: ModelSpec, app: nn.Module, image: Image.Image, shrink: bool) -> Pair:
    from diffusers import AutoencoderKL
    from diffusers.image_processor import VaeImageProcessor

    vae = _on(AutoencoderKL.from_pretrained(spec.source.repo_id, subfolder="vae", local_files_only=True), app.vae)
    processor = VaeImageProcessor(vae_scale_factor=2 ** (len(vae.config.block_out_channels) - 1))
    parameter = next(app.vae.parameters())

    @torch.inference_mode()
    def bare() -> Image.Image:
        latents = vae.encode(processor.preprocess(image).to(parameter.device, parameter.dtype)).latent_dist.mode()
        return processor.postprocess(vae.decode(latents).sample, output_type="pil")[0]

    return Pair(f"{_side(image)}, encoded and decoded", lambda: app.autoencode(image), bare)


def _torchvision_flow(spec: ModelSpec, app: nn.Module, image: Image.Image, shrink: bool) -> Pair:
    """torchvision's RAFT example: both frames resized to sides divisible by 8, ``weights.transforms()``, ``model(img1, img2)[-1]``."""
    import torchvision.transforms.functional as TF
    from PIL import ImageChops

    from models.flow import working_size

    weights, builder = spec.source.weights, spec.source.builder
    network, preprocess, place = _on(builder(weights=weights), app.network), weights.transforms(), _placed(app.network)
    second = ImageChops.offset(image, 4, 2)  # the photo moved 4 px right and 2 down: a known pan
    width, height = working_size(image.width, image.height, app.max_side)
    frames = [TF.pil_to_tensor(frame)[None] for frame in (image, second)]

    @torch.inference_mode()
    def bare() -> torch.Tensor:
        one, two = preprocess(*(TF.resize(frame, size=[height, width], antialias=False) for frame in frames))
        return network(place(one), place(two))[-1]

    return Pair(f"{_side(image)} and it panned by (4, 2) px, at {width}x{height}", lambda: app(image, second), bare)


def _swin2sr(spec: ModelSpec, app: nn.Module, image: Image.Image, shrink: bool) -> Pair:
    """The model card's recipe: the processor, ``outputs.reconstruction``, clamped to [0, 1], to uint8; the image the app's cap allows."""
    from transformers import Swin2SRForImageSuperResolution, Swin2SRImageProcessor

    from models.restoration import shrink as within

    repo = spec.source.repo_id
    processor = Swin2SRImageProcessor.from_pretrained(repo, local_files_only=True)
    network = _on(Swin2SRForImageSuperResolution.from_pretrained(repo, local_files_only=True), app.network)
    given, place = within(image.convert("RGB"), app.max_side), _placed(app.network)

    @torch.inference_mode()
    def bare() -> torch.Tensor:
        output = network(place(processor(given, return_tensors="pt").pixel_values)).reconstruction
        return (output.squeeze().float().cpu().clamp_(0, 1) * 255).round().byte()

    return Pair(f"{given.width}x{given.height} (the photo within the app's cap), upscaled x{app.scale}", lambda: app(image), bare)


BuildPair = Callable[[ModelSpec, nn.Module, Image.Image, bool], Pair]

BY_MODEL: dict[str, BuildPair] = {
    "detr-resnet50": _detr,
    "dinov2-small": _dinov2,
    "blip-caption-base": _blip,
    "blip-vqa-base": _blip,
    "clip-vit-b-16": _open_clip,
    "clip-vit-b-32": _open_clip,
    "resnet50-supervised": _torchvision_classifier,
    "sd-vae": _sd_autoencoder,
}
"""Models whose pair is not their task's torchvision one."""

BY_TASK: dict[str, BuildPair] = {
    "segmentation": _torchvision_segmentation,
    "detection": _torchvision_detection,
    "instances": _torchvision_detection,
    "pose": _torchvision_detection,
    "depth": _hugging_face_depth,
    "restoration": _swin2sr,
    "flow": _torchvision_flow,
}
"""The pair of each task whose pretrained models all run one way (torchvision's, or one transformers class)."""


def builder(spec: ModelSpec) -> BuildPair | None:
    """How ``spec``'s pair is built; None for a model with no documented library call here yet."""
    return BY_MODEL.get(spec.name) or BY_TASK.get(spec.task)


def pair_for(spec: ModelSpec, app: nn.Module, image: Image.Image, shrink: bool = False) -> Pair:
    """The two calls for ``spec``, whose app wrapper ``app`` is loaded; KeyError for a model with none yet."""
    build = builder(spec)
    if build is None:
        raise KeyError(f"no documented library call for {spec.name} in bench/library_calls.py")
    return build(spec, app, image, shrink)
