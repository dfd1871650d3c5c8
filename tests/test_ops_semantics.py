"""Worked examples from shared/spec/theory_and_capture.md §1.2, checked by hand there."""

from __future__ import annotations

from fractions import Fraction

import foveal
from foveal import Graph, conv, conv_transpose, pixel_shuffle, upsample


def test_transposed_convolution_phases() -> None:
    """conv k3 s2 -> tconv k4 s2 p1: regions [0,4],[0,4],[2,6],[2,6],[4,8] from feature 1 on."""
    g = Graph(1)
    x = g.add("conv", conv(3, 2), g.input("x"))
    g.add("tconv", conv_transpose(4, 2, 1), x)
    a = foveal.receptive_field(g, input_shape=16)
    t = a["tconv"]
    assert [t.region(o)[0] for o in range(6)] == [(-2, 2), (0, 4), (0, 4), (2, 6), (2, 6), (4, 8)]
    assert t.region(0, clip=True) == ((0, 2),)
    assert t.stride == (1,) and t.period == (2,) and t.phase_sizes == ((5, 5),)
    assert [t.center(o)[0] for o in range(4)] == [0.0, 2.0, 2.0, 4.0]


def test_transposed_kernel_smaller_than_stride_reads_nothing_on_some_phases() -> None:
    g = Graph(1)
    g.add("tconv", conv_transpose(1, 2), g.input("x"))
    t = foveal.receptive_field(g, 5)["tconv"]
    assert t.region(0) == ((0, 0),) and t.region(1) == (None,)
    assert t.region(1, clip=True) == (None,)
    assert t.phase_sizes == ((1, 0),) and t.stride == (Fraction(1, 2),)


def test_nearest_upsampling_is_stride_one_over_f() -> None:
    g = Graph(1)
    x = g.add("conv", conv(3, 2, 1), g.input("x"))
    g.add("up", upsample(scale=2), x)
    u = foveal.receptive_field(g)["up"]
    assert u.stride == (1,) and u.period == (2,) and u.size == (3,)
    assert [u.region(o)[0] for o in range(4)] == [(-1, 1), (-1, 1), (1, 3), (1, 3)]


def test_pixel_shuffle_matches_nearest() -> None:
    g = Graph(2)
    x = g.add("conv", conv(3, 2, 1), g.input("x"))
    a = g.add("shuffle", pixel_shuffle(2), x)
    b = g.add("nearest", upsample(scale=2), x)
    r = foveal.receptive_field(g)
    assert [r[a].region(o, o) for o in range(5)] == [r[b].region(o, o) for o in range(5)]


def test_fractional_scale_is_exact() -> None:
    g = Graph(1)
    g.add("up", upsample(scale=Fraction(3, 2)), g.input("x"))
    u = foveal.receptive_field(g, 4)["up"]
    assert u.output_shape == (6,)
    assert u.stride == (Fraction(2, 3),) and u.period == (3,)
    assert [u.region(o)[0] for o in range(6)] == [(0, 0), (0, 0), (1, 1), (2, 2), (2, 2), (3, 3)]


def test_bilinear_reads_two_taps_except_on_exact_grid_points() -> None:
    g = Graph(1)
    g.add("up", upsample(scale=2, mode="linear"), g.input("x"))
    u = foveal.receptive_field(g, 4)["up"]
    # x = (o + 1/2)/2 - 1/2: -0.25, 0.25, 0.75, 1.25 ... never an integer
    assert [u.region(o)[0] for o in range(4)] == [(-1, 0), (0, 1), (0, 1), (1, 2)]
    assert u.region(0, clip=True) == ((0, 0),)
    g2 = Graph(1)
    g2.add("up", upsample(size=7, mode="linear", align_corners=True), g2.input("x"))
    v = foveal.receptive_field(g2, 4)["up"]  # x = o/2: integers on even o
    assert [v.region(o, clip=True)[0] for o in range(7)] == [
        (0, 0), (0, 1), (1, 1), (1, 2), (2, 2), (2, 3), (3, 3)]


def test_causal_dilated_stack_wavenet() -> None:
    g = Graph(1)
    x = g.input("audio")
    for d in (1, 2, 4, 8, 1, 2, 4, 8):
        x = g.add(f"conv_d{d}_{len(g)}", conv(2, 1, "causal", dilation=d), x)
    out = foveal.receptive_field(g, 100).output
    assert out.size == (31,) and out.padding == (30,)
    assert out.region(50) == ((20, 50),)  # 30 samples of past context, no lookahead
    assert out.region(5, clip=True) == ((0, 5),)


def test_dilation_hole_at_the_border_is_exact_when_clipped() -> None:
    g = Graph(1)
    g.add("conv", conv(3, 1, 1, dilation=2), g.input("x"))
    c = foveal.receptive_field(g, 10)["conv"]
    assert c.region(0) == ((-1, 3),)
    assert c.region(0, clip=True) == ((1, 3),)  # reads -1 (padding), 1 and 3


def test_reflect_padding_reads_real_pixels() -> None:
    g = Graph(1)
    x = g.add("pad", foveal.pad(2, 2, "reflect"), g.input("x"))
    g.add("conv", conv(3), x)
    c = foveal.receptive_field(g, 8)["conv"]
    assert c.region(0) == ((-2, 0),)
    assert c.region(0, clip=True) == ((0, 2),)  # padded positions -2, -1 mirror 2 and 1


def test_adaptive_pooling_windows_when_sizes_do_not_divide() -> None:
    g = Graph(1)
    g.add("pool", foveal.adaptive_pool(3), g.input("x"))
    p = foveal.receptive_field(g, 7)["pool"]
    assert [p.region(o)[0] for o in range(3)] == [(0, 2), (2, 4), (4, 6)]
    unknown = foveal.receptive_field(g)["pool"]
    assert unknown.status == "unavailable" and "input size" in unknown.reasons[0]


def test_unknown_policy_marks_downstream_as_bound() -> None:
    g = Graph(2)
    x = g.add("mystery", foveal.unknown("grid_sample"), g.input("x"))
    g.add("conv", conv(3), x)
    for policy, size in (("identity", (3, 3)), ("global", (float("inf"),) * 2)):
        a = foveal.receptive_field(g, unknown_policy=policy)
        assert a["conv"].status == "bound" and a["conv"].size == size
        assert "grid_sample" in a["conv"].reasons[0] or "mystery" in a["conv"].reasons[0]
        assert a.unsupported_ops == {"grid_sample": 1}


def test_three_axes_are_independent() -> None:
    g = Graph(3)
    g.add("conv", conv((3, 5, 7), (1, 2, 3), (1, 2, 3)), g.input("volume"))
    c = foveal.receptive_field(g, (8, 16, 32))["conv"]
    assert c.size == (3, 5, 7) and c.stride == (1, 2, 3) and c.padding == (1, 2, 3)
    assert c.output_shape == (8, 8, 11)
    assert foveal.receptive_field(g)["conv"].output_shape == (None, None, None)
