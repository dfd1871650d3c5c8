"""GraphDef conversion (first part): every converted node's size equals the shape TensorFlow
infers (padding rules SAME / VALID / explicit, dilation, depthwise, pads, merges), in NHWC and
NCHW, and an op foveal does not convert yet is named in the error."""

from __future__ import annotations

from contextlib import contextmanager

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
        y = tf.image.extract_patches(tf.nn.relu(x), [1, 3, 3, 1], [1, 1, 1, 1], [1, 1, 1, 1], "VALID",
                                     name="patches")
        tf.nn.relu(y, name="after")
    with pytest.raises(UnsupportedOpError, match="'patches' has op 'ExtractImagePatches'"):
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


def test_resizes_reshuffles_and_slices_read_what_tensorflow_differentiates() -> None:
    """The input pixels each feature reads, against the support of TensorFlow's own gradient of
    that feature (random input, so no weight cancels by chance)."""
    import numpy as np

    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, (1, 9, 7, 1), name="image")
        c = tf.nn.conv2d(x, tf.ones((1, 1, 1, 4)), 1, "VALID", name="c")
        interleaved = tf.space_to_batch_nd(tf.nn.relu(x), [2, 2], [[2, 3], [2, 1]], name="s2b")
        atrous = tf.nn.conv2d(interleaved, tf.ones((3, 3, 1, 1)), 1, "VALID", name="inner")
        outputs = {
            "atrous": tf.compat.v1.batch_to_space_nd(atrous, [2, 2], [[1, 0], [0, 1]], name="atrous"),
            "bilinear": tf.compat.v1.image.resize_bilinear(x, (18, 13), name="bilinear"),
            "bilinear_hp": tf.compat.v1.image.resize_bilinear(x, (20, 11), half_pixel_centers=True,
                                                              name="bilinear_hp"),
            "bilinear_ac": tf.compat.v1.image.resize_bilinear(x, (17, 13), align_corners=True,
                                                              name="bilinear_ac"),
            "nearest": tf.compat.v1.image.resize_nearest_neighbor(x, (20, 11), name="nearest"),
            "nearest_hp": tf.compat.v1.image.resize_nearest_neighbor(x, (20, 11), half_pixel_centers=True,
                                                                     name="nearest_hp"),
            "nearest_ac": tf.compat.v1.image.resize_nearest_neighbor(x, (17, 13), align_corners=True,
                                                                     name="nearest_ac"),
            "bicubic": tf.compat.v1.image.resize_bicubic(x, (18, 14), name="bicubic"),
            "bicubic_hp": tf.compat.v1.image.resize_bicubic(x, (20, 11), half_pixel_centers=True,
                                                            name="bicubic_hp"),
            "d2s": tf.nn.depth_to_space(c, 2, name="d2s"),
            "slice": tf.slice(x, [0, 2, 1, 0], [-1, 5, -1, -1], name="slice"),
            "strided": tf.strided_slice(x, [0, 1, 0, 0], [1, -1, 7, 1], [1, 2, 3, 1], name="strided"),
            "t_same": tf.nn.conv2d_transpose(x, tf.ones((3, 4, 1, 1)), (1, 18, 14, 1), 2, "SAME",
                                             name="t_same"),
            "t_valid": tf.nn.conv2d_transpose(x, tf.ones((4, 3, 1, 1)), (1, 20, 16, 1), 2, "VALID",
                                              name="t_valid"),
            "t_dilated": tf.nn.conv2d_transpose(x, tf.ones((3, 3, 1, 1)), (1, 13, 11, 1), 1, "VALID",
                                                dilations=2, name="t_dilated"),
            "t_small_kernel": tf.nn.conv2d_transpose(x, tf.ones((1, 2, 1, 1)), (1, 27, 21, 1), 3,
                                                     "SAME", name="t_small_kernel"),
        }
        pixels = np.random.default_rng(0).random((1, 9, 7, 1)).astype("float32")
        a = foveal.receptive_field(graph_from_graph_def(graph, ["image"]), (9, 7))
        with tf.compat.v1.Session(graph=graph) as session:
            for name, y in outputs.items():
                h, w = y.shape[1], y.shape[2]
                assert a[name].output_shape == (h, w), name
                for i, j in {(0, 0), (h - 1, w - 1), (h // 2, w // 2), (1, w - 2), (h - 2, 1)}:
                    grad = session.run(tf.gradients(y[0, i, j, 0], x)[0], {x: pixels})[0, :, :, 0]
                    rows, cols = np.nonzero(grad)
                    expected = ((rows.min(), rows.max()), (cols.min(), cols.max())) if rows.size else (
                        None, None)  # a transposed conv with stride > kernel leaves holes
                    assert a[name].region(i, j, clip=True) == expected, (name, i, j)


def test_a_scalar_placeholder_is_not_taken_for_the_image() -> None:
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, (1, 8, 8, 3), name="image")
        flag = tf.compat.v1.placeholder(tf.float32, (), name="scale")
        tf.multiply(tf.nn.conv2d(x, tf.ones((3, 3, 3, 2)), 1, "VALID", name="c"), flag, name="scaled")
    a = foveal.receptive_field(graph, (8, 8))
    assert a.input == "image" and a["scaled"].size == (3, 3) and "scale" not in a.graph.nodes


@contextmanager
def tf1_graph():
    """A fresh tf.Graph built with TF1 control flow (Switch / Merge instead of functional If)."""
    graph = tf.Graph()
    tf.compat.v1.disable_control_flow_v2()
    try:
        with graph.as_default():
            yield graph
    finally:
        tf.compat.v1.enable_control_flow_v2()


def test_the_learning_phase_switch_and_merge() -> None:
    """Keras in TF1 graphs: a Switch on the learning phase, dropout on one branch, a Merge."""
    with tf1_graph() as graph:
        x = tf.compat.v1.placeholder(tf.float32, (1, 16, 16, 3), name="image")
        phase = tf.compat.v1.placeholder(tf.bool, (), name="keras_learning_phase")
        y = tf.nn.conv2d(x, tf.ones((3, 3, 3, 2)), 1, "SAME", name="c1")
        z = tf.cond(phase, lambda: tf.nn.dropout(y, rate=0.5), lambda: tf.identity(y), name="drop")
        tf.nn.conv2d(z, tf.ones((3, 3, 2, 2)), 2, "VALID", name="c2")
    assert {n.op for n in graph.as_graph_def().node} >= {"Switch", "Merge"}
    a = foveal.receptive_field(graph, (16, 16))  # dropout's mask follows Shape: not spatial
    assert a.input == "image" and a["c2"].size == (5, 5) and a["c2"].stride == (2, 2)
    assert a["c2"].output_shape == tuple(graph.get_tensor_by_name("c2:0").shape[1:3])


def test_the_notebook_example_inception_v3_in_a_tf1_graph() -> None:
    """The receptive_field notebook: Keras InceptionV3 built in a TF1 graph, output
    conv2d_85/Conv2D, gives RF 1183, stride 32, padding 554 (issue 5; shared/spec §6)."""
    tf_keras = pytest.importorskip("tf_keras")
    with tf1_graph() as graph:  # Keras 2's learning phase as Switch / Merge
        tf_keras.applications.InceptionV3(weights=None)
    a = foveal.receptive_field(graph.as_graph_def(), output="conv2d_85/Conv2D")
    r = a["conv2d_85/Conv2D"]
    assert (r.size, r.stride, r.padding, r.status) == ((1183, 1183), (32, 32), (554, 554), "exact")


def test_a_merge_of_branches_that_read_different_pixels_is_a_bound() -> None:
    with tf1_graph() as graph:
        x = tf.compat.v1.placeholder(tf.float32, (1, 16, 16, 2), name="image")
        flag = tf.compat.v1.placeholder(tf.bool, (), name="flag")
        tf.cond(flag, lambda: tf.nn.conv2d(x, tf.ones((3, 3, 2, 2)), 1, "SAME"), lambda: x, name="pick")
    a = foveal.receptive_field(graph, (16, 16))
    (merge,) = [n for n in a.graph.nodes if a.graph.nodes[n].label == "Merge"]
    assert a[merge].status == "bound" and "upper bound" in " ".join(a[merge].reasons)
    assert a[merge].size == (3, 3)  # the union: the conv branch


def _gradient_region(session, y, x, feed, index):
    """Hull of the input positions with a non-zero gradient of feature `index` of `y`."""
    import numpy as np

    grad = session.run(tf.gradients(y[(0, *index, 0)], x)[0], feed)[0, ..., 0]
    nonzero = np.nonzero(grad)
    return tuple((int(p.min()), int(p.max())) for p in nonzero)


def test_conv1d_is_expand_dims_conv2d_squeeze() -> None:
    """Keras 2's Conv1D and pooling (ExpandDims + Conv2D/MaxPool + Squeeze, the kernel through
    ExpandDims too) on a 1-D graph: causal, dilated SAME, pooling, VALID, against TF's gradient."""
    import numpy as np

    tf_keras = pytest.importorskip("tf_keras")
    with tf1_graph() as graph:
        x = tf_keras.Input((40, 1), name="wave")
        y = tf_keras.layers.Conv1D(1, 5, strides=2, padding="causal", kernel_initializer="ones")(x)
        y = tf_keras.layers.Conv1D(1, 3, dilation_rate=3, padding="same", kernel_initializer="ones")(y)
        y = tf_keras.layers.AveragePooling1D(2)(y)  # max pooling passes one gradient
        out = tf_keras.layers.Conv1D(1, 3, name="last", kernel_initializer="ones")(y)
        init = tf.compat.v1.global_variables_initializer()
    a = foveal.receptive_field(graph, (40,), input="wave")
    node = a[out.op.name]
    assert a.graph.axes == ("T",) and node.output_shape == (out.shape[1],)
    assert (node.size, node.stride) == ((27,), (4,))  # 5, +2*(7-1)=17, +1*2 (pool) = 19, +2*4 = 27
    feed = {x: np.random.default_rng(1).random((1, 40, 1)).astype("float32") + 0.5}
    with tf.compat.v1.Session(graph=graph) as session:
        session.run(init)
        for t in (0, 3, out.shape[1] - 1):
            assert _gradient_region(session, out, x, feed, (t,)) == node.region(t, clip=True)


def test_tf_functions_and_saved_models_are_frozen_first(tmp_path) -> None:
    """A tf.function (a Keras model called inside: a call into the function library, captured
    variables) and a SavedModel signature: TensorFlow inlines and freezes them."""
    tf_keras = pytest.importorskip("tf_keras")
    layers = tf_keras.layers
    model = tf_keras.Sequential([layers.Conv2D(2, 3, 2, padding="same"), layers.BatchNormalization(),
                                 layers.DepthwiseConv2D(3, dilation_rate=2), layers.Dropout(0.5)])
    model.build((None, None, None, 3))
    function = tf.function(model, input_signature=[tf.TensorSpec((1, 32, 32, 3), name="image")])
    saved_model = tf_keras.Sequential([layers.Conv2D(2, 3, 2, padding="same"), layers.DepthwiseConv2D(3)])
    saved_model.build((None, None, None, 3))
    tf.saved_model.save(saved_model, str(tmp_path / "saved"))
    expected = ((3 + 2 * 4,) * 2, (2, 2), (0, 0))  # 3x3/2 SAME (left 0 at 32), 3x3 dilated 2
    for model_like in (function, function.get_concrete_function()):
        out = foveal.receptive_field(model_like, (32, 32)).output
        assert (out.size, out.stride, out.padding) == expected
    saved = foveal.receptive_field(tmp_path / "saved", (32, 32)).output
    assert (saved.size, saved.stride, saved.padding) == ((7, 7), (2, 2), (0, 0))
    with pytest.raises(foveal.FovealError, match="no input_signature"):
        foveal.receptive_field(tf.function(model), (32, 32))


def test_a_condition_computed_from_the_image_makes_the_output_read_all_of_it() -> None:
    @tf.function(input_signature=[tf.TensorSpec((1, 16, 16, 1), name="image")])
    def gated(x):
        y = tf.nn.conv2d(x, tf.ones((3, 3, 1, 1)), 1, "VALID")
        return tf.cond(tf.reduce_mean(y) > 0, lambda: tf.nn.relu(y), lambda: y)

    out = foveal.receptive_field(gated, (16, 16)).output
    assert out.is_global == (True, True) and out.region(0, 0, clip=True) == ((0, 15), (0, 15))


def test_gzipped_graph_files(tmp_path) -> None:
    import gzip

    graph = network(channels_first=False)
    (tmp_path / "g.pb.gz").write_bytes(gzip.compress(graph.as_graph_def().SerializeToString()))
    assert foveal.receptive_field(tmp_path / "g.pb.gz", (33, 31))["pool"].size == (15, 15)
    (tmp_path / "bad.pb.gz").write_bytes(b"not gzip")
    with pytest.raises(foveal.FovealError, match="is not a valid gzip file"):
        foveal.receptive_field(tmp_path / "bad.pb.gz")
