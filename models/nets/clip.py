"""The local CLIP's own pieces: a small open_clip config and a word-level tokenizer.

The network is open_clip's own ``CLIP`` class (the one behind ViT-B/32 and RN50), built from a
small config: a small ModifiedResNet over a 64x64 image and a 1-layer, 128-wide text transformer
over at most 24 tokens, meeting in a 128-d embedding space. Only the config is ours.

Why not open_clip's tokenizer? Its byte-pair vocabulary has 49,408 entries, so the text tower's
token embedding alone would be 49,408 x 128 = 6.3 M parameters (12.6 MB, over the local models'
budget, and over three times the rest of this model) to spell some thirty words. ShapesWorld's language
is tiny and fixed, so a word-level vocabulary of those words does the same job in 5 k parameters.
The vocabulary is exactly the words of the training captions (``vocabulary_of``), so every token
id has been trained. It follows CLIP's conventions: ``<start_of_text> words <end_of_text>`` then
zero padding, and the end-of-text token has the largest id, so open_clip's default text pooling
(the features at ``argmax(token id)``, i.e. at end-of-text) works unchanged. Any other word
becomes ``<unk>``: the local model can only read ShapesWorld's words, which ``unknown_words``
lets the UI say.
"""

from __future__ import annotations

import re
from typing import Sequence

import open_clip
import torch

PAD, UNK, SOT, EOT = "<pad>", "<unk>", "<start_of_text>", "<end_of_text>"

_WORD = re.compile(r"[a-z]+|[0-9]+|[^\sa-z0-9]")


def words(text: str) -> list[str]:
    """Lower-cased words and punctuation marks, as the tokenizer splits them."""
    return _WORD.findall(text.lower())


def vocabulary_of(texts: Sequence[str]) -> list[str]:
    """Every word of ``texts`` once, in order of first appearance (the token ids follow this order)."""
    return list(dict.fromkeys(w for text in texts for w in words(text)))


class WordTokenizer:
    """Text -> a (N, context_length) LongTensor, laid out as open_clip's SimpleTokenizer lays it out.

    Ids: 0 ``<pad>``, 1 ``<unk>``, then the words, then ``<start_of_text>`` and ``<end_of_text>``
    last. Lower-cased; punctuation marks are tokens; too long a text is cut and still ends with
    ``<end_of_text>``, as open_clip does.
    """

    def __init__(self, known: Sequence[str], context_length: int) -> None:
        self.vocabulary = [PAD, UNK, *known, SOT, EOT]
        self.ids = {word: i for i, word in enumerate(self.vocabulary)}
        self.context_length = context_length
        self.sot_id, self.eot_id = self.ids[SOT], self.ids[EOT]

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary)

    def encode(self, text: str) -> list[int]:
        return [self.ids.get(word, self.ids[UNK]) for word in words(text)]

    def unknown_words(self, text: str) -> list[str]:
        """The words of ``text`` this tokenizer reads as ``<unk>`` (what the local model cannot know)."""
        return [word for word in words(text) if word not in self.ids]

    def __call__(self, texts: str | Sequence[str], context_length: int | None = None) -> torch.Tensor:
        texts = [texts] if isinstance(texts, str) else list(texts)
        length = context_length or self.context_length
        result = torch.zeros(len(texts), length, dtype=torch.long)  # <pad> is 0
        for row, text in enumerate(texts):
            tokens = [self.sot_id, *self.encode(text)][: length - 1] + [self.eot_id]
            result[row, : len(tokens)] = torch.tensor(tokens)
        return result

    def to_dict(self) -> dict:
        """What the JSON card stores to rebuild this tokenizer exactly."""
        return {"kind": "word", "vocabulary": self.vocabulary, "context_length": self.context_length}

    @classmethod
    def from_dict(cls, d: dict) -> "WordTokenizer":
        vocabulary = d["vocabulary"]
        if vocabulary[:2] != [PAD, UNK] or vocabulary[-2:] != [SOT, EOT]:
            raise ValueError("not a WordTokenizer vocabulary: <pad>, <unk> must come first, <start_of_text>, <end_of_text> last")
        return cls(vocabulary[2:-2], d["context_length"])


def clip_config(
    vocab_size: int, image_size: int = 64, context_length: int = 24, width: int = 128, embed_dim: int = 128, text_layers: int = 1
) -> dict:
    """An open_clip model config (the schema of open_clip/model_configs/*.json) for the local CLIP.

    Image tower: open_clip's ``ModifiedResNet`` (CLIP's RN50 design: a three-convolution stem,
    bottleneck stages, attention pooling instead of average pooling), one block per stage and
    width 16 (1.3 M parameters). Convolutions learn small shapes fast: in a 300-step trial, zero-shot
    accuracy 0.70 against 0.43 for a 4-layer ViT on 8x8 patches of the same cost per step. Text
    tower: CLIP's causal transformer, one layer deep: deeper ones memorise colour-shape pairs as
    wholes and recognise pairs never trained on less well (see models/training/clip.py).
    """
    return {
        "embed_dim": embed_dim,
        "vision_cfg": {"image_size": image_size, "layers": [1, 1, 1, 1], "width": 16, "head_width": 32},
        "text_cfg": {
            "context_length": context_length, "vocab_size": vocab_size, "width": width, "heads": 4, "layers": text_layers, "mlp_ratio": 2.0,
        },
    }


def register(name: str, config: dict) -> None:
    """Make ``name`` an open_clip model name, so ``open_clip.create_model(name)`` builds ``config``.

    open_clip's registry is a dict filled from its JSON files; ``add_model_config`` would need a
    file on disk, and the config lives in our JSON card instead, so it is added to the dict directly.
    """
    open_clip.factory._MODEL_CONFIGS[name] = config
