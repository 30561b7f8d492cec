"""Where the app writes the files a page shows or offers for download: one folder, with the examples in it.

The result files (``common``), the examples (``examples``) and the scenes drawn on request
(``scenes``) are written here, so none imports another for it; app.py hands both to the sweep of
old files (``hosting.sweep``), which spares the examples.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

OUTPUT_DIR = Path(tempfile.gettempdir()) / "deep-vision-lab"
"""Result files for download and the example images; Gradio serves files from the temp folder."""


def examples_folder() -> Path:
    """The examples' folder (spared by the sweep of old files), made on first use."""
    folder = OUTPUT_DIR / "examples"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
