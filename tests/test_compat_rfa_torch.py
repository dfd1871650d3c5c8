"""create_graph_from_pytorch_model: rfa_toolbox's README examples and test numbers on real
torchvision models, and the layers rfa_toolbox gets wrong, checked against PyTorch itself."""

from __future__ import annotations

import shutil

import pytest
import torch
from test_readme import python_blocks, run_block
from torch import nn
from torch.nn import functional as F
from torch_models import import_torchvision, torchvision_model

import foveal
from foveal.compat.rfa_toolbox import (
    create_graph_from_pytorch_model,
    create_graph_from_tensorflow_model,
    input_resolution_range,
    obtain_all_critical_layers,
    obtain_border_layers,
    visualize_architecture,
)
from foveal.errors import FovealError
from foveal.pytorch import verify


def rf(graph, name):
    (node,) = [n for n in graph.all_layers if n.name == name]
    return node.receptive_field_min, node.receptive_field_max


def test_readme_pytorch_example(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    torchvision = import_torchvision()
    model = torchvision.models.alexnet()
    graph = create_graph_from_pytorch_model(model)
    drawing = visualize_architecture(graph, "alexnet_32_pixel", input_res=32)
    assert drawing.source.count("fillcolor=") == len(graph.all_layers)
    # AlexNet cannot run at 32 (its last pool would be empty): feature maps are estimated
    assert "Feature Map Res.: 8 x 8" in drawing.source  # after the 11x11/4 conv: 32 // 4
    if shutil.which("dot"):
        assert (tmp_path / drawing.view()).read_bytes().startswith(b"%PDF")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_foveal_readme_verdict_and_rfa_blocks(tmp_path, monkeypatch) -> None:
    """The README's verdict block and its rfa_toolbox block run; their commented values hold."""
    monkeypatch.chdir(tmp_path)
    import_torchvision()
    blocks = [b for b in python_blocks() if "verdicts()" in b or "compat.rfa_toolbox" in b]
    assert len(blocks) == 2
    assert sum(run_block(b) for b in blocks) == 3
    assert (tmp_path / "resnet50_32.svg").read_text().lstrip().startswith("<?xml")


def test_readme_resolution_range_example() -> None:
    """The README prints (75, 75); rfa_toolbox's own test (and foveal) give (96, 96)."""
    graph = create_graph_from_pytorch_model(torchvision_model("resnet50"))
    assert input_resolution_range(graph, filter_all_inf_rf=False) == ((96, 96), (427, 427))
    assert input_resolution_range(graph) == ((96, 96), (427, 427))


def test_efficientnet_b0_range_with_squeeze_excitation() -> None:
    graph = create_graph_from_pytorch_model(torchvision_model("efficientnet_b0"))
    assert input_resolution_range(graph, filter_all_inf_rf=True) == ((299, 299), (851, 851))
    # the SE branches are global: without the filter their infinite RF reaches the range
    assert input_resolution_range(graph, filter_all_inf_rf=False)[0] == (float("inf"),) * 2
    inf_nodes = [n for n in graph.all_layers if float("inf") in n.receptive_field_max]
    filtered = create_graph_from_pytorch_model(torchvision_model("efficientnet_b0"), filter_rf="inf")
    assert inf_nodes and len([n for n in filtered.all_layers
                              if float("inf") in n.receptive_field_max]) < len(inf_nodes)


@pytest.mark.parametrize("name, expected", [
    ("googlenet", ((123, 123), (379, 379))),
    ("squeezenet1_0", ((67, 67), (155, 155))),
    ("mobilenet_v3_small", ((303, 303), (639, 639))),
    ("convnext_tiny", ((224, 224), (1688, 1688))),
    ("regnet_y_400mf", ((96, 96), (575, 575))),
])
def test_ranges_rfa_toolbox_reports_for_more_models(name, expected) -> None:
    """shared/spec/rfa_toolbox.md §8.3: what rfa_toolbox prints with default options."""
    graph = create_graph_from_pytorch_model(torchvision_model(name), input_res=(1, 3, 224, 224))
    assert input_resolution_range(graph) == expected


def test_verdicts_of_a_captured_model_are_foveals() -> None:
    graph = create_graph_from_pytorch_model(torchvision_model("resnet18"), input_res=(1, 3, 224, 224))
    verdicts = foveal.receptive_field(torchvision_model("resnet18"), (1, 3, 32, 32)).verdicts()
    border = [n.name for n in obtain_border_layers(graph, 32)]
    assert border == verdicts.unproductive(filter_dense=True)  # rfa_toolbox's default filter_dense=True
    critical = [n.name for n in obtain_all_critical_layers(graph, 32)]
    assert critical == verdicts.over_resolution(filter_dense=True)


class Functional(nn.Module):
    """F.conv2d twice: rfa_toolbox raises TypeError in its functional-kernel handler."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(2, 2, 3, 3))

    def forward(self, x):
        return F.conv2d(F.conv2d(x, self.w, padding=1), self.w, padding=1)


class Chunked(nn.Module):
    """A multi-output op: rfa_toolbox fails with 'too many values to unpack'."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(2, 4, 3, padding=1)
        self.left = nn.Conv2d(2, 2, 3, padding=1)
        self.right = nn.Conv2d(2, 2, 5, padding=2)

    def forward(self, x):
        a, b = self.stem(x).chunk(2, dim=1)
        return self.left(a) + self.right(b)


@pytest.mark.parametrize("model, layer, low, high", [
    # dilation: rfa_toolbox says 3 and 5
    (nn.Sequential(nn.Conv2d(2, 2, 3, dilation=2), nn.Conv2d(2, 2, 3, dilation=4)), "1", 13, 13),
    # transposed conv: rfa_toolbox treats it as downsampling and says 7 and 15
    (nn.Sequential(nn.Conv2d(2, 2, 3, 2), nn.ConvTranspose2d(2, 2, 3, 2, padding=1, output_padding=1),
                   nn.Conv2d(2, 2, 3)), "2", 7, 7),
    # upsampling: rfa_toolbox keeps the stride and says 7
    (nn.Sequential(nn.Conv2d(2, 2, 3, 2), nn.Upsample(scale_factor=2), nn.Conv2d(2, 2, 3)), "2", 5, 5),
    (Functional(), "conv2d@2", 5, 5),
    (Chunked(), "add", 5, 7),  # two paths after the chunk: 3 + 2 and 3 + 4
])
def test_layers_rfa_toolbox_gets_wrong(model, layer, low, high) -> None:
    shape = (1, 2, 24, 24)
    graph = create_graph_from_pytorch_model(model, input_res=shape)
    assert rf(graph, layer) == ((low, low), (high, high))
    checks = verify(model, shape).layers.values()
    assert all(check.status == "exact" and not check.mismatches for check in checks)


def test_attention_is_global_not_1x1() -> None:
    """rfa_toolbox gives ViT-B/16 the range (256, 256)-(16, 16): attention counted as 1x1, and the
    patch embedding's kernel multiplied by its own stride."""
    graph = create_graph_from_pytorch_model(torchvision_model("vit_b_16"), input_res=(1, 3, 224, 224))
    low, high = input_resolution_range(graph)
    assert low == high == (16, 16)
    # the query path is position-wise (min RF 16), keys and values are global (max RF inf)
    assert rf(graph, "encoder.layers.encoder_layer_0.self_attention") == ((16, 16), (float("inf"),) * 2)


def test_shufflenet_which_rfa_toolbox_cannot_read() -> None:
    model = torchvision_model("shufflenet_v2_x1_0")
    graph = create_graph_from_pytorch_model(model, input_res=(1, 3, 64, 64))
    native = foveal.receptive_field(model, (1, 3, 64, 64)).input_resolution_range()
    assert input_resolution_range(graph) == (native.minimum, native.maximum)


def test_bad_arguments() -> None:
    with pytest.raises(FovealError, match="full input shape"):
        create_graph_from_pytorch_model(nn.Conv2d(1, 1, 3), input_res=32)
    with pytest.raises(FovealError, match="unknown filter_rf"):
        create_graph_from_pytorch_model(nn.Conv2d(1, 1, 3), filter_rf="min", input_res=(1, 1, 8, 8))
    with pytest.raises(FovealError, match="Keras front-end"):
        create_graph_from_tensorflow_model(object())


@pytest.mark.slow
def test_every_torchvision_classifier_gets_verdicts_a_range_and_a_drawing() -> None:
    """Opt-in sweep (pytest -m slow): no model makes the verdict, range, drawing or compat code fail."""
    from foveal.drawing import analysis_dot

    torchvision = import_torchvision()
    for name in torchvision.models.list_models(module=torchvision.models):
        size = 299 if name == "inception_v3" else 224
        analysis = foveal.receptive_field(torchvision_model(name), (1, 3, size, size))
        verdicts = analysis.verdicts()
        low, high = analysis.input_resolution_range()
        assert all(0 < a <= b for a, b in zip(low, high)) and "[label=" in analysis_dot(analysis, verdicts)
        graph = create_graph_from_pytorch_model(torchvision_model(name), input_res=(1, 3, size, size))
        assert input_resolution_range(graph) == (low, high), name


# -- rfa_toolbox's encodings package (issue 19) ---------------------------------------------------

@pytest.mark.parametrize("size", [224, 399])
def test_vgg16_range_through_the_compat_layer(size) -> None:
    """rfa_toolbox's (212, 212) for torchvision VGG-16 at its default trace size 399 too: the
    adaptive pooling to 7x7 counts as global, as in rfa_toolbox."""
    graph = create_graph_from_pytorch_model(torchvision_model("vgg16"), input_res=(1, 3, size, size))
    assert input_resolution_range(graph) == ((212, 212), (212, 212))


def test_make_graph_analyses_the_module_a_trace_came_from() -> None:
    from foveal.compat.rfa_toolbox.encodings.pytorch.ingest_architecture import (
        create_graph_from_model,
        make_graph,
        traced_input_shape,
    )

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3))
    traced = torch.jit.trace(model, [torch.randn(1, 3, 20, 24)])
    assert traced_input_shape(traced) == (1, 3, 20, 24)
    dot = make_graph(traced, ref_mod=model, filter_rf="inf")
    out = dot.to_graph()
    assert create_graph_from_model is create_graph_from_pytorch_model
    assert (out.receptive_field_min, out.receptive_field_max) == ((8, 8), (8, 8))  # 3, 4, 8
    assert out.compute_feature_map_size((20, 24)) == (7, 9)  # real sizes: 18x22 -> 9x11 -> 7x9
    assert set(dot.layer_definitions) == {n.name for n in out.all_layers}
    assert ("0", "1") in dot.edge_collection
    with pytest.raises(FovealError, match="ref_mod=model"):
        make_graph(traced)


def test_a_digraph_builds_hand_made_nodes_and_warns_about_lone_ones() -> None:
    from foveal.compat.rfa_toolbox.encodings.pytorch.intermediate_graph import Digraph

    dot = Digraph(None)
    with dot.subgraph("cluster") as sub:
        sub.node("a", "Conv 3", kernel_size=3, stride_size=2)
        sub.node("b", "Conv 3", kernel_size=3)
        sub.node("fc", "Dense")
    dot.edge("a", "b")
    dot.edge("b", "fc")
    out = dot.to_graph()
    assert out.name == "fc" and [n.receptive_field_min for n in out.all_layers] == [3, 7, float("inf")]
    lone = Digraph(None)
    lone.node("alone", kernel_size=3)
    with pytest.warns(UserWarning, match="no predecessors and no successors"):
        lone.to_graph()


class Odd(nn.Module):
    """conv 3/1 then max pool 6/2 padding 2: rfa_toolbox's handler describes it as 8/2."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return F.max_pool2d(self.conv(x), 6, 2, 2)


def test_a_registered_custom_layer_is_one_window() -> None:
    from foveal.compat.rfa_toolbox.encodings.pytorch import add_custom_layer_handler
    from foveal.compat.rfa_toolbox.encodings.pytorch.utils import CUSTOM_LAYERS

    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), Odd(), nn.Conv2d(4, 4, 3, padding=1))
    exact = create_graph_from_pytorch_model(model, input_res=(1, 3, 41, 41))
    assert rf(exact, "2")[0] == (14, 14)  # 3, then 3 + 2 and 5 + 5 inside Odd, then 10 + 2 x 2
    add_custom_layer_handler("Odd", lambda module, name: f"{name} 8/2", lambda module: 8, lambda module: 2)
    try:
        described = create_graph_from_pytorch_model(model, input_res=(1, 3, 41, 41), custom_layers=["Odd"])
        (odd,) = [n for n in described.all_layers if n.layer_info.name == "Odd 8/2"]
        assert (odd.layer_info.kernel_size, odd.layer_info.stride_size) == (8, 2)
        assert odd.receptive_field_min == (10, 10) and rf(described, "2")[0] == (14, 14)  # 3 + 7; + 2 x 2
        assert odd.compute_feature_map_size(41) == (20, 20)  # the module's real size, padding found
        assert create_graph_from_pytorch_model(model, custom_layers=["Other"]).all_layers[-1].name == "2"
    finally:
        CUSTOM_LAYERS.pop("Odd", None)


def test_keras_create_graph_from_model_has_a_node_per_layer() -> None:
    keras = pytest.importorskip("keras")
    from foveal.compat.rfa_toolbox.encodings.tensorflow_keras.ingest_architecture import (
        create_graph_from_model,
    )
    from foveal.compat.rfa_toolbox.graphs import KNOWN_FILTER_MAPPING

    inp = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Conv2D(4, 3, strides=2, name="c1")(inp)
    x = keras.layers.Conv2D(4, 3, name="c2")(x)
    model = keras.Model(inp, keras.layers.Dense(2, name="fc")(keras.layers.Flatten(name="flat")(x)))
    graph = create_graph_from_model(model, filter_rf="inf")
    assert [n.name for n in graph.all_layers] == ["image", "c1", "c2", "flat", "fc"]
    assert len(graph.all_layers) == len(model.get_config()["layers"])
    assert all(n.receptive_field_info_filter is KNOWN_FILTER_MAPPING["inf"] for n in graph.all_layers)
    assert [n.receptive_field_min for n in graph.all_layers[1:3]] == [(3, 3), (7, 7)]
