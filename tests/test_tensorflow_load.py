"""Reading GraphDefs without TensorFlow: text and binary files, and one clear line for bad input."""

from __future__ import annotations

import random

import pytest

from foveal.errors import GraphFormatError
from foveal.tensorflow.load import load_graph_def

PBTXT = """
node { name: "input" op: "Placeholder"
       attr { key: "dtype" value { type: DT_FLOAT } }
       attr { key: "shape" value { shape { dim { size: -1 } dim { size: 224 } dim { size: 224 }
                                           dim { size: 3 } } } } }
node { name: "w" op: "Const" attr { key: "value" value { tensor { dtype: DT_FLOAT
       tensor_shape { dim { size: 3 } dim { size: 3 } dim { size: 3 } dim { size: 8 } } } } } }
node { name: "conv" op: "Conv2D" input: "input" input: "w:0" input: "^input"
       attr { key: "strides" value { list { i: 1 i: 2 i: 2 i: 1 } } }
       attr { key: "padding" value { s: "SAME" } }
       attr { key: "data_format" value { s: "NHWC" } }
       attr { key: "dilations" value { list { i: 1 i: 1 i: 1 i: 1 } } }
       attr { key: "T" value { type: DT_FLOAT_REF } }
       experimental_debug_info { original_node_names: "conv" } }
versions { producer: 1087 }
"""


def check(graph) -> None:
    assert [n.name for n in graph.node] == ["input", "w", "conv"]
    conv = graph.node[2]
    assert conv.op == "Conv2D" and list(conv.input) == ["input", "w:0", "^input"]
    assert list(conv.attr["strides"].list.i) == [1, 2, 2, 1] and conv.attr["padding"].s == b"SAME"
    assert [d.size for d in graph.node[0].attr["shape"].shape.dim] == [-1, 224, 224, 3]
    assert [d.size for d in graph.node[1].attr["value"].tensor.tensor_shape.dim] == [3, 3, 3, 8]


def test_text_and_binary_files(tmp_path) -> None:
    text = tmp_path / "g.pbtxt"
    text.write_text(PBTXT)
    graph = load_graph_def(text)
    check(graph)
    binary = tmp_path / "g.pb"
    binary.write_bytes(graph.SerializeToString())
    check(load_graph_def(binary))
    check(load_graph_def(binary.read_bytes()))
    check(load_graph_def(graph))
    unlabelled = tmp_path / "graph"  # no telling suffix: binary first, then text
    unlabelled.write_text(PBTXT)
    check(load_graph_def(unlabelled))


def test_bad_input(tmp_path) -> None:
    good = load_graph_def(_text_graph(tmp_path)).SerializeToString()
    cases = {
        "truncated.pb": good[: len(good) // 2],
        "random.pb": bytes(random.Random(3).randrange(256) for _ in range(4000)),
        "empty.pb": b"",
        "syntax.pbtxt": PBTXT.replace('op: "Conv2D"', 'op: Conv2D"').encode(),
    }
    messages = {}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(GraphFormatError) as info:
            load_graph_def(tmp_path / name)
        messages[name] = str(info.value)
        assert "\n" not in messages[name] and name in messages[name]
    assert "truncated" in messages["truncated.pb"] or "not a GraphDef" in messages["truncated.pb"]
    assert "no GraphDef nodes" in messages["empty.pb"]
    assert "not a valid text GraphDef: line 8, column 25: Expected string" in messages["syntax.pbtxt"]
    twice = tmp_path / "twice.pbtxt"
    twice.write_text('node { name: "a" op: "Placeholder" } node { name: "a" op: "Relu" input: "a" }')
    with pytest.raises(GraphFormatError, match="'a' appears twice"):
        load_graph_def(twice)
    with pytest.raises(GraphFormatError, match="does not exist"):
        load_graph_def(tmp_path / "missing.pb")
    with pytest.raises(GraphFormatError, match="cannot read a GraphDef from a int"):
        load_graph_def(3)


def _text_graph(tmp_path):
    path = tmp_path / "source.pbtxt"
    path.write_text(PBTXT)
    return path


def test_graphs_written_by_tensorflow_read_the_same() -> None:
    """foveal's schema against TensorFlow's own: every node, input and attribute agrees, from the
    tf.Graph, from its binary serialization and from its text form."""
    tf = pytest.importorskip("tensorflow")
    from google.protobuf import text_format

    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, (1, 32, 32, 3), name="image")
        y = tf.nn.conv2d(x, tf.ones((3, 3, 3, 4)), strides=2, padding="SAME", dilations=1)
        y = tf.nn.max_pool2d(tf.pad(y, [[0, 0], [1, 1], [1, 1], [0, 0]]), 3, 2, "VALID")
        tf.reduce_mean(tf.nn.relu(y), axis=[1, 2], name="out")
    theirs = graph.as_graph_def()
    for ours in (load_graph_def(graph), load_graph_def(theirs.SerializeToString()),
                 text_format.Parse(text_format.MessageToString(theirs), type(load_graph_def(graph))())):
        assert len(ours.node) == len(theirs.node) > 5
        for a, b in zip(ours.node, theirs.node):
            assert (a.name, a.op, list(a.input)) == (b.name, b.op, list(b.input))
            assert sorted(a.attr) == sorted(b.attr)
            for key in a.attr:
                assert a.attr[key].SerializeToString() == b.attr[key].SerializeToString(), (a.name, key)


def test_a_keras_model_graph_reserializes_byte_for_byte() -> None:
    """Every field foveal declares has TensorFlow's number and type: a 1,000-node Keras graph
    parsed with foveal's schema serializes back to the same bytes (unknown fields kept)."""
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    model = keras.applications.MobileNetV2(weights=None, input_shape=(64, 64, 3))

    def forward(x):
        return model(x)

    theirs = tf.function(forward).get_concrete_function(tf.TensorSpec((1, 64, 64, 3))).graph.as_graph_def()
    ours = load_graph_def(theirs)
    assert len(ours.node) > 1000
    assert ours.SerializeToString(deterministic=True) == theirs.SerializeToString(deterministic=True)


def test_a_cycle_and_an_unknown_output_are_one_line_each(tmp_path, capsys) -> None:
    import foveal
    from foveal.cli import main

    cycle = tmp_path / "cycle.pbtxt"
    cycle.write_text('node { name: "image" op: "Placeholder" } '
                     'node { name: "a" op: "AddV2" input: "image" input: "b" } '
                     'node { name: "b" op: "Relu" input: "a" }')
    with pytest.raises(GraphFormatError, match="cycle through 'a', 'b'"):
        foveal.receptive_field(cycle, input="image")
    assert main(["analyze", str(cycle), "--input-node", "image"]) == 2
    assert "cycle" in capsys.readouterr().err
    rf = pytest.importorskip("foveal.compat.receptive_field")
    pytest.importorskip("numpy")
    with pytest.raises(GraphFormatError, match="cycle"):
        rf.compute_receptive_field_from_graph_def(cycle, "image", "b")
    good = _text_graph(tmp_path)
    names = [n.name for n in load_graph_def(good).node]
    with pytest.raises(foveal.FovealError, match="did you mean"):
        foveal.receptive_field(good, output=names[-1] + "x")
    assert main(["analyze", str(good), "--output-node", names[-1] + "x"]) == 2
    err = capsys.readouterr().err
    assert "did you mean" in err and len(err.strip().splitlines()) == 1
