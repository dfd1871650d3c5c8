"""GraphDef conversion (first part): every converted node's size equals the shape TensorFlow
infers (padding rules SAME / VALID / explicit, dilation, depthwise, pads, merges), in NHWC and
NCHW, and an op foveal does not convert yet is named in the error."""

from __future__ import annotations

import pytest

import foveal
from foveal.errors import UnsupportedOpError

tf = pytest.importorskip("tensorflow")
from foveal.tensorflow.convert import graph_from_graph_def  # noqa: E402


def network(channels_first: bool):
    fmt = "NCHW" if channels_first else "NHWC"
    shape = (1, 3, 33, 31) if channels_first else (1, 33, 31, 3)
    pad = [[0, 0], [0, 0], [1, 2], [1, 1]] if channels_first else [[0, 0], [1, 2], [1, 1], [0, 0]]
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, shape, name="image")
        a = tf.nn.conv2d(x, tf.ones((3, 3, 3, 4)), strides=2, padding="SAME", data_format=fmt, name="c1")
        b = tf.nn.conv2d(a, tf.ones((3, 3, 4, 4)), strides=1, padding="VALID", dilations=2,
                         data_format=fmt, name="c2")
        p = tf.nn.max_pool2d(tf.pad(b, pad, name="pad"), 3, 2, "SAME", data_format=fmt, name="pool")
        e = tf.nn.conv2d(p, tf.ones((2, 2, 4, 4)), strides=1, data_format=fmt, name="c3",
                         padding=[[0, 0], [0, 0], [1, 0], [0, 1]] if channels_first else
                         [[0, 0], [1, 0], [0, 1], [0, 0]])
        s = tf.add(e, tf.nn.relu(p), name="sum")
        tf.concat([s, e], axis=1 if channels_first else 3, name="cat")
    return graph


@pytest.mark.parametrize("channels_first", [False, True])
def test_sizes_match_tensorflow(channels_first) -> None:
    graph = network(channels_first)
    g = graph_from_graph_def(graph)
    a = foveal.receptive_field(g, (33, 31))
    spatial = slice(2, 4) if channels_first else slice(1, 3)
    assert len(g.nodes) == 9
    for name in g.nodes:
        assert a[name].output_shape == tuple(graph.get_tensor_by_name(f"{name}:0").shape[spatial]), name
    # by hand: 3x3/2, then 3x3 dilated 2 (5 taps wide at stride 2: 3 + 4*2 = 11), then pool 3/2
    assert a["c2"].size == (11, 11) and a["pool"].size == (15, 15) and a["pool"].stride == (4, 4)


def test_an_op_not_converted_yet_is_named() -> None:
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, (1, 8, 8, 3), name="image")
        tf.image.resize(tf.nn.relu(x), (16, 16), name="up")
    with pytest.raises(UnsupportedOpError, match="ResizeBilinear"):
        foveal.receptive_field(graph_from_graph_def(graph), (8, 8))


def test_receptive_field_reads_graph_defs_in_every_form(tmp_path, capsys) -> None:
    from google.protobuf import text_format

    from foveal.cli import main

    graph = network(channels_first=False)
    (tmp_path / "g.pbtxt").write_text(text_format.MessageToString(graph.as_graph_def()))
    (tmp_path / "g.pb").write_bytes(graph.as_graph_def().SerializeToString())
    results = [foveal.receptive_field(m, (33, 31), output="cat")["cat"] for m in
               (graph, graph.as_graph_def(), tmp_path / "g.pbtxt", str(tmp_path / "g.pb"))]
    assert {(r.size, r.stride, r.padding) for r in results} == {(results[0].size, (4, 4), results[0].padding)}
    assert foveal.receptive_field(tmp_path / "g.pb")["pool"].padding == (None, None)  # SAME, size unknown
    assert main(["analyze", str(tmp_path / "g.pbtxt"), "--input-size", "33,31", "--output-node", "pool"]) == 0
    assert "max_pool" in capsys.readouterr().out
