"""Property-based tests: foveal against the brute-force oracles of tests/oracle.py.

Random small DAGs (1-D, and 2-D with different parameters per axis) over the whole spatial op
vocabulary: conv / max / avg windows with dilation, every padding mode and ceil_mode, transposed
convolutions (kernel < stride included), pads of every fill mode (negative amounts crop), crops
with steps and negative indices, nearest / nearest-exact / linear / bicubic resizes by integer and
fractional scales or to a size (align_corners too), pixel (un)shuffle, adaptive pooling, global
ops, and merges of branches (sizes equalised by crop / pad adapters, or broadcast from size 1).
About one graph in ten ends with an op whose output would be empty: foveal must raise ShapeError.

Checked for every node and every feature index: output_shape and status; the clipped region
against the concrete oracle (exact N-D hull in 2-D); the unclipped region against the lattice
oracle, also outside the map; size, stride, period (and that it is the smallest), phase sizes,
padding, is_global, and size_min / size_max against a per-path oracle; size_min == size_max ==
size on chains. test_shapeless_agrees: without input_shape, what foveal still reports as exact
agrees with the analysis that has it, and its size range contains the true one.

The default run does about 5,500 graphs in under a minute; the long sweep (about 45,000 graphs,
several minutes) is `python -m pytest tests/test_properties.py -m slow`. The tests named after a
discrepancy at the end are minimal reproductions of what these properties found.
"""

from __future__ import annotations

from fractions import Fraction

import oracle as O
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import foveal
from foveal import (
    Graph,
    adaptive_pool,
    add,
    attention,
    avg_pool,
    concat,
    conv,
    conv_transpose,
    crop,
    dense,
    elementwise,
    global_pool,
    max_pool,
    multiply,
    pad,
    pixel_shuffle,
    pixel_unshuffle,
    upsample,
)
from foveal.limits import LimitError
from foveal.ops import normalize

FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
PAD_MODES = ["same_upper", "same_lower", "torch_same", "causal", "valid"]
SCALES = [2, 3, Fraction(3, 2), Fraction(1, 2), Fraction(2, 3), Fraction(5, 3), Fraction(4, 3),
          Fraction(3, 4), 1.5, 0.5, 2.5]
UNARY = ["conv", "max_pool", "avg_pool", "conv_transpose", "pad", "crop", "upsample",
         "pixel_shuffle", "pixel_unshuffle", "adaptive_pool", "elementwise", "global"]


# ------------------------------------------------------------------------------------------
# Strategies


def _axis_values(draw, n_axes, strategy, scalar_ok=True):
    """One value per axis: a scalar for 1-D graphs (sometimes a 1-tuple), else a tuple."""
    values = tuple(draw(strategy) for _ in range(n_axes))
    if n_axes == 1 and scalar_ok and draw(st.booleans()):
        return values[0]
    if n_axes > 1 and scalar_ok and draw(st.integers(0, 4)) == 0:
        return values[0]  # the same on every axis
    return values


def _padding_item(draw):
    return draw(st.one_of(st.integers(0, 4), st.tuples(st.integers(0, 4), st.integers(0, 4)),
                          st.sampled_from(PAD_MODES)))


def _window_padding(draw, n_axes):
    if draw(st.integers(0, 5)) == 0:
        return draw(st.sampled_from(PAD_MODES))  # one mode for every axis
    items = tuple(_padding_item(draw) for _ in range(n_axes))
    if n_axes == 1 and not isinstance(items[0], tuple) and draw(st.booleans()):
        return items[0]
    return items


def draw_unary(draw, kind, shape):
    n_axes = len(shape)
    per = lambda s, scalar_ok=True: _axis_values(draw, n_axes, s, scalar_ok)  # noqa: E731
    if kind == "conv":
        return conv(per(st.integers(1, 5)), per(st.integers(1, 4)), _window_padding(draw, n_axes),
                    per(st.integers(1, 3)))
    if kind == "max_pool":
        return max_pool(per(st.integers(1, 5)), per(st.integers(1, 4)),
                        _window_padding(draw, n_axes), per(st.integers(1, 3)),
                        ceil_mode=draw(st.booleans()))
    if kind == "avg_pool":
        return avg_pool(per(st.integers(1, 5)), per(st.integers(1, 4)),
                        _window_padding(draw, n_axes), ceil_mode=draw(st.booleans()))
    if kind == "conv_transpose":
        s = tuple(draw(st.integers(1, 4)) for _ in range(n_axes))
        d = tuple(draw(st.integers(1, 3)) for _ in range(n_axes))
        out_pad = tuple(draw(st.integers(0, max(a, b) - 1)) for a, b in zip(s, d))
        padding = tuple((draw(st.integers(0, 4)), draw(st.integers(0, 4))) for _ in range(n_axes))
        return conv_transpose(per(st.integers(1, 5)), s, padding, out_pad, d)
    if kind == "pad":
        mode = draw(st.sampled_from(["constant", "replicate", "reflect", "circular"]))
        before, after = [], []
        for n in shape:
            if mode in ("constant", "replicate"):
                amounts = st.integers(-min(n - 1, 3), 5)
            elif mode == "reflect":  # PyTorch: pad < n
                amounts = st.integers(0, min(n - 1, 5))
            else:  # circular: pad <= n
                amounts = st.integers(0, min(n, 5))
            before.append(draw(amounts))
            after.append(draw(amounts))
        if n_axes == 1 and draw(st.booleans()):
            return pad(before[0], after[0], mode)
        return pad(tuple(before), tuple(after), mode)
    if kind == "crop":
        starts, stops, steps = [], [], []
        for n in shape:
            starts.append(draw(st.integers(-n - 1, n)))
            stops.append(draw(st.one_of(st.none(), st.integers(-n - 1, n + 1))))
            steps.append(draw(st.integers(1, 3)))
        if n_axes == 1 and draw(st.booleans()):
            return crop(starts[0], stops[0], steps[0])
        return crop(tuple(starts), tuple(stops), tuple(steps))
    if kind == "upsample":
        mode = draw(st.sampled_from(["nearest", "nearest-exact", "linear", "bicubic"]))
        align = mode in ("linear", "bicubic") and draw(st.booleans())
        scale, size = [], []
        for n in shape:
            if draw(st.booleans()):
                scale.append(draw(st.sampled_from(SCALES)))
                size.append(None)
            else:
                scale.append(None)
                size.append(draw(st.integers(1, 2 * n + 2)))
        if n_axes == 1:
            if scale[0] is not None:
                return upsample(scale=scale[0], mode=mode, align_corners=align)
            return upsample(size=size[0], mode=mode, align_corners=align)
        return upsample(scale=tuple(scale), size=tuple(size), mode=mode, align_corners=align)
    if kind == "pixel_shuffle":
        return pixel_shuffle(per(st.integers(1, 3)))
    if kind == "pixel_unshuffle":
        factors = []
        for n in shape:
            divisors = [r for r in (1, 2, 3, 4) if n % r == 0]
            factors.append(draw(st.sampled_from(divisors)) if draw(st.integers(0, 7))
                           else draw(st.integers(1, 4)))
        return pixel_unshuffle(factors[0] if n_axes == 1 else tuple(factors))
    if kind == "adaptive_pool":
        return adaptive_pool(per(st.integers(1, 12)),
                             draw(st.sampled_from(["adaptive_avg_pool", "adaptive_max_pool"])))
    if kind == "global":
        which = draw(st.sampled_from(["global_pool", "dense", "attention"]))
        if which == "attention":
            return attention(tuple(draw(st.booleans()) for _ in shape) if len(shape) > 1 else True)
        return global_pool() if which == "global_pool" else dense()
    if kind == "elementwise":
        return elementwise(draw(st.sampled_from(["relu", "batch_norm", "identity"])))
    raise AssertionError(kind)


def _adapter(draw, shape, target):
    """An op taking `shape` to `target` (per axis), or None if they already agree."""
    if tuple(shape) == tuple(target):
        return None
    n_axes = len(shape)
    if all(t <= n for n, t in zip(shape, target)) and draw(st.booleans()):
        starts = tuple(draw(st.integers(0, n - t)) for n, t in zip(shape, target))
        stops = tuple(s + t for s, t in zip(starts, target))
        return crop(starts, stops) if n_axes > 1 else crop(starts[0], stops[0])
    before, after = [], []
    for n, t in zip(shape, target):
        total = t - n
        b = draw(st.integers(min(total, 0), max(total, 0)))
        before.append(b)
        after.append(total - b)
    modes = ["constant", "replicate"]
    if all(min(b, a) >= 0 and max(b, a) < n for b, a, n in zip(before, after, shape)):
        modes.append("reflect")
    if all(min(b, a) >= 0 and max(b, a) <= n for b, a, n in zip(before, after, shape)):
        modes.append("circular")
    mode = draw(st.sampled_from(modes))
    return pad(tuple(before), tuple(after), mode)


class Case(tuple):
    """(graph, input_shape, expect_shape_error), shown as the code that rebuilds the graph."""

    def __repr__(self) -> str:
        g, shape, err = self
        lines = [f"g = Graph(axes={len(g.axes)}); g.input('input')"]
        for node in g.nodes.values():
            if node.op.op != "input":
                lines.append(f"g.add({node.name!r}, {node.op!r}, {list(node.inputs)!r})")
        lines.append(f"foveal.receptive_field(g, input_shape={shape!r})"
                     + ("  # expect ShapeError" if err else ""))
        return "\n".join(lines)


@st.composite
def graphs(draw, n_axes=1, max_ops=6, max_input=40, cap=160, kinds=None, merges=True):
    """(graph, input_shape, expect_shape_error)."""
    shape = tuple(draw(st.integers(1, max_input)) for _ in range(n_axes))
    g = Graph(axes=n_axes)
    sizes = {g.input("input"): shape}
    names = ["input"]
    kinds = kinds or UNARY

    def put(name, op, inputs):
        """Add if valid and small; returns 'ok', 'skip' or 'error' (node added, invalid)."""
        op_n = normalize(op, n_axes, name)
        try:
            new = O.node_sizes(op_n, [sizes[i] for i in inputs])
        except O.OracleShapeError:
            if draw(st.integers(0, 9)) == 0:
                g.add(name, op, inputs)
                return "error"
            return "skip"
        if max(new) > cap:
            return "skip"
        g.add(name, op, inputs)
        sizes[name] = new
        names.append(name)
        return "ok"

    for k in range(draw(st.integers(1, max_ops))):
        name = f"n{k}"
        if merges and len(names) >= 2 and draw(st.integers(0, 3)) == 0:
            a = draw(st.sampled_from(names))
            b = draw(st.sampled_from(names))
            target_a, target_b = [], []
            for na, nb in zip(sizes[a], sizes[b]):
                if na == nb or ((na == 1 or nb == 1) and draw(st.booleans())):
                    target_a.append(na)  # equal, or broadcast from size 1
                    target_b.append(nb)
                else:
                    t = draw(st.integers(min(na, nb), max(na, nb)))
                    target_a.append(t)
                    target_b.append(t)
            ends = []
            for side, src, target in (("a", a, target_a), ("b", b, target_b)):
                op = _adapter(draw, sizes[src], target)
                if op is None:
                    ends.append(src)
                    continue
                status = put(f"{name}_{side}", op, [src])
                assert status == "ok", (src, sizes[src], target, op)
                ends.append(f"{name}_{side}")
            merge = draw(st.sampled_from([add, concat, multiply]))()
            status = put(name, merge, ends)
            assert status == "ok"
            continue
        src = names[-1] if draw(st.booleans()) else draw(st.sampled_from(names))
        kind = draw(st.sampled_from(kinds))
        status = put(name, draw_unary(draw, kind, sizes[src]), [src])
        if status == "error":
            return Case((g, shape, True))
    return Case((g, shape, False))


# ------------------------------------------------------------------------------------------
# Checks


def analyse(case):
    """The analysis of a drawn graph. A graph whose map period passes foveal's limit (resizes by
    sizes that share no factor can multiply it past 65,536) is refused by design
    (docs/security.md), not a discrepancy: it is skipped."""
    g, shape, expect_error = case
    if expect_error:
        with pytest.raises(foveal.ShapeError):
            foveal.receptive_field(g, input_shape=shape)
        assume(False)
    try:
        return g, shape, foveal.receptive_field(g, input_shape=shape)
    except LimitError as err:
        assume("period" not in str(err))
        raise


def check_regions(g, shape, a, extra=3):
    """output_shape, status, clipped and unclipped regions of every feature of every node.

    Clipped: the exact hull of the real input pixels (None on every axis if there are none).
    In 1-D that is the graph-wide concrete oracle; in N-D the union over input->node paths of
    the per-axis products (a path that reads nothing on one axis adds nothing anywhere).
    Unclipped: per axis, the lattice oracle's hull (foveal's regions are per axis), checked also
    beyond the map (a global op reads every position of its input map). Where the status is
    "exact" and the feature reads some lattice position, the per-axis hulls must also be the
    exact N-D hull; "bound" is allowed in N-D merges and must contain it.
    """
    n_axes = len(shape)
    size = O.sizes(g, shape)
    lat = O.Lattice(g, shape)
    conc = O.concrete(g, shape) if n_axes == 1 else None
    cpaths = O.ConcretePaths(g, shape)
    for name in g.nodes:
        r = a[name]
        assert r.output_shape == size[name], name
        assert r.status == "exact" or (n_axes > 1 and r.status == "bound"), (name, r.reasons)
        for idx in O.all_indices(size[name]):
            if conc is not None:
                want = (O.mask_hull(conc[name][0][idx[0]]),)
            else:
                want = O.exact_nd_clipped(g, cpaths, name, idx)
            assert r.region(*idx, clip=True) == want, (name, idx)
            if n_axes > 1:
                got = r.region(*idx)
                assert got == tuple(lat.hull(name, axis, o) for axis, o in enumerate(idx)), \
                    (name, idx)
                exact = O.exact_nd_lattice(g, lat, name, idx)
                if all(e is not None for e in exact):
                    if r.status == "exact":
                        assert got == exact, (name, idx)
                    else:
                        assert all(x[0] <= e[0] and e[1] <= x[1] for x, e in zip(got, exact))
        for axis, n in enumerate(size[name]):  # unclipped beyond the map too
            for o in range(-extra, n + extra):
                idx = tuple(o if ax == axis else 0 for ax in range(n_axes))
                assert r.region(*idx)[axis] == lat.hull(name, axis, o), (name, axis, o)
    return size, lat


def shifted(iv, c):
    return None if iv is None else (iv[0] + c, iv[1] + c)


def through_global(g, name, axis):
    return any(O.reads_everything(g.nodes[n].op, axis) for p in O.paths_to(g, name) for n in p[1:])


def check_numbers(g, shape, a, size, lat):
    """size, stride, period, phase_sizes, padding, is_global and path ranges on every axis."""
    for name in g.nodes:
        r = a[name]
        for axis in range(len(shape)):
            if r.is_global[axis]:  # a path through an op that reads its whole input map
                assert through_global(g, name, axis), (name, axis)
                hulls = [lat.hull(name, axis, o) for o in range(size[name][axis])]
                assert r.size[axis] == max((h[1] - h[0] + 1 for h in hulls if h), default=0)
            rng = O.path_size_range(g, lat, name, axis)
            assert (r.size_min[axis], r.size_max[axis]) == ((None, None) if rng is None else rng), \
                (name, axis)
            T = r.period[axis]
            if T is None:
                continue
            S = Fraction(r.stride[axis])
            assert (S * T).denominator == 1
            step = int(S * T)
            hulls = [lat.hull(name, axis, o) for o in range(-T, 3 * T)]
            for o in range(2 * T):  # quasi-periodic with (period, stride)
                assert hulls[o + T] == shifted(hulls[o], step), (name, axis, o - T)
            phases = hulls[T:2 * T]
            assert r.phase_sizes[axis] == tuple(0 if h is None else h[1] - h[0] + 1 for h in phases)
            assert r.size[axis] == max(r.phase_sizes[axis])
            assert r.padding[axis] == (None if phases[0] is None else -phases[0][0])
            for p in range(1, T):  # the period is the smallest one
                if T % p == 0 and (S * p).denominator == 1:
                    c = int(S * p)
                    assert not all(hulls[T + o + p] == shifted(hulls[T + o], c) for o in range(T)), \
                        (name, axis, T, p, phases)


def check_chain(g, a):
    """One path: the smallest and largest path receptive field are the receptive field."""
    if not O.is_chain(g):
        return
    for name in g.nodes:
        r = a[name]
        for axis in range(len(g.axes)):
            if through_global(g, name, axis) or not r.size[axis]:
                continue
            assert r.size_min[axis] == r.size_max[axis] == r.size[axis], (name, axis)


def check_all(case):
    g, shape, a = analyse(case)
    size, lat = check_regions(g, shape, a)
    check_numbers(g, shape, a, size, lat)
    check_chain(g, a)


# ------------------------------------------------------------------------------------------
# Tests


@settings(FAST, max_examples=2500)
@given(graphs(n_axes=1))
def test_1d_graphs(case):
    check_all(case)


@settings(FAST, max_examples=1200)
@given(graphs(n_axes=2, max_ops=4, max_input=10, cap=20))
def test_2d_graphs(case):
    check_all(case)


@pytest.mark.slow
@settings(FAST, max_examples=30000)
@given(graphs(n_axes=1, max_ops=8))
def test_1d_graphs_slow(case):
    check_all(case)


@pytest.mark.slow
@settings(FAST, max_examples=5000)
@given(graphs(n_axes=2, max_ops=6, max_input=12, cap=24))
def test_2d_graphs_slow(case):
    check_all(case)


# ------------------------------------------------------------------------------------------
# Without input_shape: whatever foveal still reports must agree with the analysis that has it.


def _has_broadcast(g, size):
    return any(g.nodes[n].op.op == "merge" and len({size[p] for p in O.preds(g, n)}) > 1
               for n in g.nodes)


def check_shapeless(case):
    g, shape, full = analyse(case)
    size = O.sizes(g, shape)
    assume(not _has_broadcast(g, size))  # broadcasting is only known from the sizes
    bare = foveal.receptive_field(g)
    for name in g.nodes:
        r, s = bare[name], full[name]
        assert all(v is None for v in r.output_shape) or name == "input"
        for axis in range(len(shape)):
            if r.status == "unavailable":
                continue
            lo, hi = r.size_min[axis], r.size_max[axis]
            if lo is not None and s.size_min[axis] is not None:
                # a range over every padding SAME may choose: contains the truth (which may also
                # be that no path reads anything, for one of those paddings)
                assert lo <= s.size_min[axis] and s.size_max[axis] <= hi, (name, axis)
            if r.status != "exact":
                continue
            assert r.is_global[axis] == s.is_global[axis], (name, axis)
            for attr in ("size", "stride", "period", "phase_sizes", "padding"):
                v = getattr(r, attr)[axis]
                if v is not None and not (attr == "size" and r.is_global[axis]):
                    assert v == getattr(s, attr)[axis], (name, axis, attr)
            for o in range(-3, 12):
                idx = tuple(o if ax == axis else 0 for ax in range(len(shape)))
                v = r.region(*idx)[axis]
                if v is not None and not r.is_global[axis]:
                    assert v == s.region(*idx)[axis], (name, axis, o)


@settings(FAST, max_examples=1500)
@given(graphs(n_axes=1))
def test_shapeless_agrees(case):
    check_shapeless(case)


@pytest.mark.slow
@settings(FAST, max_examples=10000)
@given(graphs(n_axes=1, max_ops=8))
def test_shapeless_agrees_slow(case):
    check_shapeless(case)


# ------------------------------------------------------------------------------------------
# Insertion order does not matter: the engine's list-by-index state and the Kahn order agree.


def reversed_copy(g):
    """The same graph with its nodes added last-first (producers after their consumers)."""
    out = Graph(g.axes, name=g.name)
    for node in reversed(list(g.nodes.values())):
        out.add(node.name, node.op, node.inputs, node.outputs, node.label)
    return out


def summary(a):
    return {r.name: (r.size, r.stride, r.padding, r.size_min, r.size_max, r.status, r.aligned,
                     r.output_shape) for r in a}


@settings(FAST, max_examples=300)
@given(graphs(n_axes=1))
def test_insertion_order_does_not_matter(case):
    g, shape, err = case
    assume(not err)
    back = reversed_copy(g)
    assert not back.in_insertion_order or len(g) == 1
    assert back.outputs == sorted(g.outputs, key=list(back.nodes).index)
    assert summary(foveal.receptive_field(back, shape)) == summary(foveal.receptive_field(g, shape))
    assert summary(foveal.receptive_field(back)) == summary(foveal.receptive_field(g))


# ------------------------------------------------------------------------------------------
# Oracle self-check: graph-wide propagation == union over paths (1-D).


@settings(FAST, max_examples=300)
@given(graphs(n_axes=1))
def test_oracle_paths_agree(case):
    g, shape, err = case
    assume(not err)
    size = O.sizes(g, shape)
    conc, cp, lat = O.concrete(g, shape), O.ConcretePaths(g, shape), O.Lattice(g, shape)
    for name in g.nodes:
        for o in range(size[name][0]):
            assert O.exact_nd_clipped(g, cp, name, (o,)) == (O.mask_hull(conc[name][0][o]),)
            assert O.exact_nd_lattice(g, lat, name, (o,)) == (lat.hull(name, 0, o),)


# ------------------------------------------------------------------------------------------
# Discrepancies found while writing these tests, as minimal reproductions.


def test_nd_merge_clipped_ignores_branch_empty_on_other_axis():
    g = Graph(axes=2)
    x = g.input("input")
    a = g.add("a", conv(kernel=1, stride=2, padding=(0, 1)), [x])  # a(1, 0): row 2 x column -1
    b = g.add("b", crop((0, 0), (2, 2)), [x])                      # b(1, 0): pixel (1, 0)
    g.add("m", add(), [a, b])
    result = foveal.receptive_field(g, input_shape=(3, 2))
    # a(1, 0) reads no real pixel at all, so m(1, 0) depends on pixel (1, 0) only.
    assert result["a"].region(1, 0, clip=True) == (None, None)
    assert result["m"].region(1, 0, clip=True) == ((1, 1), (0, 0))


def test_nd_merge_transposed_hole():
    g = Graph(axes=2)
    x = g.input("input")
    a = g.add("a", conv_transpose(kernel=(3, 1), stride=(1, 2), padding=((1, 1), (0, 0))), [x])
    b = g.add("b", pad((0, 0), (0, 1)), [x])
    g.add("m", add(), [a, b])
    r = foveal.receptive_field(g, input_shape=(2, 2))["m"]
    # a(0, 1) is a hole on W (odd column of a stride-2 transposed conv), so m(0, 1) = b(0, 1).
    assert r.region(0, 1, clip=True) == ((0, 0), (1, 1))
    exact = ((0, 0), (1, 1))
    if r.status == "exact":
        assert r.region(0, 1) == exact
    else:  # per-axis union, flagged as a bound
        assert r.status == "bound" and r.region(0, 1) == ((-1, 1), (1, 1))


def test_global_then_transposed_holes():
    g = Graph(axes=1)
    x = g.input("input")
    p = g.add("p", adaptive_pool(1), [x])
    g.add("t", conv_transpose(kernel=1, stride=2, output_padding=1), [p])
    r = foveal.receptive_field(g, input_shape=(3,))["t"]
    assert r.region(0) == r.region(0, clip=True) == ((0, 2),)
    assert r.region(1) == r.region(1, clip=True) == (None,)  # t[1] reads nothing


def test_global_merge_consistency():
    g = Graph(axes=1)
    x = g.input("input")
    c = g.add("c", conv(3, padding=1), [x])          # c[0] reads -1..1
    gp = g.add("gp", global_pool(), [x])             # length 1, reads everything
    g.add("m", add(), [c, gp])                       # m[0] = c[0] + gp[0] (broadcast)
    p = g.add("p", pad(0, 1), [gp])                  # length 2
    t = g.add("t", conv_transpose(1, 2), [p])        # length 3: t[0] = gp[0], t[1] a hole
    g.add("m2", add(), [c, t])                       # m2[0] = c[0] + gp[0] as well
    a = foveal.receptive_field(g, input_shape=(3,))
    assert a["m"].region(0) == a["m2"].region(0)


def test_global_of_a_map_that_reads_nothing():
    g = Graph(axes=1)
    x = g.input("input")
    t = g.add("t", conv_transpose(1, 3, padding=((1, 0),)), [x])  # t[o] reads x[(o+1)/3]: o = 2 mod 3
    p = g.add("p", avg_pool(1, 3), [t])                           # p[o] = t[3o]: always a hole
    g.add("gp", global_pool(), [p])
    r = foveal.receptive_field(g, input_shape=(2,))["gp"]
    assert r.region(0, clip=True) == (None,)
    assert (r.size_min, r.size_max) == ((None,), (None,))  # no path reads anything
    assert r.region(0) == (None,)


# ------------------------------------------------------------------------------------------
# The engine's fast paths (the packed pass and engine._fast: one affine map shared by every axis)
# against the general path, which handles every node when they are switched off.


def general_path_only():
    """The engine with its fast paths switched off: every node goes through the general pass."""
    from unittest import mock

    from foveal import engine

    return mock.patch.object(engine, "FAST_PATHS", False)


def full_summary(a, shape):
    regions = {}
    for r in a:
        if r.connected and r.output_shape and None not in r.output_shape:
            sizes = r.output_shape
            regions[r.name] = [r.region(tuple(i % n for n in sizes)) for i in range(max(sizes))]
    return summary(a), regions


@settings(FAST, max_examples=400)
@given(graphs(n_axes=2, max_ops=6, max_input=12, cap=24, kinds=["conv", "max_pool", "avg_pool", "pad",
                                                                "elementwise", "upsample", "global"]))
def test_fast_path_agrees_with_general_path(case):
    g, shape, err = case
    assume(not err)
    fast = full_summary(foveal.receptive_field(g, shape), shape)
    with general_path_only():
        general = full_summary(foveal.receptive_field(g, shape), shape)
    assert fast == general


@pytest.mark.parametrize("name", ["resnet18", "densenet121", "keras.InceptionV3"])
def test_fast_path_agrees_on_zoo_graphs(name):
    from foveal import engine

    taken = []
    real = engine._fast

    def counting(*args):
        state = real(*args)
        taken.append(state is not None)
        return state

    from unittest import mock

    with mock.patch.object(engine, "_fast", counting):
        fast = foveal.receptive_field(name, 96)
    packed = sum(state is engine.PACKED for state in fast._states._states)  # before any is read
    assert packed + sum(taken) > len(fast) // 4  # the fast paths really ran, on many nodes
    with general_path_only():
        general = foveal.receptive_field(name, 96)
    assert summary(fast) == summary(general)
    assert [fast.result(n).region((1, 2)) for n in fast.order if fast.result(n).connected] == \
        [general.result(n).region((1, 2)) for n in general.order if general.result(n).connected]


@pytest.mark.parametrize("shape", [None, 64])
def test_packed_states_agree_with_the_general_path(shape):
    """A residual network with the ops that leave the packed pass (a pad, a non-isotropic
    window, a global pool on a side branch) and come back to it: every node's numbers, its
    Analysis.affine (read from the columns) and its region match the general pass."""
    from foveal import engine

    g = Graph(2)
    x = g.input("x")
    for b in range(12):
        y = g.add(f"b{b}.c1", conv(3, 2 if b in (3, 7) else 1, 1), [x])
        y = g.add(f"b{b}.c2", conv(3, 1, 1), [y])
        skip = g.add(f"b{b}.proj", conv(1, 2), [x]) if b in (3, 7) else x
        x = g.add(f"b{b}.add", add(), [y, skip])
        if b == 5:
            x = g.add("pad", pad(1), [x])  # the general pass; its state is simple again
            x = g.add("crop", conv(3), [x])
        if b == 9:
            g.add("side", conv((3, 1), 1, (1, 0)), [x])  # not isotropic: general
    packed = foveal.receptive_field(g, shape)
    assert sum(state is engine.PACKED for state in packed._states._states) > len(g) // 2
    affine = {n: packed.affine(n) for n in packed.order}
    with general_path_only():
        general = foveal.receptive_field(g, shape)
    assert affine == {n: general.affine(n) for n in general.order}
    assert summary(packed) == summary(general)
    assert [packed[n].region((1, 2)) for n in packed.order] == \
        [general[n].region((1, 2)) for n in general.order]
