"""foveal JSON graphs: seeds are graphs with every op, mutations change the parsed JSON tree."""

from __future__ import annotations

import json
import random
from typing import Any

SUFFIX = ".json"
API_KWARGS = {"input_shape": 64}
CLI_ARGS = ["--input-size", "64", "--format", "json", "--verdicts"]

VALUES = (0, 1, 2, -1, 3, 10**9, 10**12, 2**63, -(10**9), 1.5, float("inf"), "1/0", "3/2", "1/1000000007",
          "abc", "", "\udc80", "$\\foo$", "<script>", None, True, False, [], {}, [1, 2], [[], []], [1, 2, 3],
          "same_upper", "reflect", "circular", "choice", "window", "resize", "x:1", "x:99")


def _graphs() -> list[dict]:
    from foveal import Graph, graph_json
    from foveal import ops as O

    out = []
    g = Graph(2, name="every-op")
    x = g.input("image")
    c1 = g.add("c1", O.conv(3, 2, "same_upper"), x)
    p1 = g.add("p1", O.max_pool(3, 2, 1, ceil_mode=True), c1)
    t1 = g.add("t1", O.conv_transpose(4, 2, 1), p1)
    u1 = g.add("u1", O.upsample(scale=2, mode="bilinear"), t1)
    d1 = g.add("d1", O.conv(3, padding=2, dilation=2), u1)
    pad = g.add("pad", O.pad(1, 2, mode="reflect"), d1)
    cr = g.add("crop", O.crop(1, -1, 2), pad)
    ps = g.add("ps", O.pixel_shuffle(2), cr)
    pu = g.add("pu", O.pixel_unshuffle(2), ps)
    ad = g.add("ad", O.adaptive_pool(5), pu)
    m = g.add("m", O.add(), [ad, g.add("c2", O.conv(1), ad)])
    e = g.add("e", O.elementwise("relu"), m)
    g.add("head", O.dense(), g.add("gp", O.global_pool(), e))
    out.append(graph_json.graph_to_dict(g))

    g = Graph(1, name="audio")
    x = g.input("wave")
    y = g.add("c1", O.conv(10, 5), x)
    y = g.add("c2", O.conv(3, 2, "causal"), y)
    y = g.add("up", O.Resize("nearest", None, 37, "half_pixel", "round_prefer_ceil"), y)
    y = g.add("att", O.attention(), y)
    g.add("u", O.unknown("mystery"), y)
    out.append(graph_json.graph_to_dict(g))

    g = Graph(3, name="volume")
    x = g.input("vol")
    a = g.add("a", O.conv((3, 1, 1), padding=(1, 0, 0)), x)
    b = g.add("b", O.conv((1, 3, 3), padding=(0, 1, 1)), x)
    g.add("cat", O.concat(), [a, b])
    out.append(graph_json.graph_to_dict(g))
    return out


def seeds() -> list[bytes]:
    return [json.dumps(g).encode() for g in _graphs()]


def _slots(tree: Any, path: tuple = ()) -> list[tuple]:
    """Every (container, key) in the tree."""
    found = []
    if isinstance(tree, dict):
        for k, v in tree.items():
            found.append((tree, k))
            found += _slots(v)
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            found.append((tree, i))
            found += _slots(v)
    return found


def mutate(data: bytes, rng: random.Random) -> bytes:
    try:
        tree = json.loads(data)
    except ValueError:
        return data
    slots = _slots(tree)
    if not slots:
        return data
    nodes = tree.get("nodes") if isinstance(tree, dict) else None
    kind = rng.randrange(8)
    if kind == 0 and isinstance(nodes, list) and nodes and all(isinstance(n, dict) for n in nodes):
        # an edge to a later node or to itself: a cycle
        a, b = rng.randrange(len(nodes)), rng.randrange(len(nodes))
        nodes[a]["inputs"] = [nodes[b].get("name")]
    elif kind == 1 and isinstance(nodes, list) and nodes:
        # a long chain of copies of one node (big graphs, exponential growth)
        pick = rng.choice(nodes)
        if isinstance(pick, dict) and isinstance(pick.get("name"), str):
            prev = pick["name"]
            for k in range(rng.choice((10, 40, 200))):
                clone = dict(pick, name=f"{prev}_{k}", inputs=[prev])
                nodes.append(clone)
                prev = clone["name"]
    else:
        container, key = rng.choice(slots)
        if kind == 2 and isinstance(container, dict):
            del container[key]
        elif kind == 3 and isinstance(container, list):
            container.insert(key, container[key])
        elif type(container[key]) is int and rng.random() < 0.7:  # a plausible neighbour
            v = container[key]
            container[key] = rng.choice((v + 1, v - 1, v * 2, v * 7, v + 10**rng.randrange(1, 10), 0, 1))
        else:
            container[key] = rng.choice(VALUES)
    return json.dumps(tree).encode()
