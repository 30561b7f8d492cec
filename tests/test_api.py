"""End to end: the real app in its own process, called over HTTP with gradio_client."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

import shapesworld
from tests.corpus import make_corpus

SCENE_SEED = shapesworld.SPLITS["test"].start + 4242


@pytest.fixture(scope="module")
def client(app_url) -> Client:
    return Client(app_url, verbose=False)


@pytest.fixture(scope="module")
def scene_file(tmp_path_factory) -> tuple[Path, shapesworld.Scene]:
    scene = shapesworld.generate(SCENE_SEED)
    path = tmp_path_factory.mktemp("api") / "scene.png"
    Image.fromarray(scene.image).save(path)
    return path, scene


def test_the_api_lists_the_public_endpoints_only(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(endpoints) == {"/segment", "/segment_features", "/depth", "/restore", "/detect", "/instances", "/pose", "/caption", "/answer", "/classify", "/retrieve", "/generate", "/train", "/stop_training", "/sample", "/autoencode", "/flow"}  # UI-only listeners stay private


def test_segment_a_shapesworld_scene_with_the_local_unet(client, scene_file):
    path, scene = scene_file
    overlay, legend, mask_path, shares, confidence = client.predict(handle_file(str(path)), "unet-shapes", 0.6, api_name="/segment")
    assert Image.open(overlay).size == (128, 128)
    width, height = Image.open(confidence).size  # the heat map enlarged, its colour scale beside it
    assert height >= 128 and width > height
    mask = np.asarray(Image.open(mask_path))
    assert (mask == scene.semantic).mean() > 0.95
    assert set(shares) <= set(shapesworld.CLASSES) and abs(sum(shares.values()) - 1) < 1e-3
    assert "background" in legend and "%" in legend


def test_segment_a_real_photo_with_a_pretrained_model(client):
    from skimage import data

    photo = Path(__file__).parent.parent / "test-artifacts" / "coffee.jpg"
    photo.parent.mkdir(exist_ok=True)
    Image.fromarray(data.coffee()).save(photo)
    overlay, _, mask_path, shares, _ = client.predict(handle_file(str(photo)), "lraspp-mobilenet", 0.5, api_name="/segment")
    assert Image.open(overlay).size == (600, 400)
    assert Image.open(mask_path).size == (600, 400)
    assert set(shares) <= set(__import__("models").spec("lraspp-mobilenet").source.weights.meta["categories"])


def test_feature_maps_through_the_api(client, scene_file):
    path, _ = scene_file
    gallery = client.predict(handle_file(str(path)), "unet-shapes", api_name="/segment_features")
    assert len(gallery) == 7 and gallery[0]["caption"].startswith("encoder 1")


def test_an_unavailable_model_is_a_clear_error(client, scene_file):
    path, _ = scene_file
    with pytest.raises(AppError, match="prefetch"):
        client.predict(handle_file(str(path)), "deeplabv3-resnet101", 0.5, api_name="/segment")


def test_concurrent_requests_all_succeed(client, scene_file):
    path, _ = scene_file
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda o: client.predict(handle_file(str(path)), "unet-shapes", o, api_name="/segment"), [0.1, 0.3, 0.5, 0.7]))
    assert len(results) == 4 and all(Path(r[0]).exists() for r in results)


def test_bad_files_get_clear_errors_and_the_server_keeps_serving(client, scene_file, tmp_path):
    answered = []
    for item in make_corpus(tmp_path):
        if item.ok:
            overlay, *_ = client.predict(handle_file(str(item.path)), "unet-shapes", 0.5, api_name="/segment")
            assert max(Image.open(overlay).size) <= 1024, item.name
        else:
            with pytest.raises(AppError) as error:
                client.predict(handle_file(str(item.path)), "unet-shapes", 0.5, api_name="/segment")
            message = str(error.value)
            assert item.hint.lower() in message.lower(), (item.name, message)
            assert "Traceback" not in message and "Error:" not in message, (item.name, message)
        answered.append(item.name)
    assert len(answered) >= 25
    path, _ = scene_file  # and a normal request still works afterwards
    overlay, *_ = client.predict(handle_file(str(path)), "unet-shapes", 0.5, api_name="/segment")
    assert Path(overlay).exists()


# ---------------------------------------------------------------- /detect


def box_iou(a, b) -> float:
    from torchvision.ops import box_iou as tv_box_iou
    import torch

    return float(tv_box_iou(torch.tensor([a], dtype=torch.float32), torch.tensor([b], dtype=torch.float32))[0, 0])


@pytest.mark.parametrize("model", ["fasterrcnn-shapes", "fcos-shapes"])
def test_detect_finds_the_objects_of_an_unseen_scene(client, scene_file, model):
    path, scene = scene_file
    drawn, summary, table, records, coco_path = client.predict(handle_file(str(path)), model, 0.5, 0.5, [], 100, api_name="/detect")
    assert Image.open(drawn).size == (512, 512)  # a 128 px scene is drawn 4x larger so labels are readable
    assert "detection" in summary and len(table["data"]) == len(records)
    located = [any(box_iou(r["box"], obj.box) > 0.5 for r in records) for obj in scene.objects]
    named = [any(r["label"] == obj.kind and box_iou(r["box"], obj.box) > 0.5 for r in records) for obj in scene.objects]
    assert all(located), records  # every object gets a box
    assert np.mean(named) >= 0.8, records  # and nearly all the right label (mAP@0.5 is 0.99, not 1)
    coco = json.loads(Path(coco_path).read_text())
    assert len(coco["annotations"]) == len(records) and {c["name"] for c in coco["categories"]} == set(shapesworld.CLASSES[1:])


def test_detect_thresholds_and_class_filter(client, scene_file):
    path, scene = scene_file
    *_, everything, _ = client.predict(handle_file(str(path)), "fcos-shapes", 0.05, 0.5, [], 100, api_name="/detect")
    *_, people, _ = client.predict(handle_file(str(path)), "fcos-shapes", 0.05, 0.5, ["person"], 100, api_name="/detect")
    *_, top2, _ = client.predict(handle_file(str(path)), "fcos-shapes", 0.05, 0.5, [], 2, api_name="/detect")
    assert len(everything) > len(people) >= 0 and {r["label"] for r in people} <= {"person"}
    assert top2 == everything[:2]


def test_detect_with_a_pretrained_architecture(client):
    """Planted random weights (tests/conftest.py): labels are COCO's, through the library's own loader in the server."""
    import models

    photo = Path(__file__).parent.parent / "test-artifacts" / "coffee.jpg"
    photo.parent.mkdir(exist_ok=True)
    from skimage import data

    Image.fromarray(data.coffee()).save(photo)
    drawn, summary, _, records, _ = client.predict(handle_file(str(photo)), "fasterrcnn-mobilenet-320", 0.05, 0.5, [], 100, api_name="/detect")
    assert Image.open(drawn).size == (600, 400)
    categories = models.spec("fasterrcnn-mobilenet-320").source.weights.meta["categories"]
    assert all(r["label"] in categories for r in records)


@pytest.mark.parametrize(
    "arguments, hint",
    [
        (("fcos-shapes", 1.5, 0.5, [], 100), "greater than maximum value 1"),  # Gradio checks the sliders' ranges
        (("fcos-shapes", 0.5, 0.0, [], 100), "less than minimum value 0.05"),
        (("fcos-shapes", 0.5, 0.5, ["cat"], 100), "does not know 'cat'"),
        (("fcos-shapes", 0.5, 0.5, [], 0), "less than minimum value 1"),
        (("no-such-model", 0.5, 0.5, [], 100), "no-such-model"),
        (("unet-shapes", 0.5, 0.5, [], 100), "unet-shapes"),
    ],
)
def test_detect_refuses_bad_arguments_clearly(client, scene_file, arguments, hint):
    path, _ = scene_file
    with pytest.raises(AppError) as error:
        client.predict(handle_file(str(path)), *arguments, api_name="/detect")
    assert hint.lower() in str(error.value).lower() and "Traceback" not in str(error.value)


def test_detect_refuses_a_broken_file_and_keeps_serving(client, scene_file, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    with pytest.raises(AppError, match="not an image"):
        client.predict(handle_file(str(broken)), "fcos-shapes", 0.5, 0.5, [], 100, api_name="/detect")
    path, _ = scene_file
    drawn, *_ = client.predict(handle_file(str(path)), "fcos-shapes", 0.5, 0.5, [], 100, api_name="/detect")
    assert Path(drawn).exists()


# ---------------------------------------------------------------- /instances and /pose


def test_instances_of_an_unseen_scene(client, scene_file):
    path, scene = scene_file
    drawn, summary, table, records, id_png, coco_path = client.predict(
        handle_file(str(path)), "maskrcnn-shapes", 0.5, 0.5, True, True, 100, api_name="/instances"
    )
    ids = np.asarray(Image.open(id_png))
    assert ids.shape == (128, 128) and ids.max() == len(records) == len(table["data"])
    located = [any(box_iou(r["box"], obj.box) > 0.5 for r in records) for obj in scene.objects]
    assert all(located), records
    coco = json.loads(Path(coco_path).read_text())
    assert all("counts" in a["segmentation"] for a in coco["annotations"])
    # the instance-id PNG says what the COCO file's RLE masks say: instance k's pixels lie in mask k
    from pycocotools import mask as rle

    for k, annotation in enumerate(coco["annotations"], start=1):
        assert rle.decode(annotation["segmentation"]).astype(bool)[ids == k].all(), k
    # and broadly what the truth says (a sanity check: the quality bar is test_instances' mask mAP)
    assert ((ids > 0) == (scene.instance_map > 0)).mean() > 0.9


def test_pose_of_an_unseen_scene(client, scene_file):
    path, scene = scene_file
    assert scene.people, "the scene must hold a stick figure"
    drawn, summary, table, people, coco_path = client.predict(handle_file(str(path)), "keypointrcnn-shapes", 0.5, 2.0, 20, api_name="/pose")
    assert len(people) == len(scene.people)
    assert all(len(p["keypoints"]) == len(shapesworld.KEYPOINTS) for p in people)
    assert [k["name"] for k in people[0]["keypoints"]] == list(shapesworld.KEYPOINTS)
    coco = json.loads(Path(coco_path).read_text())
    assert coco["categories"][0]["keypoints"] == list(shapesworld.KEYPOINTS)
    assert len(coco["annotations"][0]["keypoints"]) == 3 * len(shapesworld.KEYPOINTS)


def test_pose_refuses_a_model_without_keypoints(client, scene_file):
    path, _ = scene_file
    with pytest.raises(AppError, match="fcos-shapes"):  # not in the pose tab's list of models
        client.predict(handle_file(str(path)), "fcos-shapes", 0.5, 2.0, 20, api_name="/pose")


# ---------------------------------------------------------------- /classify

SHAPE_LABELS = "\n".join(f"{c} {s}" for s in shapesworld.SHAPES for c in shapesworld.COLOURS)


@pytest.fixture(scope="module")
def objects(tmp_path_factory) -> list[tuple[Path, str]]:
    """Unseen single-object images and what they show: a red ring (never trained on) and two others."""
    folder = tmp_path_factory.mktemp("objects")
    found = []
    for offset in (85, 0, 1):
        image, prompt = shapesworld.single_object(shapesworld.SPLITS["test"].start + offset, 64)
        path = folder / f"object-{offset}.png"
        Image.fromarray(image).save(path)
        found.append((path, " ".join(prompt.split()[-2:])))
    return found


def test_classify_names_unseen_objects_with_the_local_mini_clip(client, objects):
    (first, truth), *more = objects
    scores, note, table, space, with_templates, bare = client.predict(
        handle_file(str(first)), [handle_file(str(p)) for p, _ in more], SHAPE_LABELS, True, "a photo of a {}.\na drawing of a {}.",
        0.0, "clip-shapes", api_name="/classify",
    )
    assert scores["label"] == truth == "red ring"
    assert abs(sum(c["confidence"] for c in scores["confidences"]) - 1) < 1e-3
    assert truth in note and "2 template(s)" in note
    assert table.count("<tr>") == 1 + len(objects)
    assert with_templates["label"] == truth and bare["confidences"]
    assert Image.open(space).size == (760, 520)


def test_classify_with_one_label_answers_its_cosine_similarity(client, objects):
    (path, _), *_ = objects
    scores, note, *_ = client.predict(handle_file(str(path)), None, "red ring", True, "a photo of a {}.", 0.0, "clip-shapes", api_name="/classify")
    label, cosine = scores["label"].split(": cosine similarity ")  # text, not a confidence a chart would show as a percentage
    assert label == "red ring" and -1 <= float(cosine) < 0.999 and not scores["confidences"] and "cosine similarity" in note


@pytest.mark.parametrize(
    "labels, templates, model, hint",
    [
        ("", "a photo of a {}.", "clip-shapes", "at least one label"),
        (",".join(f"label {i}" for i in range(1001)), "a photo of a {}.", "clip-shapes", "at most 1000"),
        ("cat", "a photo of a cat.", "clip-shapes", "exactly one"),
        ("cat", "a photo of a {}.", "clip-vit-b-32", "prefetch"),  # no pretrained weights on this offline machine
    ],
)
def test_classify_refuses_bad_input_clearly_and_keeps_serving(client, objects, labels, templates, model, hint):
    (path, truth), *_ = objects
    with pytest.raises(AppError, match=hint):
        client.predict(handle_file(str(path)), None, labels, True, templates, 0.0, model, api_name="/classify")
    scores, *_ = client.predict(handle_file(str(path)), None, SHAPE_LABELS, True, "a photo of a {}.", 0.0, "clip-shapes", api_name="/classify")
    assert scores["label"] == truth


# ---------------------------------------------------------------- /retrieve


def test_retrieve_neighbours_and_one_users_uploads_stay_out_of_anothers_results(client, app_url, objects):
    (query, _), *_ = objects
    shown, table, note = client.predict(handle_file(str(query)), "rotation-shapes", 5, [handle_file(str(query))], api_name="/retrieve")
    assert len(shown) == len(table["data"]) == 5
    assert table["data"][0][1] == "your image 1" and table["data"][0][2] == pytest.approx(1.0, abs=1e-4)
    other = Client(app_url, verbose=False)  # another user, at the same time
    shown, table, note = other.predict(handle_file(str(query)), "rotation-shapes", 50, None, api_name="/retrieve")
    assert not any(row[1].startswith("your image") for row in table["data"]) and "of yours" not in note


@pytest.mark.parametrize("k, model, hint", [(0, "rotation-shapes", "less than minimum value 1"), (51, "rotation-shapes", "greater than maximum value 50"), (5, "dinov2-small", "prefetch")])
def test_retrieve_refuses_bad_input_clearly(client, objects, k, model, hint):
    (query, _), *_ = objects
    with pytest.raises(AppError, match=hint):
        client.predict(handle_file(str(query)), model, k, None, api_name="/retrieve")


# ---------------------------------------------------------------- /generate


def test_generate_draws_the_prompt_with_the_local_model(client):
    images, notes, steps = client.predict(
        "a large green star", "", 3, 10, 2.0, "DPM-Solver++", 2, "diffusion-shapes", api_name="/generate"
    )
    assert len(images) == 2 and Image.open(images[0]["image"]).size == (256, 256)
    assert "2 image(s)" in notes and "seed 3" in notes and 'read the prompt as "a large green star"' in notes
    assert len(steps) == 16 and "step 1/10" in steps[0]["caption"]  # 8 pictured steps x (x_t, x̂_0)


@pytest.mark.parametrize(
    "prompt, steps, count, model, hint",
    [
        ("", 10, 1, "diffusion-shapes", "Write a prompt"),
        ("a red star", -1, 1, "diffusion-shapes", "less than minimum value 1"),
        ("a red star", 10, 1000, "diffusion-shapes", "greater than maximum value 8"),
        ("a red star", 1, 1, "sd-turbo", "prefetch"),  # no SD-Turbo weights on this offline machine
    ],
)
def test_generate_refuses_bad_input_clearly_and_keeps_serving(client, prompt, steps, count, model, hint):
    with pytest.raises(AppError, match=hint):
        client.predict(prompt, "", 0, steps, 2.0, "DPM-Solver++", count, model, api_name="/generate")
    images, notes, _ = client.predict("一只猫 " * 100, "", 0, 2, 2.0, "DPM-Solver++", 1, "diffusion-shapes", api_name="/generate")
    assert len(images) == 1 and "unconditional sample" in notes


# ---------------------------------------------------------------- /caption and /answer


def test_caption_an_unseen_scene_and_see_its_decoding(client, scene_file):
    from shapesworld.language import named_objects

    path, scene = scene_file
    captions, notes, steps, word, heat, truth = client.predict(
        handle_file(str(path)), "blip-caption-shapes", "", "greedy", 3, 0.9, 1.0, 20, 1, 0, api_name="/caption"
    )
    assert len(named_objects(captions)) == min(2, len(scene.objects))  # the quality bar itself is in test_captioning.py
    assert "1 caption(s)" in notes and "<table" in steps and Image.open(heat).height == 384  # with its colour scale beside it
    assert "lowered from 20 to 19" in notes and truth == ""  # the tiny BLIP's 20 positions; a file not named as a scene
    beams, *_ = client.predict(handle_file(str(path)), "blip-caption-shapes", "", "beam search", 4, 0.9, 1.0, 20, 3, 0, api_name="/caption")
    assert len(beams.splitlines()) == 3


def test_answer_a_question_about_an_unseen_scene(client, scene_file):
    path, scene = scene_file
    qa = next(qa for qa in scene.qa if qa.kind == "count")
    answer, top, heat, notes, truth = client.predict(handle_file(str(path)), "blip-vqa-shapes", qa.question, api_name="/answer")
    assert answer in shapesworld.language.NUMBER_WORDS and answer in [c["label"] for c in top["confidences"]] and len(top["confidences"]) <= 5
    assert Image.open(heat).height == 384 and truth == ""


def test_caption_and_answer_stream_no_error_event_for_photos_odd_colour_modes_and_noise(app_url, tmp_path):
    """Over the raw REST stream, at the API's longest length: a 128 px noise image ran the tiny BLIP past its 20 positions."""
    import httpx
    from skimage import data

    odd_modes = ("rgba_png", "p_png", "p_transparency_png", "cmyk_tiff", "cmyk_jpeg")
    paths = [item.path for item in make_corpus(tmp_path / "corpus") if item.name in odd_modes]
    for name in ("astronaut", "chelsea", "coffee"):
        paths.append(tmp_path / f"{name}.png")
        Image.fromarray(getattr(data, name)()).save(paths[-1])
    paths.append(tmp_path / "noise.png")
    Image.fromarray(np.random.default_rng(128).integers(0, 256, (128, 128, 3), dtype=np.uint8)).save(paths[-1])
    calls = {"caption": ["blip-caption-shapes", "", "greedy", 3, 0.9, 1.0, 60, 1, 0], "answer": ["blip-vqa-shapes", "what colour is the circle?"]}
    with httpx.Client(base_url=app_url, timeout=120) as http:
        for path in paths:
            uploaded = http.post("gradio_api/upload", files={"files": (path.name, path.read_bytes())}).json()[0]
            image = {"path": uploaded, "meta": {"_type": "gradio.FileData"}}
            for endpoint, rest in calls.items():
                started = http.post(f"gradio_api/call/{endpoint}", json={"data": [image, *rest]}).json()
                stream = http.get(f"gradio_api/call/{endpoint}/{started['event_id']}").text
                events = [line[6:].strip() for line in stream.splitlines() if line.startswith("event:") and "heartbeat" not in line]
                assert "error" not in events and events[-1] == "complete", (path.name, endpoint, stream[-300:])


@pytest.mark.parametrize(
    "endpoint, arguments, hint",
    [
        ("/answer", ("blip-vqa-shapes", ""), "Ask a question"),
        ("/answer", ("blip-vqa-shapes", "这是什么？"), "none of this question's words"),
        ("/answer", ("blip-vqa-base", "what is this?"), "prefetch"),  # no BLIP weights on this offline machine
        ("/caption", ("blip-caption-shapes", "", "beam search", 2, 0.9, 1.0, 20, 5, 0), "at most that many captions"),
        ("/caption", ("blip-caption-shapes", "", "greedy", 3, 0.9, 1.0, 0, 1, 0), "less than minimum value 1"),
    ],
)
def test_caption_and_answer_refuse_bad_input_clearly_and_keep_serving(client, scene_file, endpoint, arguments, hint):
    path, _ = scene_file
    with pytest.raises(AppError, match=hint):
        client.predict(handle_file(str(path)), *arguments, api_name=endpoint)
    answer, *_ = client.predict(handle_file(str(path)), "blip-vqa-shapes", "is there a red star?", api_name="/answer")
    assert answer in ("yes", "no")



COUNT_LABEL = r"\b(maximum|beams?|beam width|captions|images|steps|seed|neighbours|count|number of)\b"


def test_the_api_names_every_value_and_types_every_count_as_an_integer(app_url):
    """A client reads names and types from /gradio_api/info: ``value_261`` says nothing, and a count is never 2.5.

    Gradio names a return after its component's label (``value_<id>`` without one) and types a
    slider ``integer`` only with ``precision=0`` (``common.int_slider``).
    """
    import re
    import urllib.request

    with urllib.request.urlopen(f"{app_url.rstrip('/')}/gradio_api/info", timeout=30) as response:
        endpoints = json.load(response)["named_endpoints"]
    problems = []
    for name, info in sorted(endpoints.items()):
        for parameter in info["parameters"]:
            label, kind = parameter["label"], parameter["type"].get("type")
            if re.match(r"(value|parameter|param)_\d+$", parameter["parameter_name"]) or re.match(r"(value|parameter)_\d+$", label):
                problems.append(f"{name}: parameter {parameter['parameter_name']!r} ({label!r}) has no name")
            if kind in ("number", "integer") and re.search(COUNT_LABEL, label, re.IGNORECASE) and kind != "integer":
                problems.append(f"{name}: {parameter['parameter_name']!r} ({label!r}) is a count typed {kind}")
        problems += [f"{name}: a return is named {r['label']!r}" for r in info["returns"] if re.match(r"value_\d+$", r["label"])]
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- /depth


def test_depth_of_an_unseen_scene_as_a_16_bit_png_with_its_range_and_scores(client, tmp_path):
    scene = shapesworld.generate(SCENE_SEED)
    path = tmp_path / f"shapesworld-{SCENE_SEED}.png"  # named as its seed, so the app scores it against the truth
    Image.fromarray(scene.image).save(path)
    picture, png_path, numbers, mesh_path = client.predict(handle_file(str(path)), "unet-depth-shapes", api_name="/depth")
    with Image.open(png_path) as png:
        stored = np.asarray(png).astype(np.float64)
    assert stored.shape == (128, 128) and stored.max() == 65535
    depth = numbers["min"] + stored / 65535 * (numbers["max"] - numbers["min"])
    assert numbers["kind"] == "depth" and numbers["shapesworld_seed"] == SCENE_SEED
    assert np.mean(np.abs(depth - scene.depth) / scene.depth) == pytest.approx(numbers["metrics"]["abs_rel"], abs=2e-3)
    assert numbers["metrics"]["delta1"] > 0.8 and Path(mesh_path).suffix == ".glb" and Image.open(picture).width > 128


def test_depth_refuses_a_model_that_is_not_here_and_a_broken_file(client, tmp_path):
    photo = tmp_path / "photo.png"
    Image.new("RGB", (64, 48), (10, 120, 200)).save(photo)
    with pytest.raises(AppError, match="prefetch"):
        client.predict(handle_file(str(photo)), "dpt-large", api_name="/depth")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(AppError) as error:
        client.predict(handle_file(str(broken)), "unet-depth-shapes", api_name="/depth")
    assert "Traceback" not in str(error.value)
    _, _, numbers, _ = client.predict(handle_file(str(photo)), "unet-depth-shapes", api_name="/depth")
    assert numbers["metrics"] is None and numbers["min"] <= numbers["max"]


# ---------------------------------------------------------------- /flow


def test_flow_of_an_unseen_clip_pair_scored_against_its_exact_flow(client, tmp_path):
    from demos.flow import clip_files, clip_pair

    seed = shapesworld.SPLITS["test"].start + 4242
    first, second = clip_files(seed, 4)
    picture, arrows, updates, warped, numbers, npy = client.predict(handle_file(first), handle_file(second), "raft-flow-shapes", api_name="/flow")
    flow = np.load(npy)
    truth = clip_pair(seed, 4)[2].flow
    assert flow.shape == (128, 128, 2) and numbers["model"] == "raft-flow-shapes"
    assert np.sqrt(((flow - truth) ** 2).sum(-1)).mean() == pytest.approx(numbers["epe_px"], abs=1e-3)
    assert numbers["epe_zero_px"] == pytest.approx(float(np.sqrt((truth**2).sum(-1)).mean()), abs=1e-3) and numbers["updates"] >= 1
    assert all(Image.open(path).width > 128 for path in (picture, arrows, updates, warped))


def test_flow_refuses_frames_of_different_sizes_and_a_broken_file(client, tmp_path):
    small, large, broken = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    Image.new("RGB", (128, 128)).save(small)
    Image.new("RGB", (160, 128)).save(large)
    broken.write_bytes(b"\x89PNG not really")
    with pytest.raises(AppError, match="differ in size"):
        client.predict(handle_file(str(small)), handle_file(str(large)), "raft-flow-shapes", api_name="/flow")
    with pytest.raises(AppError):
        client.predict(handle_file(str(small)), handle_file(str(broken)), "raft-flow-shapes", api_name="/flow")
    *_, numbers, _ = client.predict(handle_file(str(small)), handle_file(str(small)), "raft-flow-shapes", api_name="/flow")
    assert numbers["size"] == [128, 128]  # the server kept serving

