"""`python -m models ...`: the commands the README documents, run as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "models", *args], cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})}
    )


def test_list_shows_every_model_and_its_availability(tmp_path):
    result = run("list", env={"TORCH_HOME": str(tmp_path), "DVL_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert "shipped ✓" in lines["unet-shapes"]
    assert "unavailable offline" in lines["deeplabv3-resnet50"]


def test_evaluate_scores_unseen_scenes_as_json():
    result = run("evaluate", "unet-shapes", "--seed", "2000500", "--count", "40", "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["eval_seeds"] == "2000500..2000539" and metrics["mean_iou"] >= 0.9


def test_prefetch_offline_fails_with_instructions(tmp_path):
    result = run("prefetch", "fcn-resnet50", env={"TORCH_HOME": str(tmp_path), "DVL_OFFLINE": "1"})
    assert result.returncode == 1
    assert "fcn_resnet50_coco-1167a1af.pth" in result.stderr and "python -m models prefetch" in result.stderr


def test_prefetch_reports_planted_weights_as_present(planted_torch_home):
    result = run("prefetch", "lraspp-mobilenet", env={"TORCH_HOME": str(planted_torch_home), "DVL_OFFLINE": "1"})
    assert result.returncode == 0 and "lraspp_mobilenet_v3_large" in result.stdout


def test_training_a_model_that_is_not_local_is_refused():
    result = run("train", "deeplabv3-resnet50")
    assert result.returncode != 0 and "not a local model" in result.stderr


def test_a_short_training_run_writes_weights_and_a_complete_card(tmp_path):
    result = run("train", "unet-shapes", "--steps", "3", "--eval-count", "5", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    card = json.loads((tmp_path / "unet-shapes.json").read_text())
    assert card["command"] == f"python -m models train unet-shapes --steps 3 --eval-count 5 --out {tmp_path}"
    for key in ("seed", "train_seconds", "parameters", "metrics", "config", "preprocessing", "classes"):
        assert key in card
    assert card["metrics"]["eval_count"] == 5 and (tmp_path / "unet-shapes.safetensors").stat().st_size > 1_000_000


def test_training_is_reproducible_bit_for_bit(tmp_path):
    """Same command, same seed -> the same weights: the shipped file can be re-derived exactly."""
    for run_dir in ("a", "b"):
        result = run("train", "unet-shapes", "--steps", "2", "--eval-count", "1", "--out", str(tmp_path / run_dir))
        assert result.returncode == 0, result.stderr
    first = (tmp_path / "a" / "unet-shapes.safetensors").read_bytes()
    assert first == (tmp_path / "b" / "unet-shapes.safetensors").read_bytes()
