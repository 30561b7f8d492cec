"""Captions and visual question answering tab: describe an image, or ask it a question, and see how.

Pure functions first (``decoding_from``, ``check_question``, ``steps_html``, ``word_choices``,
``top_answers_label``, ``caption_truth``, ``answer_truth``), then the streaming handlers and ``build()``. The model side is
``models.captioning``: BLIP (pretrained and tiny) and the CNN-LSTM, all decoded by transformers'
own ``generate``.
"""

from __future__ import annotations

import html
from typing import Iterator

import gradio as gr
import numpy as np

import models
import shapesworld
from models.captioning import Answerer, Captioner, Explanation, longest_caption, names_only_what_is_there
from models.decoding import DECODING_METHODS, MAX_NEW_TOKENS, MAX_SEQUENCES, Decoding, Generated
from shapesworld.language import captions_for

from . import common, drawing, errors, picker, scenes, tables, wiring
from .examples import example_images
from .inputs import NO_IMAGE
from .upload import UploadedImage

TITLE = "Captions and questions"
TASK = "captioning"
ENDPOINT = "caption"  # the tab's main action, served at /caption; questions at /answer
ANSWER_TASK = "answer"
ANSWER_ENDPOINT = "answer"

MAX_QUESTION_CHARS = 300
MODES = ("Caption", "Ask a question")
GROUND_TRUTH = "Ground truth (ShapesWorld scene)"
HEAT_SCALE = drawing.HeatScale(0.0, 1.0, "Grad-CAM (1 = the most used patch)")
SHAPES_QUESTIONS = [
    "what colour is the circle?", "how many stars are there?", "is there a red square?", "what shape is the blue object?",
    "is the ring left of the triangle?",
]


def decoding_from(method: str, beams: int, top_p: float, temperature: float, max_tokens: int, count: int, seed: int) -> Decoding:
    """A checked Decoding from the widgets' values (an emptied number arrives as None)."""
    decoding = Decoding(
        method=method, beams=int(beams or 0), top_p=float(top_p), temperature=float(temperature),
        max_tokens=int(max_tokens or 0), count=int(count or 0), seed=int(seed or 0),
    )
    decoding.check()
    return decoding


def check_question(question: str | None, model: Answerer) -> tuple[str, list[str]]:
    """The question tidied, and what the user should know about how the model read it; ValueError if unusable."""
    question = " ".join((question or "").split())
    if not question:
        raise ValueError("Ask a question first, e.g. “what colour is the circle?”.")
    if len(question) > MAX_QUESTION_CHARS:
        raise ValueError(f"That question is {len(question)} characters long; ask in at most {MAX_QUESTION_CHARS}.")
    notices = []
    words = model.words(question)
    unknown = model.unknown_words(question)
    if unknown and len(unknown) >= len(set(words)):
        if models.spec(model.name).tier == "local":
            raise ValueError(
                "This model knows only ShapesWorld's words (e.g. “what colour is the circle?”), and none of this question's words "
                "are among them. Pick the pretrained BLIP for other questions."
            )
        raise ValueError("None of this question's words are in the model's vocabulary: ask in English.")
    if unknown:
        notices.append(f"Words this model cannot read (it answers without them): {', '.join(unknown)}.")
    limit = model.text_positions
    tokens = len(model.tokenizer(question).input_ids)
    if tokens > limit:
        notices.append(f"The question is {tokens} tokens long; the model reads only the first {limit}.")
    if sum(not w.isascii() for w in words) > len(words) / 2:
        notices.append("BLIP learned from English questions: the answer to a question in another language is unreliable.")
    return question, notices


def steps_html(explanation: Explanation) -> str:
    """The decoding of one text, step by step: the token taken and the five the model liked best, as bars.

    A step where the text did not take the single most likely token is marked: that is where
    greedy decoding would have gone another way.
    """
    parted = set(explanation.parted_ways())
    rows = []
    for i, step in enumerate(explanation.steps):
        cells = []
        for token, p in step.top:
            taken = " class='dvl-taken'" if token == step.token else ""
            bar = f"background:linear-gradient(90deg,rgba(99,102,241,.35) {p:.1%},transparent {p:.1%})"
            cells.append(f"<td{taken} style='{bar}'>{html.escape(token)} <small>{p:.0%}</small></td>")
        mark = "⟂ greedy would take “" + html.escape(step.top[0][0]) + "”" if i in parted else ""
        rows.append(
            f"<tr><th>{i + 1}</th><td><b>{html.escape(step.token)}</b> <small>{step.probability:.0%}</small></td>"
            f"{''.join(cells)}<td>{mark}</td></tr>"
        )
    head = "<tr><th>step</th><th>taken</th>" + "".join(f"<th>#{k}</th>" for k in range(1, 6)) + "<th></th></tr>"
    caption = "Each step: the token taken (its probability) and the model's five most likely next tokens"
    return tables.table_html(caption, head, rows, steps=True)


def word_choices(explanation: Explanation) -> list[tuple[str, int]]:
    """Dropdown choices for the heatmap: every step's token, numbered."""
    return [(f"{i + 1}. {step.token}", i) for i, step in enumerate(explanation.steps)]


def first_content_word(explanation: Explanation) -> int:
    """The step to map first: the first token that is not an article or a special token."""
    skip = {"a", "an", "the", "[SEP]", "[CLS]", "of"}
    return next((i for i, s in enumerate(explanation.steps) if s.token not in skip), 0)


def top_answers_label(top: list[tuple[str, float]]) -> dict[str, float]:
    return {answer or "(empty)": round(p, 4) for answer, p in top}


def captions_text(texts: list[str]) -> str:
    return "\n".join(t or "(empty)" for t in texts)


def caption_truth(scene: shapesworld.Scene | None, texts: list[str]) -> str:
    """A ShapesWorld scene's true captions, and whether each generated caption is right by the project's caption metric.

    Right means what the bar (``caption_all_attributes``) counts: the caption names as many objects
    as the grammar does, each one there with the colour and shape it says; relations and sizes aside.
    Empty for any other image.
    """
    if scene is None:
        return ""
    lines = [f"**{GROUND_TRUTH}**", "True caption: " + " · ".join(f"“{c}”" for c in captions_for(scene.objects))]
    if texts:
        lines.append("Judged as the captioning bar judges (relations and sizes aside):")
    for i, text in enumerate(texts):
        verdict = "✓ right: names only objects that are there, with their colour and shape" if names_only_what_is_there(text, scene.objects) else (
            "✗ wrong: names an object that is not there (colour or shape), or not as many as the scene has (two at most)"
        )
        lines.append(f"Caption {i + 1}: {verdict}")
    return "  \n".join(lines)


def answer_truth(scene: shapesworld.Scene | None, question: str = "", answer: str | None = None) -> str:
    """A ShapesWorld scene's questions and true answers; the asked one marked, with whether ``answer`` matches it.

    Empty for any other image; before a question is answered (``answer`` None), just the pairs.
    """
    if scene is None:
        return ""
    asked = " ".join(question.lower().split())
    rows, found = [], False
    for qa in scene.qa:
        mark = ""
        if answer is not None and qa.question == asked:
            found = True
            mark = f"**{html.escape(answer or '(empty)')}** " + ("✓" if answer == qa.answer else "✗")
        rows.append(f"| {html.escape(qa.question)} | {html.escape(qa.answer)} | {mark} |")
    lines = [f"**{GROUND_TRUTH}**", "", "| question | true answer | model |", "|---|---|---|", *rows]
    if answer is not None and not found:
        lines += ["", "The question asked is not one of this scene's, so its true answer is not known here."]
    return "\n".join(lines)


def notes_markdown(result: Generated, model_name: str, what: str, extra: list[str] = ()) -> str:
    spec = models.spec(model_name)
    lines = [f"{len(result.texts)} {what} from **{spec.title}** in {result.seconds * 1000:.0f} ms."]
    return "\n\n".join(lines + [f"- {n}" for n in [*result.notices, *extra]])


# ---------------------------------------------------------------- UI


@errors.user_errors(gpu_seconds=30)
def _caption_ui(
    image_path: str, model_name: str, prefix: str, method: str, beams: int, top_p: float, temperature: float,
    max_tokens: int, count: int, seed: int, progress: gr.Progress = gr.Progress(),
) -> Iterator:
    """Caption an image; the caption streams in token by token.

    Args:
        image_path: the image.
        model_name: "blip-caption-base" (pretrained), "blip-caption-shapes" or "lstm-caption-shapes" (local, ShapesWorld).
        prefix: text the caption must start with (conditional captioning), e.g. "a picture of"; may be empty.
        method: "greedy", "beam search" or "nucleus sampling".
        beams: beam width (beam search), 1-16.
        top_p: nucleus sampling keeps the smallest set of tokens whose probability reaches top-p.
        temperature: nucleus sampling divides the logits by it (below 1: safer, above 1: wilder).
        max_tokens: the longest caption, in tokens (1-60); a model that reads fewer lowers it, and says so in the notes.
        count: how many captions (beam search: the best beams; sampling: independent samples; greedy: always one).
        seed: the sampling seed; the same seed gives the same captions.

    Returns:
        The captions (one per line), notes, the step-by-step decoding of the first caption, the word
        choices, the heatmap of where the model looked for its first content word, and for a
        ShapesWorld scene its true captions and whether each caption is right ("" for other images).
    """
    if not image_path:
        raise ValueError(NO_IMAGE)
    image = common.read_image(image_path)
    decoding = decoding_from(method, beams, top_p, temperature, max_tokens, count, seed)
    model: Captioner = common.load_model(model_name, progress)
    result = None
    for item in model.stream(image, decoding, prefix or ""):
        if isinstance(item, Generated):
            result = item
            break
        shown = [t for t in item[: max(decoding.sequences, 1)] if t]
        if shown:
            yield captions_text(shown), *[gr.skip()] * 6
    explanation = model.explain(image, result.ids[0])
    first = first_content_word(explanation)
    heat = drawing.heat_overlay(image, explanation.heatmaps[first], scale=HEAT_SCALE) if explanation.heatmaps is not None else None
    extra = [] if explanation.heatmaps is not None else ["The CNN-LSTM sees the image as one vector: it has no attention over places to map."]
    yield (
        captions_text(result.texts),
        notes_markdown(result, model_name, "caption(s)", extra),
        steps_html(explanation),
        gr.update(choices=word_choices(explanation), value=first),
        heat,
        caption_truth(scenes.scene_of(image_path), result.texts),
        explanation.heatmaps,
    )


def _word_heatmap(image_path: str | None, heatmaps: np.ndarray | None, step: int | None):
    """Redraw the heatmap for another word of the caption (no model call: the maps are kept per caption)."""
    if not image_path or heatmaps is None or step is None or not 0 <= int(step) < len(heatmaps):
        return gr.skip()
    return drawing.heat_overlay(common.read_image(image_path), heatmaps[int(step)], scale=HEAT_SCALE)


@errors.user_errors(gpu_seconds=30)
def _answer_ui(image_path: str, model_name: str, question: str, progress: gr.Progress = gr.Progress()) -> Iterator:
    """Answer a question about an image; the answer streams in, then the top-5 answers and where the model looked.

    Args:
        image_path: the image.
        model_name: "blip-vqa-base" (pretrained) or "blip-vqa-shapes" (local, ShapesWorld's questions).
        question: e.g. "what colour is the circle?" (at most 300 characters).

    Returns:
        The answer, the five most likely answers with the model's probability of each, a Grad-CAM
        heatmap of where the model looked for the answer, notes, and for a ShapesWorld scene its
        questions with their true answers ("" for other images).
    """
    if not image_path:
        raise ValueError(NO_IMAGE)
    image = common.read_image(image_path)
    model: Answerer = common.load_model(model_name, progress)
    question, notices = check_question(question, model)
    result = None
    for item in model.stream(image, question, Decoding("greedy", max_tokens=10)):
        if isinstance(item, Generated):
            result = item
            break
        if item[0]:
            yield item[0], *[gr.skip()] * 4
    answer = result.texts[0]
    top = model.top_answers(image, question)
    heat = drawing.heat_overlay(image, model.explain(image, question, answer), scale=HEAT_SCALE)
    truth = answer_truth(scenes.scene_of(image_path), question, answer)
    yield answer or "(empty)", top_answers_label(top), heat, notes_markdown(result, model_name, "answer", notices), truth


def _length_slider(model_name: str, length: int | None):
    """The length slider bounded by what ``model_name`` can write (20 positions hold 19 tokens after the start)."""
    longest = longest_caption(models.spec(model_name))
    return gr.update(maximum=longest, value=min(int(length or longest), longest))


def _caption_model_changed(model_name: str, length: int | None):
    spec = models.spec(model_name)
    prefix = gr.update(interactive=True, placeholder="a picture of" if spec.tier == "pretrained" else "a large")
    return picker.model_picked(model_name), prefix, _length_slider(model_name, length)


def build() -> None:
    gr.Markdown(
        "A captioner writes a sentence one token at a time, each chosen from the model's distribution over its "
        "vocabulary; how it chooses (greedy, beam search, sampling) changes the sentence. A VQA model reads the "
        "question together with the image and writes a short answer. The pretrained models are Salesforce's BLIP; "
        "the local ones were trained here on ShapesWorld: a tiny BLIP (the same transformers classes) and the "
        "lecture's CNN-LSTM. Open the panels below to see each step's top-5 tokens and where the model looked."
    )
    with gr.Row():
        with gr.Column(scale=1):
            image = UploadedImage(label="Image", sources=["upload", "clipboard"], height=320, elem_classes="dvl-image")
            new_scene = scenes.new_scene_button()
            examples = gr.Examples(example_images(), inputs=image, label="Examples: unseen ShapesWorld scenes and real photos")
        with gr.Column(scale=1):
            mode = gr.Radio(list(MODES), value="Caption", label="Mode", show_label=False)
            with gr.Column(visible=True) as caption_side:
                model = picker.model_picker(TASK)
                prefix = gr.Textbox("", label="Caption starts with (optional)", placeholder="a picture of")
                method = gr.Radio(list(DECODING_METHODS), value="greedy", label="Decoding")
                with gr.Row():
                    beams = common.int_slider(1, 16, 3, label="Beam width (beam search)")
                    count = common.int_slider(1, MAX_SEQUENCES, 1, label="Captions")
                with gr.Row():
                    top_p = gr.Slider(0.05, 1.0, value=0.9, step=0.05, label="top-p (sampling)")
                    temperature = gr.Slider(0.1, 2.0, value=1.0, step=0.05, label="Temperature (sampling)")
                with gr.Row():
                    # The API accepts up to MAX_NEW_TOKENS for every model (a model that reads fewer lowers it and
                    # says so); the page bounds the slider by the picked model (_length_slider).
                    max_tokens = common.int_slider(1, MAX_NEW_TOKENS, 20, label="Maximum length (tokens)")
                    seed = gr.Number(0, label="Seed (sampling)", precision=0, minimum=0)
                run = gr.Button("Caption", variant="primary")
                captions = gr.Textbox(label="Captions", lines=3, interactive=False)
                truth = gr.Markdown(label=GROUND_TRUTH)
                notes = gr.Markdown(label="Notes")
                card = gr.Markdown(picker.model_card_markdown(model.value))
            with gr.Column(visible=False) as ask_side:
                vqa_model = picker.model_picker(ANSWER_TASK, label="Answering model")
                question = gr.Textbox("what colour is the circle?", label="Question", max_length=MAX_QUESTION_CHARS)
                question_examples = gr.Examples([[q] for q in SHAPES_QUESTIONS], inputs=question, label="Questions the local model knows")
                ask = gr.Button("Answer", variant="primary")
                answer = gr.Textbox(label="Answer", interactive=False)
                top = gr.Label(label="Top-5 answers (the model's probability of each whole answer)", num_top_classes=5)
                answer_heat = gr.Image(
                    label="Where the model looked for this answer (Grad-CAM)", type="pil", format="png", interactive=False, height=320,
                    elem_classes="dvl-image",
                )
                answer_truth_md = gr.Markdown(label=GROUND_TRUTH)
                answer_notes = gr.Markdown(label="Notes")
                vqa_card = gr.Markdown(picker.model_card_markdown(vqa_model.value))
    with gr.Column(visible=True) as caption_panels:
        with gr.Accordion("Decoding, step by step (first caption)", open=True):
            gr.Markdown(
                "At every step the decoder gives a probability to each token of its vocabulary. Greedy decoding takes the "
                "top one; beam search keeps the best few partial captions and may take a token that is not the top one now "
                "because it leads to a likelier sentence (marked ⟂); sampling draws from the top-p nucleus."
            )
            steps = gr.HTML(label="Decoding, step by step")
        with gr.Accordion("Where the model looked, word by word", open=True):
            gr.Markdown(
                "Grad-CAM on the decoder's last cross-attention: for the chosen word, each image patch's attention weight "
                "times how much the word's log-probability depends on it (positive part), averaged over heads."
            )
            # Custom values allowed: if the server dropped this page's session (--max-sessions), the
            # choices it set are gone, and a pick must not fail validation against an empty list.
            word = gr.Dropdown(choices=[], label="Word of the caption", interactive=True, allow_custom_value=True)
            heat = gr.Image(label="Heatmap over the image", type="pil", format="png", interactive=False, height=320, elem_classes="dvl-image")
    heatmaps = gr.State()
    mode.change(
        lambda chosen: [gr.update(visible=chosen == "Caption")] * 2 + [gr.update(visible=chosen != "Caption")],
        mode, [caption_side, caption_panels, ask_side], api_visibility="private", show_progress="hidden",
    )

    caption_inputs = [image, model, prefix, method, beams, top_p, temperature, max_tokens, count, seed]
    caption_outputs = [captions, notes, steps, word, heat, truth, heatmaps]
    wiring.on_new_input(
        _caption_ui, caption_inputs, caption_outputs, button=run, image=image, examples=examples, api_name=ENDPOINT, new_scene=new_scene
    )
    wiring.clear_on_failure(prefix.submit(_caption_ui, caption_inputs, caption_outputs, api_visibility="private"), caption_outputs)
    word.input(_word_heatmap, [image, heatmaps, word], heat, api_visibility="private")
    model.change(_caption_model_changed, [model, max_tokens], [card, prefix, max_tokens], api_visibility="private")
    gr.on(
        None, lambda: _length_slider(model.value, max_tokens.value), None, max_tokens, api_visibility="private", show_progress="hidden", queue=False
    )

    answer_inputs, answer_outputs = [image, vqa_model, question], [answer, top, answer_heat, answer_notes, answer_truth_md]
    events = [
        ask.click(wiring.named_endpoint(_answer_ui, ANSWER_ENDPOINT), answer_inputs, answer_outputs, api_name=ANSWER_ENDPOINT),
        question.submit(_answer_ui, answer_inputs, answer_outputs, api_visibility="private"),
    ]
    for event in events:
        wiring.clear_on_failure(event, answer_outputs)
    wiring.run_on_example(question_examples, _answer_ui, answer_inputs, answer_outputs)
    # A new image makes the shown answer stale: clear it (the caption side reruns on its own), and
    # list a ShapesWorld scene's questions, to pick one from.
    stale = answer_outputs[:-1]
    image.change(None, None, stale, js=wiring.empty_outputs_js(stale), api_visibility="private", show_progress="hidden")
    image.change(
        lambda path: answer_truth(scenes.scene_of(path)), image, answer_truth_md, api_visibility="private", show_progress="hidden", queue=False
    )
    vqa_model.change(picker.model_picked, vqa_model, vqa_card, api_visibility="private")
