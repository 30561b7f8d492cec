"""Deep Vision Lab: use, and look inside, the models of a deep-learning-for-vision course.

    python app.py [--host H] [--port P] [--share] [--device auto|cpu|cuda|mps]
                  [--memory-budget-mb N] [--offline | --online] [--weights-dir DIR]
                  [--max-upload-mb N] [--cache-age-min N] [--queue-size N] [--mcp] [--prefetch]

Flags become DVL_* environment variables *before* Gradio or any Hugging Face library is
imported, because those libraries read their offline switches at import time.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import sys
import threading
import time
from pathlib import Path

import settings  # imports no Gradio and no Hugging Face library: they come after configure_environment


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The flags, each defaulting to its setting (``settings``: the environment variable, else the default)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=settings.host())
    parser.add_argument("--port", type=int, default=settings.port())
    parser.add_argument("--share", action="store_true", help="also serve through a public gradio.live link")
    parser.add_argument("--device", default=settings.device_name(), help="auto (cuda > mps > cpu), cuda, mps or cpu")
    parser.add_argument("--memory-budget-mb", type=float, default=settings.memory_budget_mb())
    network = parser.add_mutually_exclusive_group()
    network.add_argument("--offline", dest="offline", action="store_const", const="1", help="never download weights")
    network.add_argument("--online", dest="offline", action="store_const", const="0", help="skip the network probe")
    parser.add_argument("--weights-dir", type=Path, default=settings.weights_dir(), help="folder searched first for weight files")
    parser.add_argument(
        "--backend", choices=("local", "ray"), default=settings.backend(),
        help="local: models run in this process; ray: in Ray Serve deployments (pip install -r requirements-ray.txt)",
    )
    parser.add_argument("--ray-address", default=settings.ray_address(), help="the Ray cluster (auto: the local `ray start`); unset: a new local Ray")
    parser.add_argument("--max-image-side", type=int, default=settings.max_image_side())
    parser.add_argument(
        "--max-upload-mb", type=float, default=settings.max_upload_mb(),
        help="larger uploads are refused before they are stored (default 25)",
    )
    parser.add_argument(
        "--cache-age-min", type=float, default=settings.cache_age_min(),
        help="uploads and result files older than this are deleted (default 60)",
    )
    parser.add_argument(
        "--queue-size", type=int, default=settings.queue_size(),
        help="requests waiting at most; past that a client is told at once that the queue is full (default 64)",
    )
    parser.add_argument(
        "--max-sessions", type=int, default=settings.max_sessions(),
        help="sessions whose page state is kept, least recently used dropped; each costs about 0.6 MB (default 256)",
    )
    parser.add_argument(
        "--mcp", action="store_true", default=settings.mcp(),
        help="also serve every tab's main endpoint as an MCP tool at /gradio_api/mcp/",
    )
    parser.add_argument(
        "--prefetch", action="store_true", default=settings.prefetch(),
        help="before serving, download each tab's default pretrained weights (a Space's start step)",
    )
    import hosting  # imports no Gradio, which must come after configure_environment

    hosting.add_arguments(parser)
    return parser.parse_args(argv)


def configure_environment(args: argparse.Namespace) -> None:
    """Publish the settings for models/ and demos/, and keep Gradio from phoning home."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["DVL_DEVICE"] = args.device
    os.environ["DVL_MEMORY_BUDGET_MB"] = str(args.memory_budget_mb)
    os.environ["DVL_MAX_IMAGE_SIDE"] = str(args.max_image_side)
    os.environ["DVL_BACKEND"] = args.backend
    if args.ray_address:
        os.environ["DVL_RAY_ADDRESS"] = args.ray_address
    if args.weights_dir:
        os.environ["DVL_WEIGHTS_DIR"] = str(args.weights_dir)
    if args.offline is not None:
        os.environ["DVL_OFFLINE"] = args.offline
    if args.offline == "1":
        os.environ["HF_HUB_OFFLINE"] = "1"


CSS = """
.dvl-image img { width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated; }
.dvl-legend { display: flex; flex-direction: column; gap: 4px; font-size: 0.9rem; }
.dvl-legend-row { display: grid; grid-template-columns: 1.1rem 9rem 1fr 3.5rem; gap: 8px; align-items: center; }
.dvl-swatch { width: 1rem; height: 1rem; border-radius: 3px; border: 1px solid rgba(127,127,127,.6); }
.dvl-bar { height: .6rem; background: rgba(127,127,127,.15); border-radius: 3px; overflow: hidden; }
.dvl-bar > span { display: block; height: 100%; }
.dvl-legend-share { text-align: right; font-variant-numeric: tabular-nums; }
/* Galleries that show every item whole (elem_classes="dvl-fit"): the grid grows with its items instead of scrolling
   in Gradio's fixed box (min 450 px, max 55% of the window, even at height="auto"), columns shrink with the page
   (two at most on a phone), each image keeps its aspect ratio, and captions wrap under their image. */
.dvl-fit .grid-wrap { height: auto !important; min-height: 0 !important; max-height: none !important; overflow: visible !important; }
.dvl-fit .grid-container.pt-6 { padding-top: 2rem !important; } /* below the gallery's label, not under it */
.dvl-fit .grid-container { grid-template-columns: repeat(var(--grid-cols), minmax(0, 1fr)) !important; grid-template-rows: none !important; grid-auto-rows: auto !important; }
.dvl-fit .thumbnail-item { aspect-ratio: auto !important; height: auto !important; }
.dvl-fit .thumbnail-item > img { height: auto !important; }
.dvl-fit .caption-label { position: static !important; max-width: none !important; white-space: normal !important; border: none !important; }
@media (max-width: 640px) { .dvl-fit .grid-container { grid-template-columns: repeat(min(2, var(--grid-cols)), minmax(0, 1fr)) !important; } }
/* A new message replaces the older ones of its kind: Gradio stacks them in one toast ("Error (5)"). */
.toast-message-item:has(~ .toast-message-item), .toast-separator, .toast-count { display: none !important; }
/* A failed request is said once, in its toast: the outputs it emptied carry no "Error" badge of their own. */
[data-testid="status-tracker"] .clear-status, [data-testid="status-tracker"] span.error { display: none !important; }
/* The model picker's text stops short of its arrow. */
.wrap-inner .secondary-wrap:has(> .icon-wrap) > input[role="combobox"] {
    padding-right: calc(2 * var(--size-5) + var(--size-1)); text-overflow: ellipsis;
}
/* Gradio hides the footer's API link below 640 px; the API is the same on a phone. (Not in an @media
   block: Gradio scopes those rules to the app's container, and the footer is outside it.) */
footer .show-api { display: flex !important; }
footer .show-api-divider { display: inline !important; }
"""


def status_line() -> str:
    """What this server runs on, so a student knows why something is fast or slow."""
    import torch

    import models

    device = models.cache().device
    where = f"GPU ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else device.type.upper()
    network = "offline: local models and cached weights only" if settings.offline() else "online: pretrained weights download on first use"
    served = " · models served by Ray Serve" if settings.backend() == "ray" else ""
    return f"Running on **{where}** · {network} · models load on first use{served}"


def prefetch_defaults() -> None:
    """Download the pretrained model each tab starts with here, so no visitor waits for it (``--prefetch``)."""
    import demos
    import models

    log = logging.getLogger("app")
    for demo in demos.ALL:
        if not models.for_task(demo.TASK):  # the Train tab: every network it shows is trained in the page
            continue
        spec = models.default_for(demo.TASK)
        if spec.tier == "pretrained":
            try:
                log.info("prefetched %s: %s", spec.name, spec.source.fetch())
            except (models.WeightsUnavailable, OSError) as error:  # serve anyway: the tab says how to get them
                log.warning("could not prefetch %s: %s", spec.name, error)


def limit_heap_growth(arenas: int = 2, trim_every_s: float = 60.0) -> None:
    """Keep glibc's heap from creeping up under many request threads (Linux; elsewhere nothing).

    glibc gives allocating threads their own heap arenas, up to eight per core, and memory freed in
    one arena is neither reused by the others nor returned to the system until it is trimmed.
    Gradio runs requests on a pool of worker threads, so RSS crept up by about half a megabyte per
    request in a 2,000-request soak with every session bounded. Two arenas (what
    ``MALLOC_ARENA_MAX=2`` does, set here so a Space needs no environment variable) and a
    ``malloc_trim`` every minute keep it flat. An explicit ``MALLOC_ARENA_MAX`` is left alone.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, Windows, musl)
        return
    if "MALLOC_ARENA_MAX" not in os.environ:
        libc.mallopt(-8, arenas)  # M_ARENA_MAX, before Gradio starts its threads

    def trim() -> None:
        while True:
            time.sleep(trim_every_s)
            libc.malloc_trim(0)

    threading.Thread(target=trim, name="malloc-trim", daemon=True).start()


def cache_schedule(age_minutes: float) -> tuple[int, int]:
    """(how often, how old) in seconds for the file sweep: every quarter of the age, at most 10 min apart."""
    age = max(1, round(age_minutes * 60))
    return max(1, min(600, age // 4)), age


def build_app():
    import gradio as gr

    import demos

    with gr.Blocks(title="Deep Vision Lab") as app:
        gr.Markdown("# Deep Vision Lab\nUse, and look inside, the models of the course. " + status_line())
        # The lecture's sections, each holding its tasks' tabs (models/tasks.py); every tab's whole
        # name on a phone, not a "..." menu.
        with gr.Tabs(overflow_behavior="wrap"):
            for section, tabs in demos.SECTIONS.items():
                with gr.Tab(section, id=section.lower().replace(" ", "-")), gr.Tabs(overflow_behavior="wrap"):
                    for demo in tabs:
                        with gr.Tab(demo.TITLE, id=demo.TASK):
                            demo.build()
    share_only_on_spaces(app)
    return app


def share_only_on_spaces(app) -> None:
    """Drop the "share" button Gradio puts on every image, gallery, audio and chat off Hugging Face Spaces.

    It posts the output to the Space's discussions, so anywhere else (a laptop, a lab machine, a
    gradio.live link) it only answers "Must be on Spaces to share". One pass over the built page
    covers every component, whichever tab made it. Spaces set ``SPACE_ID``.
    """
    if settings.on_space():
        return
    for block in app.blocks.values():
        buttons = getattr(block, "buttons", None)
        if isinstance(buttons, (list, tuple)) and "share" in buttons:
            block.buttons = [button for button in buttons if button != "share"]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_environment(args)
    try:
        settings.device()
    except ValueError as error:  # a device this machine does not have: say so now, not on the first request
        raise SystemExit(f"app.py: {error}") from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    limit_heap_growth()
    import gradio as gr

    from demos import files, tables
    from hosting import sweep

    if args.prefetch:
        prefetch_defaults()
    app = build_app()
    from gradio.utils import get_upload_folder

    def examples_in_gradio_cache() -> set[str]:  # the files Gradio itself never deletes
        return {str(f) for block in app.blocks.values() for f in getattr(block, "keep_in_cache", ())}

    folders = [files.OUTPUT_DIR, Path(get_upload_folder())]
    sweep.prune_old_files_every(folders, *cache_schedule(args.cache_age_min), files.examples_folder(), keep=examples_in_gradio_cache)
    app.queue(default_concurrency_limit=2, max_size=args.queue_size)
    import hosting

    limits = hosting.limits_from(args)
    hosting.patch_gradio(app, limits)
    app.launch(
        server_name=args.host,
        server_port=args.port,
        share=args.share,
        max_file_size=int(args.max_upload_mb * 2**20),
        # Gradio keeps a copy of every component's config per session (about 0.6 MB with this many tabs),
        # and every API call is a session of its own: its default of 10,000 let RSS grow by 1.5 GB in a soak.
        state_session_capacity=args.max_sessions,
        mcp_server=args.mcp,
        app_kwargs={"middleware": hosting.middleware(limits)},
        enable_monitoring=False,  # /monitoring/summary would tell anyone every endpoint's traffic
        ssr_mode=False,
        footer_links=["api", "settings"],
        theme=gr.themes.Soft(),
        css=CSS + tables.CSS,
        show_error=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
