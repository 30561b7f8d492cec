"""Tests for the lecture's upsampling operators (demos/panels/upsampling_*.py)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from demos.panels.upsampling_html import OPERATORS, explain
from demos.panels.upsampling_math import (
    bed_of_nails_unpool,
    max_pool_with_indices,
    max_unpool,
    nearest_neighbor_unpool,
    parse_matrix,
    transposed_conv,
    transposed_conv_steps,
)
from demos.panels.upsampling_panel import PRESETS
from demos.tables import matrix_to_html

POOL_SOURCE = "1 2 6 3\n3 5 2 1\n1 2 2 1\n7 3 4 8"


# ------------------------------------------------------------------- parse_matrix


@pytest.mark.parametrize("text", ["1 2; 3 4", "1 2\n3 4", "1,2\n3,4", " 1, 2 ;\n 3  4 \n\n"])
def test_parse_matrix_formats(text):
    np.testing.assert_array_equal(parse_matrix(text), [[1, 2], [3, 4]])
    assert parse_matrix(text).dtype == np.float64


def test_parse_matrix_numbers():
    np.testing.assert_array_equal(parse_matrix("-1.5 2e1 +3"), [[-1.5, 20, 3]])


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("  \n ; ", "empty"),
        (None, "empty"),
        ("1 2; 3", "same number of entries"),
        ("1 2; 3 x", "'x' (row 2, entry 2) is not a number"),
        ("1 nan", "finite"),
        ("1 inf", "finite"),
        ("; ".join(["1"] * 9), "9x1; the limit is 8x8"),
        (" ".join(["1"] * 9), "1x9; the limit is 8x8"),
    ],
)
def test_parse_matrix_errors(text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_matrix(text)


# ------------------------------------------------------------- unpooling operators


def test_nearest_neighbor_unpool():
    out = nearest_neighbor_unpool(parse_matrix("1 2; 3 4"))
    np.testing.assert_array_equal(
        out, [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]
    )
    assert nearest_neighbor_unpool([[5]], factor=3).tolist() == [[5] * 3] * 3


def test_bed_of_nails_unpool():
    out = bed_of_nails_unpool(parse_matrix("1 2; 3 4"))
    np.testing.assert_array_equal(
        out, [[1, 0, 2, 0], [0, 0, 0, 0], [3, 0, 4, 0], [0, 0, 0, 0]]
    )


def test_unpooling_as_transposed_conv():
    """Both fixed unpoolings are transposed convolutions with a fixed kernel."""
    x = np.random.default_rng(0).normal(size=(3, 4))
    np.testing.assert_allclose(
        nearest_neighbor_unpool(x), transposed_conv(x, np.ones((2, 2)), stride=2)
    )
    np.testing.assert_allclose(
        bed_of_nails_unpool(x), transposed_conv(x, [[1, 0], [0, 0]], stride=2)
    )


def test_max_pool_remembers_argmax():
    source = parse_matrix(POOL_SOURCE)
    pooled, idx = max_pool_with_indices(source, 2)
    np.testing.assert_array_equal(pooled, [[5, 6], [7, 8]])
    # flat indices into the 4x4 source: 5 at (1,1), 6 at (0,2), 7 at (3,0), 8 at (3,3)
    np.testing.assert_array_equal(idx, [[5, 2], [12, 15]])
    assert source.ravel()[idx].tolist() == pooled.tolist()


def test_max_unpool_puts_values_at_argmax_positions():
    source = parse_matrix(POOL_SOURCE)
    _, idx = max_pool_with_indices(source, 2)
    decoder_values = parse_matrix("10 20; 30 40")  # a different matrix than the maxima
    out = max_unpool(decoder_values, idx, source.shape)
    expected = np.zeros((4, 4))
    expected[1, 1], expected[0, 2], expected[3, 0], expected[3, 3] = 10, 20, 30, 40
    np.testing.assert_array_equal(out, expected)
    # and every other position is zero
    assert np.count_nonzero(out) == 4


def test_max_pool_unpool_round_trip_shapes():
    rng = np.random.default_rng(1)
    for shape in [(2, 2), (4, 4), (4, 6), (5, 5), (8, 8)]:
        x = rng.normal(size=shape)
        pooled, idx = max_pool_with_indices(x, 2)
        assert pooled.shape == idx.shape == (shape[0] // 2, shape[1] // 2)
        out = max_unpool(pooled, idx, shape)
        assert out.shape == shape
        # unpooling the maxima keeps exactly the maxima, each in its original place
        kept = out != 0
        np.testing.assert_array_equal(out[kept], x[kept])
        assert kept.sum() == pooled.size


def test_max_unpool_shape_mismatch():
    _, idx = max_pool_with_indices(parse_matrix(POOL_SOURCE), 2)
    with pytest.raises(ValueError, match="must match"):
        max_unpool(np.ones((3, 3)), idx, (4, 4))


# ------------------------------------------------------------ transposed convolution


def test_transposed_conv_1d_slide_example():
    a, b = 2.0, 3.0
    x_, y_, z_ = 1.0, 10.0, 100.0
    out = transposed_conv([[a, b]], [[x_, y_, z_]], stride=2)
    np.testing.assert_allclose(out, [[a * x_, a * y_, a * z_ + b * x_, b * y_, b * z_]])


def test_transposed_conv_2x2_to_4x4_stride2_non_overlapping():
    x = parse_matrix("1 2; 3 4")
    k = parse_matrix("1 2; 3 4")
    out = transposed_conv(x, k, stride=2)
    assert out.shape == (4, 4)
    for i in range(2):
        for j in range(2):
            np.testing.assert_array_equal(out[2 * i:2 * i + 2, 2 * j:2 * j + 2], x[i, j] * k)


def test_transposed_conv_2x2_to_3x3_stride1_overlaps_summed():
    x = parse_matrix("1 2; 3 4")
    out = transposed_conv(x, np.ones((2, 2)), stride=1)
    np.testing.assert_array_equal(out, [[1, 3, 2], [4, 10, 6], [3, 7, 4]])
    assert out[1, 1] == x.sum()


def test_transposed_conv_3x3_stride2_pad1_outpad1():
    x = parse_matrix("1 2; 3 4")
    k = np.arange(1.0, 10.0).reshape(3, 3)
    out = transposed_conv(x, k, stride=2, padding=1, output_padding=1)
    assert out.shape == (4, 4)
    # full (uncropped) result is 5x5; padding 1 crops the first row/col, output_padding
    # 1 keeps the last one.
    full = np.zeros((5, 5))
    for i in range(2):
        for j in range(2):
            full[2 * i:2 * i + 3, 2 * j:2 * j + 3] += x[i, j] * k
    np.testing.assert_allclose(out, full[1:, 1:])


def _conv_matrix(out_shape, kernel, stride, padding):
    """Matrix C of conv2d(kernel, stride, padding) on inputs of out_shape: C @ v.ravel()."""
    n = out_shape[0] * out_shape[1]
    basis = torch.eye(n, dtype=torch.float64).reshape(n, 1, *out_shape)
    w = torch.as_tensor(kernel, dtype=torch.float64)[None, None]
    cols = F.conv2d(basis, w, stride=stride, padding=padding)  # (n, 1, h, w)
    return cols.reshape(n, -1).T.numpy(), tuple(cols.shape[2:])


@pytest.mark.parametrize(
    "x_shape, k_shape, stride, padding, output_padding",
    [((3, 4), (3, 3), 2, 1, 1), ((2, 2), (2, 2), 2, 0, 0), ((3, 3), (2, 3), 1, 0, 0),
     ((4, 3), (4, 4), 3, 2, 0)],
)
def test_transposed_conv_is_adjoint_of_conv(x_shape, k_shape, stride, padding, output_padding):
    """The lecture's point: conv = C @ x, transposed conv = C^T @ x."""
    rng = np.random.default_rng(42)
    x, k = rng.normal(size=x_shape), rng.normal(size=k_shape)
    out = transposed_conv(x, k, stride, padding, output_padding)
    C, conv_out_shape = _conv_matrix(out.shape, k, stride, padding)
    assert conv_out_shape == x_shape  # conv maps the big grid back to x's shape
    np.testing.assert_allclose(out, (C.T @ x.ravel()).reshape(out.shape), atol=1e-12)


@pytest.mark.parametrize("stride, padding, output_padding", [(2, 0, 0), (1, 0, 0), (2, 1, 1), (3, 2, 1)])
def test_transposed_conv_steps_sum_to_output(stride, padding, output_padding):
    rng = np.random.default_rng(7)
    x, k = rng.normal(size=(2, 3)), rng.normal(size=(3, 3))
    out = transposed_conv(x, k, stride, padding, output_padding)
    steps = transposed_conv_steps(x, k, stride, padding, output_padding)
    assert len(steps) == x.size
    for c in steps:
        np.testing.assert_allclose(c.scaled_kernel, x[c.row, c.col] * k)
        assert (c.top, c.left) == (c.row * stride - padding, c.col * stride - padding)
    np.testing.assert_allclose(sum(c.on_canvas(out.shape) for c in steps), out)


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(stride=0), "Stride"), (dict(stride=1.5), "whole number"),
     (dict(stride=2, output_padding=2), "smaller than the stride"),
     (dict(stride=1, padding=3), "crops everything")],
)
def test_transposed_conv_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        transposed_conv(np.ones((2, 2)), np.ones((2, 2)), **kwargs)


# -------------------------------------------------------------------- rendering / UI


def test_matrix_to_html():
    h = matrix_to_html([[1, 0.5], [-0.0, 1234.5678]], highlight=[(0, 1)], caption="a<b")
    assert h.startswith("<table") and h.count("<td") == 4
    assert ">1<" in h and ">0.5<" in h and ">0<" in h and ">1.23e+03<" in h
    assert h.count("background:rgba(255,165,0") == 1
    assert "a&lt;b" in h
    assert "color:#000" not in h and "black" not in h and "url(" not in h


@pytest.mark.parametrize("operator", list(OPERATORS) + list(OPERATORS.values()))
def test_explain_each_operator(operator):
    h = explain(operator, "1 2\n3 4", POOL_SOURCE, "1 1\n1 1", 2, 0, 0)
    assert "<table" in h and "Cannot compute" not in h


def test_explain_contents():
    h = explain("max_unpool", "10 20; 30 40", POOL_SOURCE, "", 2, 0, 0)
    assert ">40<" in h and h.count("<table") == 4
    h = explain("transposed", "1 2; 3 4", "", "1 1; 1 1", 1, 0, 0)
    assert ">10<" in h  # center of the 3x3 output is the sum of the inputs
    assert "overlapping outputs are summed" in h


@pytest.mark.parametrize(
    "args, message",
    [(("nearest", "1 2; 3"), "Input matrix: Row 2 has 1 entries"),
     (("bed_of_nails", ""), "Input matrix: The matrix is empty"),
     (("max_unpool", "1 2 3"), "pooled shape 2x2"),
     (("max_unpool", "1 2; 3 4", "1 x"), "Pool source matrix: &#x27;x&#x27;"),
     (("transposed", "1 2; 3 4", "", "a"), "Kernel: &#x27;a&#x27;"),
     (("transposed", "1 2; 3 4", "", "1", 0), "Stride must be between 1 and 4"),
     (("transposed", "1 2; 3 4", "", "1", None), "Stride is empty"),
     (("warp", "1"), "Unknown operator")],
)
def test_explain_bad_input_gives_message(args, message):
    defaults = ["nearest", "1 2; 3 4", POOL_SOURCE, "1 1; 1 1", 2, 0]
    h = explain(*args, *defaults[len(args):])
    assert "Cannot compute" in h and message in h
    assert "Traceback" not in h


def test_presets_are_valid():
    for name, p in PRESETS.items():
        h = explain("transposed", p["input"], "", p["kernel"], p["stride"], p["padding"],
                    p["output_padding"])
        assert "Cannot compute" not in h, name
    p = PRESETS["2x2 → 4x4: kernel 3x3, stride 2, padding 1, output_padding 1"]
    x, k = parse_matrix(p["input"]), parse_matrix(p["kernel"])
    assert transposed_conv(x, k, 2, 1, 1).shape == (4, 4)


def test_build_upsampling_panel():
    import gradio as gr

    from demos.panels.upsampling_panel import build_upsampling_panel

    with gr.Blocks() as demo:
        with gr.Tab("Segmentation"):
            build_upsampling_panel()
    accordions = [b for b in demo.blocks.values() if isinstance(b, gr.Accordion)]
    assert [a.label for a in accordions] == ["Upsampling operators (lecture)"]
    html_out = [b for b in demo.blocks.values() if isinstance(b, gr.HTML)]
    assert len(html_out) == 1 and "<table" in html_out[0].value
    deps = demo.config["dependencies"]
    assert deps and all(d["api_visibility"] == "private" for d in deps)
