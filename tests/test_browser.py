"""The segmentation tab in a real browser (Debian's Chromium, driven by Playwright).

What a student does: open the page, pick a model, click an example, read the legend; upload
a file that is not an image and get a clear message; carry on. Along the way every request
the page makes is recorded, and the page must only ever talk to the app itself: the app has
to work on a machine with no internet (no CDN fonts, scripts or telemetry).

Needs ``/usr/bin/chromium`` (``make test`` installs it with apt); skipped without it. Never
let Playwright download a browser of its own. Screenshots of the key steps are written to
``test-artifacts/`` for a human to look at.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import demos

sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need playwright (requirements-dev.txt)")
expect = sync_api.expect

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"  # as in conftest.py

CHROMIUM = "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else shutil.which("chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

VIEWPORT = {"width": 1600, "height": 1600}  # a wide desktop window (every section and tab name fits in one row), tall enough for the whole tab
PAGE_LOAD_MS = 60_000  # the first load on 2 busy cores can take ~10 s
PREDICT_MS = 90_000  # model load + predict of a real architecture on CPU
UI_MS = 15_000  # a click, a dropdown, a toast

TAB = "Semantic segmentation"
LOCAL_MODEL = "U-Net (ShapesWorld)"
PRETRAINED_MODEL = "DeepLabV3 MobileNetV3-Large"  # planted random weights (tests/conftest.py)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (/usr/bin/chromium); `make test` installs it with apt"
)


# ---------------------------------------------------------------- browser and recording


class Recorder:
    """Every URL the pages of one browser context request, websockets and EventSource included."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        self.page_errors: list[str] = []

    def attach(self, context) -> None:
        context.on("request", lambda request: self.urls.append(request.url))
        context.on("page", self._attach_page)

    def _attach_page(self, page) -> None:
        page.on("websocket", lambda socket: self.urls.append(socket.url))
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))

    def foreign(self, own_netloc: str) -> list[str]:
        """The recorded URLs that go anywhere but the app (``data:`` and ``blob:`` stay in the page)."""
        bad = []
        for url in self.urls:
            parts = urlsplit(url)
            if parts.scheme in ("data", "blob"):
                continue
            if parts.scheme in ("http", "https", "ws", "wss") and parts.netloc == own_netloc:
                continue
            bad.append(url)
        return sorted(set(bad))


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def session(browser):
    """A fresh context (no cookies, no cache) and the recorder of everything it requests."""
    recorder = Recorder()
    context = browser.new_context(viewport=VIEWPORT)
    recorder.attach(context)
    yield context, recorder
    context.close()


# ---------------------------------------------------------------- page helpers


def screenshot(page, name: str) -> None:
    """A full-page picture. The viewport is already as tall as the page (see VIEWPORT): growing
    it for the capture would make Gradio move its toasts mid-transition, out of the picture."""
    ARTIFACTS.mkdir(exist_ok=True)
    for toast in page.get_by_test_id("toast-body").all():
        expect(toast).to_have_css("opacity", "1", timeout=UI_MS)  # its fade-in is over
        toast.hover(trial=True, timeout=UI_MS)  # and it stopped moving
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


@contextlib.contextmanager
def screenshot_on_failure(page, name: str = "browser-failure.png"):
    """Keep a picture of the page as it was when a step failed."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            screenshot(page, name)
        raise


def section_of(tab: str) -> str:
    """The lecture's section (the page's first level of tabs) that holds tab ``tab``."""
    return next(section for section, tabs in demos.SECTIONS.items() if tab in (demo.TITLE for demo in tabs))


def task_panel(page, button: str):
    """The shown task tab whose main button is ``button`` (a task's tab sits inside its section's tab)."""
    return page.locator("[role=tabpanel] [role=tabpanel]:visible").filter(has=page.get_by_role("button", name=button, exact=True))


def open_tab(context, recorder: Recorder, url: str, name: str = TAB, button: str = "Segment"):
    """A new page on the app, with tab ``name`` shown (its main button is ``button``); returns (page, tab panel)."""
    page = context.new_page()
    page.goto(url, timeout=PAGE_LOAD_MS)
    expect(page.get_by_role("tab", name=section_of(name), exact=True)).to_be_visible(timeout=PAGE_LOAD_MS)
    # Gradio covers the whole app with a "Loading..." tracker until every component is mounted;
    # a component that throws while mounting leaves it there for good.
    loading = page.locator("[data-testid=status-tracker].full:not(.hide)").filter(has_text="Loading")
    try:
        expect(loading).to_have_count(0, timeout=PAGE_LOAD_MS)
        loaded = True
    except AssertionError:
        loaded = False
    if not loaded:
        screenshot(page, "browser-failure.png")
        pytest.fail(f"the page never finished loading (still 'Loading...'); JavaScript errors: {recorder.page_errors}")
    show_tab(page, name)
    panel = task_panel(page, button)
    expect(panel).to_have_count(1, timeout=UI_MS)
    return page, panel


def block(panel, label: str):
    """The Gradio block (one component) whose label is exactly ``label``."""
    title = panel.page.get_by_test_id("block-label").filter(has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))
    return panel.locator(".block").filter(has=title).last


def choose_model(panel, title: str, label: str = "Model") -> None:
    """Gradio 6 dropdown: click the combobox labelled ``label``, then the option whose text contains ``title``."""
    page = panel.page
    combobox = panel.get_by_role("combobox", name=label, exact=True)
    combobox.click()
    option = page.get_by_role("option").filter(has_text=title)
    expect(option).to_have_count(1, timeout=UI_MS)
    option.click()
    expect(combobox).to_have_value(re.compile(re.escape(title)), timeout=UI_MS)


def click_example(panel, file_stem: str) -> None:
    """Click the example whose file name starts with ``file_stem`` (the Examples gallery)."""
    example = panel.locator(f"button.gallery-item:has(img[src*='/{file_stem}'])").first  # this tab's examples, not a hidden tab's
    expect(example).to_be_visible(timeout=UI_MS)
    example.click()


def overlay_src(panel) -> str | None:
    image = block(panel, "Classes over the image").locator("img")
    return image.first.get_attribute("src") if image.count() else None


def error_toasts(page):
    return page.locator("[data-testid=toast-body].error")


def close_toasts(page) -> None:
    for button in page.get_by_test_id("toast-close").all():
        if button.is_visible():
            button.click()
    expect(page.get_by_test_id("toast-body")).to_have_count(0, timeout=UI_MS)


def wait_for_result(panel, previous_src: str | None) -> dict[str, float]:
    """Wait for a new overlay image (or fail fast on an error toast); return the legend as {class: %}."""
    page = panel.page
    images = block(panel, "Classes over the image").locator("img")
    fresh = images.first if previous_src is None else images.and_(panel.page.locator(f"img:not([src={previous_src!r}])"))
    expect(fresh.or_(error_toasts(page)).first).to_be_visible(timeout=PREDICT_MS)
    if error_toasts(page).count():
        message = error_toasts(page).first.get_by_test_id("toast-text").first.inner_text()
        pytest.fail(f"the app showed an error instead of a result: {message!r}")
    rows = panel.locator(".dvl-legend .dvl-legend-row")
    expect(rows.first).to_be_visible(timeout=UI_MS)
    legend = {}
    for row in rows.all():
        name = row.locator(".dvl-legend-name").inner_text().strip()
        share = row.locator(".dvl-legend-share").inner_text().strip()
        assert re.fullmatch(r"\d+(\.\d+)?%", share), f"legend row {name!r} shows {share!r}, not a percentage"
        legend[name] = float(share.rstrip("%"))
    return legend


def categories(model_name: str) -> list[str]:
    """The class names a model can put in the legend, read from its card or weights metadata."""
    import models

    source = models.spec(model_name).source
    return list(source.card().get("classes", [])) if hasattr(source, "card") else list(source.weights.meta["categories"])


# ---------------------------------------------------------------- the test


def test_segmentation_tab_in_a_browser(app_url, session, tmp_path):
    context, recorder = session
    own = urlsplit(app_url).netloc

    # 1-2. The page opens on the segmentation tab.
    page, panel = open_tab(context, recorder, app_url)
    with screenshot_on_failure(page):
        expect(page.get_by_role("heading", name="Deep Vision Lab")).to_be_visible(timeout=UI_MS)
        foreign = recorder.foreign(own)  # checked again at the end; most assets load now
        assert not foreign, "loading the page requested URLs outside the app:\n" + "\n".join(foreign)

        # 3. Local model on an unseen ShapesWorld scene (the first example): the change of image runs it.
        choose_model(panel, LOCAL_MODEL)
        click_example(panel, "shapesworld-")
        legend = wait_for_result(panel, previous_src=None)
        screenshot(page, "browser-segmentation-local.png")
        assert len(legend) >= 2, f"a ShapesWorld scene should show background and at least one shape; legend: {legend}"
        assert "background" in legend, legend
        unknown = set(legend) - set(categories("unet-shapes"))
        assert not unknown, f"legend names {unknown} are not U-Net classes"
        assert 99.0 <= sum(legend.values()) <= 101.0, f"shares should add up to 100%: {legend}"

        # 4. A pretrained architecture (random planted weights: classes are meaningless) on a real photo.
        choose_model(panel, PRETRAINED_MODEL)
        expect(panel.get_by_text(PRETRAINED_MODEL, exact=True).first).to_be_visible(timeout=UI_MS)  # the model card
        before = overlay_src(panel)
        click_example(panel, "astronaut")
        legend = wait_for_result(panel, previous_src=before)
        screenshot(page, "browser-segmentation-pretrained.png")
        assert legend, "no legend for the pretrained model"
        unknown = set(legend) - set(categories("deeplabv3-mobilenet"))
        assert not unknown, f"legend names {unknown} are not PASCAL VOC classes"

        # 5. A file that is not an image: a clear message, no stack trace, and the server carries on.
        broken = tmp_path / "broken.png"
        broken.write_text("this is a text file, not a PNG\n")
        block(panel, "Image").locator("input[type=file]").set_input_files(str(broken))
        toast = error_toasts(page).first
        text = toast.get_by_test_id("toast-text").first
        expect(text).to_be_visible(timeout=PREDICT_MS)
        expect(toast).to_be_in_viewport(ratio=1, timeout=UI_MS)  # slid in: the screenshot shows it
        screenshot(page, "browser-error.png")
        message = text.inner_text()
        assert re.search(r"'broken\.png' is not an image", message), f"unclear error message: {message!r}"
        assert "Please upload" in message, f"the message should say what to do: {message!r}"
        for leak in ("Traceback", "/tmp/", "Error:", "Could not preprocess"):
            assert leak not in message, f"the error message leaks internals ({leak!r}): {message!r}"
        expect(page.locator("body")).not_to_contain_text("Traceback")
        # The astronaut's result is gone: it must not read as the answer to the broken file.
        expect(block(panel, "Classes over the image").locator("img")).to_have_count(0, timeout=UI_MS)
        expect(panel.locator(".dvl-legend-row")).to_have_count(0, timeout=UI_MS)
        close_toasts(page)

        before = overlay_src(panel)
        click_example(panel, "chelsea")
        legend = wait_for_result(panel, previous_src=before)
        assert legend, "no legend after the error: the server stopped serving"
        expect(error_toasts(page)).to_have_count(0)

        assert not recorder.page_errors, f"uncaught JavaScript errors in the page: {recorder.page_errors}"

        # 1 (end). Nothing left the machine: fonts, scripts, images, the queue's SSE/websocket.
        assert recorder.urls, "no request was recorded"
        foreign = recorder.foreign(own)
        assert not foreign, "the page requested URLs outside the app:\n" + "\n".join(foreign)



def wait_for_image(panel, label: str, previous_src: str | None = None):
    """Wait for a new picture in the image block ``label`` (or fail fast on an error toast)."""
    page = panel.page
    images = block(panel, label).locator("img")
    fresh = images.first if previous_src is None else images.and_(page.locator(f"img:not([src={previous_src!r}])"))
    expect(fresh.or_(error_toasts(page)).first).to_be_visible(timeout=PREDICT_MS)
    if error_toasts(page).count():
        message = error_toasts(page).first.get_by_test_id("toast-text").first.inner_text()
        pytest.fail(f"the app showed an error instead of a result: {message!r}")
    return fresh


def visible_table_rows(panel):
    """Rows of the tab's visible tables (the result table; tables in closed accordions are hidden)."""
    return panel.locator("table tbody tr:visible")


@pytest.mark.parametrize(
    "tab, button, model, result, table, file_stem",
    [
        ("Object detection", "Detect", "FCOS (ShapesWorld)", "Detections", "Detections (box corners in pixels)", "detection"),
        ("Instance segmentation", "Segment instances", "Mask R-CNN (ShapesWorld)", "Instances", "Instances (box corners in pixels)", "instances"),
        ("Pose", "Estimate pose", "Keypoint R-CNN (ShapesWorld)", "Skeletons", "Keypoints (pixels)", "pose"),
    ],
)
def test_detector_tabs_in_a_browser(app_url, session, tab, button, model, result, table, file_stem):
    """A ShapesWorld example on the local model: the drawn result and its table appear, and nothing leaves the app."""
    context, recorder = session
    page, panel = open_tab(context, recorder, app_url, tab, button)
    with screenshot_on_failure(page, f"browser-{file_stem}-failure.png"):
        choose_model(panel, model)
        click_example(panel, "shapesworld-")
        wait_for_image(panel, result)
        expect(panel.get_by_text(table, exact=True).first).to_be_visible(timeout=UI_MS)
        expect(visible_table_rows(panel).first).to_be_visible(timeout=UI_MS)
        screenshot(page, f"browser-{file_stem}.png")
        expect(page.locator("body")).not_to_contain_text("Traceback")
        assert not recorder.page_errors, f"uncaught JavaScript errors in the page: {recorder.page_errors}"
        foreign = recorder.foreign(urlsplit(app_url).netloc)
        assert not foreign, "the page requested URLs outside the app:\n" + "\n".join(foreign)


def test_captioning_tab_in_a_browser(app_url, session):
    """A ShapesWorld example is captioned by the tiny BLIP with its step table and heatmap; in "Ask a question"
    mode the tiny VQA model answers with its top-5 and map; an empty question is a clear message and clears the answer."""
    context, recorder = session
    page, panel = open_tab(context, recorder, app_url, "Captions and questions", "Caption")
    with screenshot_on_failure(page, "browser-captioning-failure.png"):
        choose_model(panel, "Tiny BLIP captioner")
        click_example(panel, "shapesworld-")
        captions = panel.get_by_role("textbox", name="Captions", exact=True)
        expect(captions).to_have_value(re.compile(r"^an? .*(circle|square|triangle|star|ring|person)$"), timeout=PREDICT_MS)
        expect(panel.locator("table.dvl-steps tr").nth(3)).to_be_visible(timeout=UI_MS)
        wait_for_image(panel, "Heatmap over the image")
        screenshot(page, "browser-captioning.png")
        truth = panel.get_by_text("True caption:")  # the example is a ShapesWorld scene: its ground truth is shown
        expect(truth).to_be_visible(timeout=UI_MS)
        shown = truth.inner_text()
        panel.get_by_role("button", name="New unseen scene").click()  # another scene, captioned, with its own truth
        expect(truth).not_to_have_text(shown, timeout=PREDICT_MS)

        panel.get_by_text("Ask a question", exact=True).click()
        panel = task_panel(page, "Answer")
        choose_model(panel, "Tiny BLIP VQA", label="Answering model")
        question = panel.get_by_role("textbox", name="Question", exact=True)
        question.fill("how many circles are there?")
        panel.get_by_role("button", name="Answer", exact=True).click()
        answer = panel.get_by_role("textbox", name="Answer", exact=True)
        expect(answer).to_have_value(re.compile(r"^(zero|one|two|three|four|five|six)$"), timeout=PREDICT_MS)
        wait_for_image(panel, "Where the model looked for this answer (Grad-CAM)")
        expect(panel.get_by_test_id("label-output-value")).to_be_visible(timeout=UI_MS)
        screenshot(page, "browser-answering.png")

        question.fill("")
        panel.get_by_role("button", name="Answer", exact=True).click()
        expect(error_toasts(page).first).to_contain_text("Ask a question", timeout=UI_MS)
        expect(answer).to_have_value("", timeout=UI_MS)  # no stale answer under the error
        expect(page.locator("body")).not_to_contain_text("Traceback")
        assert not recorder.page_errors, f"uncaught JavaScript errors in the page: {recorder.page_errors}"
        foreign = recorder.foreign(urlsplit(app_url).netloc)
        assert not foreign, "the page requested URLs outside the app:\n" + "\n".join(foreign)


def test_clip_tab_in_a_browser(app_url, session):
    """An unseen red ring (a pair the mini-CLIP never trained on): the bar chart names it, the table and map fill in;
    emptying the labels gives a clear message, and the tab carries on."""
    context, recorder = session
    page, panel = open_tab(context, recorder, app_url, "CLIP zero-shot", "Classify")
    with screenshot_on_failure(page, "browser-classify-failure.png"):
        choose_model(panel, "Mini-CLIP (ShapesWorld)")
        example = panel.locator("img[src*='/shapesworld-object-']").first  # examples of two inputs are table rows
        expect(example).to_be_visible(timeout=UI_MS)
        example.click()
        chart = block(panel, "Answer for the first image")
        expect(chart.get_by_test_id("label-output-value")).to_have_text("red ring", timeout=PREDICT_MS)
        expect(panel.locator("table.dvl-matrix tr")).to_have_count(2, timeout=UI_MS)
        panel.get_by_text("The shared embedding space, in 2-D").click()
        expect(block(panel, "Embedding map (PCA)").locator("img").first).to_be_visible(timeout=UI_MS)
        screenshot(page, "browser-classify.png")

        labels = panel.locator("label").filter(has_text=re.compile(r"^\s*Labels")).locator("textarea")
        labels.fill("")
        panel.get_by_role("button", name="Classify", exact=True).click()
        expect(error_toasts(page).first).to_contain_text("at least one label", timeout=UI_MS)
        close_toasts(page)
        labels.fill("red ring, green star, blue circle")
        panel.get_by_role("button", name="Classify", exact=True).click()
        expect(chart.get_by_test_id("label-output-value")).to_have_text("red ring", timeout=PREDICT_MS)
        expect(page.locator("body")).not_to_contain_text("Traceback")
        assert not recorder.page_errors, f"uncaught JavaScript errors in the page: {recorder.page_errors}"
        foreign = recorder.foreign(urlsplit(app_url).netloc)
        assert not foreign, "the page requested URLs outside the app:\n" + "\n".join(foreign)



def test_retrieval_tab_in_a_browser(app_url, session):
    """An unseen object as the query: the neighbours appear with their cosine similarity, and the map draws."""
    context, recorder = session
    page, panel = open_tab(context, recorder, app_url, "Self-supervised retrieval", "Find neighbours")
    with screenshot_on_failure(page, "browser-retrieve-failure.png"):
        choose_model(panel, "Rotation encoder (ShapesWorld)")
        click_example(panel, "shapesworld-object-")
        neighbours = block(panel, "Nearest neighbours, best first")
        expect(neighbours.locator("img")).to_have_count(8, timeout=PREDICT_MS)
        expect(panel.get_by_text("nearest of 600 gallery images")).to_be_visible(timeout=UI_MS)
        for width in (400, VIEWPORT["width"]):  # every caption whole, on a phone and on a desktop
            page.set_viewport_size({**VIEWPORT, "width": width})
            expect(neighbours.locator(".caption-label")).to_have_count(8, timeout=UI_MS)
            cut = neighbours.locator(".caption-label").evaluate_all("all => all.filter(e => e.scrollWidth > e.clientWidth).map(e => e.textContent)")
            assert not cut, f"captions cut at {width} px: {cut}"
        panel.get_by_text("The gallery in 2-D").click()
        panel.get_by_role("button", name="Draw the map").click()
        expect(block(panel, "Gallery embeddings").locator("img").first).to_be_visible(timeout=PREDICT_MS)
        screenshot(page, "browser-retrieve.png")
        expect(page.locator("body")).not_to_contain_text("Traceback")
        assert not recorder.page_errors, f"uncaught JavaScript errors in the page: {recorder.page_errors}"
        foreign = recorder.foreign(urlsplit(app_url).netloc)
        assert not foreign, "the page requested URLs outside the app:\n" + "\n".join(foreign)


def test_diffusion_tab_in_a_browser(app_url, session):
    """The local model draws the prompt, the denoising steps fill in, an empty prompt is a clear message,
    Stop ends a long run and the tab still answers."""
    context, recorder = session
    page, panel = open_tab(context, recorder, app_url, "Text to image", "Generate")
    with screenshot_on_failure(page, "browser-diffusion-failure.png"):
        choose_model(panel, "ShapesWorld diffusion")
        prompt = panel.locator("label").filter(has_text=re.compile(r"^\s*Prompt")).locator("textarea").first
        prompt.fill("a large red triangle")
        panel.get_by_role("button", name="Generate", exact=True).click()
        generated = block(panel, "Generated")
        expect(generated.locator("img")).to_have_count(1, timeout=PREDICT_MS)
        expect(block(panel, "Denoising").locator("img")).to_have_count(16, timeout=UI_MS)  # 8 of the 10 steps x (x_t, x̂_0)
        expect(panel.get_by_text(re.compile(r"1 image\(s\) from"))).to_be_visible(timeout=UI_MS)
        screenshot(page, "browser-diffusion.png")

        prompt.fill("")
        panel.get_by_role("button", name="Generate", exact=True).click()
        expect(error_toasts(page).first).to_contain_text("Write a prompt", timeout=UI_MS)
        expect(generated.locator("img")).to_have_count(0, timeout=UI_MS)  # no stale images under the error
        close_toasts(page)

        prompt.fill("a small blue ring")
        panel.get_by_role("button", name="Generate", exact=True).click()
        panel.get_by_role("button", name="Stop", exact=True).click()
        page.wait_for_timeout(1500)  # let the cancel land first: sent after the next click, it would cancel that run too
        panel.get_by_role("button", name="Generate", exact=True).click()
        expect(generated.locator("img")).to_have_count(1, timeout=PREDICT_MS)
        expect(page.locator("body")).not_to_contain_text("Traceback")
        assert not recorder.page_errors, f"uncaught JavaScript errors in the page: {recorder.page_errors}"
        foreign = recorder.foreign(urlsplit(app_url).netloc)
        assert not foreign, "the page requested URLs outside the app:\n" + "\n".join(foreign)


@pytest.mark.parametrize(
    "tab, button, model, example",
    [
        ("Semantic segmentation", "Segment", "DeepLabV3 ResNet-50", "shapesworld-"),
        ("Object detection", "Detect", "Faster R-CNN ResNet-50 FPN v2", "shapesworld-"),
        ("Pose", "Estimate pose", "Keypoint R-CNN ResNet-50 FPN", "shapesworld-"),
        ("Instance segmentation", "Segment instances", "Mask R-CNN ResNet-50 FPN v2", "shapesworld-"),
        ("Captions and questions", "Caption", "BLIP base captioning", "shapesworld-"),
        ("CLIP zero-shot", "Classify", "OpenCLIP ViT-B/16 (LAION-2B)", "shapesworld-object-"),
        ("Self-supervised retrieval", "Find neighbours", "DINOv2 ViT-S/14 (self-supervised)", "shapesworld-object-"),
        ("Depth estimation", "Estimate depth", "DPT-Large (MiDaS 3.0)", "shapesworld-"),
        ("Text to image", "Generate", "SD-Turbo (512x512, 1-4 steps, non-commercial licence)", None),
    ],
)
def test_picking_a_model_without_weights_in_a_browser(app_url, session, tab, button, model, example):
    """A pretrained model whose weights are not here (offline, not planted), picked after a result: one message, no
    control turns into an error badge, and the card names the picked model and how to get its weights."""
    context, recorder = session
    page, panel = open_tab(context, recorder, app_url, tab, button)
    with screenshot_on_failure(page, f"browser-unavailable-{button.split()[0].lower()}-failure.png"):
        if example:
            picture = panel.locator(f"img[src*='/{example}']").first  # a gallery item, or a table row with several inputs
            expect(picture).to_be_visible(timeout=UI_MS)
            picture.click()
        expect(page.locator("[data-testid=status-tracker]").filter(has_text="processing")).to_have_count(0, timeout=PREDICT_MS)
        choose_model(panel, model)
        expect(panel.get_by_text("python -m models prefetch").first).to_be_visible(timeout=UI_MS)  # the card
        expect(panel.get_by_text(model, exact=True).first).to_be_visible(timeout=UI_MS)
        page.wait_for_timeout(2000)  # every handler the pick starts has answered
        expect(page.get_by_test_id("toast-body")).to_have_count(1, timeout=UI_MS)
        expect(page.get_by_test_id("toast-text")).to_have_count(1)  # Gradio stacks repeats of one message in one toast
        expect(page.locator(".error:visible")).to_have_count(0)  # no component shows Gradio's red "Error" badge
        expect(page.locator("body")).not_to_contain_text("Traceback")
        assert not recorder.page_errors, f"uncaught JavaScript errors in the page: {recorder.page_errors}"


# ---------------------------------------------------------------- every output whole, on a desktop and on a phone

WIDTHS = (1600, 400)  # a desktop window and a phone held upright

# Each visible <img> against every ancestor that clips its content (overflow other than visible: Gradio's gallery
# grid scrolls in a box of its own, blocks of a fixed height hide what overflows) and against the window's width;
# and whether it loaded at all. Returns a line per image not shown whole, saying why.
CLIPPED_IMAGES_JS = """() => {
  const clipping = new Set(["hidden", "auto", "scroll", "clip"]);
  const width = document.documentElement.clientWidth;
  const found = [];
  for (const img of document.querySelectorAll("img")) {
    const box = img.getBoundingClientRect();
    if (!img.checkVisibility() || box.width === 0 || box.height === 0) continue;
    const name = img.getAttribute("alt") || (img.getAttribute("src") || "").split("/").pop();
    const size = `${Math.round(box.width)}x${Math.round(box.height)} px`;
    if (img.complete && img.naturalWidth === 0) found.push(`${name} did not load (a broken image)`);
    if (box.left < -1 || box.right > width + 1) found.push(`${name} (${size}) runs out of the ${width} px window`);
    for (let el = img.parentElement; el && el !== document.body; el = el.parentElement) {
      const style = getComputedStyle(el);
      const x = clipping.has(style.overflowX), y = clipping.has(style.overflowY);
      if (!x && !y) continue;
      const frame = el.getBoundingClientRect();
      if ((y && (box.top < frame.top - 1 || box.bottom > frame.bottom + 1)) || (x && (box.left < frame.left - 1 || box.right > frame.right + 1))) {
        found.push(`${name} (${size}) is cut off by <${el.tagName.toLowerCase()} class="${el.className}"> ` +
                   `(${Math.round(frame.width)}x${Math.round(frame.height)} px, overflow ${style.overflowX}/${style.overflowY})`);
        break;
      }
    }
  }
  return found;
}"""


def show_tab(page, name: str) -> None:
    """Select tab ``name``: its lecture section first, then the tab itself, each through Gradio's
    "More tabs" menu when the window is too narrow to show its name."""
    for label in (section_of(name), name):
        tab = page.get_by_role("tab", name=label, exact=True)
        if tab.count() and tab.is_visible():
            if tab.get_attribute("aria-selected") != "true":
                tab.click()
            continue
        page.get_by_role("button", name="More tabs").click()
        page.locator(".overflow-dropdown button").filter(has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")).click()


def assert_outputs_whole(page, tab: str, widths: tuple[int, ...] = WIDTHS) -> None:
    """At each window width, no visible image of tab ``tab`` is cut off by a box around it or by the window.

    Call it once the tab shows its results (and any panel to check is open); the window keeps the
    last width. Screenshots: test-artifacts/browser-whole-<tab>-<width>.png.
    """
    height = page.viewport_size["height"] if page.viewport_size else VIEWPORT["height"]
    problems = []
    for width in widths:
        page.set_viewport_size({"width": width, "height": height})
        show_tab(page, tab)
        page.wait_for_timeout(500)  # the layout settles (Gradio measures some boxes after a resize)
        screenshot(page, f"browser-whole-{re.sub(r'[^a-z0-9]+', '-', tab.lower()).strip('-')}-{width}.png")
        problems += [f"at {width} px: {line}" for line in page.evaluate(CLIPPED_IMAGES_JS)]
    assert not problems, f"images of the {tab!r} tab are not shown whole:\n" + "\n".join(problems)


# Click Stop in the page's own frame as soon as a step is reported: a click from the test, a round trip later,
# can come after the last step on a loaded machine.
STOP_AT_FIRST_STEP_JS = """() => {
  const running = [...document.querySelectorAll("[data-testid=markdown]")].some(e => /^Denoising… step \\d+ of \\d+$/.test(e.innerText.trim()));
  const stop = [...document.querySelectorAll("button")].find(b => b.innerText.trim() === "Stop" && b.checkVisibility());
  if (running && stop) stop.click();
  return Boolean(running && stop);
}"""


def test_text_to_image_and_roialign_outputs_show_whole_in_a_browser(app_url, session):
    """Text to image: an example runs at once, and the images, the denoising steps with their captions and the
    guidance comparison show whole at both widths; Stop keeps the steps reached and says where. Then the RoIAlign
    panel of the instance tab, whose figures are taller than the window."""
    context, recorder = session
    page, panel = open_tab(context, recorder, app_url, "Text to image", "Generate")
    with screenshot_on_failure(page, "browser-whole-failure.png"):
        choose_model(panel, "ShapesWorld diffusion")
        panel.get_by_role("button", name="a small blue ring", exact=True).click()  # an example: it runs, no Generate click
        generated = block(panel, "Generated")
        expect(generated.locator("img")).to_have_count(1, timeout=PREDICT_MS)
        expect(block(panel, "Denoising").locator("img")).to_have_count(16, timeout=UI_MS)
        expect(panel.get_by_text("step 10/10 · t=", exact=False).last).to_be_visible(timeout=UI_MS)  # captions shown
        panel.get_by_text("Guidance: the same seed at two scales").click()
        panel.get_by_role("button", name="Compare", exact=True).click()
        expect(block(panel, "Same seed, two guidance scales").locator("img")).to_have_count(2, timeout=PREDICT_MS)
        assert_outputs_whole(page, "Text to image")

        page.set_viewport_size({"width": VIEWPORT["width"], "height": VIEWPORT["height"]})
        for name, value in (("Steps", "50"), ("Images", "8")):
            field = panel.get_by_label(f"number input for {name}")
            field.fill(value)
            field.press("Enter")
        panel.get_by_role("button", name="Generate", exact=True).click()
        page.wait_for_function(STOP_AT_FIRST_STEP_JS, timeout=PREDICT_MS, polling="raf")
        expect(panel.get_by_text(re.compile(r"^Stopped at step \d+ of 50\.$"))).to_be_visible(timeout=UI_MS)
        expect(block(panel, "Denoising").locator("img").first).to_be_visible()  # the steps reached stay
        expect(generated.locator("img")).to_have_count(0)  # no images: the run did not finish
        expect(error_toasts(page)).to_have_count(0)
        screenshot(page, "browser-diffusion-stopped.png")

        show_tab(page, "Instance segmentation")
        panel = task_panel(page, "Segment instances")
        choose_model(panel, "Mask R-CNN (ShapesWorld)")
        click_example(panel, "shapesworld-")
        wait_for_image(panel, "Instances")
        panel.get_by_text("RoIAlign versus RoIPool", exact=True).click()
        panel.get_by_role("button", name="Pool this detection", exact=True).click()
        expect(block(panel, "RoIPool versus RoIAlign").locator("img")).to_have_count(4, timeout=PREDICT_MS)
        assert_outputs_whole(page, "Instance segmentation")
        expect(page.locator("body")).not_to_contain_text("Traceback")
        assert not recorder.page_errors, f"uncaught JavaScript errors in the page: {recorder.page_errors}"


def test_segmentation_truth_and_typed_opacity_in_a_browser(app_url, session):
    """A new unseen scene: the U-Net's classes, the true classes beside them with the scene's mIoU, and the confidence
    with its colour bar, all whole at both widths; an opacity typed into the slider's box redraws the overlay."""
    context, recorder = session
    page, panel = open_tab(context, recorder, app_url)
    with screenshot_on_failure(page, "browser-segmentation-truth-failure.png"):
        choose_model(panel, LOCAL_MODEL)
        panel.get_by_role("button", name="New unseen scene", exact=True).click()
        wait_for_result(panel, previous_src=None)
        expect(block(panel, "True classes (ShapesWorld scene)").locator("img")).to_be_visible(timeout=UI_MS)
        expect(panel.get_by_text(re.compile(r"mIoU \d\.\d\d over the \d classes"))).to_be_visible(timeout=UI_MS)
        panel.get_by_text("Where is the model unsure?").click()
        expect(block(panel, "Confidence (bright = sure, dark = unsure)").locator("img")).to_be_visible(timeout=UI_MS)

        before = overlay_src(panel)
        field = panel.get_by_label("number input for Overlay opacity")
        field.fill("0.1")
        field.press("Enter")
        expect(block(panel, "Classes over the image").locator(f"img:not([src={before!r}])")).to_be_visible(timeout=PREDICT_MS)
        expect(error_toasts(page)).to_have_count(0)
        assert_outputs_whole(page, "Semantic segmentation")
        expect(page.locator("body")).not_to_contain_text("Traceback")
        assert not recorder.page_errors, f"uncaught JavaScript errors in the page: {recorder.page_errors}"


@pytest.mark.parametrize(
    "tab, button, file_stem",
    [
        ("Semantic segmentation", "Segment", "shapesworld-"),
        ("Object detection", "Detect", "shapesworld-"),
        ("Instance segmentation", "Segment instances", "shapesworld-"),
        ("Pose", "Estimate pose", "shapesworld-"),
        ("Captions and questions", "Caption", "shapesworld-"),
        ("CLIP zero-shot", "Classify", "shapesworld-object-"),
        ("Self-supervised retrieval", "Find neighbours", "shapesworld-object-"),
        ("Depth estimation", "Estimate depth", "shapesworld-"),
        ("Image restoration", "Restore", "shapesworld-"),
        ("Optical flow", "Estimate the flow", "shapesworld-clip-"),
    ],
)
def test_every_tab_shows_its_results_whole_in_a_browser(app_url, session, tab, button, file_stem):
    """After a tab's example runs with its panels open, every image is whole at 1600 px and at 400 px.

    (Text to image and the RoIAlign panel are checked with their own steps above.)"""
    context, recorder = session
    page, panel = open_tab(context, recorder, app_url, tab, button)
    with screenshot_on_failure(page, f"browser-whole-{button.split()[0].lower()}-failure.png"):
        example = panel.locator(f"img[src*='/{file_stem}']").first  # a gallery item, or a table row with several inputs
        expect(example).to_be_visible(timeout=UI_MS)
        example.click()
        expect(page.locator("[data-testid=status-tracker]").filter(has_text="processing")).to_have_count(0, timeout=PREDICT_MS)
        expect(error_toasts(page)).to_have_count(0)
        for accordion in panel.locator("button.label-wrap:not(.open)").all():  # every closed panel of the tab, opened
            if accordion.is_visible():
                accordion.click()
        page.wait_for_timeout(1000)
        expect(page.locator("[data-testid=status-tracker]").filter(has_text="processing")).to_have_count(0, timeout=PREDICT_MS)
        assert_outputs_whole(page, tab)
        assert not recorder.page_errors, f"uncaught JavaScript errors in the page: {recorder.page_errors}"


def test_depth_tab_in_a_browser(app_url, session):
    """A ShapesWorld example on the local U-Net: the map, its truth and scores, the profile, and the 3-D view drawn
    from the app's own mesh file by WebGL in the page; nothing leaves the app."""
    import io

    import numpy as np
    from PIL import Image

    context, recorder = session
    page, panel = open_tab(context, recorder, app_url, "Depth estimation", "Estimate depth")
    with screenshot_on_failure(page, "browser-depth-failure.png"):
        click_example(panel, "shapesworld-")
        wait_for_image(panel, "Depth map with its colour scale")
        wait_for_image(panel, "True depth")
        expect(panel.get_by_text("after scale and shift").first).to_be_visible(timeout=UI_MS)
        canvas = panel.locator("canvas").first
        expect(canvas).to_be_visible(timeout=PREDICT_MS)
        for _ in range(60):  # the viewer fetches the mesh file once the result is in
            if any(".glb" in url for url in recorder.urls):
                break
            page.wait_for_timeout(250)
        assert any(".glb" in url for url in recorder.urls), "the 3-D view never asked for the mesh"
        page.wait_for_timeout(1500)  # the viewer draws the loaded mesh
        drawn = np.asarray(Image.open(io.BytesIO(canvas.screenshot())).convert("L"), dtype=np.float32)
        assert drawn.std() > 5, "the 3-D view shows no mesh (a flat canvas)"
        box = canvas.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + box["height"] / 2, steps=8)  # turn it
        page.mouse.up()
        page.wait_for_timeout(500)
        turned = np.asarray(Image.open(io.BytesIO(canvas.screenshot())).convert("L"), dtype=np.float32)
        assert np.abs(turned - drawn).mean() > 1, "dragging did not turn the 3-D view"
        screenshot(page, "browser-depth.png")
        expect(error_toasts(page)).to_have_count(0)
        assert not recorder.page_errors, f"uncaught JavaScript errors in the page: {recorder.page_errors}"
        foreign = recorder.foreign(urlsplit(app_url).netloc)
        assert not foreign, "the page requested URLs outside the app:\n" + "\n".join(foreign)


FLOW_LABEL = "Flow: colour = direction, saturation = length (wheel beside)"


def test_flow_tab_in_a_browser(app_url, session, tmp_path):
    """A ShapesWorld clip example on the local RAFT: the flow, the arrows, each update, the warp, the exact flow and
    the error; then two frames taken from an uploaded video; nothing leaves the app."""
    import av
    import numpy as np

    context, recorder = session
    page, panel = open_tab(context, recorder, app_url, "Optical flow", "Estimate the flow")
    with screenshot_on_failure(page, "browser-flow-failure.png"):
        example = panel.locator("img[src*='/shapesworld-clip-']").first  # a row of the examples table: both frames
        expect(example).to_be_visible(timeout=UI_MS)
        example.click()
        first = wait_for_image(panel, FLOW_LABEL)
        for label in ("Flow as arrows from a grid on frame 1", "Each update, on the final flow's colour scale",
                      "Warped frame 2 (left) and |frame 1 - warped| (right)", "Exact flow (left) and the model's (right)", "End-point error per pixel"):
            block(panel, label).scroll_into_view_if_needed()  # a tall tab: its lower pictures load when they come into view
            wait_for_image(panel, label)
        expect(panel.get_by_text("where the point stays visible").first).to_be_visible(timeout=UI_MS)
        screenshot(page, "browser-flow.png")
        path = tmp_path / "moving.mp4"
        with av.open(str(path), "w") as container:
            stream = container.add_stream("mpeg4", rate=10)
            stream.width = stream.height = 128
            stream.pix_fmt = "yuv420p"
            for i in range(4):
                image = np.full((128, 128, 3), 40, np.uint8)
                image[40:80, 20 + 5 * i : 60 + 5 * i] = (230, 200, 40)
                container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            container.mux(stream.encode())
        panel.get_by_text("Or take two frames from a video").click()
        panel.locator("input[type=file]").last.set_input_files(str(path))
        # an upload, then the server's video checks: on two busy cores (the whole suite) longer than a click
        expect(panel.get_by_text("moving.mp4").first).to_be_visible(timeout=PREDICT_MS)
        panel.get_by_role("button", name="Take the two frames").click()
        wait_for_image(panel, FLOW_LABEL, first.get_attribute("src"))
        expect(panel.get_by_text("frames_decoded").first).to_be_visible(timeout=PREDICT_MS)
        expect(error_toasts(page)).to_have_count(0)
        assert not recorder.page_errors, f"uncaught JavaScript errors in the page: {recorder.page_errors}"
        foreign = recorder.foreign(urlsplit(app_url).netloc)
        assert not foreign, "the page requested URLs outside the app:\n" + "\n".join(foreign)


def test_restoration_tab_in_a_browser(app_url, session):
    """A ShapesWorld example, degraded by the tab and restored by the local model: the restored image, the zoomed
    crops, the residual and the scores against the clean image; moving the zoom redraws; nothing leaves the app."""
    context, recorder = session
    page, panel = open_tab(context, recorder, app_url, "Image restoration", "Restore")
    with screenshot_on_failure(page, "browser-restoration-failure.png"):
        click_example(panel, "shapesworld-")
        wait_for_image(panel, "Restored")
        wait_for_image(panel, "What the network added (output − input)")
        zoom = wait_for_image(panel, "Zoomed crops")
        expect(panel.get_by_text("Against the clean image").first).to_be_visible(timeout=UI_MS)
        expect(panel.locator("td").filter(has_text=re.compile(r"^gain$"))).to_have_count(1)
        before = zoom.get_attribute("src")
        crop_x = panel.get_by_label("number input for Crop centre x")
        crop_x.fill("0.2")
        crop_x.press("Enter")
        wait_for_image(panel, "Zoomed crops", before)
        screenshot(page, "browser-restoration.png")
        expect(error_toasts(page)).to_have_count(0)
        assert not recorder.page_errors, f"uncaught JavaScript errors in the page: {recorder.page_errors}"
        foreign = recorder.foreign(urlsplit(app_url).netloc)
        assert not foreign, "the page requested URLs outside the app:\n" + "\n".join(foreign)


def test_generative_tab_in_a_browser(app_url, session):
    """The GAN samples the prompt, an empty prompt is a clear message, an unseen object goes through the VAE and back,
    and the three families compare on one prompt; every picture whole at 1600 px and 400 px."""
    context, recorder = session
    page, panel = open_tab(context, recorder, app_url, "VAE and GAN", "Sample")
    with screenshot_on_failure(page, "browser-generative-failure.png"):
        panel.get_by_role("button", name="Sample", exact=True).click()
        expect(block(panel, "Samples").locator("img")).to_have_count(4, timeout=PREDICT_MS)
        click_example(panel, "shapesworld-object-")
        expect(block(panel, "Input · reconstruction · latent").locator("img")).to_have_count(3, timeout=PREDICT_MS)
        panel.get_by_role("button", name="Compare", exact=True).click()
        expect(block(panel, "Each family's samples, with the judge's reading").locator("img")).to_have_count(12, timeout=PREDICT_MS)
        expect(panel.locator("table").filter(has_text="diversity (bar)").first).to_contain_text("diffusion-shapes", timeout=UI_MS)
        expect(error_toasts(page)).to_have_count(0)
        assert_outputs_whole(page, "VAE and GAN")
        screenshot(page, "browser-generative.png")
        prompt = panel.locator("label").filter(has_text=re.compile(r"^\s*Prompt")).locator("textarea").first
        prompt.fill("")
        panel.get_by_role("button", name="Sample", exact=True).click()
        expect(error_toasts(page).filter(has_text="Write a prompt")).to_have_count(1, timeout=UI_MS)
        assert not recorder.page_errors, f"uncaught JavaScript errors in the page: {recorder.page_errors}"


# ---------------------------------------------------------------- Train it yourself

TRAIN_TAB = "Train it yourself"
TRAIN_STATE_JS = """() => {
  const svg = document.querySelector('#train-loss svg'), img = document.querySelector('#train-predictions img');
  return [document.querySelector('#train-status').innerText, svg ? svg.innerHTML.length : 0, img ? img.src : null];
}"""


def test_train_tab_streams_the_curve_and_the_predictions_in_a_browser(app_url, session):
    """A run of the Train tab: the loss curve and the validation predictions change while it trains, Stop ends it with
    a verdict and the files to download, the page shows whole at 1600 and 400 px, and nothing leaves the app."""
    import time

    context, recorder = session
    page, panel = open_tab(context, recorder, app_url, TRAIN_TAB, "Train")
    with screenshot_on_failure(page, "browser-train-failure.png"):
        panel.get_by_label("Batch size (1 to 64)").fill("2")
        panel.get_by_role("button", name="Train", exact=True).click()
        expect(page.locator("#train-status")).to_contain_text("Training: step", timeout=PREDICT_MS)
        seen = [page.evaluate(TRAIN_STATE_JS)]
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline and not (len({s[1] for s in seen}) > 2 and len({s[2] for s in seen if s[2]}) > 1):
            page.wait_for_timeout(500)
            seen.append(page.evaluate(TRAIN_STATE_JS))
        assert len({s[1] for s in seen}) > 2, f"the loss curve did not change during the run: {seen[-1][0]}"
        assert len({s[2] for s in seen if s[2]}) > 1, "the validation predictions were not refreshed during the run"
        panel.get_by_role("button", name="Stop", exact=True).click()
        expect(page.locator("#train-status")).to_contain_text("Stopped", timeout=PREDICT_MS)
        expect(page.locator("#train-files")).to_contain_text(".safetensors", timeout=UI_MS)
        expect(error_toasts(page)).to_have_count(0)
        assert_outputs_whole(page, TRAIN_TAB)
    assert not recorder.foreign(urlsplit(app_url).netloc), recorder.foreign(urlsplit(app_url).netloc)
    assert not recorder.page_errors, f"uncaught JavaScript errors in the page: {recorder.page_errors}"
