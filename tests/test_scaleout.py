"""The ray backend (models/serving.py) on a local Ray with 2 CPUs.

The app started with ``--backend ray`` gives the same ``/segment`` and ``/detect`` answers as the
in-process app; killing a replica while 50 requests are in flight loses none of them; with every
replica gone a request fails with a clear message instead of hanging; the cluster config parses
with Serve's own schema.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

import models
import shapesworld
from models.cache import ModelCache

# This process shuts its Ray down while the suite goes on: a handle's router would keep pushing
# autoscaling metrics to the gone controller and log an error every few seconds. Replicas report instead.
os.environ.setdefault("RAY_SERVE_COLLECT_AUTOSCALING_METRICS_ON_HANDLE", "0")
serving = pytest.importorskip("models.serving", reason="the ray backend's tests need requirements-ray.txt (make test installs it)")
import ray  # after models.serving, which turns off Ray's auto-connect first
from ray import serve
from ray.serve.schema import ServeDeploySchema

pytestmark = pytest.mark.timeout(900)
ROOT = Path(__file__).resolve().parent.parent
SEED = shapesworld.SPLITS["test"].start + 7000


@pytest.fixture(scope="module")
def ray_cluster() -> str:
    """A local Ray with 2 CPUs: the U-Net with two replicas, the local Faster R-CNN and mini-CLIP with one, SimCLR autoscaled."""
    serving.connect(None, num_cpus=2)
    serving.deploy(models.spec("unet-shapes"), replicas=2, cpus=0.5)
    serving.deploy(models.spec("fasterrcnn-shapes"), replicas=1, cpus=0.5)
    serving.deploy(models.spec("clip-shapes"), replicas=1, cpus=0.2)
    serving.deploy(models.spec("simclr-shapes"), cpus=0.15, autoscale=(1, 2))
    yield ray.get_runtime_context().gcs_address
    serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="module")
def remote_cache(ray_cluster) -> serving.RemoteModelCache:
    return serving.RemoteModelCache(models.spec, ray_cluster)


@pytest.fixture(scope="module")
def ray_app_url(ray_cluster, planted_torch_home) -> str:
    from bench.server import AppServer

    with AppServer(args=("--backend", "ray", "--ray-address", ray_cluster), log_path=ROOT / "test-artifacts" / "app-server-ray.log") as server:
        yield server.url


def scene_file(tmp_path: Path, seed: int) -> Path:
    path = tmp_path / f"scene-{seed}.png"
    Image.fromarray(shapesworld.generate(seed).image).save(path)
    return path


def test_remote_model_answers_like_the_in_process_one(remote_cache):
    image = Image.fromarray(shapesworld.generate(SEED).image)
    remote, local = remote_cache.get("unet-shapes"), ModelCache(models.spec).get("unet-shapes")
    assert isinstance(remote, serving.RemoteModel)
    got, expected = remote(image), local(image)
    assert np.array_equal(got.labels, expected.labels)
    np.testing.assert_allclose(got.confidence, expected.confidence, atol=1e-5)
    assert remote.categories == local.categories  # read from the replica's snapshot
    detector = remote_cache.get("fasterrcnn-shapes")
    assert detector.two_stage and detector.categories == ModelCache(models.spec).get("fasterrcnn-shapes").categories
    assert remote_cache.get("blip-caption-shapes").__class__.__name__ == "Captioner"  # streams in process


def test_list_methods_batch_and_answer_like_the_in_process_ones(remote_cache):
    from concurrent.futures import ThreadPoolExecutor

    from models.clip import zero_shot

    crops = [Image.fromarray(shapesworld.single_object(SEED + i, 64)[0]) for i in range(6)]
    encoder, local_encoder = remote_cache.get("simclr-shapes"), ModelCache(models.spec).get("simclr-shapes")
    with ThreadPoolExecutor(3) as pool:  # three users' lists, batched into one call when they meet
        answers = list(pool.map(encoder.embed, [crops[:1], crops[1:3], crops[3:]]))
    np.testing.assert_allclose(np.concatenate(answers), local_encoder.embed(crops), atol=1e-5)
    labels = ["red circle", "blue square", "green star"]
    remote = zero_shot(remote_cache.get("clip-shapes"), crops, labels)
    local = zero_shot(ModelCache(models.spec).get("clip-shapes"), crops, labels)
    np.testing.assert_allclose(remote.probabilities, local.probabilities, atol=1e-5)


def test_app_with_ray_backend_answers_like_the_in_process_app(ray_app_url, app_url, tmp_path):
    from gradio_client import Client, handle_file

    path = scene_file(tmp_path, SEED + 1)
    ray_client, local_client = Client(ray_app_url, verbose=False), Client(app_url, verbose=False)
    segment = lambda client: client.predict(handle_file(str(path)), "unet-shapes", 0.6, api_name="/segment")
    (_, _, ray_mask, ray_shares, _), (_, _, local_mask, local_shares, _) = segment(ray_client), segment(local_client)
    assert np.array_equal(np.asarray(Image.open(ray_mask)), np.asarray(Image.open(local_mask)))
    assert ray_shares == local_shares
    detect = lambda client: client.predict(handle_file(str(path)), "fasterrcnn-shapes", 0.5, 0.5, [], 100, api_name="/detect")
    ray_records, local_records = detect(ray_client)[3], detect(local_client)[3]
    assert len(ray_records) == len(local_records) > 0
    for got, expected in zip(ray_records, local_records):
        assert got["label"] == expected["label"]
        np.testing.assert_allclose(got["box"], expected["box"], atol=0.05)
        assert got["score"] == pytest.approx(expected["score"], abs=1e-3)


def replica_actors(app: str) -> set[str]:
    return {a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["namespace"] == "serve" and f"{app}#" in a["name"]}


def test_killing_a_replica_loses_no_request(remote_cache):
    model = remote_cache.get("unet-shapes")
    images = [Image.fromarray(shapesworld.generate(SEED + 100 + i, 256).image) for i in range(50)]
    replicas = replica_actors("unet-shapes")
    assert len(replicas) == 2
    done = []
    lock = threading.Lock()

    def request(image: Image.Image):
        answer = model(image)
        with lock:
            done.append(answer)
        return answer

    with ThreadPoolExecutor(50) as pool:
        futures = [pool.submit(request, image) for image in images]
        time.sleep(0.5)
        in_flight = 50 - len(done)
        ray.kill(ray.get_actor(min(replicas), namespace="serve"), no_restart=True)
        answers = [f.result(timeout=300) for f in futures]
    assert in_flight > 0, "every request finished before the replica was killed: the test proved nothing"
    local = ModelCache(models.spec).get("unet-shapes")
    for image, answer in zip(images[::10], answers[::10]):
        assert np.array_equal(answer.labels, local(image).labels)
    assert len(answers) == 50 and all(a.labels.shape == (256, 256) for a in answers)


def test_no_replica_left_is_a_clear_error(remote_cache, monkeypatch):
    monkeypatch.setenv("DVL_RAY_RETRY_S", "3")
    model = remote_cache.get("unet-shapes")
    serve.delete("unet-shapes")
    start = time.monotonic()
    with pytest.raises(models.ModelServerUnavailable, match="No server of unet-shapes answered within 3 s"):
        model(Image.fromarray(shapesworld.generate(SEED).image))
    assert time.monotonic() - start < 60


def test_cluster_config_is_a_valid_serve_config_and_the_kuberay_manifest_carries_it():
    config = yaml.safe_load((ROOT / "deploy" / "serve-config.yaml").read_text())
    schema = ServeDeploySchema.model_validate(config) if hasattr(ServeDeploySchema, "model_validate") else ServeDeploySchema.parse_obj(config)
    names = [app.name for app in schema.applications]
    assert all(name in models.all_specs() for name in names)
    assert {models.spec(name).task for name in names} <= set(serving.SERVED)
    manifest = yaml.safe_load((ROOT / "deploy" / "rayservice.yaml").read_text())
    assert yaml.safe_load(manifest["spec"]["serveConfigV2"]) == config
    from models.serve_config import build  # what the config's import_path names

    assert {app.import_path for app in schema.applications} == {"models.serve_config:build"}
    application = build({"name": "unet-shapes", "max_batch_size": 4})
    assert isinstance(application, serve.Application)
