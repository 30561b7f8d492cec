"""CLIP zero-shot classification tab: name the classes in words, and see where images and words meet.

Pure functions first (``parse_labels``, ``classify``, ``scores_for``, ``similarity_table``,
``embedding_map``), then ``build()``, which only wires them to widgets. The model side is
``models.clip``: open_clip's documented zero-shot recipe, with each label set's text embeddings
cached per model, so a new image with the same labels costs one image encoding.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

import gradio as gr
import numpy as np
from PIL import Image

import models
import shapesworld
from models.clip import DEFAULT_TEMPLATES, TooManyPrompts, ZeroShotResult, check_prompt_count, suggested_templates, zero_shot
from models.retrieval import label_of

from . import common, drawing, errors, picker, scenes, tables, wiring
from .examples import example_images
from .inputs import BadInput
from .upload import UploadedImage

TITLE = "CLIP zero-shot"
TASK = "clip"
ENDPOINT = "classify"  # the tab's main action, served at /classify

MAX_LABELS = 1000
MAX_IMAGES = 16
SHOWN_LABELS = 10  # columns of the similarity table: the labels that score highest anywhere
BARE = ["{}"]  # no template: the label text alone
LOCAL_MODEL = "clip-shapes"
EXAMPLE_SEEDS = (shapesworld.SPLITS["test"].start + 85, shapesworld.SPLITS["test"].start + 38)  # red ring, green star
PHOTO_LABELS = "astronaut, rocket, cat, cup of coffee, dog, car, flower, bowl of soup"
SHAPE_LABELS = "\n".join(f"{colour} {shape}" for shape in shapesworld.SHAPES for colour in shapesworld.COLOURS)


def parse_labels(text: str) -> list[str]:
    """Labels from one per line or comma separated: blanks dropped, spaces tidied, duplicates merged.

    Duplicates are merged case-insensitively (the first spelling wins): two equal labels would
    split one probability between them.
    """
    labels: dict[str, str] = {}
    for part in re.split(r"[\n,]", text or ""):
        label = " ".join(part.split())
        if label:
            labels.setdefault(label.casefold(), label)
    if not labels:
        raise BadInput("Give at least one label: the class names to choose from, one per line or separated by commas.")
    if len(labels) > MAX_LABELS:
        raise BadInput(f"That is {len(labels)} labels; at most {MAX_LABELS} are encoded per request. Shorten the list.")
    return list(labels.values())


def parse_templates(text: str, use_templates: bool) -> list[str]:
    """Prompt templates, one per line, each with "{}" where the label goes; ``["{}"]`` when off."""
    if not use_templates:
        return BARE
    templates = list(dict.fromkeys(line.strip() for line in (text or "").splitlines() if line.strip()))
    if not templates:
        raise BadInput('Give at least one prompt template (e.g. "a photo of a {}."), or turn prompt ensembling off.')
    missing = [t for t in templates if t.count("{}") != 1]
    if missing:
        raise BadInput(f'Every template needs exactly one "{{}}" where the label goes; this one does not: {missing[0]!r}.')
    return templates


@dataclass
class Classification:
    result: ZeroShotResult
    notes: list[str]  # what the user should know about this answer (unknown words, cut labels, merged duplicates)


def classify(
    images: list[Image.Image], labels: list[str], model_name: str, templates: list[str], temperature: float = 0.0,
    progress: gr.Progress | None = None, image_features: np.ndarray | None = None,
) -> Classification:
    """Zero-shot probabilities of every image over ``labels``; ``temperature`` 0 = the model's learned one.

    ``image_features`` from an earlier result skip the image encoder (see ``zero_shot``).
    """
    if temperature < 0:
        raise BadInput("The temperature must be 0 (the model's own) or positive.")
    check_prompt_count(len(labels), len(templates))  # before any model work
    classifier = common.load_model(model_name, progress)
    texts = [t.format(label) for label in labels for t in templates]
    notes = []
    unknown = classifier.unknown_words(texts)
    if unknown:
        shown = ", ".join(f"“{w}”" for w in unknown[:8]) + (" …" if len(unknown) > 8 else "")
        notes.append(f"This model reads only ShapesWorld's words; it cannot read {shown} (read as “unknown”).")
    cut = classifier.cut_texts(texts)
    if cut:
        notes.append(f"{len(cut)} prompt(s) are longer than the text encoder reads; only their start counts.")
    result = zero_shot(classifier, images, labels, templates, temperature or None, image_features)
    return Classification(result, notes)


def scores_for(result: ZeroShotResult, row: int = 0) -> dict[str, float] | str:
    """What the chart shows for image ``row``: the softmax probabilities, or for a single label a line with its cosine.

    A softmax over one label is always 100% and says nothing; the cosine similarity (-1 to 1)
    says how well the text matches the image, and is not a percentage, so it is given as text
    (a label chart would draw it as one).
    """
    if len(result.labels) == 1:
        return f"{result.labels[0]}: cosine similarity {result.similarities[row, 0]:.3f}"
    return {label: float(v) for label, v in zip(result.labels, result.probabilities[row])}


def truth_line(result: ZeroShotResult, truth: str) -> str:
    """The true label of the first image (an unseen ShapesWorld object) and whether the top-1 label is it."""
    head = f"True label: **{html.escape(truth)}** (an unseen ShapesWorld object)"
    known = [label.casefold() for label in result.labels]
    if truth.casefold() not in known:
        return f"{head} · not among the labels, so no label can be right."
    if len(result.labels) == 1:
        return f"{head} · it is the one label."
    best = result.labels[int(result.probabilities[0].argmax())]
    return f"{head} · top-1 " + ("**right** ✓" if best.casefold() == truth.casefold() else f"**wrong** ✗ (it says {html.escape(best)})")


def summary(classification: Classification, truth: str | None = None) -> str:
    """One line on how to read the chart, the first image's true label when known, then the notes."""
    result = classification.result
    if len(result.labels) == 1:
        head = (
            f"One label: its **cosine similarity** with the image is {result.similarities[0, 0]:.3f} (−1 to 1; "
            "not a probability: a softmax over one label would always be 100%). Add labels to compare."
        )
    else:
        best = int(result.probabilities[0].argmax())
        head = (
            f"**{html.escape(result.labels[best])}** ({result.probabilities[0, best]:.1%}): softmax over "
            f"{len(result.labels)} labels of the cosine similarities × {result.scale:.1f} "
            f"(temperature {1 / result.scale:.3g}), {len(result.templates)} template(s) averaged per label."
        )
    lines = [head, *([truth_line(result, truth)] if truth else []), *(f"⚠ {note}" for note in classification.notes)]
    return "  \n".join(lines)


def _cell(value: float, value_range: tuple[float, float], text: str, title: str) -> str:
    """One table cell coloured by ``value`` on ``value_range``, with ink that reads on that colour."""
    r, g, b = (int(v) for v in drawing.heatmap(np.array([[value]]), value_range=value_range)[0, 0])
    ink = "#000" if drawing.text_colour((r, g, b)) == (0, 0, 0) else "#fff"
    return f"<td style='background:rgb({r},{g},{b});color:{ink}' title='{title}'>{text}</td>"


def similarity_table(result: ZeroShotResult, names: list[str]) -> str:
    """Images by labels as an HTML table, its caption saying what each number is and what is normalised over what.

    Several labels: each cell the probability (colour, large), a softmax per image across all
    the labels, and the cosine similarity (small). One label: the cosine alone, coloured on -1 to
    1 (a softmax over one label is 100% for every image). With many labels, only the
    SHOWN_LABELS that score highest for some image are shown.
    """
    count = len(result.labels)
    columns = np.argsort(-result.probabilities.max(axis=0), kind="stable")[:SHOWN_LABELS]
    head = "".join(f"<th>{html.escape(result.labels[c])}</th>" for c in columns)
    rows = []
    for i, name in enumerate(names):
        cells = []
        for c in columns:
            p, cosine = float(result.probabilities[i, c]), float(result.similarities[i, c])
            if count == 1:
                cells.append(_cell(cosine, (-1.0, 1.0), f"{cosine:.2f}", f"cosine = {cosine:.3f}"))
            else:
                cells.append(_cell(p, (0.0, 1.0), f"{p:.0%}<br><small>{cosine:.2f}</small>", f"p = {p:.3f}, cosine = {cosine:.3f}"))
        rows.append(f"<tr><th>{html.escape(name)}</th>{''.join(cells)}</tr>")
    if count == 1:
        caption = "Cosine similarity (−1 to 1) of every image with the one label; no probabilities: a softmax over one label is 100% for any image"
    else:
        caption = (
            f"Large: probability, normalised per image across all {count} labels (each row's softmax sums to 100%); "
            "small: cosine similarity (−1 to 1, not a percentage)"
        )
        caption += f"; the {len(columns)} best-scoring labels shown" if count > len(columns) else ""
    return tables.table_html(caption, f"<tr><th></th>{head}</tr>", rows)


def embedding_coordinates(result: ZeroShotResult) -> tuple[np.ndarray, np.ndarray]:
    """The images' and the label texts' embeddings on their first two principal components, (N, 2) and (M, 2)."""
    points = np.concatenate([result.image_features, result.text_features]).astype(np.float64)
    centred = points - points.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    xy = np.pad(centred @ components[:2].T, ((0, 0), (0, 2)))[:, :2]  # fewer than three points: pad the missing axis
    n = len(result.image_features)
    return xy[:n], xy[n:]


def embedding_map(result: ZeroShotResult, images: list[Image.Image], marked: int = 8) -> Image.Image:
    """Images and label texts in one 2-D map (``embedding_coordinates``), images drawn as thumbnails.

    Both kinds of vector live in the same space, so an image lands near the text that describes
    it. Each image's ``marked`` best labels are drawn dark, the others faint. (CLIP's images and
    texts also sit apart as two clouds, the "modality gap"; the map shows that too.)
    """
    image_xy, text_xy = embedding_coordinates(result)
    best = {int(c) for row in np.argsort(-result.similarities, axis=1)[:, :marked] for c in row}
    return drawing.embedding_scatter(image_xy, images, text_xy, result.labels, highlighted=best)


# ---------------------------------------------------------------- UI


def truth_of(path: str | None) -> str | None:
    """The colour-shape label ("red star") of an unseen ShapesWorld object file (``scenes.object_of``), else None."""
    found = scenes.object_of(path)
    return label_of(found[1]) if found else None


def _read_images(image_path: str | None, more: list[str] | None) -> tuple[list[Image.Image], list[str], list[str | None]]:
    """The images, their names in the table (with the true label of a ShapesWorld object) and those true labels."""
    paths = [p for p in [image_path, *(more or [])] if p]
    if not paths:
        raise BadInput("Give an image to classify (upload one, paste one or pick an example).")
    if len(paths) > MAX_IMAGES:
        raise BadInput(f"That is {len(paths)} images; at most {MAX_IMAGES} are compared at once.")
    truths = [truth_of(p) for p in paths]
    names = [f"image {i + 1}" + (f" (true: {truth})" if truth else "") for i, truth in enumerate(truths)]
    return [common.read_image(p) for p in paths], names, truths


def _scene_warning(image_path: str | None, model_name: str) -> list[str]:
    """A note when the local model is shown a multi-object ShapesWorld scene, which it never trained on."""
    if models.spec(model_name).tier == "local" and scenes.scene_of(image_path) is not None:
        return ["This is a scene of several objects; the local mini-CLIP was trained on single objects, so its answer here means little."]
    return []


@errors.user_errors
def _classify_ui(
    image_path: str | None, more: list[str] | None = None, labels_text: str = SHAPE_LABELS, use_templates: bool = True,
    templates_text: str = DEFAULT_TEMPLATES[0], temperature: float = 0.0, model_name: str = LOCAL_MODEL,
    progress: gr.Progress = gr.Progress(),
):
    """CLIP zero-shot classification: how well each label describes the image, with no training on those labels.

    Args:
        image_path: the image (a file path or URL).
        more: more images to classify with the same labels (optional, default none).
        labels_text: the candidate labels, one per line or comma separated.
        use_templates: wrap each label in prompt templates ("a photo of a {}.") and average them.
        templates_text: the templates, one per line, each with {} where the label goes.
        temperature: the softmax temperature over the labels' similarities.
        model_name: a CLIP model's name, e.g. "clip-shapes" (local) or "clip-vit-b-32".

    Returns:
        The first image's label probabilities (for a single label, a line with its cosine similarity), a note, an
        image-by-label HTML table, a 2-D map of the embeddings, and the first image's answer with the templates and
        without them (empty when that comparison would pass the prompt limit).
    """
    images, names, truths = _read_images(image_path, more)
    labels = parse_labels(labels_text)
    templates = parse_templates(templates_text, use_templates)
    main = classify(images, labels, model_name, templates, temperature, progress)
    main.notes += _scene_warning(image_path, model_name)
    # The effect of the templates, on the first image: the same labels with and without them (its embedding reused).
    first = main.result.image_features[:1]
    other = BARE if use_templates else parse_templates(templates_text, True)
    try:
        compared = classify(images[:1], labels, model_name, other, temperature, image_features=first).result
    except TooManyPrompts as error:  # templates were off, and the comparison's labels x templates pass the limit
        main.notes.append(f"No comparison with the templates: {error}")
        compared = None
    with_templates, bare = (main.result, compared) if use_templates else (compared, main.result)
    return (
        scores_for(main.result),
        summary(main, truths[0]),
        similarity_table(main.result, names),
        embedding_map(main.result, images),
        *(scores_for(result) if result else None for result in (with_templates, bare)),
    )


def _rerun(*args, progress: gr.Progress = gr.Progress()):
    """Re-classify after a control changes (text embeddings are cached); with no image, do nothing."""
    if not args[0] and not args[1]:
        return (gr.skip(),) * 6
    if unusable := picker.unusable_outputs(args[6], 6):  # the card already says how to get the weights
        return unusable
    return _classify_ui(*args, progress=progress)


def _model_changed(model_name: str, labels_text: str, templates_text: str):
    """Card, and the model's own suggested templates and labels unless the user has written their own."""
    suggested = {"\n".join(suggested_templates(s.name)) for s in models.for_task(TASK)}
    is_local = models.spec(model_name).tier == "local"
    templates = "\n".join(suggested_templates(model_name)) if templates_text in suggested else gr.skip()
    labels = (SHAPE_LABELS if is_local else PHOTO_LABELS) if labels_text in (SHAPE_LABELS, PHOTO_LABELS) else gr.skip()
    return picker.model_picked(model_name), labels, templates


def _examples() -> list[list[str]]:
    """Unseen single objects (what the mini-CLIP trained on; these two colour-shape pairs it never saw) and photos."""
    rows = [[scenes.object_file(seed), SHAPE_LABELS] for seed in EXAMPLE_SEEDS]
    photos = {p.rsplit("/", 1)[-1].split(".")[0]: p for p in example_images(0)}
    rows += [[photos[name], labels] for name, labels in (("astronaut", PHOTO_LABELS), ("chelsea", "cat, dog, tiger, fox, rabbit"))]
    return rows


def build() -> None:
    gr.Markdown(
        "CLIP learned from image–caption pairs to put an image and the text that describes it at the same point "
        "of one embedding space. So any list of words becomes a classifier: the label whose text lands nearest the "
        "image wins, with no training for these classes. The local mini-CLIP knows ShapesWorld's words only and was "
        "**trained on single objects**: give it one object (the examples, or *New unseen object*), not a scene of "
        "several. It was never shown some colour–shape pairs (red ring, green star, …) and still names them."
    )
    default = models.default_for(TASK).name
    is_local = models.spec(default).tier == "local"
    with gr.Row():
        with gr.Column():
            image = UploadedImage(label="Image", sources=["upload", "clipboard"], height=280, elem_classes="dvl-image")
            new_object = scenes.new_scene_button("New unseen object")
            more = gr.File(
                label="More images (optional: compared in the table and the map)", file_count="multiple", file_types=["image"], height=120
            )
            labels = gr.Textbox(
                value=SHAPE_LABELS if is_local else PHOTO_LABELS, lines=4, max_lines=12,
                label="Labels", info=f"one per line or separated by commas; duplicates are merged; up to {MAX_LABELS}",
            )
            model = picker.model_picker(TASK)
            with gr.Accordion("Prompt templates and temperature", open=False):
                use_templates = gr.Checkbox(True, label="Prompt ensembling: average each label's embedding over these templates")
                templates = gr.Textbox(
                    value="\n".join(suggested_templates(default)), lines=5, max_lines=20,
                    label="Templates", info='one per line, "{}" is replaced by the label',
                )
                temperature = gr.Slider(
                    0, 1, value=0, step=0.005, label="Temperature",
                    info="0 = the model's learned one (0.01 for the released CLIPs); higher = flatter probabilities",
                )
            run = gr.Button("Classify", variant="primary")
        with gr.Column():
            # One label for both answers (an update of the label would change the API's output to a dict of props).
            scores = gr.Label(label="Answer for the first image", num_top_classes=10)
            note = gr.Markdown(label="Note")
            matrix = gr.HTML(label="Images by labels")
            card = gr.Markdown(picker.model_card_markdown(default))
    examples = gr.Examples(_examples(), inputs=[image, labels], label="Examples: unseen ShapesWorld objects and real photos")

    with gr.Accordion("The shared embedding space, in 2-D", open=False):
        gr.Markdown(
            "Each image (blue frame) and each label's text embedding (dot), projected onto their first two principal "
            "components; every image's best labels are drawn dark. An image sits near the label it matches. The images and the texts also form two separate clouds: "
            "CLIP's “modality gap”; only directions, not that offset, decide the answer."
        )
        space = gr.Image(label="Embedding map (PCA)", type="pil", format="png", interactive=False)
    with gr.Accordion("What the templates do", open=False):
        gr.Markdown(
            "The same labels for the first image, with the templates averaged (left) and with the bare label text "
            "(right). CLIP was trained on captions, not single words, so “a photo of a cat.” usually matches better "
            "than “cat”; averaging several phrasings smooths out any one template's quirks."
        )
        with gr.Row():
            with_templates = gr.Label(label="With templates", num_top_classes=5)
            without_templates = gr.Label(label="Bare labels", num_top_classes=5)

    inputs = [image, more, labels, use_templates, templates, temperature, model]
    outputs = [scores, note, matrix, space, with_templates, without_templates]
    wiring.on_new_input(
        _classify_ui, inputs, outputs, button=run, image=image, examples=examples, api_name=ENDPOINT,
        new_scene=new_object, draw=scenes.new_object_file,
    )
    wiring.clear_on_failure(gr.on([temperature.release, use_templates.input], _rerun, inputs, outputs, api_visibility="private"), outputs)
    model.change(_model_changed, [model, labels, templates], [card, labels, templates], api_visibility="private").then(
        _rerun, inputs, outputs, api_visibility="private"
    )
