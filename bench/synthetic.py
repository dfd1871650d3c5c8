"""Synthetic graphs for the speed benchmark.

Every generator returns ``(graph, output_name)``. The size-driven generators (`chain`,
`residual`, `dense`) produce exactly ``n`` nodes (the input included). Strides are bounded: at
most `downsample` (default 5) stride-2 layers per graph, so sizes and strides stay small numbers
whatever ``n`` is.

- chain(n):       input -> conv 3x3 s1 p1 ... with 5 evenly spaced conv 3x3 s2 p1.
- residual(n):    blocks conv-conv-add(skip); 5 evenly spaced downsampling blocks
                  (conv 3x3 s2 in the main path, conv 1x1 s2 projection on the skip).
- dense(n):       DenseNet-like: per layer a concat of the last `window` layer outputs of the
                  block, then conv 3x3; a transition (conv 1x1 + avg pool) every `block` layers,
                  5 of them downsampling (pool 2 s2), the others pool 3 s1 p1.
- adversarial(K): rfa_toolbox's worst case: K stages, stage i = add(conv k=1, conv k=2**i+1)
                  on the same node, so there are 2**K input->output paths with 2**K distinct
                  receptive field sizes. 1 + 3K nodes.
"""

from __future__ import annotations

from foveal import Graph, add, avg_pool, concat, conv

N_DOWNSAMPLE = 5


def _spread(count: int, total: int) -> set[int]:
    """`count` evenly spaced indices in range(total) (fewer if total is small)."""
    if total <= 0:
        return set()
    return {min(total - 1, (k + 1) * total // (count + 1)) for k in range(count)}


def _fill(g: Graph, x: str, n: int, prefix: str = "tail") -> str:
    """Pad the graph up to exactly n nodes with 3x3 stride-1 convs."""
    i = 0
    while len(g) < n:
        x = g.add(f"{prefix}{i}", conv(3, 1, 1), [x])
        i += 1
    return x


def chain(n: int, axes: int = 2, downsample: int = N_DOWNSAMPLE) -> tuple[Graph, str]:
    g = Graph(axes, name=f"chain_{n}")
    x = g.input("input")
    layers = n - 1
    down = _spread(downsample, layers)
    for i in range(layers):
        x = g.add(f"c{i}", conv(3, 2 if i in down else 1, 1), [x])
    return g, x


def residual(n: int, axes: int = 2, downsample: int = N_DOWNSAMPLE) -> tuple[Graph, str]:
    g = Graph(axes, name=f"residual_{n}")
    x = g.input("input")
    blocks = (n - 1) // 3
    down = _spread(downsample, blocks)
    b = 0
    while True:
        is_down = b in down
        need = 4 if is_down else 3
        if len(g) + need > n:
            break
        y = g.add(f"b{b}.conv1", conv(3, 2 if is_down else 1, 1), [x])
        y = g.add(f"b{b}.conv2", conv(3, 1, 1), [y])
        skip = g.add(f"b{b}.proj", conv(1, 2, 0), [x]) if is_down else x
        x = g.add(f"b{b}.add", add(), [y, skip])
        b += 1
    return g, _fill(g, x, n)


def dense(n: int, axes: int = 2, window: int = 4, block: int = 12,
          downsample: int = N_DOWNSAMPLE) -> tuple[Graph, str]:
    g = Graph(axes, name=f"dense_{n}")
    x = g.input("input")
    x = g.add("stem", conv(3, 1, 1), [x])
    per_block = 2 * block + 2
    n_blocks = max(1, (n - 2) // per_block)
    down = _spread(downsample, n_blocks - 1)
    recent = [x]
    layer = 0
    t = 0
    while len(g) + 2 <= n:
        if layer == block:  # transition: conv 1x1 + pool, and the block restarts from it
            y = g.add(f"t{t}.conv", conv(1), [recent[-1]])
            pool = avg_pool(2, 2) if t in down else avg_pool(3, 1, 1)
            x = g.add(f"t{t}.pool", pool, [y])
            recent = [x]
            layer = 0
            t += 1
            continue
        cat = g.add(f"t{t}.l{layer}.cat", concat(), recent[-window:])
        out = g.add(f"t{t}.l{layer}.conv", conv(3, 1, 1), [cat])
        recent.append(out)
        del recent[:-window]
        layer += 1
    return g, _fill(g, recent[-1], n)


def adversarial(k: int, axes: int = 2) -> tuple[Graph, str]:
    g = Graph(axes, name=f"adversarial_{k}")
    x = g.input("input")
    for i in range(k):
        a = g.add(f"s{i}.k1", conv(1), [x])
        b = g.add(f"s{i}.big", conv(2**i + 1), [x])
        x = g.add(f"s{i}.add", add(), [a, b])
    return g, x


def adversarial_expected(k: int) -> tuple[int, int]:
    """(size_min, size_max) of the output: all k=1 branches, and all big branches."""
    return 1, 1 + sum(2**i for i in range(k))  # == 2**k


SIZED = {"chain": chain, "residual": residual, "dense": dense}


def edge_count(g: Graph) -> int:
    return sum(len(node.inputs) for node in g)


def reference_range(g: Graph, output: str, axis: int = 0) -> tuple[int, int]:
    """(min, max) receptive field size over all input->output paths, computed independently.

    A plain dynamic programme for graphs of windows and merges only: per node, a dict
    cumulative stride -> (smallest, largest) size over the paths with that stride; a window adds
    (kernel - 1) * dilation * stride. Used to check foveal's size_min / size_max.
    """
    from foveal import ops as O

    ranges: dict[str, dict[int, tuple[int, int]]] = {}
    for name in g.topological_order():
        node = g.nodes[name]
        op = node.op
        if isinstance(op, O.Input):
            ranges[name] = {1: (1, 1)}
            continue
        merged: dict[int, tuple[int, int]] = {}
        for ref in node.inputs:
            for s, (lo, hi) in ranges[ref].items():
                old = merged.get(s)
                merged[s] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))
        if isinstance(op, O.Merge):
            ranges[name] = merged
        elif isinstance(op, O.Window):
            k, st, d = op.kernel[axis], op.stride[axis], op.dilation[axis]
            ranges[name] = {s * st: (lo + (k - 1) * d * s, hi + (k - 1) * d * s)
                            for s, (lo, hi) in merged.items()}
        else:
            raise TypeError(f"reference_range handles windows and merges only, not {op!r}")
    out = ranges[output]
    return min(lo for lo, _ in out.values()), max(hi for _, hi in out.values())
