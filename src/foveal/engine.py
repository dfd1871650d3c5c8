"""One pass in topological order: shapes, exact maps, path ranges, alignment and status per node.

Every node is visited once and every edge once, so the pass is linear in nodes + edges (the work
per node is bounded by its number of distinct path strides, usually one). Most nodes take the
packed pass (see `Packed`): a few integer operations and no object per node; the others the
general pass, whose `NodeState` says everything the engine knows.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction

from . import ops as O
from . import paths
from .axis_map import Piece, add_offsets, compose, hull, shift_between
from .errors import InvalidParameterError, ShapeError, UnknownNodeError, UnsupportedOpError, quoted
from .gc_pause import paused_gc
from .graph import Graph, Node
from .limits import MAX_AXIS_LENGTH, MAX_PHASES, LimitError, check, work_budget
from .merge import Symbols, aligned, union
from .shapes import output_size
from .taps import BROADCAST, GLOBAL, IDENTITY, GlobalTaps, LatticeTaps, NeedsSize, lattice_taps

POLICIES = ("error", "identity", "global")

FAST_PATHS = True
"""Whether the engine takes its fast paths (the packed pass and `_fast`) for the common case.
The tests switch them off to check that they agree with the general pass on every node."""


class AxisState:
    """What the engine knows of one node on one axis. Never changed once the node is done, so
    isotropic nodes share one object across their axes."""

    __slots__ = ("pieces", "is_global", "paths")

    def __init__(self, pieces: tuple[Piece, ...] = (), is_global: bool = False,
                 path_stats: paths.PathStats | None = None) -> None:
        self.pieces = pieces
        self.is_global = is_global
        self.paths = {} if path_stats is None else path_stats


EMPTY_AXIS = AxisState()


class NodeState:
    __slots__ = ("name", "axes", "sizes", "connected", "status", "reasons", "aligned", "misalignment",
                 "iso", "simple")

    def __init__(self, name: str, axes: list[AxisState], sizes: tuple[int | None, ...],
                 connected: bool, iso: bool | None = None) -> None:
        self.name = name
        self.axes = axes
        self.sizes = sizes
        self.connected = connected
        self.status = "exact"  # exact | bound | unavailable
        self.reasons: tuple[str, ...] = ()
        self.aligned: bool | None = True
        self.misalignment: str | None = None
        self.iso = (axes.count(axes[0]) == len(axes) and sizes.count(sizes[0]) == len(sizes)
                    ) if iso is None else iso
        """One AxisState object for every axis and equal sizes: any axis stands for all."""
        self.simple = False
        """iso, exact, aligned, one period-1 map with an offset-free, non-empty region."""


EMPTY_STATE = NodeState("", [EMPTY_AXIS], (), False, False)
"""Placeholder in the engine's list until a node's state is computed."""


@dataclass
class Options:
    input: str | None = None
    input_shape: object = None
    stop_propagation: tuple[str, ...] = ()
    unknown_policy: str = "error"


def spatial_shape(graph: Graph, shape: object) -> tuple[int, ...] | None:
    """Spatial sizes (or one int for every axis): front-ends resolve full shapes in their
    model's layout before the engine runs (foveal.input_spec)."""
    if shape is None:
        return None
    n = len(graph.axes)
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape,) * n
    if not isinstance(shape, (tuple, list)):
        raise InvalidParameterError(f"input_shape must be an int or a tuple of ints, got {shape!r}")
    shape = tuple(shape)
    if len(shape) != n or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape):
        raise InvalidParameterError(
            f"input_shape {shape} does not fit a graph with axes {graph.axes}: give {n} positive "
            f"spatial sizes")
    for s in shape:
        check(s, MAX_AXIS_LENGTH, "an input size")
    return shape


class Packed:
    """The states of `simple` nodes with one path stride, one column per number, the form the
    engine keeps for most nodes of big graphs: feature o reads [first + o*stride, last + o*stride]
    on every axis; the paths' sizes range over [rmin, rmax] with one stride, path_stride; the axis
    length is `length` (None if unknown). The engine's list holds PACKED at such a node's index.

    A NodeState costs five objects and a Python __init__ per node, and a tuple per node still one
    object that the cyclic collector visits; columns of ints cost none, and StateTable makes the
    NodeState a node stands for only when the node is read."""

    __slots__ = ("stride", "first", "last", "path_stride", "rmin", "rmax", "length")

    def __init__(self, count: int) -> None:
        self.stride: list[int] = [0] * count
        self.first: list[int] = [0] * count
        self.last: list[int] = [0] * count
        self.path_stride: list[int] = [0] * count
        self.rmin: list[int] = [0] * count
        self.rmax: list[int] = [0] * count
        self.length: list[int | None] = [None] * count

    def unpack(self, index: int, name: str, n_axes: int) -> NodeState:
        """The NodeState of the node at `index` (what the general pass would have made)."""
        piece = Piece(1, self.stride[index], ((self.first[index], self.last[index]),))
        axis = AxisState((piece,), False, (self.path_stride[index], self.rmin[index], self.rmax[index]))
        state = NodeState(name, [axis] * n_axes, (self.length[index],) * n_axes, True, True)
        state.simple = True
        return state

    def pack(self, states: list, index: int) -> bool:
        """Move the state at `index` into the columns if it is simple with one path stride."""
        state = states[index]
        if state is PACKED:
            return True
        if not state.simple:
            return False
        axis = state.axes[0]
        stats = axis.paths
        if type(stats) is not tuple:
            return False
        piece = axis.pieces[0]
        self.first[index], self.last[index] = piece.table[0]
        self.stride[index] = piece.shift
        self.path_stride[index], self.rmin[index], self.rmax[index] = stats
        self.length[index] = state.sizes[0]
        states[index] = PACKED
        return True


PACKED = NodeState("", [EMPTY_AXIS], (), True, True)
"""The marker, in the engine's list, of a node whose state is in the Packed columns."""


class StateTable(Mapping[str, NodeState]):
    """Node name -> NodeState over the engine's list, which is kept by Node.index (packed states
    are unpacked, once, when read)."""

    def __init__(self, nodes: Mapping[str, Node], states: list[NodeState], packed: Packed,
                 n_axes: int) -> None:
        self._nodes = nodes
        self._states = states
        self._packed = packed
        self._n_axes = n_axes

    def at(self, index: int, name: str) -> NodeState:
        """The state of node `name`, whose Node.index is `index`."""
        state = self._states[index]
        if state is PACKED:
            state = self._states[index] = self._packed.unpack(index, name, self._n_axes)
        return state

    def affine(self, index: int) -> tuple[int, int, int, int, int, tuple[int | None, ...]] | None:
        """(first, last, stride, size_min, size_max, sizes) of a simple node, read without making
        its NodeState; None for any other (see analysis.Affine)."""
        state = self._states[index]
        if state is PACKED:
            c = self._packed
            return (c.first[index], c.last[index], c.stride[index], c.rmin[index], c.rmax[index],
                    (c.length[index],) * self._n_axes)
        if not state.simple:
            return None
        axis = state.axes[0]
        piece = axis.pieces[0]
        first, last = piece.table[0]  # type: ignore[misc]  # simple: never None
        stats = axis.paths
        low, high = (stats[1], stats[2]) if type(stats) is tuple else paths.size_range(stats)  # type: ignore[misc]
        return first, last, piece.shift, low, high, state.sizes  # type: ignore[return-value]

    def __getitem__(self, name: str) -> NodeState:
        return self.at(self._nodes[name].index, name)
    def __iter__(self) -> Iterator[str]:
        return iter(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, name: object) -> bool:
        return name in self._nodes


def run(graph: Graph, options: Options) -> tuple[list[str], StateTable, str, list[str]]:
    """Analyse every node; returns the order, the states, the input name and the unknown ops.

    The pass allocates millions of small acyclic objects on big graphs; the cyclic collector
    would re-scan the whole heap over and over, so it is paused for the pass."""
    with paused_gc(), work_budget():
        return _run(graph, options)


def _run(graph: Graph, options: Options) -> tuple[list[str], StateTable, str, list[str]]:
    order = graph.topological_order()
    if options.unknown_policy not in POLICIES:
        raise InvalidParameterError(f"unknown_policy must be one of {', '.join(POLICIES)}, "
                                    f"got {options.unknown_policy!r}")
    inputs = graph.inputs
    input_name = options.input or (inputs[0] if inputs else None)
    if input_name is None:
        raise InvalidParameterError("the graph has no input node; add one with graph.input(name)")
    if input_name not in graph.nodes:
        raise UnknownNodeError(input_name, graph.nodes, what="input node", listed=inputs)
    given = _given_shapes(graph, options.input_shape, input_name, inputs)
    sizes_known = any(v is not None for v in given.values())
    n_axes = len(graph.axes)
    symbols = Symbols()
    nodes = graph.nodes
    states: list[NodeState] = [EMPTY_STATE] * len(nodes)  # by Node.index
    packed = Packed(len(nodes))
    table = StateTable(nodes, states, packed, n_axes)
    unknown_size = (None,) * n_axes
    prefixes = tuple(options.stop_propagation)
    unknown_ops: list[str] = []
    cache = RunCache(given.get(input_name) or unknown_size)
    fast_ok = FAST_PATHS and not prefixes and n_axes > 0
    by_op: dict[int, object] = {}  # id(op) -> _JOIN, _OTHER or, for a window, {n_in: affine_window}
    input_index = nodes[input_name].index
    # the columns, as locals
    c_stride, c_first, c_last, c_path = packed.stride, packed.first, packed.last, packed.path_stride
    c_rmin, c_rmax, c_length, pack = packed.rmin, packed.rmax, packed.length, packed.pack
    # in insertion order the node records are read in memory order, without a lookup by name
    # (a cache miss per node on graphs of millions of nodes)
    sequence = nodes.values() if graph.in_insertion_order else (nodes[n] for n in order)
    node: Node | None = None
    try:
        for node in sequence:
            op = node.op
            index = node.index
            # The packed pass: a window with known taps, a merge or an elementwise op whose
            # inputs are all packed gets a packed state in a few integer operations.
            if fast_ok and index != input_index:
                entry = by_op.get(id(op))
                if entry is None:
                    entry = by_op[id(op)] = _fast_entry(op)
                ids = node.source_ids
                if entry is not _OTHER and ids is not None:
                    i = ids[0]
                    if states[i] is PACKED or pack(states, i):
                        if entry is _IDENTITY:
                            c_stride[index], c_first[index] = c_stride[i], c_first[i]
                            c_last[index], c_path[index] = c_last[i], c_path[i]
                            c_rmin[index], c_rmax[index] = c_rmin[i], c_rmax[i]
                            c_length[index] = c_length[i]
                            states[index] = PACKED
                            continue
                        if entry is _JOIN:
                            stride, first, path_stride, n = c_stride[i], c_first[i], c_path[i], c_length[i]
                            centre, rmin, rmax = first + c_last[i], c_rmin[i], c_rmax[i]
                            for i in ids:
                                # equal strides, centres and lengths: aligned, one path stride
                                if (states[i] is not PACKED and not pack(states, i)) \
                                        or c_stride[i] != stride or c_first[i] + c_last[i] != centre \
                                        or c_length[i] != n or c_path[i] != path_stride:
                                    break
                                if c_first[i] < first:
                                    first = c_first[i]
                                if c_rmin[i] < rmin:
                                    rmin = c_rmin[i]
                                if c_rmax[i] > rmax:
                                    rmax = c_rmax[i]
                            else:
                                c_stride[index], c_first[index], c_last[index] = stride, first, centre - first
                                c_path[index], c_rmin[index], c_rmax[index] = path_stride, rmin, rmax
                                c_length[index] = n
                                states[index] = PACKED
                                continue
                        else:  # a window: one input (Graph.add)
                            n = c_length[i]
                            found = entry.get(n, _MISSING)  # type: ignore[attr-defined]
                            if found is _MISSING:
                                found = entry[n] = cache.affine_window(op, n)  # type: ignore[index,arg-type]
                            if found is not None:
                                shift, tap_first, tap_last, n_out = found
                                stride = c_stride[i]
                                path_stride = c_path[i]
                                growth = path_stride * (tap_last - tap_first)
                                c_stride[index] = stride * shift
                                c_first[index] = stride * tap_first + c_first[i]
                                c_last[index] = stride * tap_last + c_last[i]
                                c_path[index] = path_stride * shift
                                c_rmin[index] = c_rmin[i] + growth
                                c_rmax[index] = c_rmax[i] + growth
                                c_length[index] = n_out
                                states[index] = PACKED
                                continue
            name = node.name
            if index == input_index or type(op) is O.Input:
                sizes: tuple[int | None, ...] = given.get(name) or unknown_size
                if index == input_index:
                    seed = AxisState((Piece(1, 1, ((0, 0),)),), False, paths.SEED)
                    states[index] = st = NodeState(name, [seed] * n_axes, sizes, True)
                    st.simple = st.iso
                    pack(states, index)
                else:
                    states[index] = NodeState(name, [EMPTY_AXIS] * n_axes, sizes, False)
                continue
            ids = node.source_ids
            if ids is None:
                ids = graph.source_ids(node)
            preds = [table.at(i, source) for i, source in zip(ids, node.sources)]
            if fast_ok:
                done = _fast(name, op, preds, cache, n_axes, sizes_known)
                if done is not None:
                    states[index] = done
                    continue
            sizes = _sizes(node, preds, graph.axes, options.unknown_policy) if sizes_known else unknown_size
            if prefixes:
                live = [table[r] for r in live_inputs(graph, name, prefixes) if table[r].connected]
            else:
                live = [p for p in preds if p.connected]
            state = NodeState(name, [EMPTY_AXIS] * n_axes, sizes, bool(live))
            states[index] = state
            if not live:
                continue
            for p in live:
                if p.status != "exact":
                    _mark(state, p.status, f"depends on {p.name!r}, which is "
                          f"{'unavailable' if p.status == 'unavailable' else 'a bound'}")
            if type(op) is O.Unknown and op.data_dependent and options.unknown_policy == "error":
                _mark(state, "unavailable", f"op {op.name!r} reads positions that depend on the data "
                      f"(a sampling grid or offsets), so no fixed receptive field exists")
                continue
            if type(op) is O.Unknown:
                if not op.data_dependent:
                    unknown_ops.append(name)
                if options.unknown_policy == "error":
                    _mark(state, "unavailable", f"op {op.name!r} is not supported")
                    continue
                _mark(state, "bound", f"op {op.name!r} treated as {options.unknown_policy} by policy")
            if state.status == "unavailable":
                continue
            _propagate(op, state, live, symbols, options.unknown_policy, cache)
            if type(op) is O.Global and op.bound:
                _mark(state, "bound", op.bound)
            if type(op) is O.Merge and op.is_choice and _branches_differ(live):
                _mark(state, "bound", "a choice takes one input at a time (TensorFlow's Merge); its inputs "
                      "read different pixels, so their union is an upper bound")
            if len(live) > 1:
                _check_alignment(state, live, symbols, graph.axes)
            else:
                state.aligned = live[0].aligned
                state.misalignment = live[0].misalignment
            if state.iso and state.status == "exact" and state.aligned is True:
                a0 = state.axes[0]
                if not a0.is_global and len(a0.pieces) == 1:
                    q = a0.pieces[0]
                    state.simple = q.period == 1 and not q.offset and q.table[0] is not None
    except LimitError as err:  # said for the node at hand, which the maps' arithmetic does not know
        name, what = ("", "?") if node is None else (node.name, node.op.op)
        raise LimitError(f"node {quoted(name)} ({what}): {err}") from None
    return order, table, input_name, unknown_ops


_WINDOW, _MERGE, _ELEMENTWISE = O.Window, O.Merge, O.Elementwise
_IDENTITY, _JOIN, _OTHER, _MISSING = object(), object(), object(), object()


def _fast_entry(op: O.Op) -> object:
    """What the packed pass does with an op: _IDENTITY (an elementwise op: its input's state),
    _JOIN (a merge: the hull of its inputs' equal maps), a dict for a window (its affine_window
    per input length, filled as they are met), or _OTHER (the general pass)."""
    kind = type(op)
    if kind is _WINDOW:
        return {}
    if kind is _ELEMENTWISE:
        return _IDENTITY
    if kind is _MERGE and not op.is_choice:  # type: ignore[union-attr]
        return _JOIN
    return _OTHER


def _fast(name: str, op: O.Op, preds: list[NodeState], cache: RunCache, n_axes: int,
          sizes_known: bool) -> NodeState | None:
    """The common case in a few lines: every input is `simple` (one affine map shared by all
    axes, exact, aligned) and the op is a window with known taps, a merge or an elementwise op
    with identity taps. Returns the node's state, or None when the general pass must handle it."""
    for p in preds:
        if not p.simple:
            return None
    kind = type(op)
    first_pred = preds[0]
    if kind is _WINDOW:
        if len(preds) != 1:
            return None
        found = cache.affine_window(op, first_pred.sizes[0] if sizes_known else None)  # type: ignore[arg-type]
        if found is None:
            return None
        shift, tap_first, tap_last, n_out = found
        sizes = (n_out,) * n_axes if sizes_known else first_pred.sizes
        pa = first_pred.axes[0]
        q = pa.pieces[0]
        s = q.shift
        lo, hi = q.table[0]  # type: ignore[misc]  # simple: never None
        piece = Piece(1, s * shift, ((s * tap_first + lo, s * tap_last + hi),))
        path_stats = pa.paths
        if type(path_stats) is tuple:
            stride, rmin, rmax = path_stats
            growth = stride * (tap_last - tap_first)
            path_stats = (stride * shift, rmin + growth, rmax + growth)
        else:
            path_stats = paths.compact(
                paths.step(path_stats, cache.lattice_taps(op, 0, None, None), {}))
        axis = AxisState((piece,), False, path_stats)
    elif kind is _MERGE or kind is _ELEMENTWISE:
        if kind is _MERGE and op.is_choice and len(preds) > 1:  # type: ignore[union-attr]
            return None  # the general pass checks whether the branches agree
        sizes = first_pred.sizes
        for p in preds:
            if p.sizes != sizes:
                return None  # broadcasting: the general pass
        if len(preds) == 1:
            axis = first_pred.axes[0]  # identity: the same (never changed) state
        else:
            q = first_pred.axes[0].pieces[0]
            shift = q.shift
            lo, hi = q.table[0]  # type: ignore[misc]
            centre = lo + hi
            for p in preds:
                e = p.axes[0].pieces[0]
                if e.shift != shift:
                    return None
                a, b = e.table[0]  # type: ignore[misc]
                if a + b != centre:
                    return None  # misaligned: the general pass explains it
                if a < lo:
                    lo = a
                if b > hi:
                    hi = b
            axis = AxisState((Piece(1, shift, ((lo, hi),)),), False,
                             paths.merged([p.axes[0].paths for p in preds]))
    else:
        return None
    state = NodeState(name, [axis] * n_axes, sizes, True, True)
    state.simple = True
    return state


def _branches_differ(live: list[NodeState]) -> bool:
    """Whether the inputs of a choice read different pixels on some axis."""
    def key(a: AxisState) -> tuple:
        return a.is_global, tuple((q.period, q.shift, q.table, q.offset) for q in a.pieces)

    first = [key(a) for a in live[0].axes]
    return any([key(a) for a in p.axes] != first for p in live[1:])


def _given_shapes(graph: Graph, shapes: object, input_name: str,
                  inputs: list[str]) -> dict[str, tuple[int, ...] | None]:
    if isinstance(shapes, Mapping):
        for key in shapes:
            if key not in graph.nodes:
                raise UnknownNodeError(key, graph.nodes, what="input node", listed=inputs)
        return {k: spatial_shape(graph, v) for k, v in shapes.items()}
    one = spatial_shape(graph, shapes)
    return {n: one for n in inputs} | {input_name: one}


RANK = {"exact": 0, "bound": 1, "unavailable": 2}


def _mark(state: NodeState, status: str, reason: str) -> None:
    if RANK[status] > RANK[state.status]:
        state.status = status
    if reason not in state.reasons:
        state.reasons = (*state.reasons, reason)


def _sizes(node, preds: list[NodeState], axes: tuple[str, ...], policy: str) -> tuple[int | None, ...]:
    """Output sizes per axis. An unsupported op's are unknown under the 'error' policy (the error
    names it, rather than a size mismatch it causes downstream); a lenient policy keeps them."""
    op = node.op
    if type(op) is O.Unknown and policy == "error":
        return (None,) * len(axes)
    out: list[int | None] = []
    for axis, axis_name in enumerate(axes):
        known = [n for p in preds if (n := p.sizes[axis]) is not None]
        if len(known) < len(preds) or not known:
            out.append(None)
            continue
        if type(op) is O.Merge:
            big = max(known)
            if any(k not in (1, big) for k in known):
                detail = ", ".join(f"{p.name}={p.sizes[axis]}" for p in preds)
                raise ShapeError(f"node {node.name!r} ({op.kind}) merges inputs of different sizes "
                                 f"on axis {axis_name}: {detail}")
            out.append(big)
            continue
        n_in = known[0]
        if type(op) is O.Pad and op.mode in ("reflect", "circular"):
            _check_wrap_padding(node.name, op, axis, axis_name, n_in)
        n_out = n_in if type(op) is O.Unknown else output_size(op, axis, n_in)
        if n_out < 1:
            raise ShapeError(f"input too small at node {node.name!r} ({op.op}): axis {axis_name} has "
                             f"length {n_in} there, which gives an empty output; use a larger input")
        out.append(check(n_out, MAX_AXIS_LENGTH, f"the length of axis {axis_name}"))
    return tuple(out)


class RunCache:
    """Per-op results that do not depend on the node (ops are shared between equal nodes)."""

    def __init__(self, input_sizes: tuple[int | None, ...]) -> None:
        self.input_sizes = input_sizes
        self.taps: dict[tuple[int, int, int | None, int | None], LatticeTaps | GlobalTaps] = {}
        self.isotropic: dict[int, bool] = {}
        self.windows: dict[tuple[int, int | None], tuple[int, int, int, int | None] | None] = {}
        self.phases = 0
        """Table entries of the maps with a period above 1 so far (bounded by MAX_PHASES)."""

    def lattice_taps(self, op: O.Op, axis: int, n_in: int | None, n_out: int | None
                     ) -> LatticeTaps | GlobalTaps:
        key = (id(op), axis, n_in, n_out)
        found = self.taps.get(key)
        if found is None:
            found = self.taps[key] = lattice_taps(op, axis, n_in, n_out)
        return found

    def affine_window(self, op: O.Window, n_in: int | None
                      ) -> tuple[int, int, int, int | None] | None:
        """(stride, first tap, last tap, output size) of an isotropic window whose taps are
        known, one per feature; None when the general pass must handle it (or raise)."""
        key = (id(op), n_in)
        if key in self.windows:
            return self.windows[key]
        found = None
        n_out = output_size(op, 0, n_in) if n_in is not None else None
        if self.op_isotropic(op) and (n_out is None or 1 <= n_out <= MAX_AXIS_LENGTH):
            taps = self.lattice_taps(op, 0, n_in, n_out)
            if isinstance(taps, LatticeTaps) and not taps.alternatives and taps.period == 1 \
                    and taps.table[0] is not None:
                first, step, count = taps.table[0]
                found = (taps.shift, first, first + step * (count - 1), n_out)
        self.windows[key] = found
        return found

    def op_isotropic(self, op: O.Op) -> bool:
        found = self.isotropic.get(id(op))
        if found is None:
            found = self.isotropic[id(op)] = all(
                len(set(v)) <= 1 for v in vars(op).values() if type(v) is tuple)
        return found


def _check_wrap_padding(name: str, op: O.Pad, axis: int, axis_name: str, n_in: int) -> None:
    """PyTorch's rule: reflect pads < n, circular pads <= n (they read real pixels only once)."""
    limit = n_in - 1 if op.mode == "reflect" else n_in
    if max(op.before[axis], op.after[axis]) > limit:
        raise ShapeError(f"node {name!r}: {op.mode} padding of {max(op.before[axis], op.after[axis])} "
                         f"on axis {axis_name} needs an input longer than {limit} there, got {n_in}")


def _taps(op, axis: int, pred: NodeState, state: NodeState, policy: str,
          cache: RunCache) -> LatticeTaps | GlobalTaps:
    kind = type(op)
    if kind is O.Merge or kind is O.Elementwise:
        n_in, n_out = pred.sizes[axis], state.sizes[axis]
        return BROADCAST if (n_in == 1 and n_out is not None and n_out > 1) else IDENTITY
    if kind is O.Unknown:
        return GLOBAL if policy == "global" else IDENTITY
    return cache.lattice_taps(op, axis, pred.sizes[axis], state.sizes[axis])


def _isotropic(op: O.Op, state: NodeState, live: list[NodeState], cache: RunCache) -> bool:
    """Every axis would give the same result: same parameters, sizes and input states."""
    sizes = state.sizes
    if sizes.count(sizes[0]) != len(sizes):
        return False
    for p in live:
        if not p.iso:
            return False
    return cache.op_isotropic(op)


def _propagate(op, state: NodeState, live: list[NodeState], symbols: Symbols, policy: str,
               cache: RunCache) -> None:
    n_axes = len(state.axes)
    shared = n_axes > 1 and _isotropic(op, state, live, cache)
    for axis in range(1 if shared else n_axes):
        result = _propagate_axis(op, axis, state, live, symbols, policy, cache)
        if result is None:
            return
        state.axes[axis] = result
    if shared:
        state.axes = [state.axes[0]] * n_axes
        state.iso = True
    else:
        state.iso = False
    if len(live) > 1 and n_axes > 1 and any(_has_holes(p) for p in live):
        _mark(state, "bound", "a path reads no input for some features on one axis; the union "
              "of paths per axis can then be wider than the true region on the other axes")


def _has_holes(state: NodeState) -> bool:
    """Some path map of the node has a phase that reads no input (period > 1 only)."""
    for a in (state.axes[:1] if state.iso else state.axes):
        for q in a.pieces:
            if q.table[0] is None or (q.period > 1 and None in q.table):
                return True
    return False


def _propagate_axis(op, axis: int, state: NodeState, live: list[NodeState], symbols: Symbols,
                    policy: str, cache: RunCache) -> AxisState | None:
    result = AxisState()
    path_stats: dict = {}
    pieces: list[Piece] = []
    unknown_padding: list[int] = []  # one symbol per node and axis, shared by all paths
    for pred in live:
        pa = pred.axes[axis]
        try:
            taps = _taps(op, axis, pred, state, policy, cache)
        except NeedsSize as missing:
            _mark(state, "unavailable", f"{missing} (give input_shape)")
            return None
        paths.step(pa.paths, taps, path_stats)
        if isinstance(taps, GlobalTaps):
            result.is_global = True
            n_in = pred.sizes[axis]
            if n_in is None:
                continue
            taps = LatticeTaps(1, 0, ((0, 1, n_in),))  # reads every position: exact with sizes
        elif pa.is_global:
            if not any(e is None for e in taps.table):
                result.is_global = True
            elif not pa.pieces:  # holes (transposed conv, kernel < stride) after a global op
                result.is_global = True
                _mark(state, "bound", "features that read nothing follow a global op; give "
                      "input_shape for their exact regions")
        if taps is IDENTITY:
            pieces.extend(pa.pieces)
            continue
        if not taps.alternatives:
            for piece in pa.pieces:
                pieces.append(compose(piece, taps))
            continue
        for piece in pa.pieces:
            pieces.extend(_compose(piece, taps, state, symbols, unknown_padding))
    result.paths = paths.compact(path_stats)
    if result.is_global and cache.input_sizes[axis] is None:
        return result  # the whole axis, of unknown length
    if len(pieces) > 1:
        result.pieces, bound = union(pieces, symbols)
        if bound:
            _mark(state, "bound", "the union of paths depends on the input size (give input_shape)")
    else:
        result.pieces = tuple(pieces)
    for piece in result.pieces:
        if piece.period > 1:
            cache.phases += piece.period
            check(cache.phases, MAX_PHASES, "the number of phases of all maps so far")
    return result


def _compose(piece: Piece, taps: LatticeTaps, state: NodeState, symbols: Symbols,
             unknown_padding: list[int]) -> list[Piece]:
    if not taps.alternatives:
        return [compose(piece, taps)]
    deltas = (0,) + taps.alternatives
    if piece.period == 1:
        if not unknown_padding:
            unknown_padding.append(symbols.new(deltas))
        sym = unknown_padding[0]
        base = compose(piece, taps)
        return [base.with_offset(add_offsets(base.offset, ((sym, piece.shift),)))]
    options = [compose(piece, taps, d) for d in deltas]
    shifts = [shift_between(options[0], o) for o in options]
    if all(s is not None for s in shifts):
        sym = symbols.new(shifts)  # type: ignore[arg-type]
        return [options[0].with_offset(add_offsets(options[0].offset, ((sym, 1),)))]
    _mark(state, "bound", "padding depends on the input size after upsampling (give input_shape)")
    result = options[0]
    for o in options[1:]:
        result = hull(result, o)
    return [result]


def _check_alignment(state: NodeState, live: list[NodeState], symbols: Symbols,
                     axis_names: tuple[str, ...]) -> None:
    inherited = [p for p in live if p.aligned is not True]
    if not inherited and all(len(p.axes[0].pieces) == 1 for p in live):
        pieces = [p.axes[0].pieces[0] for p in live]
        first = pieces[0]
        if all(q.offset == first.offset == () and q.shift == first.shift and q.period == first.period
               and q.table == first.table for q in pieces) and all(
                all(a is p.axes[0] for a in p.axes) for p in live):
            return  # identical maps on every axis: aligned

    verdict: bool | None = True
    detail = None
    iso = True
    for p in live:
        if not p.iso:
            iso = False
            break
    for axis in range(1 if iso else len(state.axes)):
        states = [(p.name, p.axes[axis]) for p in live if not p.axes[axis].is_global]
        if any(len(a.pieces) > 1 for _, a in states):
            continue  # already misaligned upstream; reported there
        maps = [(n, a.pieces[0]) for n, a in states if a.pieces]
        for (name_a, a), (name_b, b) in zip(maps, maps[1:]):
            if a.period == 1 and b.period == 1 and not a.offset and not b.offset \
                    and a.table[0] is not None and b.table[0] is not None:
                ea, eb = a.table[0], b.table[0]
                if a.shift == b.shift and ea[0] + ea[1] == eb[0] + eb[1]:
                    continue
            v = aligned(a, b, symbols)
            if v is False:
                verdict = False
                detail = (f"inputs {name_a!r} and {name_b!r} disagree on axis {axis_names[axis]}: "
                          f"stride {_fmt(a.stride)} vs {_fmt(b.stride)}, centre of feature 0 "
                          f"{_centre0(a)} vs {_centre0(b)}")
                break
            if v is None and verdict is True:
                verdict = None
                detail = (f"alignment of {name_a!r} and {name_b!r} on axis {axis_names[axis]} "
                          f"depends on the input size (give input_shape)")
        if verdict is False:
            break
    if verdict is False:
        state.aligned, state.misalignment = False, detail
    elif inherited:
        worst = next((p for p in inherited if p.aligned is False), inherited[0])
        state.aligned = worst.aligned
        state.misalignment = f"inherited from {worst.name!r}: {worst.misalignment}"
    else:
        state.aligned, state.misalignment = verdict, detail


def _fmt(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def _centre0(piece: Piece) -> str:
    if piece.offset:
        return "unknown"
    entry = piece.at(0)
    if entry is None:
        return "none"
    c = Fraction(entry[0] + entry[1], 2)
    return _fmt(c)


def live_inputs(graph: Graph, name: str, prefixes: tuple[str, ...]) -> list[str]:
    """Producers of `name` whose edge is not cut by stop_propagation."""
    sources = graph.nodes[name].sources
    return [r for r in sources if not r.startswith(prefixes)] if prefixes else list(sources)


def check_supported(graph: Graph, states: Mapping[str, NodeState], targets: list[str],
                    prefixes: tuple[str, ...], order: list[str]) -> None:
    """Raise for the earliest unsupported op that a target depends on through live edges."""
    seen = set(targets)
    todo = list(targets)
    found = []
    while todo:
        name = todo.pop()
        node = graph.nodes[name]
        if isinstance(node.op, O.Unknown) and not node.op.data_dependent and states[name].connected:
            found.append(name)
        for src in live_inputs(graph, name, prefixes):
            if src not in seen:
                seen.add(src)
                todo.append(src)
    if found:
        rank = {n: i for i, n in enumerate(order)}
        first = min(found, key=rank.__getitem__)
        raise UnsupportedOpError(first, graph.nodes[first].op.name, len(found) - 1)  # type: ignore[union-attr]
