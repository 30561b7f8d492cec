"""Plant random-init weights of a real pretrained architecture where its library looks first.

No network is reachable on the development and CI machines, yet the download-and-load code
must stay real. So tests and benchmarks write a checkpoint of the *real architecture* with
random weights into a (temporary) TORCH_HOME, or a snapshot into a (temporary) Hugging Face
cache under the real repo id, then call the very loader the app calls. The weights are random,
so the outputs are meaningless, but shapes, categories, preprocessing, latency and memory are
exactly those of the real model.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

import torch

from .sources import HuggingFaceWeights, OpenClipWeights, PipelineWeights, TorchvisionWeights
from .spec import ModelSpec


def plant_random_weights(
    spec: ModelSpec, torch_home: Path | None = None, seed: int = 0, hf_home: Path | None = None, full: bool = False
) -> Path:
    """Write random-init weights for ``spec`` where its library looks; returns the file or snapshot folder.

    torchvision models go to ``torch_home/hub/checkpoints`` (``torch_home`` must be what TORCH_HOME
    points to when the model is loaded); Hugging Face repos, and the repos open_clip's tags name, to
    ``hf_home/hub`` (HF_HOME's layout). ``full``: the real size of the repos tests plant tiny (``FULL_SIZE``).
    """
    source = spec.source
    if isinstance(source, PipelineWeights):  # several repos (SD-Turbo and its safety checker): plant each
        if hf_home is None:
            raise ValueError(f"{spec.name} is a Hugging Face pipeline: give hf_home")
        return [plant_hugging_face_snapshot(part, hf_home / "hub", seed, full) for part in source.parts][0]
    if isinstance(source, OpenClipWeights):
        if hf_home is None:
            raise ValueError(f"{spec.name} is an open_clip model (its weights live in a Hugging Face repo): give hf_home")
        return plant_open_clip_checkpoint(source, hf_home / "hub", seed)
    if isinstance(source, HuggingFaceWeights):
        if hf_home is None:
            raise ValueError(f"{spec.name} is a Hugging Face model: give hf_home")
        return plant_hugging_face_snapshot(source, hf_home / "hub", seed, full)
    if not isinstance(source, TorchvisionWeights) or torch_home is None:
        raise TypeError(f"{spec.name}: nothing to plant in a TORCH_HOME")
    torch.manual_seed(seed)
    model = source.untrained(aux_loss=True)  # torchvision's released segmentation checkpoints carry the aux head
    path = torch_home / "hub" / "checkpoints" / source.filename
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path


def _detr_resnet50() -> list:
    """DETR as ``facebook/detr-resnet-50`` publishes it: the legacy timm-backbone config, COCO's 91 ids."""
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights
    from transformers import DetrConfig, DetrForObjectDetection, DetrImageProcessor

    coco = ["N/A" if name == "__background__" else name for name in FasterRCNN_ResNet50_FPN_Weights.DEFAULT.meta["categories"]]
    config = DetrConfig(
        use_timm_backbone=True,
        backbone="resnet50",
        use_pretrained_backbone=True,
        id2label=dict(enumerate(coco)),
        label2id={name: i for i, name in enumerate(coco)},
    )
    return [DetrForObjectDetection(config), DetrImageProcessor()]  # processor: 800/1333 resize, ImageNet mean/std


def _dinov2_small() -> list:
    """DINOv2 ViT-S/14 as ``facebook/dinov2-small`` publishes it: its config and its BitImageProcessor settings."""
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    config = Dinov2Config(hidden_size=384, num_attention_heads=6, num_hidden_layers=12, patch_size=14, image_size=518, mlp_ratio=4)
    processor = BitImageProcessor(
        size={"shortest_edge": 256}, crop_size={"height": 224, "width": 224}, do_center_crop=True, resample=3,
        image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
    )
    return [Dinov2Model(config), processor]


def clip_bpe_tokenizer(folder: Path):
    """CLIP's own BPE tokenizer (49,408 tokens) as transformers' ``CLIPTokenizer``, built with no download.

    open_clip ships the merges file CLIP was released with; the vocabulary is derived from it the
    way CLIP's tokenizer derives it (bytes, bytes + ``</w>``, one token per merge, start and end).
    SD 2.x pads with "!", as SD-Turbo's tokenizer config says.
    """
    import gzip

    from open_clip.tokenizer import bytes_to_unicode, default_bpe
    from transformers import CLIPTokenizer

    merges = gzip.open(default_bpe()).read().decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]
    symbols = list(bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m.split()) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), pad_token="!", model_max_length=77)


def sd_turbo_parts(full: bool = False) -> list:
    """SD-Turbo's pipeline classes: tiny configs (64x64 images) for tests, or SD 2.1's real sizes (``full``).

    The real parts: ``UNet2DConditionModel`` (865 M, 4 latent channels, 1024-wide cross-attention),
    ``AutoencoderKL`` (8x downsampling), OpenCLIP ViT-H's 23-layer text tower as ``CLIPTextModel``,
    CLIP's BPE tokenizer and ``EulerDiscreteScheduler`` with trailing timesteps, as the repo's
    configs give them. The tiny version keeps every class, the tokenizer and the scheduler.
    """
    import tempfile

    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    if full:
        unet = UNet2DConditionModel(
            sample_size=64, cross_attention_dim=1024, attention_head_dim=[5, 10, 20, 20], use_linear_projection=True,
            block_out_channels=[320, 640, 1280, 1280],
        )
        vae = AutoencoderKL(
            block_out_channels=[128, 256, 512, 512], latent_channels=4, layers_per_block=2, sample_size=768,
            down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
        )
        text = CLIPTextConfig(hidden_size=1024, intermediate_size=4096, num_attention_heads=16, num_hidden_layers=23, projection_dim=512, hidden_act="gelu")
    else:
        unet = UNet2DConditionModel(
            sample_size=32, cross_attention_dim=32, attention_head_dim=4, use_linear_projection=True, layers_per_block=1,
            block_out_channels=[32, 64], norm_num_groups=8,
            down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"], up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"],
        )
        vae = AutoencoderKL(
            block_out_channels=[32, 64], latent_channels=4, layers_per_block=1, norm_num_groups=8, sample_size=64,
            down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
        )
        text = CLIPTextConfig(hidden_size=32, intermediate_size=64, num_attention_heads=4, num_hidden_layers=2, projection_dim=32, hidden_act="gelu")
    text.vocab_size = 49408
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", timestep_spacing="trailing", prediction_type="epsilon", steps_offset=1,
    )
    tokenizer = clip_bpe_tokenizer(Path(tempfile.mkdtemp(prefix="clip-bpe-")))
    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=CLIPTextModel(text), tokenizer=tokenizer, unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    return [pipe]


def safety_checker_parts() -> list:
    """``CompVis/stable-diffusion-safety-checker``'s classes with a tiny CLIP inside (its thresholds as initialised)."""
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor

    config = CLIPConfig(
        text_config={"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 4, "num_hidden_layers": 1},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 4, "num_hidden_layers": 1, "patch_size": 32},
        projection_dim=32,
    )
    return [StableDiffusionSafetyChecker(config), CLIPImageProcessor(crop_size=224, size=224)]


def bert_wordpiece_tokenizer():
    """A ``BertTokenizer`` laid out like bert-base-uncased (BLIP's tokenizer): no download, not BERT's words.

    The special tokens sit at BERT's ids ([PAD] 0, [UNK] 100, [CLS] 101, [SEP] 102, [MASK] 103), every
    printable ASCII character and its "##" continuation is a token (so any English text tokenises
    without [UNK]), short letter strings fill the rest up to 30,522, and BLIP's [DEC] (its caption start,
    30,522) and [ENC] are added as BLIP's processor adds them. With random weights, only the layout
    and the ids matter.
    """
    import string
    from itertools import product

    from transformers import BertTokenizer

    characters = [c for c in string.printable if c.strip() and not c.isupper()]
    vocab = ["[PAD]", *(f"[unused{i}]" for i in range(99)), "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += characters + [f"##{c}" for c in characters]
    fillers = ("".join(p) for n in (2, 3, 4) for p in product(string.ascii_lowercase, repeat=n))
    vocab += [next(fillers) for _ in range(30522 - len(vocab))]
    tokenizer = BertTokenizer(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=True, model_max_length=512)
    tokenizer.add_special_tokens({"bos_token": "[DEC]", "additional_special_tokens": ["[ENC]"]})
    return tokenizer


def blip_parts(task: str, full: bool = False) -> list:
    """BLIP base (captioning or VQA) as Salesforce publishes it, or tiny configs of the same classes for tests.

    The real one: ViT-B/16 at 384x384, BERT-base text sides (vocabulary 30,524 with [DEC] and [ENC]),
    ``BlipProcessor`` = ``BlipImageProcessor`` (384x384 bicubic, CLIP's mean and std) + the tokenizer.
    """
    from transformers import BlipConfig, BlipForConditionalGeneration, BlipForQuestionAnswering, BlipImageProcessor, BlipProcessor

    if full:
        config = BlipConfig()
        size = 384
    else:
        text = {"hidden_size": 32, "encoder_hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}
        vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "image_size": 64, "patch_size": 16}
        config = BlipConfig(text_config=text, vision_config=vision, projection_dim=32, image_text_hidden_size=32)
        size = 64
    network = (BlipForConditionalGeneration if task == "caption" else BlipForQuestionAnswering)(config)
    images = BlipImageProcessor(
        size={"height": size, "width": size}, image_mean=[0.48145466, 0.4578275, 0.40821073], image_std=[0.26862954, 0.26130258, 0.27577711],
    )
    return [network, BlipProcessor(image_processor=images, tokenizer=bert_wordpiece_tokenizer())]


def depth_parts(repo_id: str, full: bool = False) -> list:
    """Depth Anything V2 Small or DPT-Large as their repos publish them (``full``), or tiny configs of the same classes.

    Depth Anything V2 Small: DINOv2 ViT-S/14 (features of layers 3, 6, 9, 12) and a DPT head, with
    ``DPTImageProcessor`` at 518 px keeping the aspect ratio (sides a multiple of 14), ImageNet's mean
    and std. DPT-Large: ViT-L/16 (layers 5, 11, 17, 23) at 384x384, mean and std 0.5. The tiny versions
    keep each processor as published, so preprocessing and postprocessing are exactly the real ones.
    """
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTConfig, DPTForDepthEstimation, DPTImageProcessor

    if repo_id == "Intel/dpt-large":
        sizes = {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096, "backbone_out_indices": [5, 11, 17, 23]}
        neck = {"neck_hidden_sizes": [256, 512, 1024, 1024], "fusion_hidden_size": 256}
        if not full:
            sizes = {"hidden_size": 32, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 64, "backbone_out_indices": [0, 1, 2, 3]}
            neck = {"neck_hidden_sizes": [8, 16, 32, 32], "fusion_hidden_size": 16}
        network = DPTForDepthEstimation(DPTConfig(**sizes, **neck, image_size=384, patch_size=16, readout_type="project"))
        processor = DPTImageProcessor(size={"height": 384, "width": 384}, keep_aspect_ratio=False, resample=3, image_mean=[0.5] * 3, image_std=[0.5] * 3)
        return [network, processor]
    width, heads, layers, mlp = (384, 6, 12, 4) if full else (32, 4, 4, 2)
    backbone = Dinov2Config(
        hidden_size=width, num_attention_heads=heads, num_hidden_layers=layers, mlp_ratio=mlp, patch_size=14, image_size=518,
        out_indices=[3, 6, 9, 12] if full else [1, 2, 3, 4], reshape_hidden_states=False,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=width, neck_hidden_sizes=[48, 96, 192, 384] if full else [8, 16, 32, 32],
        fusion_hidden_size=64 if full else 16, head_hidden_size=32 if full else 8, depth_estimation_type="relative",
    )
    processor = DPTImageProcessor(
        size={"height": 518, "width": 518}, keep_aspect_ratio=True, ensure_multiple_of=14, resample=3, do_pad=False,
        image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
    )
    return [DepthAnythingForDepthEstimation(config), processor]


def swin2sr_parts(upscale: int, full: bool = False) -> list:
    """Swin2SR as ``caidas/swin2SR-*-64`` publishes it, or a tiny config of the same class for tests.

    The real ones: 6 residual Swin Transformer V2 groups of 6 layers, 180 channels, 8x8 windows,
    images in [0, 1] (``img_range`` 1). The classical x2 model upsamples by pixel shuffle; the
    real-world x4 model (BSRGAN degradations) by nearest-neighbour interpolation and convolution.
    The processor rescales by 1/255 and pads to a multiple of 8, as the repos' preprocessor configs say.
    """
    from transformers import Swin2SRConfig, Swin2SRForImageSuperResolution, Swin2SRImageProcessor

    upsampler = "nearest+conv" if upscale == 4 else "pixelshuffle"
    size = {} if full else {"embed_dim": 16, "depths": [1, 1], "num_heads": [2, 2]}
    config = Swin2SRConfig(upscale=upscale, upsampler=upsampler, image_size=64, window_size=8, img_range=1.0, **size)
    return [Swin2SRForImageSuperResolution(config), Swin2SRImageProcessor(do_rescale=True, rescale_factor=1 / 255, do_pad=True, size_divisor=8)]


PUBLISHED: dict[str, Callable[[], list]] = {
    "facebook/detr-resnet-50": _detr_resnet50,
    "facebook/dinov2-small": _dinov2_small,
    "stabilityai/sd-turbo": sd_turbo_parts,
    "CompVis/stable-diffusion-safety-checker": safety_checker_parts,
    "Salesforce/blip-image-captioning-base": lambda: blip_parts("caption"),
    "Salesforce/blip-vqa-base": lambda: blip_parts("answer"),
    "caidas/swin2SR-realworld-sr-x4-64-bsrgan-psnr": lambda: swin2sr_parts(4),
    "caidas/swin2SR-classical-sr-x2-64": lambda: swin2sr_parts(2),
    "depth-anything/Depth-Anything-V2-Small-hf": lambda: depth_parts("depth-anything/Depth-Anything-V2-Small-hf"),
    "Intel/dpt-large": lambda: depth_parts("Intel/dpt-large"),
}
"""Repo id -> random-init objects (model, processor, ...) with the published configuration (tiny for the largest, see FULL_SIZE)."""

FULL_SIZE: dict[str, Callable[[], list]] = {
    "stabilityai/sd-turbo": lambda: sd_turbo_parts(full=True),
    "Salesforce/blip-image-captioning-base": lambda: blip_parts("caption", full=True),
    "Salesforce/blip-vqa-base": lambda: blip_parts("answer", full=True),
    "depth-anything/Depth-Anything-V2-Small-hf": lambda: depth_parts("depth-anything/Depth-Anything-V2-Small-hf", full=True),
    "Intel/dpt-large": lambda: depth_parts("Intel/dpt-large", full=True),
}
"""The repos PUBLISHED plants as tiny configurations of the same classes (fast tests), at their real size: the GPU benchmark's."""


def plant_hugging_face_snapshot(source: HuggingFaceWeights, hub_cache: Path, seed: int = 0, full: bool = False) -> Path:
    """A snapshot of ``source.repo_id`` in Hugging Face's cache layout, as a download would leave it.

    ``hub_cache/models--org--name/snapshots/<commit>/`` holds what ``save_pretrained`` writes, and
    ``refs/<revision>`` names the commit, which is where ``from_pretrained`` looks offline.
    ``full``: the real size where PUBLISHED plants a tiny configuration (``FULL_SIZE``).
    """
    torch.manual_seed(seed)
    repo, snapshot, commit = _snapshot_folder(hub_cache, source.repo_id, source.revision, seed)
    parts = FULL_SIZE.get(source.repo_id, PUBLISHED[source.repo_id]) if full else PUBLISHED[source.repo_id]
    for part in parts():
        part.save_pretrained(snapshot)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / source.revision).write_text(commit)
    return snapshot


def _snapshot_folder(hub_cache: Path, repo_id: str, revision: str, seed: int) -> tuple[Path, Path, str]:
    repo = hub_cache / f"models--{repo_id.replace('/', '--')}"
    commit = hashlib.sha1(f"{repo_id}@{revision}:{seed}".encode()).hexdigest()
    return repo, repo / "snapshots" / commit, commit


def plant_open_clip_checkpoint(source: OpenClipWeights, hub_cache: Path, seed: int = 0) -> Path:
    """The repo an open_clip tag names, in Hugging Face's cache layout, holding a random-init checkpoint.

    ``open_clip.create_model(name)`` with no ``pretrained`` is the real architecture with random
    weights; its state dict goes to ``models--org--name/snapshots/<commit>/open_clip_model.safetensors``
    (the file open_clip asks huggingface_hub for first), with ``refs/main`` naming the commit. Then
    ``create_model(name, pretrained=tag)`` finds it offline exactly as it finds a real download.
    The repo's ``open_clip_config.json`` is written too, as the real repos carry one. No tokenizer
    files: these models use open_clip's SimpleTokenizer, whose BPE vocabulary ships in the package.
    """
    import open_clip
    from open_clip.constants import HF_CONFIG_NAME
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    model = open_clip.create_model(source.model_name)  # random init: nothing is downloaded
    repo, snapshot, commit = _snapshot_folder(hub_cache, source.repo_id, "main", seed)
    snapshot.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(snapshot / source.weight_files[0]))
    config = {"model_cfg": open_clip.get_model_config(source.model_name), "preprocess_cfg": source.preprocess_cfg()}
    (snapshot / HF_CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot
