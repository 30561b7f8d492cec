"""``make bench-gpu`` cannot rot between GPU runs: its smoke run goes through every code path on this CPU.

The smoke run (``python -m bench gpu --smoke``) plants, loads and times one model of every kind of
pair, SD-Turbo's tiny pipeline and a local model on the ray backend, as the GPU run does with every
model at its real size. A separate process, as ``make bench-gpu`` runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import models
from bench import library_calls
from bench.gpu import default_models

ROOT = Path(__file__).resolve().parent.parent


PRETRAINED = [s for s in models.registry.all_specs().values() if s.tier == "pretrained" and s.name != "sd-turbo"]  # SD-Turbo: its own rows


def test_every_pretrained_model_has_a_documented_library_call():
    """A new pretrained model must say how its library runs it, or the GPU run would leave it out."""
    missing = [s.name for s in PRETRAINED if library_calls.builder(s) is None]
    assert not missing, f"add their library's documented inference to bench/library_calls.py: {missing}"


@pytest.mark.timeout(600)
def test_smoke_run_measures_every_path_and_writes_its_tables(tmp_path):
    environment = {**os.environ, "OMP_NUM_THREADS": "2", "DVL_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "gpu", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "gpu-cpu-smoke.json").read_text())
    table = (tmp_path / "gpu-cpu-smoke.md").read_text()
    assert result["smoke"] and result["repeats"] == 2
    failed = {row["name"]: row["error"] for row in result["models"] if row["error"]}
    assert not failed
    assert [row["name"] for row in result["models"]] == default_models(smoke=True)[:-1]  # sd-turbo apart
    kinds = {(s.task, library_calls.builder(s)) for s in PRETRAINED}
    assert {(models.spec(row["name"]).task, library_calls.builder(models.spec(row["name"]))) for row in result["models"]} == kinds
    for row in result["models"]:
        assert row["app"]["n"] == row["bare"]["n"] == 2 and row["ratio"] > 0 and row["load_s"] > 0, row["name"]
        assert row["name"] in table
    assert set(result["sd_turbo"]) == {"1", "4"}
    assert result["blip_first_token"]["n"] == 2
    assert len(result["ray"]) == 2 and all(rate > 0 for rate in result["ray"].values())
    assert "app / library" in table and "— (smoke)" in table
