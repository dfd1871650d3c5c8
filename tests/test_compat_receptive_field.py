"""foveal.compat.receptive_field against the reference's own tests (shared/spec
google_receptive_field.md §4): its networks rebuilt as real TensorFlow graphs, with the
expected numbers, None paddings and alignment errors of the spec."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
import foveal.compat.receptive_field as rf  # noqa: E402

v1 = tf.compat.v1


def conv(x, kernel, stride, padding, name):
    """slim.conv2d: a variable kernel, a bias, a ReLU."""
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    with v1.variable_scope(name):
        w = v1.get_variable("weights", (kh, kw, x.shape[-1], 1))
        b = v1.get_variable("biases", (1,))
        y = tf.nn.conv2d(x, w, stride, padding, name="Conv2D")
        return tf.nn.relu(tf.nn.bias_add(y, b), name="Relu")


def pad(x, before, after, name=None):
    return tf.pad(x, [[0, 0], [before, after], [before, after], [0, 0]], name=name)


def pool(x, kernel, stride, padding, name):
    return tf.nn.max_pool2d(x, kernel, stride, padding, name=name)


def image(shape=(None, None, None, 1)):
    return v1.placeholder(tf.float32, shape, name="input_image")


def build(body, shape=(None, None, None, 1)):
    graph = tf.Graph()
    with graph.as_default():
        body(image(shape))
    return graph


def n1(x, second=None):
    l1 = conv(x, 1, 4, "VALID", "L1")
    l2 = conv(pad(x, 1, 0), 3, 2, "VALID", "L2")
    l3 = conv(l2, 1, 2, "VALID", "L3")
    if second:
        l3 = second(l3)
    return tf.nn.relu(l1 + l3, name="output")


def n2(x):
    l1 = conv(x, 1, 4, "VALID", "L1")
    l3 = pool(pool(pad(x, 1, 0), 3, 2, "VALID", "L2"), 1, 2, "VALID", "L3")
    tf.nn.relu(l1 + l3, name="output")


def n3(x):
    left = conv(pad(x, 2, 1), 5, 2, "VALID", "L1")
    right = conv(conv(x, 3, 1, "VALID", "L2"), 3, 1, "VALID", "L3")
    tf.nn.relu(left + right, name="output")


def n4(x):
    l1 = conv(x, 1, 4, "VALID", "L1")
    l3 = conv(conv(x, 3, 2, "SAME", "L2"), 1, 2, "VALID", "L3")
    tf.nn.relu(l1 + l3, name="output")


def n5(x):
    tf.nn.relu(conv(conv(x, (3, 5), 2, "VALID", "L1"), (3, 1), 2, "VALID", "L2"), name="output")


def n6(x):
    def dropout(t):
        with tf.name_scope("Dropout"):
            return tf.nn.dropout(t, rate=0.5)
    n1(x, dropout)


def n7(x):
    l1 = conv(x, 1, 4, "VALID", "L1")
    l3 = conv(conv(pad(x, 1, 0), 3, 2, "VALID", "L2"), 1, 2, "VALID", "L3")
    check = tf.debugging.Assert(tf.equal(tf.shape(l1)[1], 2), [tf.shape(l1)])
    with tf.control_dependencies([check]):
        tf.nn.relu(l1 + l3, name="output")


def n8(x, same=False):
    valid = "SAME" if same else "VALID"
    l1 = conv(x, 1, 4, valid, "L1")
    l2 = conv(x if same else pad(x, 1, 0), 3, 2, valid, "L2")
    l4 = tf.nn.relu(l1 + conv(l2, 1, 2, valid, "L3"), name="L4")
    l5 = conv(l4, 1, 2, valid, "L5")
    l6 = conv(l4 if same else pad(l4, 1, 0), 3, 2, valid, "L6")
    tf.nn.relu(l5 + l6, name="output")


def n8_keras():
    tf_keras = pytest.importorskip("tf_keras")
    layers = tf_keras.layers
    graph = tf.Graph()
    with graph.as_default():
        x = tf_keras.Input([None, None, 1], name="input_image")
        l1 = layers.Conv2D(1, 1, 4, "valid", name="L1")(x)
        l2 = layers.Conv2D(1, 3, 2, "valid", name="L2")(layers.ZeroPadding2D(((1, 0), (1, 0)))(x))
        l3 = layers.Conv2D(1, 1, 2, "same", name="L3")(l2)
        l4 = layers.ReLU(name="L4_relu")(l1 + l3)
        l5 = layers.Conv2D(1, 1, 2, "valid", name="L5")(l4)
        l6 = layers.Conv2D(1, 3, 2, "valid", name="L6")(layers.ZeroPadding2D(((1, 0), (1, 0)))(l4))
        layers.ReLU(name="output")(l5 + l6)
    return graph


def values(graph, output="output", **options):
    return tuple(rf.compute_receptive_field_from_graph_def(graph.as_graph_def(), "input_image", output,
                                                            **options))


@pytest.mark.parametrize("body", [n1, n2, n6, n7], ids=["aligned", "aligned2", "stop", "control"])
def test_aligned_networks(body) -> None:
    shape = (1, 8, 8, 1) if body is n7 else (None, None, None, 1)
    options = {"stop_propagation": ["Dropout/dropout/random_uniform"]} if body is n6 else {}
    assert values(build(body, shape), **options) == (3, 3, 4, 4, 1, 1)


def test_stride_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="effective stride from different paths is different in "
                                         "horizontal direction"):
        values(build(n3))


def test_undefined_padding_is_none_until_the_resolution_is_given() -> None:
    graph = build(n4)
    assert values(graph) == (3, 3, 4, 4, None, None)
    assert values(graph, input_resolution=[9, 9]) == (3, 3, 4, 4, 1, 1)
    with pytest.raises(ValueError, match="center shift from different paths is different in horizontal"):
        values(graph, input_resolution=[8, 8])


def test_non_square_rf_is_x_first() -> None:
    assert values(build(n5)) == (5, 7, 4, 4, 0, 0)


@pytest.mark.parametrize("graph", [lambda: build(n8), n8_keras], ids=["tf", "keras"])
def test_intermediate_add_node(graph) -> None:
    output = "output/Relu" if graph is n8_keras else "output"
    assert values(graph(), output) == (11, 11, 8, 8, 5, 5)


def test_intermediate_add_node_all_same_at_17() -> None:
    assert values(build(lambda x: n8(x, same=True)), input_resolution=[17, 17]) == (11, 11, 8, 8, 5, 5)


def test_coordinates_roundtrip_on_a_tf_graph() -> None:
    field = rf.compute_receptive_field_from_graph_def(build(n1), "input_image", "output")
    points = np.random.default_rng(0).integers(0, 100, (50, 2))
    back = field.compute_input_center_coordinates(field.compute_feature_coordinates(points))
    assert (back == points).all()
    assert field.compute_input_center_coordinates([0, 2]).tolist() == [0.0, 8.0]  # -1 + 4*i + 1
    assert field.compute_input_center_coordinates([[3]], axis=[1]).tolist() == [[12.0]]
    with pytest.raises(ValueError, match="Dimensionality of the feature coordinates"):
        field.compute_input_center_coordinates([1, 2, 3])


def test_unpacking_sizes_and_types() -> None:
    field = rf.compute_receptive_field_from_graph_def(build(n4), "input_image", "output")
    assert field.size.tolist() == [3, 3] and field.stride.tolist() == [4, 4]
    assert field.padding.tolist() == [None, None] and field.padding.dtype == object
    rf_x, *_ = rf.compute_receptive_field_from_graph_def(build(n1), "input_image", "output")
    assert isinstance(rf_x, np.integer)


def layer_params_graph(keras: bool):
    """The network of the reference's parse_layer_parameters and graph_compute_order tests."""
    graph = tf.Graph()
    with graph.as_default():
        x = image((1, None, None, 1))
        l1 = conv(x, 1, 4, "VALID", "L1")
        l2 = conv(pad(x, 1, 0, name="L2_pad"), 3, 2, "VALID", "L2")
        l3 = pool(l2, 3, 2, "SAME", "L3/MaxPool")
        l4 = tf.nn.relu(l1 + l3, name="L4_relu")
        tf.add(conv(l4, 1, 2, "SAME", "L5"), conv(l4, 3, 2, "SAME", "L6"), name="L7_add")
    return graph


EXPECTED_PARAMS = [
    ("L1/Conv2D", None, (1, 1, 4, 4, 0, 0, 0, 0)),
    ("L2_pad", None, (1, 1, 1, 1, 1, 1, 1, 1)),
    ("L2/Conv2D", None, (3, 3, 2, 2, 0, 0, 0, 0)),
    ("L3/MaxPool", None, (3, 3, 2, 2, None, None, None, None)),
    ("L3/MaxPool", [4, 4], (3, 3, 2, 2, 0, 0, 1, 1)),
    ("L3/MaxPool", [5, 5], (3, 3, 2, 2, 1, 1, 2, 2)),
    ("L4_relu", None, (1, 1, 1, 1, 0, 0, 0, 0)),
    ("L5/Conv2D", None, (1, 1, 2, 2, 0, 0, 0, 0)),
    ("L6/Conv2D", None, (3, 3, 2, 2, None, None, None, None)),
    ("L6/Conv2D", [4, 4], (3, 3, 2, 2, 0, 0, 1, 1)),
    ("L6/Conv2D", [5, 5], (3, 3, 2, 2, 1, 1, 2, 2)),
    ("L7_add", None, (1, 1, 1, 1, 0, 0, 0, 0)),
]


@pytest.mark.parametrize("frozen", [False, True], ids=["variables", "frozen"])
def test_get_layer_params(frozen) -> None:
    graph = layer_params_graph(False)
    graph_def = graph.as_graph_def()
    if frozen:
        with v1.Session(graph=graph) as session:
            session.run(v1.global_variables_initializer())
            graph_def = v1.graph_util.convert_variables_to_constants(session, graph_def, ["L7_add"])
        assert not {n.op for n in graph_def.node} & {"VariableV2", "VarHandleOp"}
    nodes = rf.parse_graph_nodes(graph_def)
    for name, resolution, expected in EXPECTED_PARAMS:
        assert rf.get_layer_params(nodes[name], nodes, resolution) == expected, name
    with pytest.raises(ValueError, match="Unknown layer for operation 'input_image': Placeholder"):
        rf.get_layer_params(nodes["input_image"], nodes)
    assert rf.get_layer_params(nodes["input_image"], nodes, force=True) == (None,) * 8


def test_get_compute_order_sizes_and_topology() -> None:
    graph_def = layer_params_graph(False).as_graph_def()
    for name, size in (("", None), ("input_image", None), ("input_image", [224, 224])):
        info, nodes = rf.get_compute_order(graph_def, name, size)
        seen = set()
        for node_name, entry in sorted(info.items(), key=lambda item: item[1].order):
            inputs = [i.lstrip("^").split(":")[0] for i in entry.node.input]
            assert node_name == "input_image" and name or set(inputs) <= seen, node_name
            seen.add(node_name)
    sizes = {"input_image": (None, [224, 224]), "L1/Conv2D": ([224, 224], [56, 56]),
             "L2_pad": ([224, 224], [225, 225]), "L2/Conv2D": ([225, 225], [112, 112]),
             "L3/MaxPool": ([112, 112], [56, 56]), "L4_relu": ([56, 56], [56, 56]),
             "L5/Conv2D": ([56, 56], [28, 28]), "L6/Conv2D": ([56, 56], [28, 28]),
             "L7_add": ([28, 28], [28, 28])}
    for name, (size_in, size_out) in sizes.items():
        assert (info[name].input_size, info[name].output_size) == (size_in, size_out), name


def test_height_is_paired_with_y() -> None:
    """The reference pairs H with the x parameters in its size propagation (it would give 9 x 10
    after a 3x1 kernel on 9 x 12); foveal gives 7 x 12, so the SAME layer after it pads right."""
    graph = tf.Graph()
    with graph.as_default():
        x = image((1, None, None, 1))
        a = tf.nn.conv2d(x, tf.ones((3, 1, 1, 1)), 1, "VALID", name="a")
        tf.nn.conv2d(a, tf.ones((2, 2, 1, 1)), 2, "SAME", name="b")
    info, _ = rf.get_compute_order(graph.as_graph_def(), "input_image", [9, 12])
    assert info["a"].output_size == [7, 12] and info["b"].output_size == [4, 6]
    # SAME k=2 s=2: H 7 -> total 1, left 0; W 12 -> total 0, left 0
    assert values(graph, "b", input_resolution=[9, 12]) == (2, 4, 2, 2, 0, 0)


def test_compute_rf_runs_as_a_module_like_the_original_script(tmp_path) -> None:
    """python -m foveal.compat.receptive_field.compute_rf: the reference's script, same flags."""
    import subprocess
    import sys

    graph_path = tmp_path / "graph.pbtxt"
    graph_path.write_text(str(build(n8).as_graph_def()))
    out = tmp_path / "rf_info.txt"
    done = subprocess.run([sys.executable, "-m", "foveal.compat.receptive_field.compute_rf",
                           "--graph_path", str(graph_path), "--output_path", str(out),
                           "--input_node", "input_image", "--output_node", "output"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert out.read_text().splitlines()[0] == "Receptive field size (horizontal) = 11"
    assert done.stdout == out.read_text()


def test_compute_rf_cli_writes_the_six_lines(tmp_path, capsys) -> None:
    from foveal.cli import main

    graph_path = tmp_path / "graph.pbtxt"
    graph_path.write_text(str(build(n8).as_graph_def()))
    out = tmp_path / "rf_info.txt"
    args = ["compute-rf", "--graph_path", str(graph_path), "--output_path", str(out),
            "--input_node", "input_image", "--output_node", "output"]
    assert main(args) == 0
    assert out.read_text().splitlines() == [
        "Receptive field size (horizontal) = 11", "Receptive field size (vertical) = 11",
        "Effective stride (horizontal) = 8", "Effective stride (vertical) = 8",
        "Effective padding (horizontal) = 5", "Effective padding (vertical) = 5"]
    assert capsys.readouterr().out == out.read_text()
    four = tmp_path / "n4.pb"
    four.write_bytes(build(n4).as_graph_def().SerializeToString())
    base = ["compute-rf", "--graph_path", str(four), "--input_node", "input_image", "--output_node", "output"]
    assert main(base) == 0 and capsys.readouterr().out.endswith("(vertical) = None\n")
    assert main([*base, "--input_resolution", "9,9"]) == 0
    assert capsys.readouterr().out.endswith("(vertical) = 1\n")
    assert main([*base, "--input_resolution", "8,8"]) == 2
    assert "center shift" in capsys.readouterr().err
    zipped = tmp_path / "n8.pbtxt.gz"  # gzipped, as `foveal analyze` reads it
    zipped.write_bytes(gzip.compress(str(build(n8).as_graph_def()).encode()))
    assert main(["compute-rf", "--graph_path", str(zipped), "--input_node", "input_image",
                 "--output_node", "output"]) == 0
    assert capsys.readouterr().out.startswith("Receptive field size (horizontal) = 11\n")


@pytest.mark.parametrize("args, message", [
    (["--output_node", "outptu"],
     "Output node was not found: unknown output node 'outptu'; did you mean 'output'"),
    (["--input_resolution", "9"], "--input_resolution takes two positive sizes H,W"),
    (["--output_path", "/no/such/folder/rf.txt"], "folder '/no/such/folder' does not exist"),
])
def test_compute_rf_cli_errors_are_one_line(tmp_path, capsys, args, message) -> None:
    from foveal.cli import main

    graph_path = tmp_path / "graph.pbtxt"
    graph_path.write_text(str(build(n1).as_graph_def()))
    base = {"--graph_path": str(graph_path), "--input_node": "input_image", "--output_node": "output"}
    base.update(dict(zip(args[::2], args[1::2])))
    assert main(["compute-rf", *[part for item in base.items() for part in item]]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_input_not_reached_and_unknown_ops() -> None:
    graph = build(n1)
    with pytest.raises(ValueError, match="Input node was not found: 'L1/Conv2D' does not depend on "):
        rf.compute_receptive_field_from_graph_def(graph.as_graph_def(), "L2/Conv2D", "L1/Conv2D")
    patched = tf.Graph()
    with patched.as_default():
        x = image()
        y = tf.image.extract_patches(x, [1, 3, 3, 1], [1, 1, 1, 1], [1, 1, 1, 1], "VALID", name="patches")
        tf.nn.relu(y, name="output")
    with pytest.raises(ValueError, match="Unknown layer for operation 'patches': ExtractImagePatches"):
        values(patched)


def test_where_the_reference_is_wrong_foveal_is_right() -> None:
    """Dilation counts (the reference ignores it and says 3); NCHW is read (the reference reads
    strides[1] as the height stride); an upsampling graph is answered by foveal's engine."""
    graph = tf.Graph()
    with graph.as_default():
        x = image()
        tf.nn.conv2d(x, tf.ones((3, 3, 1, 1)), 1, "VALID", dilations=2, name="dilated")
        up = tf.image.resize(x, (64, 64), "nearest", name="up")
        tf.nn.conv2d(up, tf.ones((3, 3, 1, 1)), 2, "VALID", name="after_up")
    assert values(graph, "dilated") == (5, 5, 1, 1, 0, 0)
    field = rf.compute_receptive_field_from_graph_def(graph, "input_image", "after_up",
                                                      input_resolution=[32, 32])
    assert field.size.tolist() == [2, 2] and field.stride.tolist() == [1, 1]
    nchw = tf.Graph()
    with nchw.as_default():
        x = v1.placeholder(tf.float32, (1, 1, 16, 16), name="input_image")
        tf.nn.conv2d(x, tf.ones((3, 5, 1, 1)), [1, 1, 2, 1], "VALID", data_format="NCHW", name="output")
    assert values(nchw) == (5, 3, 1, 2, 0, 0)


def test_readme_receptive_field_block() -> None:
    from test_readme import python_blocks, run_block

    block = next(b for b in python_blocks() if "compat.receptive_field" in b)
    assert run_block(block) == 3
