"""The local captioning and VQA networks: a tiny BLIP (transformers' own classes) and a CNN-LSTM.

ShapesWorld's captions and questions come from a small grammar, so the tokenizer is a
``BertTokenizer`` (BLIP's own tokenizer class) over that grammar's few dozen words, and BLIP's
text side shrinks to match. The vision side is BLIP's ViT at 96x96 with 8-pixel patches: a 12x12
grid of patches, fine enough for the cross-attention heatmaps to point at single objects. (64 px
takes twice the steps in the same minutes but captioned worse after 7,000 of them than 96 px after
3,500; the figures are in the README.)

The CNN-LSTM is the lecture's recurrent captioner ("Show and Tell"): a small CNN squeezes the
image into one vector, which starts an LSTM that reads and predicts words. It is written as a
transformers ``PreTrainedModel`` with ``GenerationMixin``, so greedy, beam search and nucleus
sampling come from the same ``generate`` that decodes BLIP, and a student compares architectures,
not decoders.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import (
    BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipForQuestionAnswering, BlipImageProcessor, GenerationMixin, PretrainedConfig,
    PreTrainedModel,
)
from transformers.modeling_outputs import CausalLMOutput

from shapesworld import COLOURS, PERSON, SHAPES, SIZES
from shapesworld.language import NUMBER_WORDS

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
GRAMMAR_WORDS = (
    "a", "an", "empty", "scene", "left", "right", "of", "above", "below",
    "what", "colour", "is", "the", "shape", "object", "how", "many", "are", "there", "?", "yes", "no",
)
VOCABULARY: tuple[str, ...] = (
    *SPECIAL_TOKENS, *GRAMMAR_WORDS, *SIZES, *COLOURS, *SHAPES, *(f"{s}s" for s in SHAPES), PERSON, "people", *NUMBER_WORDS,
)
"""Every token of ShapesWorld's captions, questions and answers (a test checks the grammar against it)."""

IMAGE_SIZE = 96
PATCH_SIZE = 8
MAX_TEXT_TOKENS = 20  # the longest caption is 12 tokens with [CLS] and [SEP]; questions are shorter
IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)  # BLIP's (and CLIP's) normalisation, as its processor uses
IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)


def shapes_tokenizer(vocabulary: tuple[str, ...] = VOCABULARY) -> BertTokenizer:
    """BLIP's tokenizer class over ShapesWorld's words; [CLS] starts every text, [SEP] ends it."""
    vocab = {token: index for index, token in enumerate(vocabulary)}
    return BertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=MAX_TEXT_TOKENS)


def image_processor(size: int = IMAGE_SIZE) -> BlipImageProcessor:
    """BLIP's image processor at the local models' resolution (bicubic resize, BLIP's mean and std)."""
    return BlipImageProcessor(size={"height": size, "width": size}, image_mean=list(IMAGE_MEAN), image_std=list(IMAGE_STD))


def tiny_blip_config(
    width: int = 128, vision_layers: int = 4, text_layers: int = 2, image_size: int = IMAGE_SIZE, patch_size: int = PATCH_SIZE
) -> BlipConfig:
    """A BLIP config small enough to train on two CPU cores, with the tokenizer's special ids.

    ``bos_token_id`` is [CLS]: BLIP's ``generate`` starts every caption and answer with it, and
    training feeds the tokenizer's output (which starts with [CLS]) so both see the same first token.
    """
    tokenizer_ids = {token: VOCABULARY.index(token) for token in SPECIAL_TOKENS}
    text = {
        "vocab_size": len(VOCABULARY), "hidden_size": width, "encoder_hidden_size": width, "intermediate_size": 2 * width,
        "num_hidden_layers": text_layers, "num_attention_heads": 4, "max_position_embeddings": MAX_TEXT_TOKENS,
        "bos_token_id": tokenizer_ids["[CLS]"], "pad_token_id": tokenizer_ids["[PAD]"],
        "sep_token_id": tokenizer_ids["[SEP]"], "eos_token_id": tokenizer_ids["[SEP]"],
    }
    vision = {
        "hidden_size": width, "intermediate_size": 2 * width, "num_hidden_layers": vision_layers, "num_attention_heads": 4,
        "image_size": image_size, "patch_size": patch_size,
        "initializer_range": 0.02,  # BlipVisionConfig's default, 1e-10, suits loading weights, not training: the ViT starts dead
    }
    return BlipConfig(text_config=text, vision_config=vision, projection_dim=width, image_text_hidden_size=width)


class LstmCaptionerConfig(PretrainedConfig):
    """The CNN-LSTM's sizes. ``max_position_embeddings`` is the longest text it learned to read and write
    (an LSTM has no position embeddings, but the name is where BLIP's config keeps its own limit, so one
    code path bounds both captioners' generation).
    """

    model_type = "shapes_lstm_captioner"

    def __init__(
        self, vocab_size: int = len(VOCABULARY), width: int = 256, image_size: int = IMAGE_SIZE, max_position_embeddings: int = MAX_TEXT_TOKENS,
        **kwargs,
    ) -> None:
        self.vocab_size = vocab_size
        self.width = width
        self.image_size = image_size
        self.max_position_embeddings = max_position_embeddings
        ids = {token: VOCABULARY.index(token) for token in SPECIAL_TOKENS}
        kwargs.setdefault("bos_token_id", ids["[CLS]"])
        kwargs.setdefault("eos_token_id", ids["[SEP]"])
        kwargs.setdefault("pad_token_id", ids["[PAD]"])
        super().__init__(**kwargs)


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True), nn.MaxPool2d(2))


class LstmCaptioner(PreTrainedModel, GenerationMixin):
    """CNN encoder -> one image vector, read by the LSTM as its first input (as in Show and Tell); words in, words out.

    (A first version set the LSTM's initial state from the image through a tanh: the CNN's
    features grew, the tanh saturated, every image gave the same state, and the captions ignored
    the image. As an input, normalised, the image passes through the LSTM's own gates.)

    No key-value cache: each ``generate`` step re-reads the prefix, which for a dozen tokens costs
    less than the bookkeeping a recurrent cache would need.
    """

    config_class = LstmCaptionerConfig
    main_input_name = "pixel_values"
    _supports_cache_class = False

    def __init__(self, config: LstmCaptionerConfig) -> None:
        super().__init__(config)
        w = config.width
        self.encoder = nn.Sequential(
            _conv_block(3, 32), _conv_block(32, 64), _conv_block(64, 128), _conv_block(128, 64),
            nn.Flatten(), nn.Linear(64 * (config.image_size // 16) ** 2, w), nn.ReLU(inplace=True),
        )
        self.image_norm = nn.LayerNorm(w)
        self.embed = nn.Embedding(config.vocab_size, w)
        self.lstm = nn.LSTM(w, w, batch_first=True)
        self.head = nn.Linear(w, config.vocab_size)
        self.post_init()

    def encode(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.encoder(pixel_values)

    def forward(
        self,
        input_ids: torch.Tensor,
        pixel_values: torch.Tensor | None = None,
        image_features: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **_: object,
    ) -> CausalLMOutput:
        """Next-token logits for every position; ``labels`` (pad = -100) give the shifted cross-entropy."""
        features = image_features if image_features is not None else self.encode(pixel_values)
        inputs = torch.cat([self.image_norm(features).unsqueeze(1), self.embed(input_ids)], dim=1)
        hidden, _ = self.lstm(inputs)
        logits = self.head(hidden[:, 1:])  # after reading the image and tokens 0..t: the distribution of token t + 1
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), ignore_index=-100)
        return CausalLMOutput(loss=loss, logits=logits)

    def prepare_inputs_for_generation(self, input_ids: torch.Tensor, image_features: torch.Tensor | None = None, **_: object) -> dict:
        return {"input_ids": input_ids, "image_features": image_features}

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.1)


def load_network(card: dict, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """The network a card describes, with ``state`` (float16 on disk) loaded as float32."""
    if card["architecture"] == "LstmCaptioner":
        network = LstmCaptioner(LstmCaptionerConfig.from_dict(card["config"]))
    else:
        cls = {"BlipForConditionalGeneration": BlipForConditionalGeneration, "BlipForQuestionAnswering": BlipForQuestionAnswering}[card["architecture"]]
        network = cls(BlipConfig.from_dict(card["config"]))
    network.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return network.eval()
