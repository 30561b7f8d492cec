"""Retrieval: the nearest-neighbour search over a 10,000-image gallery, and the local encoders' embedding time.

The search (``demos.retrieval.nearest``) is what every query pays after its embedding: one
matrix-vector product and a partial sort. It is timed on 10,000 random unit vectors at the local
encoders' width (128) and DINOv2 small's (384); the target is at most 10 ms per query.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

import models
import shapesworld
from demos import retrieval as tab

from .report import ms, table
from .stats import Samples, repeat

GALLERY = 10_000
SEARCH_MS = 10.0


@dataclass
class RetrievalBench:
    search: dict[int, Samples]  # embedding width -> per-query search time
    embed: dict[str, Samples]  # local model -> one 64x64 image's embedding time

    def markdown(self) -> str:
        rows = [[f"`nearest` over {GALLERY:,} unit vectors of width {d}", ms(s.p50), ms(s.p95), str(s.n)] for d, s in self.search.items()]
        rows += [[f"{name}: embed one 64x64 object", ms(s.p50), ms(s.p95), str(s.n)] for name, s in self.embed.items()]
        worst = max(s.p50 for s in self.search.values()) * 1e3
        verdict = "PASS" if worst <= SEARCH_MS else "FAIL"
        targets = [["query against a 10,000-image gallery, after its embedding, p50", f"<= {SEARCH_MS:g} ms", f"{worst:.2f}", verdict]]
        return "\n\n".join(
            [
                "## Retrieval (`/retrieve`)",
                table(["what", "p50 (ms)", "p95 (ms)", "n"], rows, right=(1, 2, 3)),
                table(["target", "limit", "measured (ms)", "verdict"], targets),
            ]
        )

    def to_dict(self) -> dict:
        return {"search": {str(d): s.summary() for d, s in self.search.items()}, "embed": {n: s.summary() for n, s in self.embed.items()}}


def measure(repeats: int = 200) -> RetrievalBench:
    rng = np.random.default_rng(0)
    search = {}
    for width in (128, 384):
        index = rng.normal(size=(GALLERY, width)).astype(np.float32)
        index /= np.linalg.norm(index, axis=1, keepdims=True)
        search[width] = repeat(lambda i: tab.nearest(index[i % GALLERY], index, 8), repeats, warmup=5)
    objects = [Image.fromarray(shapesworld.single_object(shapesworld.SPLITS["test"].start + i, 64)[0]) for i in range(repeats + 5)]
    embed = {}
    for spec in models.for_task(tab.TASK):
        if spec.tier == "local" and spec.availability().usable:
            embedder = models.get(spec.name)
            embed[spec.name] = repeat(lambda i: embedder.embed([objects[i]]), min(repeats, 50), warmup=5)
    return RetrievalBench(search, embed)
