"""google-research/receptive_field's own test suite, run with only its imports changed (issue 19):
every module path the reference's tests import exists under foveal.compat.receptive_field and
re-exports foveal's implementation, and the behaviours its three test modules check hold through
those paths, on the tf.nn network and on its tf_keras twin, with variables and frozen, at an
unknown and a fixed input size. Expected numbers come from the layers' definitions (ORACLE below),
not from foveal. How to run the reference's files themselves: docs/compat-receptive-field.md."""

from __future__ import annotations

import importlib
import math
import re
import subprocess
import sys

import pytest

tf = pytest.importorskip("tensorflow")
import foveal.compat.receptive_field as rf  # noqa: E402
from foveal.compat.receptive_field import graph_compute_order as order_impl  # noqa: E402
from foveal.compat.receptive_field import parse_layer_parameters as params_impl  # noqa: E402
from foveal.compat.receptive_field import receptive_field_computation as rf_impl  # noqa: E402

v1 = tf.compat.v1

SUBSTITUTION = (re.compile(r"^(from|import) receptive_field\b", re.MULTILINE),
                r"\1 foveal.compat.receptive_field")
"""The plain prefix substitution of the docs' sed command, on import lines only (the suite also
has variables called receptive_field_x, which must stay)."""


def substituted(source: str) -> str:
    pattern, replacement = SUBSTITUTION
    return pattern.sub(replacement, source)


REFERENCE_IMPORTS = {
    # the test modules
    "import receptive_field as rf": {"rf": rf},
    "from receptive_field.python.util import graph_compute_order": {"graph_compute_order": order_impl},
    "from receptive_field.python.util import parse_layer_parameters": {"parse_layer_parameters": params_impl},
    # the package itself (its __init__, its modules, examples/compute_rf.py)
    "from receptive_field.python.util.graph_compute_order import get_compute_order":
        {"get_compute_order": order_impl.get_compute_order},
    "from receptive_field.python.util.receptive_field_computation import "
    "compute_receptive_field_from_graph_def":
        {"compute_receptive_field_from_graph_def": rf_impl.compute_receptive_field_from_graph_def},
}
"""Each import statement of the reference package -> what it binds, as foveal's implementation.
A module binding is checked by its public names (the re-export module is not the implementation
module, but every name in it is the implementation's object)."""

PUBLIC = {
    "graph_compute_order": (order_impl, ["get_compute_order", "parse_graph_nodes"]),
    "parse_layer_parameters": (params_impl, ["get_layer_params"]),
    "receptive_field_computation": (rf_impl, ["ReceptiveField", "compute_receptive_field_from_graph_def"]),
}
"""The reference's modules under python/util and their public names."""


@pytest.mark.parametrize("statement", sorted(REFERENCE_IMPORTS))
def test_substituted_import_binds_foveals_implementation(statement: str) -> None:
    namespace: dict = {}
    exec(substituted(statement), namespace)
    for name, expected in REFERENCE_IMPORTS[statement].items():
        bound = namespace[name]
        if name in PUBLIC:
            impl, names = PUBLIC[name]
            assert bound.__name__ == f"foveal.compat.receptive_field.python.util.{name}"
            assert all(getattr(bound, public) is getattr(impl, public) for public in names)
        else:
            assert bound is expected


def test_the_substitution_touches_import_lines_only() -> None:
    source = ("import receptive_field as rf\n"
              "import receptive_field\n"
              "from receptive_field.python.util import graph_compute_order\n"
              "receptive_field = rf.compute_receptive_field_from_graph_def(g, 'a', 'b')\n"
              "  receptive_field_x, receptive_field_y = receptive_field.size\n")
    assert substituted(source).splitlines() == [
        "import foveal.compat.receptive_field as rf",
        "import foveal.compat.receptive_field",
        "from foveal.compat.receptive_field.python.util import graph_compute_order",
        *source.splitlines()[3:]]


REFERENCE_MODULES = ["receptive_field", "receptive_field.python", "receptive_field.python.util",
                     "receptive_field.python.util.graph_compute_order",
                     "receptive_field.python.util.parse_layer_parameters",
                     "receptive_field.python.util.receptive_field_computation",
                     "receptive_field.python.util.examples",
                     "receptive_field.python.util.examples.compute_rf"]
"""Every module of the reference package that has a counterpart (its other examples build
TF-slim networks; see the docs)."""


@pytest.mark.parametrize("module", REFERENCE_MODULES)
def test_every_module_path_of_the_reference_exists(module: str) -> None:
    loaded = importlib.import_module(substituted(f"import {module}").split()[1])
    leaf = module.rsplit(".", 1)[-1]
    if leaf in PUBLIC:
        impl, names = PUBLIC[leaf]
        assert set(names) <= set(loaded.__all__)
        assert all(getattr(loaded, name) is getattr(impl, name) for name in names)


def test_the_package_exports_the_reference_api() -> None:
    assert rf.get_compute_order is order_impl.get_compute_order
    assert rf.compute_receptive_field_from_graph_def is rf_impl.compute_receptive_field_from_graph_def


# The reference's test network of graph_compute_order_test and parse_layer_parameters_test:
# name -> (kernel, stride, padding) with padding "VALID", "SAME" or (before, after) of a Pad, or
# None for a layer that changes no position (ReLU, Add).
NETWORK = {
    "input_image": None,
    "L1/Conv2D": (1, 4, "VALID"),
    "L2_pad": (1, 1, (1, 0)),
    "L2/Conv2D": (3, 2, "VALID"),
    "L3/MaxPool": (3, 2, "SAME"),
    "L4_relu": None,
    "L5/Conv2D": (1, 2, "SAME"),
    "L6/Conv2D": (3, 2, "SAME"),
    "L7_add": None,
}
KERAS_NAMES = {"L2_pad": "L2_pad/Pad", "L4_relu": "L4_relu/Relu", "L7_add": "L7_add/add"}
"""Where the Keras twin's node is an op inside the layer's scope."""
SIZES_AT_224 = {"input_image": [224, 224], "L1/Conv2D": [224, 224], "L2_pad": [224, 224],
                "L2/Conv2D": [225, 225], "L3/MaxPool": [112, 112], "L4_relu": [56, 56],
                "L5/Conv2D": [56, 56], "L6/Conv2D": [56, 56], "L7_add": [28, 28]}
"""Each node's input size when the image is 224 (input_image: its own output)."""


def oracle(layer: tuple | None, n: int | None) -> tuple:
    """The reference's 8-tuple (kx, ky, sx, sy, px, py, total_x, total_y) of a square layer from
    its definition: VALID pads nothing; SAME pads max(k - (n mod s or s), 0) in all, half before
    (rounded down), unknown without n unless k == 1 or s == 1; Pad is a 1x1 window with its
    before-padding as p and the sum as total."""
    if layer is None:
        return (1, 1, 1, 1, 0, 0, 0, 0)
    k, s, padding = layer
    if padding == "VALID":
        before, total = 0, 0
    elif padding == "SAME" and n is not None:
        total = max(k - (n % s or s), 0)
        before = total // 2
    elif padding == "SAME":
        before, total = ((k - 1) // 2, k - 1) if k == 1 or s == 1 else (None, None)
    else:
        before, total = padding[0], sum(padding)
    return (k, k, s, s, before, before, total, total)


def output_of(layer: tuple | None, n: int) -> int:
    """Output length at input length n: VALID ceil((n - k + 1) / s), SAME ceil(n / s), Pad n + padding."""
    if layer is None:
        return n
    k, s, padding = layer
    if padding == "SAME":
        return math.ceil(n / s)
    if padding == "VALID":
        return math.ceil((n - k + 1) / s)
    return n + sum(padding)


def test_the_oracle_agrees_with_tensorflow() -> None:
    """SIZES_AT_224 and the oracle's output sizes are TensorFlow's own: the network run on a
    224 x 224 image, each node's input size being its data predecessor's output size."""
    import numpy as np

    graph = network(keras=False, resolution=224)
    with v1.Session(graph=graph) as session:
        session.run(v1.global_variables_initializer())
        shapes = dict(zip(NETWORK, session.run([tf.shape(graph.get_tensor_by_name(f"{name}:0"))
                                                for name in NETWORK],
                                               {"input_image:0": np.zeros((1, 224, 224, 1))})))
    for name, predecessor in PREDECESSOR.items():
        assert SIZES_AT_224[name] == list(shapes[predecessor][1:3]), name
        n = SIZES_AT_224[name][0]
        assert list(shapes[name][1:3]) == [output_of(NETWORK[name], n)] * 2, name


PREDECESSOR = {"L1/Conv2D": "input_image", "L2_pad": "input_image", "L2/Conv2D": "L2_pad",
               "L3/MaxPool": "L2/Conv2D", "L4_relu": "L3/MaxPool", "L5/Conv2D": "L4_relu",
               "L6/Conv2D": "L4_relu", "L7_add": "L5/Conv2D"}
"""A data predecessor of each node (through bias and ReLU, which keep sizes)."""


def network(keras: bool, resolution: int | None):
    """The reference's test network (slim's conv2d: a kernel variable, a bias, a ReLU), written
    with tf.nn or with tf_keras layers named as the reference's Keras version names them."""
    graph = tf.Graph()
    with graph.as_default():
        shape = (1, resolution, resolution, 1)
        if keras:
            tf_keras = pytest.importorskip("tf_keras")
            layers = tf_keras.layers
            x = tf_keras.Input(shape[1:], batch_size=1, name="input_image")
            l1 = layers.Conv2D(1, 1, 4, "valid", name="L1")(x)
            l2 = layers.Conv2D(1, 3, 2, "valid", name="L2")(layers.ZeroPadding2D(((1, 0), (1, 0)),
                                                                                  name="L2_pad")(x))
            l3 = layers.MaxPool2D(3, 2, "same", name="L3")(l2)
            l4 = layers.ReLU(name="L4_relu")(l1 + l3)
            l5 = layers.Conv2D(1, 1, 2, "same", name="L5")(l4)
            l6 = layers.Conv2D(1, 3, 2, "same", name="L6")(l4)
            tf_keras.Model(x, layers.Add(name="L7_add")([l5, l6]))
            return graph
        x = v1.placeholder(tf.float32, shape, name="input_image")

        def conv(t, k, s, padding, scope):
            with v1.variable_scope(scope):
                w = v1.get_variable("weights", (k, k, 1, 1))
                b = v1.get_variable("biases", (1,))
                return tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(t, w, s, padding, name="Conv2D"), b))

        l1 = conv(x, 1, 4, "VALID", "L1")
        l2 = conv(tf.pad(x, [[0, 0], [1, 0], [1, 0], [0, 0]], name="L2_pad"), 3, 2, "VALID", "L2")
        l3 = tf.nn.max_pool2d(l2, 3, 2, "SAME", name="L3/MaxPool")
        l4 = tf.nn.relu(l1 + l3, name="L4_relu")
        tf.add(conv(l4, 1, 2, "SAME", "L5"), conv(l4, 3, 2, "SAME", "L6"), name="L7_add")
    return graph


def graph_def_of(graph, frozen: bool, output: str):
    if not frozen:
        return graph.as_graph_def()
    with v1.Session(graph=graph) as session:
        session.run(v1.global_variables_initializer())
        graph_def = v1.graph_util.convert_variables_to_constants(session, graph.as_graph_def(), [output])
    assert not {node.op for node in graph_def.node} & {"VariableV2", "VarHandleOp", "ReadVariableOp"}
    return graph_def


@pytest.mark.parametrize("keras", [False, True], ids=["tf", "keras"])
@pytest.mark.parametrize("frozen", [False, True], ids=["variables", "frozen"])
@pytest.mark.parametrize("resolution", [None, 224], ids=["unknown-size", "224"])
def test_get_layer_params_through_the_reference_paths(keras, frozen, resolution) -> None:
    from foveal.compat.receptive_field.python.util import graph_compute_order, parse_layer_parameters

    name = KERAS_NAMES["L7_add"] if keras else "L7_add"
    nodes = graph_compute_order.parse_graph_nodes(graph_def_of(network(keras, resolution), frozen, name))
    for layer, definition in NETWORK.items():
        if layer == "input_image":
            continue
        node = nodes[KERAS_NAMES.get(layer, layer) if keras else layer]
        # the placeholder's static size is not read: without input_resolution SAME stays unknown
        got = parse_layer_parameters.get_layer_params(node, nodes)
        assert got == oracle(definition, None), layer
        for n in (4, 5):
            got = parse_layer_parameters.get_layer_params(node, nodes, input_resolution=[n, n])
            assert got == oracle(definition, n), (layer, n)
    assert oracle(NETWORK["L3/MaxPool"], 4)[4:] == (0, 0, 1, 1)  # the reference's even case
    assert oracle(NETWORK["L6/Conv2D"], 5)[4:] == (1, 1, 2, 2)  # and its odd one


@pytest.mark.parametrize("keras", [False, True], ids=["tf", "keras"])
def test_get_compute_order_through_the_package(keras) -> None:
    graph_def = network(keras, None).as_graph_def()
    rename = KERAS_NAMES if keras else {}
    for name, size in (("", None), ("input_image", None), ("input_image", [224, 224])):
        info, name_to_node = rf.get_compute_order(graph_def, input_node_name=name, input_node_size=size)
        assert set(info) == set(name_to_node) == {node.name for node in graph_def.node}
        seen: set[str] = set()
        for node_name, entry in sorted(info.items(), key=lambda item: item[1].order):
            assert entry.node is name_to_node[node_name]
            if node_name != name:
                sources = {ref.lstrip("^").split(":")[0] for ref in entry.node.input}
                assert sources <= seen, node_name
            seen.add(node_name)
    for layer, size_in in SIZES_AT_224.items():
        entry = info[rename.get(layer, layer)]
        expected_in = None if layer == "input_image" else size_in
        assert entry.input_size == expected_in, layer
        assert entry.output_size == [output_of(NETWORK[layer], size_in[0])] * 2, layer


def test_compute_rf_through_the_reference_module_on_a_frozen_keras_graph() -> None:
    """The reference's intermediate-add network (its create_test_network_8_keras), frozen:
    RF 11, stride 8, padding 5 per axis, as its test expects for the unfrozen graph."""
    tf_keras = pytest.importorskip("tf_keras")
    from foveal.compat.receptive_field.python.util import receptive_field_computation as computation

    layers = tf_keras.layers
    graph = tf.Graph()
    with graph.as_default():
        x = tf_keras.Input([None, None, 1], name="input_image")
        l2 = layers.Conv2D(1, 3, 2, "valid", name="L2")(layers.ZeroPadding2D(((1, 0), (1, 0)))(x))
        l4 = layers.ReLU(name="L4_relu")(layers.Conv2D(1, 1, 4, "valid", name="L1")(x)
                                         + layers.Conv2D(1, 1, 2, "same", name="L3")(l2))
        l6 = layers.Conv2D(1, 3, 2, "valid", name="L6")(layers.ZeroPadding2D(((1, 0), (1, 0)))(l4))
        layers.ReLU(name="output")(layers.Conv2D(1, 1, 2, "valid", name="L5")(l4) + l6)
    graph_def = graph_def_of(graph, True, "output/Relu")
    field = computation.compute_receptive_field_from_graph_def(graph_def, "input_image", "output/Relu")
    assert isinstance(field, computation.ReceptiveField)
    assert tuple(field) == (11, 11, 8, 8, 5, 5)


def test_the_reference_example_script_runs_at_its_path(tmp_path) -> None:
    """python -m ...python.util.examples.compute_rf, the reference's script with its four flags."""
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, (None, None, None, 1), name="input_image")
        tf.nn.conv2d(x, tf.ones((3, 5, 1, 1)), 2, "VALID", name="output")
    graph_path = tmp_path / "graph.pbtxt"
    graph_path.write_text(str(graph.as_graph_def()))
    out = tmp_path / "rf_info.txt"
    script = "foveal.compat.receptive_field.python.util.examples.compute_rf"
    done = subprocess.run([sys.executable, "-m", script, "--graph_path", str(graph_path),
                           "--output_path", str(out), "--input_node", "input_image",
                           "--output_node", "output"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert out.read_text().splitlines() == [
        "Receptive field size (horizontal) = 5", "Receptive field size (vertical) = 3",
        "Effective stride (horizontal) = 2", "Effective stride (vertical) = 2",
        "Effective padding (horizontal) = 0", "Effective padding (vertical) = 0"]


def test_the_reference_paths_name_the_extra_on_a_core_only_install() -> None:
    """Without numpy and protobuf the packages import, and each module says what to install."""
    from core_only import run_core_only

    done = run_core_only(script="""
        import foveal.compat.receptive_field.python.util.examples
        from foveal.errors import FovealError
        for leaf in ("graph_compute_order", "parse_layer_parameters", "receptive_field_computation"):
            try:
                __import__(f"foveal.compat.receptive_field.python.util.{leaf}")
            except FovealError as error:
                print(leaf, str(error).endswith("install foveal[tensorflow]"))
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["graph_compute_order", "True", "parse_layer_parameters", "True",
                                   "receptive_field_computation", "True"]
