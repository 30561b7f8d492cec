"""Self-supervised retrieval tab: find the nearest images by their embeddings, and see what the features learned.

Pure functions first (``gallery``, ``nearest``, ``retrieve``, ``embedding_map``, ``probe_table``),
then ``build()``, which only wires them to widgets. The encoders are ``models.retrieval``'s; a
gallery's embeddings are computed once per model and cached.

Privacy: the images a user adds arrive as that request's files (a Gradio component's value
belongs to one browser session) and are searched for that request only; they never join the
shared gallery, so no other session can retrieve them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import gradio as gr
import numpy as np
import torch
from PIL import Image

import models
import shapesworld
from models.retrieval import LABELS as CLASSES, label_of, probe_scores, random_init_features

from . import common, drawing, errors, picker, scenes, wiring
from .examples import example_images
from .inputs import BadInput
from .upload import UploadedImage

TITLE = "Self-supervised retrieval"
TASK = "retrieval"
ENDPOINT = "retrieve"  # the tab's main action, served at /retrieve

GALLERY_SIZE = 600  # ShapesWorld objects: 20 of each colour-shape class on average
GALLERY_SEED = shapesworld.SPLITS["test"].start + 100_000  # unseen by every local model
MAX_UPLOADS = 200
MAX_K = 50


@dataclass(frozen=True)
class GalleryItem:
    image: Image.Image
    label: str  # "red star" for a ShapesWorld object, "your image 3" for an upload


@functools.cache
def gallery() -> tuple[GalleryItem, ...]:
    """The shared gallery: GALLERY_SIZE unseen ShapesWorld objects with their true colour-shape label."""
    items = []
    for seed in range(GALLERY_SEED, GALLERY_SEED + GALLERY_SIZE):
        image, prompt = shapesworld.single_object(seed, 64)
        items.append(GalleryItem(Image.fromarray(image), label_of(prompt)))
    return tuple(items)


def gallery_embeddings(model_name: str, progress: gr.Progress | None = None) -> np.ndarray:
    """(GALLERY_SIZE, D) unit vectors of the shared gallery, computed once per model."""
    embedder = common.load_model(model_name, progress)
    return models.cache().derived(("retrieval-gallery", model_name), lambda: embedder.embed([item.image for item in gallery()]))


def embed(images: list[Image.Image], model_name: str) -> np.ndarray:
    """Unit vectors of ``images``, each cached per (model, image content)."""
    embedder = common.load_model(model_name)
    rows = [models.cache().derived(("retrieval-embedding", model_name, common.image_key(image)), lambda image=image: embedder.embed([image])[0]) for image in images]
    return np.stack(rows)


def nearest(query: np.ndarray, index: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows of ``index`` most cosine-similar to ``query`` (all unit vectors), best first, and their similarities.

    One matrix-vector product and a partial sort: O(N) for N rows, a few milliseconds for 10,000.
    """
    similarities = index @ query
    k = min(k, len(similarities))
    top = np.argpartition(-similarities, k - 1)[:k]
    order = top[np.argsort(-similarities[top], kind="stable")]
    return order, similarities[order]


def check_upload_count(count: int) -> None:
    if count > MAX_UPLOADS:
        raise BadInput(f"That is {count} gallery images; at most {MAX_UPLOADS} can be added per search.")


@dataclass
class Retrieval:
    items: list[GalleryItem]  # the neighbours, best first
    similarities: np.ndarray
    note: str


def retrieve(query: Image.Image, model_name: str, k: int, uploads: list[Image.Image] = (), progress: gr.Progress | None = None) -> Retrieval:
    """The ``k`` nearest gallery images (the shared ShapesWorld gallery plus this request's own uploads)."""
    if not 1 <= k <= MAX_K:
        raise BadInput(f"k must be between 1 and {MAX_K}; it was {k}.")
    check_upload_count(len(uploads))
    items = list(gallery()) + [GalleryItem(image, f"your image {i + 1}") for i, image in enumerate(uploads)]
    index = gallery_embeddings(model_name, progress)
    if uploads:
        index = np.concatenate([index, embed(list(uploads), model_name)])
    order, similarities = nearest(embed([query], model_name)[0], index, k)
    note = f"{len(order)} nearest of {len(items)} gallery images ({GALLERY_SIZE} unseen ShapesWorld objects"
    note += f" and {len(uploads)} of yours, searched for you only)" if uploads else ")"
    if k > len(items):
        note += f"; k = {k} is more than the gallery holds, so all are shown"
    return Retrieval([items[i] for i in order], similarities, note + ".")


def coordinates(points: np.ndarray, method: str) -> np.ndarray:
    """(N, 2) from scikit-learn: PCA (linear, global) or t-SNE (non-linear, keeps neighbourhoods)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    if method == "PCA":
        return PCA(n_components=2, random_state=0).fit_transform(points)
    if method == "t-SNE":
        return TSNE(n_components=2, perplexity=30, init="pca", random_state=0).fit_transform(points)
    raise BadInput(f"Unknown projection {method!r}: choose PCA or t-SNE.")


def class_colour(label: str) -> tuple[int, int, int]:
    """The RGB of a colour-shape class's colour word ("red star" -> red)."""
    return shapesworld.COLOURS[label.split()[0]]


def class_centres(xy: np.ndarray, labels: list[str]) -> tuple[list[str], np.ndarray]:
    """Each class's name and its medoid: the class's own point nearest all its others, so always on its cluster.

    A mean (or a per-axis median) of a class split into two clusters, or with a few far-flung
    points, lands between them, in the middle of the map, where every name then piles up.
    """
    names = sorted(set(labels))
    rows = np.array(labels)
    centres = []
    for name in names:
        points = xy[rows == name]
        centres.append(points[np.linalg.norm(points[:, None] - points[None], axis=-1).sum(axis=1).argmin()])
    return names, np.stack(centres)


def embedding_map(query: Image.Image, model_name: str, method: str = "PCA") -> Image.Image:
    """The shared gallery in 2-D, each object a dot in its own colour, each class named at its cluster; the query as a thumbnail."""
    index = gallery_embeddings(model_name)
    query_vector = embed([query], model_name)
    xy = coordinates(np.concatenate([index, query_vector]), method)
    labels = [item.label for item in gallery()]
    names, centres = class_centres(xy[:-1], labels)
    return drawing.embedding_scatter(
        xy[-1:], [query], centres, names, highlighted=set(range(len(names))),
        dots=(xy[:-1], [class_colour(label) for label in labels]), text_colours=[class_colour(name) for name in names],
    )


PROBE_FIT = GALLERY_SIZE // 2  # the probe panel fits on the gallery's first half and scores the second
CARD_KEYS = ("linear_probe_accuracy", "recall_at_1")
CARD_BASELINE_KEYS = ("random_init_probe_accuracy", "random_init_recall_at_1")


def _card_metrics(name: str) -> dict:
    """A local encoder's card metrics (what ``python -m models evaluate`` measured), {} for a pretrained one."""
    spec = models.spec(name)
    return spec.source.card().get("metrics", {}) if spec.tier == "local" else {}


def probe_table(model_names: list[str]) -> list[list]:
    """Each model's linear-probe accuracy and recall@1 on the gallery's frozen features, beside its card's figures.

    The probe is fitted on the gallery's first PROBE_FIT objects and scored on the rest
    (scikit-learn's logistic regression and 1-nearest-neighbour, as the training code scores the
    local encoders); plus the same architecture with random weights, the baseline a probe must
    beat. The card columns repeat what the card measured on its own, larger split
    (``probe_protocol`` says how the two differ); a pretrained encoder has none.
    """
    labels = np.array([item.label for item in gallery()])

    def scores(x: np.ndarray) -> list[float]:
        return [round(v, 3) for v in probe_scores(x[:PROBE_FIT], labels[:PROBE_FIT], x[PROBE_FIT:], labels[PROBE_FIT:])]

    def card(metrics: dict, keys: tuple[str, str]) -> list:
        return [metrics.get(key, "—") for key in keys]

    rows = [[models.spec(n).title, models.spec(n).tier, *scores(gallery_embeddings(n)), *card(_card_metrics(n), CARD_KEYS)] for n in model_names]
    images = np.stack([np.asarray(item.image) for item in gallery()])
    random_init = random_init_features(torch.from_numpy(images).permute(0, 3, 1, 2))
    baseline_card = next((m for m in map(_card_metrics, model_names) if CARD_BASELINE_KEYS[0] in m), {})
    rows.append(["Random-init encoder (same backbone, no training)", "baseline", *scores(random_init), *card(baseline_card, CARD_BASELINE_KEYS)])
    return rows


def probe_protocol(model_names: list[str], left_out: dict[str, str]) -> str:
    """What the probe panel measured (objects, seeds), why it differs from the cards, and which encoders are missing.

    ``left_out``: each encoder not probed (its title) and its weights' availability.
    """
    first, last = GALLERY_SEED, GALLERY_SEED + GALLERY_SIZE - 1
    lines = [
        f"**Measured here:** the probe is fitted on {PROBE_FIT} gallery objects (seeds {first}–{first + PROBE_FIT - 1}, "
        f"about {PROBE_FIT // len(CLASSES)} per class) and scored on the other {GALLERY_SIZE - PROBE_FIT} (seeds {first + PROBE_FIT}–{last}); "
        "recall@1 asks whether each scored object's nearest fitted object has its class."
    ]
    for name in model_names:
        metrics = _card_metrics(name)
        if "probe_seeds" in metrics:
            lines.append(
                f"**{models.spec(name).title}, card:** fitted on seeds {metrics['probe_seeds']}, scored on "
                f"{metrics.get('eval_count', '?')} objects (seeds {metrics['eval_seeds']})."
            )
    lines.append(
        "**Why the figures differ:** the cards' probes learn from ten times as many examples per class (about 100 "
        "against 10), so they score higher; random-init features gain the most from more examples, so the baseline "
        "drops furthest here. Neither split was ever trained on."
    )
    if left_out:
        missing = "; ".join(f"{title} ({availability})" for title, availability in left_out.items())
        lines.append(f"**Left out, their weights not on this machine:** {missing}. `python -m models prefetch` on a connected machine fetches them.")
    return "  \n".join(lines)


# ---------------------------------------------------------------- UI


def _read_uploads(files: list[str] | None) -> list[Image.Image]:
    files = files or []
    check_upload_count(len(files))  # before decoding any of them
    return [common.read_image(path) for path in files]


@errors.user_errors
def _retrieve_ui(image_path: str | None, model_name: str, k: int, files: list[str] | None = None, progress: gr.Progress = gr.Progress()):
    """Image retrieval: the gallery images whose embeddings are nearest the query's.

    Args:
        image_path: the query image (a file path or URL).
        model_name: an encoder's name, e.g. "simclr-shapes" (local) or "dinov2-small".
        k: how many neighbours, 1 to 50.
        files: up to 200 images of your own, added to the gallery for this request only (optional, default none).

    Returns:
        The neighbours captioned with their labels, a table of their ranks, labels and cosine similarities, and a note.
    """
    if not image_path:
        raise BadInput("Give a query image (upload one, paste one or pick an example).")
    query = common.read_image(image_path)
    found = retrieve(query, model_name, k, _read_uploads(files), progress)
    shown = [(item.image, item.label) for item in found.items]  # short enough to show whole; the cosines are in the table
    table = [[i + 1, item.label, round(float(s), 4)] for i, (item, s) in enumerate(zip(found.items, found.similarities))]
    return shown, table, found.note


@errors.user_errors
def _map_ui(image_path: str | None, model_name: str, method: str, progress: gr.Progress = gr.Progress()):
    if not image_path:
        raise BadInput("Give a query image first: the map marks where it lands.")
    return embedding_map(common.read_image(image_path), model_name, method)


@errors.user_errors(gpu_seconds=120)  # probes on every encoder: the longest handler
def _probe_ui(progress: gr.Progress = gr.Progress()):
    """The probes on every encoder whose weights are here or can be fetched, and a note naming the others and why."""
    specs = models.for_task(TASK)
    usable = [s.name for s in specs if s.availability().usable]
    left_out = {s.title: s.availability().value for s in specs if s.name not in usable}
    return probe_table(usable), probe_protocol(usable, left_out)


def _examples() -> list[str]:
    """Two unseen single objects (written as ``scenes.object_file`` writes them, so their truth shows) and two photos."""
    objects = [scenes.object_file(seed) for seed in (GALLERY_SEED - 1, GALLERY_SEED - 2)]
    return objects + [p for p in example_images(0) if "chelsea" in p or "coffee" in p]


def query_truth(image_path: str | None, table: list | None) -> str:
    """For an unseen ShapesWorld object: its true class, and how many of the neighbours found share it ("" otherwise)."""
    found = scenes.object_of(image_path)
    if found is None:
        return ""
    seed, prompt = found
    truth = label_of(prompt)
    rows = list(table.itertuples(index=False)) if hasattr(table, "itertuples") else list(table or [])
    same = sum(1 for row in rows if row[1] == truth)
    score = f" Neighbours of its class: {same} of {len(rows)} (precision@{len(rows)} {same / len(rows):.2f})." if rows else ""
    return f"**Ground truth** (unseen ShapesWorld object, seed {seed}): {prompt}, class **{truth}**.{score}"


def build() -> None:
    gr.Markdown(
        "An encoder turns each image into a vector; similar images should get nearby vectors. Pick a query and "
        "see its nearest neighbours in a gallery of unseen ShapesWorld objects (and images you add, searched for you "
        "only). DINOv2 and the local encoders learned **without labels**; ResNet-50 learned from ImageNet's labels. "
        "The contrastive encoder learned that two renderings of one object belong together; the rotation encoder "
        "learned to tell which way is up, and found a shortcut."
    )
    with gr.Row():
        with gr.Column():
            image = UploadedImage(label="Query image", sources=["upload", "clipboard"], height=260, elem_classes="dvl-image")
            new_object = scenes.new_scene_button("New unseen object")
            model = picker.model_picker(TASK)
            k = common.int_slider(1, MAX_K, 8, label="Neighbours (k)")
            uploads = gr.File(
                label=f"Add your own images to the gallery (this session only; up to {MAX_UPLOADS})",
                file_count="multiple", file_types=["image"], height=110,
            )
            run = gr.Button("Find neighbours", variant="primary")
        with gr.Column():
            found = gr.Gallery(  # dvl-fit: every tile and caption whole, two columns on a phone
                label="Nearest neighbours, best first", columns=4, height="auto", object_fit="contain", elem_classes="dvl-fit"
            )
            note = gr.Markdown(label="Note")
            truth = gr.Markdown(label="Ground truth")
            table = gr.Dataframe(headers=["rank", "label", "cosine"], label="Neighbours and their cosine similarity", interactive=False, max_height=260)
            card = gr.Markdown(picker.model_card_markdown(model.value))
    examples = gr.Examples(_examples(), inputs=image, label="Examples: unseen ShapesWorld objects and real photos")

    with gr.Accordion("The gallery in 2-D: did the features learn colour and shape?", open=False):
        gr.Markdown(
            "Every gallery object as a dot in its own colour, each colour-shape class named at its medoid (its own dot nearest all its others), "
            "the query as a thumbnail. PCA keeps the directions of largest variance; t-SNE keeps who is near whom. "
            "Good features make one tight cluster per class."
        )
        with gr.Row():
            method = gr.Radio(["PCA", "t-SNE"], value="PCA", label="Projection (scikit-learn)")
            draw = gr.Button("Draw the map")
        space = gr.Image(label="Gallery embeddings", type="pil", format="png", interactive=False)
    with gr.Accordion("Linear probes: attach a shallow classifier to frozen features", open=False):
        gr.Markdown(
            f"A logistic regression fitted on half of the gallery's frozen features, scored on the other half "
            f"({len(CLASSES)} colour-shape classes), and recall@1 (the nearest neighbour has the query's class). Random-init "
            "features are the baseline: what the architecture gives with no training at all. The card columns are the "
            "model cards' own figures, on a larger split; the note under the table says how the two differ."
        )
        probe = gr.Button("Run the probes on every available encoder")
        probes = gr.Dataframe(
            headers=["encoder", "tier", "linear probe", "recall@1", "card: linear probe", "card: recall@1"],
            label="Linear probe and recall@1", interactive=False,
        )
        protocol = gr.Markdown(label="What was measured")

    inputs, outputs = [image, model, k, uploads], [found, table, note]
    wiring.on_new_input(
        _retrieve_ui, inputs, outputs, button=run, image=image, examples=examples, api_name=ENDPOINT,
        new_scene=new_object, draw=scenes.new_object_file,
    )
    table.change(query_truth, [image, table], truth, api_visibility="private", show_progress="hidden", queue=False)
    wiring.clear_on_failure(k.release(_retrieve_ui, inputs, outputs, api_visibility="private"), outputs)
    model.change(picker.model_picked, model, card, api_visibility="private")
    wiring.clear_on_failure(draw.click(_map_ui, [image, model, method], space, api_visibility="private"), [space])
    probe.click(_probe_ui, None, [probes, protocol], api_visibility="private")
