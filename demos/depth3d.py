"""A depth map made visible: the image lifted into 3-D by its depth, and the depth along a line.

Pure geometry (numpy and Pillow, no Gradio): ``lift`` back-projects each pixel through a pinhole
camera to a coloured mesh, ``glb_bytes`` writes it as binary glTF with vertex colours (what the
page's 3-D viewer loads, from this server only), and ``profile`` samples a map along a segment.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

import numpy as np
from PIL import Image

GRID = 128  # the mesh's longer side in vertices: ~16 k points, ~32 k triangles, light for any browser
TEAR = 1.12  # a triangle whose corners' depths differ by more than this factor spans an occlusion edge: left out


@dataclass
class Mesh:
    vertices: np.ndarray  # (N, 3) float32, x right, y up, z towards the viewer (right-handed, camera at 0 looking at -z)
    colours: np.ndarray  # (N, 3) float32 in [0, 1]
    faces: np.ndarray  # (M, 3) int, 0-based vertex indices


def _resized(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(values.astype(np.float32), mode="F").resize(size, Image.Resampling.BILINEAR))


def lift(image: Image.Image, depth: np.ndarray, grid: int = GRID) -> Mesh:
    """Back-project a depth map (larger = farther, > 0) through a pinhole camera with a 53° horizontal field of view.

    A pixel (u, v) at depth Z lands at X = (u - cx) Z / f, Y = (v - cy) Z / f: near things shrink
    towards the centre less than far ones, so a receding ground becomes a tilted plane and a card
    in front of it stands up. Triangles across a jump in depth are dropped (``TEAR``), so occluding
    edges show as the holes they are: the camera never saw what is behind them.
    """
    height, width = depth.shape
    scale = grid / max(height, width)
    gw, gh = max(2, round(width * scale)), max(2, round(height * scale))
    z = np.maximum(_resized(depth, (gw, gh)), 1e-6)
    rgb = np.asarray(image.convert("RGB").resize((gw, gh), Image.Resampling.BILINEAR), dtype=np.float32) / 255
    f = gw  # focal length in grid pixels
    v, u = np.mgrid[0:gh, 0:gw].astype(np.float32)
    x, y = (u - (gw - 1) / 2) * z / f, (v - (gh - 1) / 2) * z / f
    vertices = np.stack([x, -y, -z], axis=-1).reshape(-1, 3)
    index = np.arange(gh * gw).reshape(gh, gw)
    a, b, c, d = index[:-1, :-1], index[:-1, 1:], index[1:, :-1], index[1:, 1:]
    faces = np.concatenate([np.stack([a, c, b], -1).reshape(-1, 3), np.stack([b, c, d], -1).reshape(-1, 3)])
    zf = z.ravel()[faces]
    whole = zf.max(1) / zf.min(1) <= TEAR
    faces = faces[whole] if whole.any() else faces  # a map that is all edges (noise at 2x2) keeps its sheet
    return Mesh(vertices.astype(np.float32), rgb.reshape(-1, 3), faces)


def glb_bytes(mesh: Mesh) -> bytes:
    """The mesh as binary glTF 2.0 (.glb): positions, vertex colours (linear, as glTF wants) and triangles, one unlit material.

    ``KHR_materials_unlit`` shows each vertex's own colour whatever the light: the picture's pixels,
    not a shading of them, and no environment map for the viewer to fetch.
    """
    positions = np.ascontiguousarray(mesh.vertices, dtype="<f4")
    srgb = mesh.colours.astype(np.float64)
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    colours = np.ascontiguousarray(linear, dtype="<f4")
    indices = np.ascontiguousarray(mesh.faces, dtype="<u4").ravel()
    blobs = [positions.tobytes(), colours.tobytes(), indices.tobytes()]
    offsets = np.cumsum([0, *(len(b) for b in blobs)])
    views = [
        {"buffer": 0, "byteOffset": int(offset), "byteLength": len(blob), "target": target}
        for offset, blob, target in zip(offsets, blobs, (34962, 34962, 34963))  # ARRAY_BUFFER, ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER
    ]
    document = {
        "asset": {"version": "2.0", "generator": "Deep Vision Lab depth tab"},
        "extensionsUsed": ["KHR_materials_unlit"],
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0, "COLOR_0": 1}, "indices": 2, "material": 0, "mode": 4}]}],
        "materials": [{
            "pbrMetallicRoughness": {"baseColorFactor": [1, 1, 1, 1], "metallicFactor": 0, "roughnessFactor": 1},
            "extensions": {"KHR_materials_unlit": {}}, "doubleSided": True,
        }],
        "buffers": [{"byteLength": int(offsets[-1])}],
        "bufferViews": views,
        "accessors": [
            {"bufferView": 0, "componentType": 5126, "count": len(positions), "type": "VEC3",
             "min": positions.min(0).tolist(), "max": positions.max(0).tolist()},
            {"bufferView": 1, "componentType": 5126, "count": len(colours), "type": "VEC3"},
            {"bufferView": 2, "componentType": 5125, "count": len(indices), "type": "SCALAR"},
        ],
    }
    text = json.dumps(document, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    binary = b"".join(blobs)
    binary += b"\0" * (-len(binary) % 4)
    chunks = struct.pack("<II", len(text), 0x4E4F534A) + text + struct.pack("<II", len(binary), 0x004E4942) + binary
    return struct.pack("<III", 0x46546C67, 2, 12 + len(chunks)) + chunks


def profile(values: np.ndarray, start: tuple[float, float], end: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """(distance along the segment in pixels, the map's value there) from ``start`` to ``end``, given as (x, y) fractions of the size.

    One sample per pixel of the segment's length, each the nearest pixel's value: a profile shows
    the map's own steps (a card's edge) instead of smoothing them.
    """
    height, width = values.shape
    (x0, y0), (x1, y1) = ((fx * (width - 1), fy * (height - 1)) for fx, fy in (start, end))
    count = max(2, int(np.ceil(np.hypot(x1 - x0, y1 - y0))) + 1)
    t = np.linspace(0.0, 1.0, count)
    xs, ys = np.rint(x0 + t * (x1 - x0)).astype(int), np.rint(y0 + t * (y1 - y0)).astype(int)
    return t * np.hypot(x1 - x0, y1 - y0), values[ys, xs]
