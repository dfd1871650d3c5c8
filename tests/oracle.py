"""Brute-force oracles for foveal's regions, written from the op semantics (PyTorch conventions).

Independent of foveal's engine: it imports nothing from foveal.taps, foveal.shapes,
foveal.axis_map, foveal.engine or foveal.clipped. It only reads `graph.nodes` (name -> Node with
the normalised op record, one tuple entry per axis, and `.inputs`) and uses `split_ref`.

Every op acts on each axis separately, so everything below works on one axis at a time:

- sizes: the length of every node on every axis (OracleShapeError when an op gives an empty
  output or a merge gets inputs of different sizes).
- concrete: on the real sizes, the SET of input indices each position depends on (bitmask ints,
  bit i = input pixel i), with the border rules: zero padding reads nothing, reflect / replicate /
  circular read real pixels, interpolation taps are clamped into the input.
- lattice: on an unbounded axis where every integer position of every map exists (no border:
  padding positions are ordinary lattice positions), the set of input coordinates of one output
  position, by memoised backward recursion over the taps.
- path versions of both: the same sets restricted to one input->node path. A feature of an N-D
  map depends on the union over paths of the per-axis products of the path sets, which gives the
  exact N-D hull and the per-path receptive field sizes.

An op that reads the whole axis (adaptive pooling to size 1, global pooling) reads every
position of its input map, 0..n_in-1, like a window as large as the map.
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from math import ceil, floor

from foveal.graph import split_ref

HALF = Fraction(1, 2)


class OracleShapeError(Exception):
    """The graph is invalid for the given input size (empty output, mismatched merge)."""


# ------------------------------------------------------------------------------------------
# Graph helpers


def preds(graph, name):
    return [split_ref(r)[0] for r in graph.nodes[name].inputs]


def topo_order(graph):
    order, seen = [], set()

    def visit(n):
        if n in seen:
            return
        seen.add(n)
        for p in preds(graph, n):
            visit(p)
        order.append(n)

    for n in graph.nodes:
        visit(n)
    return order


def input_name(graph):
    return next(n for n, node in graph.nodes.items() if node.op.op == "input")


def paths_to(graph, name, source=None):
    """Every input->name path as a tuple of node names (repeated edges give repeated paths)."""
    source = source or input_name(graph)
    if name == source:
        return [(source,)]
    out = []
    for p in preds(graph, name):
        out.extend(path + (name,) for path in paths_to(graph, p, source))
    return out


def is_chain(graph):
    return all(len(node.inputs) <= 1 for node in graph.nodes.values())


# ------------------------------------------------------------------------------------------
# Per-axis op semantics


def window_padding(op, axis, n):
    """(before, after) of a conv/pool window on an input of length n."""
    k, s, d = op.kernel[axis], op.stride[axis], op.dilation[axis]
    span = d * (k - 1) + 1
    spec = op.padding[axis]
    if isinstance(spec, tuple):
        return spec
    if spec == "valid":
        return 0, 0
    if spec == "causal":
        return span - 1, 0
    if spec == "torch_same":
        return (span - 1) // 2, span - 1 - (span - 1) // 2
    if spec in ("same_upper", "same_lower"):
        out = -(-n // s)
        total = max((out - 1) * s + span - n, 0)
        if spec == "same_upper":
            return total // 2, total - total // 2
        return total - total // 2, total // 2
    raise ValueError(f"unknown padding {spec!r}")


def crop_indices(op, axis, n):
    return range(n)[slice(op.start[axis], op.stop[axis], op.step[axis])]


def resize_ratio(op, axis, n, m):
    if op.ratio[axis] is not None:
        return Fraction(op.ratio[axis])
    if op.coordinate == "align_corners":
        return Fraction(n - 1, m - 1) if m > 1 else Fraction(0)
    if op.scale[axis] is not None:
        return 1 / Fraction(op.scale[axis])
    return Fraction(n, m)


def resize_source(op, axis, o, n, m):
    """Source indices with a non-zero weight for output o (no clamping)."""
    ratio = resize_ratio(op, axis, n, m)
    if op.method == "nearest":
        if op.coordinate == "asymmetric" and op.rounding == "floor":  # PyTorch 'nearest'
            return [floor(o * ratio)]
        if op.coordinate == "half_pixel" and op.rounding == "round_prefer_ceil":  # 'nearest-exact'
            return [floor((o + HALF) * ratio)]
        raise NotImplementedError(f"oracle has no nearest {op.coordinate}/{op.rounding}")
    if op.coordinate == "half_pixel":
        x = (o + HALF) * ratio - HALF
    elif op.coordinate == "align_corners":
        x = o * ratio
    else:
        raise NotImplementedError(f"oracle has no {op.method} {op.coordinate}")
    base = floor(x)
    if x == base:  # the other taps have weight exactly zero
        return [base]
    if op.method == "linear":
        return [base, base + 1]
    return [base - 1, base, base + 1, base + 2]


def out_len(op, axis, n):
    """Output length for input length n (may be < 1: invalid)."""
    kind = op.op
    if kind == "window":
        k, s, d = op.kernel[axis], op.stride[axis], op.dilation[axis]
        b, a = window_padding(op, axis, n)
        span = n + b + a - d * (k - 1) - 1
        if not op.ceil_mode:
            return span // s + 1 if span >= 0 else 0
        # PyTorch: floor((span + s - 1) / s) + 1, so one window that sticks out past the end is
        # still an output when it starts inside the input
        out = ceil(Fraction(span, s)) + 1
        if (out - 1) * s >= n + b:  # the last window must start inside the input or left padding
            out -= 1
        return out
    if kind == "transposed_window":
        k, s, d = op.kernel[axis], op.stride[axis], op.dilation[axis]
        b, a = op.padding[axis]
        return (n - 1) * s - b - a + d * (k - 1) + 1 + op.output_padding[axis]
    if kind == "pad":
        return n + op.before[axis] + op.after[axis]
    if kind == "crop":
        return len(crop_indices(op, axis, n))
    if kind == "resize":
        if op.size[axis] is not None:
            return op.size[axis]
        return floor(n * Fraction(op.scale[axis]))
    if kind == "pixel_shuffle":
        return n * op.factor[axis]
    if kind == "pixel_unshuffle":
        r = op.factor[axis]
        return n // r if n % r == 0 else 0
    if kind == "adaptive_pool":
        return n if op.size[axis] is None else op.size[axis]
    if kind == "global":
        return n if (op.keep_size or not op.axes[axis]) else 1
    if kind in ("elementwise", "merge"):
        return n
    raise NotImplementedError(kind)


def reads_everything(op, axis):
    if op.op == "adaptive_pool":
        return op.size[axis] == 1
    if op.op == "global":
        return bool(op.axes[axis])
    return False


def lattice_taps(op, axis, o, n_in, n_out):
    """Input lattice positions output o reads on an unbounded axis."""
    kind = op.op
    if reads_everything(op, axis):
        return list(range(n_in))
    if kind == "window":
        k, s, d = op.kernel[axis], op.stride[axis], op.dilation[axis]
        b = window_padding(op, axis, n_in)[0]
        return [s * o - b + j * d for j in range(k)]
    if kind == "transposed_window":
        k, s, d = op.kernel[axis], op.stride[axis], op.dilation[axis]
        b = op.padding[axis][0]
        # input i writes outputs i*s - b + j*d
        return [(o + b - j * d) // s for j in range(k) if (o + b - j * d) % s == 0]
    if kind == "pad":
        return [o - op.before[axis]]
    if kind == "crop":
        return [crop_indices(op, axis, n_in).start + o * op.step[axis]]
    if kind == "resize":
        return resize_source(op, axis, o, n_in, n_out)
    if kind == "pixel_shuffle":
        return [o // op.factor[axis]]
    if kind == "pixel_unshuffle":
        r = op.factor[axis]
        return list(range(r * o, r * o + r))
    if kind == "adaptive_pool":
        m = op.size[axis]
        if m is None:
            return [o]
        lo = floor(Fraction(o * n_in, m))
        hi = ceil(Fraction((o + 1) * n_in, m)) - 1
        return list(range(lo, hi + 1))
    if kind == "merge":
        return [0] if (n_in == 1 and n_out > 1) else [o]
    if kind in ("elementwise", "global"):
        return [o]
    raise NotImplementedError(kind)


def _pad_source(i, n, mode):
    if 0 <= i < n:
        return [i]
    if mode == "constant":
        return []
    if mode == "replicate":
        return [min(max(i, 0), n - 1)]
    if mode == "circular":
        return [i % n]
    if mode == "reflect":
        if n == 1:
            return [0]
        while not 0 <= i < n:  # mirror at the edge pixels, the edge itself is not repeated
            i = -i if i < 0 else 2 * (n - 1) - i
        return [i]
    raise ValueError(mode)


def concrete_taps(op, axis, o, n_in, n_out):
    """Real input positions in [0, n_in) that output o of a length-n_out map reads."""
    kind = op.op
    if reads_everything(op, axis):
        return range(n_in)
    if kind == "pad":
        return _pad_source(o - op.before[axis], n_in, op.mode)
    if kind == "crop":
        return [crop_indices(op, axis, n_in)[o]]
    if kind == "resize":
        return {min(max(i, 0), n_in - 1) for i in resize_source(op, axis, o, n_in, n_out)}
    taps = lattice_taps(op, axis, o, n_in, n_out)
    # windows: positions in the padding read nothing (zero padding); transposed: only real inputs
    return [i for i in taps if 0 <= i < n_in]


# ------------------------------------------------------------------------------------------
# Sizes


def node_sizes(op, in_sizes):
    """Output sizes per axis of op given the per-axis sizes of each of its inputs."""
    if op.op == "merge":
        out = []
        for axis in range(len(in_sizes[0])):
            vals = [s[axis] for s in in_sizes]
            big = max(vals)
            if any(v not in (1, big) for v in vals):
                raise OracleShapeError(f"merge of sizes {vals} on axis {axis}")
            out.append(big)
        return tuple(out)
    (sizes,) = in_sizes
    out = tuple(out_len(op, axis, n) for axis, n in enumerate(sizes))
    if any(v < 1 for v in out):
        raise OracleShapeError(f"{op} gives sizes {out} from {sizes}")
    return out


def sizes(graph, input_shape):
    src = input_name(graph)
    result = {}
    for name in topo_order(graph):
        node = graph.nodes[name]
        if name == src:
            result[name] = tuple(input_shape)
        else:
            result[name] = node_sizes(node.op, [result[p] for p in preds(graph, name)])
    return result


# ------------------------------------------------------------------------------------------
# Concrete oracle: sets of real input pixels, propagated forward over the whole graph


def concrete(graph, input_shape):
    """name -> per axis -> per position: bitmask of the real input indices it depends on."""
    src = input_name(graph)
    size = sizes(graph, input_shape)
    out = {}
    for name in topo_order(graph):
        n_out = size[name]
        if name == src:
            out[name] = [[1 << o for o in range(n)] for n in n_out]
            continue
        op = graph.nodes[name].op
        per_axis = []
        for axis, m in enumerate(n_out):
            masks = [0] * m
            for p in preds(graph, name):
                source, n_in = out[p][axis], size[p][axis]
                for o in range(m):
                    acc = 0
                    for i in concrete_taps(op, axis, o, n_in, m):
                        acc |= source[i]
                    masks[o] |= acc
            per_axis.append(masks)
        out[name] = per_axis
    return out


def mask_hull(mask):
    if not mask:
        return None
    return ((mask & -mask).bit_length() - 1, mask.bit_length() - 1)


# ------------------------------------------------------------------------------------------
# Lattice oracle: unbounded axis, memoised backward recursion


class Lattice:
    """Per (node, axis, position): the set of input lattice coordinates it depends on."""

    def __init__(self, graph, input_shape):
        self.graph = graph
        self.src = input_name(graph)
        self.size = sizes(graph, input_shape)
        self.memo = {}
        self.path_memo = {}
        self.live_memo = {}

    def path_reads_anything(self, path, axis):
        """Whether some lattice position of the path's last map reads some input position
        (one period of the quasi-periodic map suffices)."""
        key = (path, axis)
        if key not in self.live_memo:
            bound = path_period_bound(self.graph, path, axis, self.size)
            self.live_memo[key] = any(self.path_set(path, axis, o) for o in range(bound))
        return self.live_memo[key]

    def _step(self, name, pred, axis, o, recurse):
        op = self.graph.nodes[name].op
        taps = lattice_taps(op, axis, o, self.size[pred][axis], self.size[name][axis])
        return frozenset().union(*(recurse(i) for i in taps))

    def set(self, name, axis, o):
        key = (name, axis, o)
        if key not in self.memo:
            if name == self.src:
                self.memo[key] = frozenset((o,))
            else:
                self.memo[key] = frozenset().union(*(
                    self._step(name, p, axis, o, lambda i, p=p: self.set(p, axis, i))
                    for p in preds(self.graph, name)))
        return self.memo[key]

    def path_set(self, path, axis, o):
        """The set along one input->node path (tuple of names)."""
        key = (path, axis, o)
        if key not in self.path_memo:
            if len(path) == 1:
                self.path_memo[key] = frozenset((o,))
            else:
                head = path[:-1]
                self.path_memo[key] = self._step(path[-1], path[-2], axis, o,
                                                 lambda i: self.path_set(head, axis, i))
        return self.path_memo[key]

    def hull(self, name, axis, o):
        return set_hull(self.set(name, axis, o))


def set_hull(positions):
    return (min(positions), max(positions)) if positions else None



# ------------------------------------------------------------------------------------------
# Path-exact N-D hulls


class ConcretePaths:
    """Concrete sets along single input->node paths (bitmasks per axis per position)."""

    def __init__(self, graph, input_shape):
        self.graph = graph
        self.size = sizes(graph, input_shape)
        self.memo = {}

    def masks(self, path, axis):
        key = (path, axis)
        if key in self.memo:
            return self.memo[key]
        if len(path) == 1:
            result = [1 << o for o in range(self.size[path[0]][axis])]
        else:
            name, pred = path[-1], path[-2]
            source = self.masks(path[:-1], axis)
            op = self.graph.nodes[name].op
            n_in, m = self.size[pred][axis], self.size[name][axis]
            result = []
            for o in range(m):
                acc = 0
                for i in concrete_taps(op, axis, o, n_in, m):
                    acc |= source[i]
                result.append(acc)
        self.memo[key] = result
        return result


def exact_nd_clipped(graph, cpaths, name, index):
    """Exact per-axis hull of the real N-D input pixels feature `index` depends on.

    The feature depends on the union over paths of the product of the path's per-axis sets; a
    path whose set is empty on some axis contributes no pixel at all.
    """
    n_axes = len(index)
    acc = [0] * n_axes
    for path in paths_to(graph, name):
        masks = [cpaths.masks(path, axis)[o] for axis, o in enumerate(index)]
        if all(masks):
            acc = [a | m for a, m in zip(acc, masks)]
    return tuple(mask_hull(a) for a in acc)


def exact_nd_lattice(graph, lattice, name, index):
    """Exact per-axis unclipped hull: union over paths of products of the path's lattice sets."""
    acc = [set() for _ in index]
    for path in paths_to(graph, name):
        sets = [lattice.path_set(path, axis, o) for axis, o in enumerate(index)]
        if all(sets):
            for axis, positions in enumerate(sets):
                acc[axis] |= positions
    return tuple(set_hull(a) for a in acc)


def path_period_bound(graph, path, axis, size):
    """A multiple of the period of the path's quasi-periodic map (product of op periods)."""
    bound = 1
    for pred, name in zip(path, path[1:]):
        op = graph.nodes[name].op
        n_in, n_out = size[pred][axis], size[name][axis]
        if op.op == "transposed_window":
            bound *= op.stride[axis]
        elif op.op == "pixel_shuffle":
            bound *= op.factor[axis]
        elif op.op == "resize":
            bound *= resize_ratio(op, axis, n_in, n_out).denominator
        elif op.op == "adaptive_pool" and op.size[axis] is not None:
            bound *= Fraction(n_in, op.size[axis]).denominator
    return bound


def path_size(graph, lattice, path, axis):
    """Largest unclipped region size of one path's map: inf if it goes through an op reading the
    whole axis of a map that reads something (rfa_toolbox: global ops make the path infinite,
    even where later transposed-conv holes leave nothing to read), None if it reads nothing."""
    size = lattice.size
    for k in range(2, len(path) + 1):
        if reads_everything(graph.nodes[path[k - 1]].op, axis) and \
                lattice.path_reads_anything(path[:k - 1], axis):
            return float("inf")
    period = path_period_bound(graph, path, axis, size)
    best = None
    for o in range(period):
        s = lattice.path_set(path, axis, o)
        if s:
            r = max(s) - min(s) + 1
            best = r if best is None else max(best, r)
    return best


def path_size_range(graph, lattice, name, axis):
    values = [v for v in (path_size(graph, lattice, p, axis) for p in paths_to(graph, name))
              if v is not None]
    return (min(values), max(values)) if values else None


def all_indices(shape):
    return itertools.product(*(range(n) for n in shape))
