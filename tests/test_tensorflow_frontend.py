"""TensorFlow's front-end (foveal.tensorflow.frontend): handlers= by TF op name, the op table,
and input shapes read in the graph's layout. The GraphDefs are built with foveal's own schema
classes (tests/graphdefs.py), so no TensorFlow is needed."""

from __future__ import annotations

from collections import Counter

import pytest
from graphdefs import FLOAT, const, new_graph, new_node, placeholder

pytest.importorskip("google.protobuf")

import foveal  # noqa: E402
from foveal.errors import InvalidParameterError, UnsupportedOpError  # noqa: E402
from foveal.tensorflow.convert import TABLE, Converter  # noqa: E402


def blurred(channels_first: bool = False, channels: int = 3):
    """image -> conv 3x3 VALID -> MyBlur (a custom op, radius 1) -> Relu."""
    g = new_graph()
    placeholder(g, "image", (1, channels, -1, -1) if channels_first else (1, -1, -1, channels))
    const(g, "w", [3, 3, 3, 8], dtype=FLOAT)
    fmt = b"NCHW" if channels_first else b"NHWC"
    new_node(g, "conv", "Conv2D", "image", "w", strides=[1, 1, 1, 1], padding=b"VALID", data_format=fmt)
    new_node(g, "blur", "MyBlur", "conv", radius=1)
    new_node(g, "out", "Relu", "blur")
    return g


def test_a_custom_op_handled_as_a_conv() -> None:
    a = foveal.receptive_field(blurred(), (16, 12), handlers={"MyBlur": foveal.conv(3, padding=1)})
    assert a["blur"].size == (5, 5) and a["blur"].output_shape == (14, 10)
    assert a["out"].size == (5, 5) and a["out"].padding == (1, 1)


def test_a_handler_may_read_the_node_def() -> None:
    def blur(node):
        radius = node.attr["radius"].i
        return foveal.conv(2 * radius + 1, padding=radius)

    a = foveal.receptive_field(blurred(), (16, 12), handlers={"MyBlur": blur})
    assert a["out"].size == (5, 5)


def test_without_a_handler_the_error_names_the_node_and_how_to_add_one() -> None:
    with pytest.raises(UnsupportedOpError, match=r"node 'blur' has op 'MyBlur'.*handlers=\{'TheOpName'"):
        foveal.receptive_field(blurred(), (16, 12))
    for handlers, unhandled in (({}, Counter({"MyBlur": 1})), ({"MyBlur": foveal.conv(3)}, Counter())):
        converter = Converter(blurred(), handlers=handlers)
        converter.graph()
        assert converter.unhandled == unhandled


def test_the_callers_handlers_win_and_stay_in_their_call() -> None:
    a = foveal.receptive_field(blurred(), (16, 12), handlers={"MyBlur": foveal.conv(1),
                                                              "Relu": foveal.conv(5)})
    assert a["out"].size == (7, 7)
    assert "MyBlur" not in TABLE and TABLE.extras == {}
    with pytest.raises(UnsupportedOpError):
        foveal.receptive_field(blurred(), (16, 12))


def test_a_bad_handler_is_named() -> None:
    with pytest.raises(InvalidParameterError, match="op names"):
        foveal.receptive_field(blurred(), (16, 12), handlers={3: foveal.conv(3)})
    with pytest.raises(InvalidParameterError, match=r"handlers\['MyBlur'\] must be a foveal op"):
        foveal.receptive_field(blurred(), (16, 12), handlers={"MyBlur": 3})
    with pytest.raises(InvalidParameterError, match="returned None at node 'blur'"):
        foveal.receptive_field(blurred(), (16, 12), handlers={"MyBlur": lambda node: None})


HANDLED = {"MyBlur": foveal.conv(3, padding=1)}


def test_a_full_input_shape_is_read_nhwc() -> None:
    a = foveal.receptive_field(blurred(), (1, 16, 12, 3), handlers=HANDLED)
    assert a["out"].output_shape == (14, 10)
    layout = r"contradicts .* \(N, H, W, C\).* C = 3.*give \(1, 16, 12, 3\)"
    with pytest.raises(InvalidParameterError, match=layout):
        foveal.receptive_field(blurred(), (1, 3, 16, 12), handlers=HANDLED)


def test_a_full_input_shape_is_read_nchw_when_the_ops_say_so() -> None:
    a = foveal.receptive_field(blurred(channels_first=True), (1, 3, 16, 12), handlers=HANDLED)
    assert a["out"].output_shape == (14, 10)
    with pytest.raises(InvalidParameterError, match=r"\(N, C, H, W\)"):
        foveal.receptive_field(blurred(channels_first=True), (1, 16, 12, 3), handlers=HANDLED)


def test_spatial_sizes_and_unrecorded_channels() -> None:
    """Spatial sizes as before; a placeholder without a channel count takes any."""
    graph = blurred(channels=-1)
    assert foveal.receptive_field(graph, (1, 16, 12, 5), handlers=HANDLED)["out"].output_shape == (14, 10)
    assert foveal.receptive_field(graph, 16, handlers=HANDLED)["out"].output_shape == (14, 14)
    by_name = foveal.receptive_field(blurred(), {"image": (1, 16, 12, 3)}, input="image", handlers=HANDLED)
    assert by_name["out"].output_shape == (14, 10)
    with pytest.raises(InvalidParameterError, match="input 'image' of the TensorFlow graph"):
        foveal.receptive_field(blurred(), {"image": (1, 3, 16, 12)}, handlers=HANDLED)
    with pytest.raises(InvalidParameterError, match="does not fit"):
        foveal.receptive_field(blurred(), (1, 16, 12), handlers=HANDLED)
