"""Wiring a tab's main action: the events that run it, its public endpoint, and emptying its outputs when it fails."""

from __future__ import annotations

import functools
import inspect
import json
from typing import Callable, ParamSpec, TypeVar

import gradio as gr

from . import scenes

P = ParamSpec("P")
R = TypeVar("R")


def clear_on_failure(event, outputs: list) -> None:
    """When ``event`` fails, empty ``outputs`` in the page (in the browser, no server round trip).

    Otherwise the error toast appears over the previous image's result, which then reads as the
    answer to the new, failed input.
    """
    event.failure(None, None, outputs, js=empty_outputs_js(outputs), api_visibility="private", show_progress="hidden")


def empty_outputs_js(outputs: list) -> str:
    """A browser-side function that empties ``outputs`` (no server round trip)."""
    values = [empty_value(component) for component in outputs]
    return f"() => {json.dumps(values[0] if len(values) == 1 else values)}"


def empty_value(component) -> object:
    """What ``component`` shows when it has no value, as its frontend expects it (a Label wants ``{}``, not null)."""
    value = component.postprocess(None)
    return value.model_dump() if hasattr(value, "model_dump") else value


def named_endpoint(fn: Callable[P, R], name: str) -> Callable[P, R]:
    """``fn`` under its endpoint's public name: MCP clients see a function's name as the tool's name.

    A generator stays a generator function, since that is how Gradio knows to stream its updates.
    """
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def endpoint(*args: P.args, **kwargs: P.kwargs):
            yield from fn(*args, **kwargs)

    else:

        @functools.wraps(fn)
        def endpoint(*args: P.args, **kwargs: P.kwargs) -> R:
            return fn(*args, **kwargs)

    endpoint.__name__ = endpoint.__qualname__ = name
    return endpoint


def on_new_input(
    fn: Callable, inputs: list, outputs: list, *, button, image, examples, api_name: str,
    new_scene=None, draw: Callable[[], str] | None = None,
) -> None:
    """Run a tab's main action on a click (its public endpoint), a fresh upload and a picked example.

    ``new_scene`` (a button, see ``demos.scenes``) puts the file ``draw()`` returns (a new unseen
    scene by default) into ``image`` and runs the action on it. Each path clears the outputs if it
    fails (``clear_on_failure``).
    """
    events = [button.click(named_endpoint(fn, api_name), inputs, outputs, api_name=api_name)]
    # A file that fails goes too, so the drop zone is back for the next one (a broken thumbnail
    # would otherwise stay, and a second file dropped on it is not an upload).
    clear_on_failure(image.upload(fn, inputs, outputs, api_visibility="private"), [*outputs, image])
    run_on_example(examples, fn, inputs, outputs)
    if new_scene is not None:
        drawn = new_scene.click(draw or scenes.new_scene_file, None, image, api_visibility="private", show_progress="hidden")
        events.append(drawn.then(fn, inputs, outputs, api_visibility="private"))
    for event in events:
        clear_on_failure(event, outputs)


def run_on_example(examples: gr.Examples, fn: Callable, inputs: list, outputs: list) -> None:
    """A picked example runs ``fn`` at once, as on every tab: an example that only fills a box looks broken.

    For any ``gr.Examples`` (images, prompts, questions): the inputs are filled, then ``fn`` runs,
    and a failure clears ``outputs`` (``clear_on_failure``).
    """
    clear_on_failure(examples.load_input_event.then(fn, inputs, outputs, api_visibility="private"), outputs)
