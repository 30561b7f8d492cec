"""The model picker every tab has, the model's card beside it, and what a pick of a model whose weights are not here does."""

from __future__ import annotations

import gradio as gr

import models


def _picker_choices(task: str, session: str | None = None) -> list[tuple[str, str]]:
    """The task's models, then those ``session`` trained in the Train tab."""
    return [(spec.label, spec.name) for spec in models.for_task(task, session)]


def second_choice(task: str) -> str:
    """A usable model other than the default, for side-by-side comparisons."""
    default = models.default_for(task).name
    usable = [s.name for s in models.for_task(task) if s.availability().usable and s.name != default]
    return usable[-1] if usable else default


def model_picker(task: str, label: str = "Model", value: str | None = None) -> gr.Dropdown:
    """A dropdown of the task's models showing tier and availability, set to ``value`` or the best usable one.

    The labels are refreshed on every page load, so a model downloaded since start-up shows as cached,
    and when the picker gets focus, so a model this session trained in the Train tab is listed.
    """
    picker = gr.Dropdown(
        choices=_picker_choices(task),
        value=value or models.default_for(task).name,
        label=label,
        info="local = trained here on ShapesWorld, runs offline · pretrained = canonical public weights · "
        "the default is the best model that runs here (on a CPU, a fast one)",
    )
    # Not queued: a page load refreshes every picker at once, and this costs no model; queued, a
    # page's own refreshes would use up its share of the queue (hosting.fairness) before any request.
    def refresh(request: gr.Request):
        return gr.update(choices=_picker_choices(task, request.session_hash))

    gr.on([picker.focus], refresh, None, picker, api_visibility="private", show_progress="hidden", queue=False)
    gr.on(None, refresh, None, picker, api_visibility="private", show_progress="hidden", queue=False)
    return picker


def no_autolink(text: str) -> str:
    """``text`` for Markdown with every "@" escaped: "mAP@0.5" or "PCK@0.1" is not an e-mail address to link."""
    return text.replace("@", "&#64;")


def missing_weights_note(name: str) -> str | None:
    """How to get ``name``'s weights when they are not here (the command, never this server's paths); None when they are."""
    availability = models.spec(name).availability()
    if availability.usable:
        return None
    if availability is models.Availability.MISSING:
        return f"Its weights are missing: train them with `python -m models train {name}`."
    return (
        f"Its weights are not on this machine and cannot be downloaded from here: on a connected machine run "
        f"`python -m models prefetch {name}` and copy the weights over. Until then, pick a local model."
    )


def model_card_markdown(name: str) -> str:
    """A short description of a model: tier, source, licence, size, metrics, and how to get weights that are not here."""
    spec = models.spec(name)
    metrics = no_autolink(", ".join(f"{k}: {v}" for k, v in spec.metrics.items() if v is not None) or "—")
    missing = missing_weights_note(name)
    return (
        f"**{spec.title}** · {spec.tier} · {spec.availability().value}  \n"
        f"{spec.params / 1e6:.2f} M parameters · licence: {spec.license}  \n"
        f"metrics: {metrics}  \n"
        f"code: {spec.about}" + (f"  \n⚠ {missing}" if missing else "")
    )


def model_picked(model_name: str) -> str:
    """The card of a newly picked model; if its weights are not here, one warning that says how to get them.

    Picking such a model must not fail: every control keeps working, and the redraw that follows
    the pick (``unusable_outputs``) stays quiet, so the page shows this one message, not one per handler.
    """
    note = missing_weights_note(model_name)
    if note:
        gr.Warning(f"{models.spec(model_name).title} cannot run here. {note.replace('`', '')}")  # a toast shows no Markdown
    return model_card_markdown(model_name)


def unusable_outputs(model_name: str, count: int) -> tuple | None:
    """A redraw's outputs when ``model_name``'s weights are not here: emptied, the second (a summary or note) saying why; None when they are.

    The redraws (a control moved, a model picked) are private: the card already says how to get the
    weights, so they clear the previous model's result instead of raising a second message.
    """
    if models.spec(model_name).availability().usable:
        return None
    summary = f"No result: the weights of {models.spec(model_name).title} are not on this machine (see the model card)."
    return (None, summary, *([None] * (count - 2)))
