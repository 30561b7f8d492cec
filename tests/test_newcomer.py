"""What a newcomer to the page needs: heat maps that say what their colours mean, and a page that works as it looks."""

from __future__ import annotations

import numpy as np
from PIL import Image

from demos import drawing


def _scene(size: int = 128) -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8))


def test_heat_overlay_without_a_scale_keeps_its_old_size():
    assert drawing.heat_overlay(_scene(), np.random.default_rng(1).random((8, 8))).size == (384, 384)


def test_a_scaled_heat_map_carries_a_colour_bar_from_low_at_the_bottom_to_high_at_the_top():
    scale = drawing.HeatScale(0.0, 0.02, "probability of the joint here")
    shown = drawing.heat_overlay(_scene(), np.full((8, 8), 0.02), opacity=1.0, scale=scale)
    assert shown.height == 384 and shown.width > 384 + 40  # the bar sits beside the image, as tall as it
    image, bar = np.asarray(shown)[:, :384], np.asarray(shown)[:, 384:]
    top, bottom = drawing.heatmap(np.array([[1.0]]), (0, 1))[0, 0], drawing.heatmap(np.array([[0.0]]), (0, 1))[0, 0]
    assert np.abs(image[192, 192].astype(int) - top).max() <= 2  # the value at the scale's high end gets the top colour
    column = bar[:, np.flatnonzero((bar == top).all(axis=2).any(axis=0))[0]]  # the colour strip's first column
    rows = np.flatnonzero((np.abs(column.astype(int) - top).max(axis=1) <= 2))
    low_rows = np.flatnonzero((np.abs(column.astype(int) - bottom).max(axis=1) <= 2))
    assert rows.size and low_rows.size and rows.max() < low_rows.min()


def test_the_colour_bar_writes_its_values_and_meaning():
    bar = np.asarray(drawing.colour_bar(384, (-5.0, 5.0, "logit of the class")))
    ink = (bar < 100).all(axis=2)
    assert bar.shape[1] > 60 and ink[:, bar.shape[1] // 2 :].sum() > 200  # tick labels and the meaning, right of the colour strip
    assert [drawing._tick_label(v) for v in (5.0, 2.5, 0.0, -0.0, 0.012345)] == ["5", "2.5", "0", "0", "0.0123"]


def test_a_long_meaning_is_broken_into_lines_that_fit_the_bar():
    short = drawing.colour_bar(100, (0, 1, "a rather long description of what the colour shows in this map"))
    assert short.height == 100 and short.width < 200


def test_heat_image_shows_a_map_alone_enlarged_with_its_bar():
    shown = drawing.heat_image(np.linspace(0, 1, 128 * 128).reshape(128, 128), (0, 1, "confidence"))
    assert shown.height == 384 and shown.width > 384


def test_a_count_slider_is_an_integer_in_the_api_and_in_the_handler():
    import gradio as gr

    from demos import common

    with gr.Blocks() as blocks:
        k = common.int_slider(1, 32, 8, label="Neighbours (k)")
        shown = gr.Textbox(label="what the handler got")
        k.change(lambda value: type(value).__name__, k, shown, api_name="count")
    parameter = blocks.get_api_info()["named_endpoints"]["/count"]["parameters"][0]
    assert parameter["type"]["type"] == "integer" and parameter["python_type"]["type"] == "int"
    assert k.preprocess(8.0) == 8 and isinstance(k.preprocess(8.0), int)


# ---------------------------------------------------------------- the page as built


def _buttons(blocks) -> list[list]:
    return [list(block.buttons) for block in blocks.blocks.values() if isinstance(getattr(block, "buttons", None), (list, tuple))]


def test_share_buttons_only_on_a_space(monkeypatch):
    import app

    monkeypatch.delenv("SPACE_ID", raising=False)
    off_space = _buttons(app.build_app())
    assert off_space and not any("share" in buttons for buttons in off_space)  # it only says "Must be on Spaces to share"
    assert any("download" in buttons for buttons in off_space)  # the other buttons stay
    monkeypatch.setenv("SPACE_ID", "someone/deep-vision-lab")
    assert any("share" in buttons for buttons in _buttons(app.build_app()))


def test_tab_names_wrap_instead_of_hiding_in_a_menu():
    import gradio as gr

    import app

    tabs = [block for block in app.build_app().blocks.values() if isinstance(block, gr.Tabs)]
    assert len(tabs) > 1 and all(tab.overflow_behavior == "wrap" for tab in tabs)  # sections and their tabs


def test_every_example_runs_its_tabs_action_at_once():
    """Picking an example fills the inputs, and then a handler runs (not just the filling)."""
    import gradio as gr

    import app

    blocks = app.build_app()
    fns = list(blocks.fns.values())
    lazy = []
    for dataset in (b for b in blocks.blocks.values() if isinstance(b, gr.Dataset)):
        loads = [f for f in fns if any(target[0] == dataset._id for target in f.targets)]
        followed = [f for f in fns if f.trigger_after in {load._id for load in loads} and f.fn is not None]
        if not followed:
            lazy.append(f"{[blocks.blocks[c._id].label for c in dataset._components]}")
    assert not lazy, f"examples that only fill their inputs (wire them with wiring.run_on_example): {lazy}"


# ---------------------------------------------------------------- in a browser, at a phone's width and a desktop's


def test_the_page_at_400_and_1600_px(app_url, tmp_path):
    """Whole section and tab names, the API link, the picker's text clear of its arrow; one bad upload is one message, the newest."""
    import time

    import pytest

    browser_tests = pytest.importorskip("tests.test_browser")
    if browser_tests.CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed")
    expect = browser_tests.expect
    broken, empty = tmp_path / "broken.png", tmp_path / "empty.png"
    broken.write_text("this is a text file, not a PNG\n")
    empty.write_bytes(b"")
    with browser_tests.sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_tests.CHROMIUM, headless=True, args=browser_tests.CHROMIUM_ARGS)
        try:
            for width in (400, 1600):
                context = browser.new_context(viewport={"width": width, "height": 1200})
                page, panel = browser_tests.open_tab(context, browser_tests.Recorder(), app_url)
                sections = __import__("demos").SECTIONS
                for shown in sections.values():  # the lecture's sections, each with its own tabs below them
                    browser_tests.show_tab(page, shown[0].TITLE)
                    tabs = page.get_by_role("tab")
                    expect(tabs).to_have_count(len(sections) + len(shown))
                    for tab in tabs.all():
                        expect(tab).to_be_visible()
                        assert tab.evaluate("t => t.scrollWidth <= t.clientWidth"), f"{tab.inner_text()!r} is cut at {width} px"
                browser_tests.show_tab(page, browser_tests.TAB)
                expect(page.locator("footer").get_by_text("Use via API")).to_be_visible()
                picker = panel.get_by_role("combobox", name="Model", exact=True)
                text_end, arrow_start = picker.evaluate(
                    "i => [i.getBoundingClientRect().right - parseFloat(getComputedStyle(i).paddingRight),"
                    " i.parentElement.querySelector('.icon-wrap').getBoundingClientRect().left]"
                )
                assert text_end <= arrow_start, f"the model's name runs under the arrow at {width} px"
                if width == 400:
                    messages = page.get_by_test_id("toast-text")
                    for path, words in ((broken, "'broken.png' is not an image"), (empty, "'empty.png' is empty")):
                        before = messages.count()
                        panel.locator("input[type=file]").first.set_input_files(str(path))  # the failed file left: the drop zone is back
                        expect(messages).to_have_count(before + 1, timeout=browser_tests.PREDICT_MS)
                        time.sleep(1)  # a second message from the same upload would be here by now
                        expect(messages).to_have_count(before + 1)
                        shown = [m for m in messages.all() if m.is_visible()]
                        assert len(shown) == 1 and words in shown[0].inner_text(), [m.inner_text() for m in shown]
                        expect(page.locator(".toast-count:visible")).to_have_count(0)
                context.close()
        finally:
            browser.close()
