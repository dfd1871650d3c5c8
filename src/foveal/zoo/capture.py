"""Capturing the zoo from the live frameworks (used by `scripts/capture-zoo` and its test).

Each model is built without weights (torchvision on the meta device, keras.applications with
`weights=None`) and turned into a graph by foveal's own front-end. A torchvision graph is captured
at the model's nominal size and at a second, odd size: when both give the same graph it holds at
every size; otherwise (or when the second capture fails) it holds only at the nominal size. A
Keras model is built with unknown spatial sizes (`include_top=False`, as the benchmark builds
keras.applications), so its graph holds at every size by construction.

torchvision and Keras are imported here only, when a capture runs; torchvision must be importable.
"""

from __future__ import annotations

import gzip
import importlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import graph_json
from ..errors import FovealError
from ..graph import Graph
from . import GRAPHS, INDEX

CLASSIFICATION = "classification"
SEGMENTATION = "segmentation"
DETECTION = "detection backbone"
SECOND_SIZE_OFFSET = 19
"""The second capture is at nominal + 19: odd and a multiple of nothing a network rounds to."""


@dataclass(frozen=True)
class Source:
    """One zoo model: its name, and how to build it."""

    name: str
    framework: str  # 'torchvision' or 'keras'
    builder: str  # torchvision.models.get_model name, or keras.applications attribute
    task: str = CLASSIFICATION
    nominal: int = 224
    options: tuple[tuple[str, Any], ...] = ()
    part: str = ""  # an attribute of the built model to capture instead (a detector's 'backbone')


_TORCHVISION_CLASSIFIERS = (
    "alexnet", "convnext_base", "convnext_large", "convnext_small", "convnext_tiny", "densenet121",
    "densenet161", "densenet169", "densenet201", "efficientnet_b0", "efficientnet_b1", "efficientnet_b2",
    "efficientnet_b3", "efficientnet_b4", "efficientnet_b5", "efficientnet_b6", "efficientnet_b7",
    "efficientnet_v2_l", "efficientnet_v2_m", "efficientnet_v2_s", "googlenet", "inception_v3",
    "maxvit_t", "mnasnet0_5", "mnasnet0_75", "mnasnet1_0", "mnasnet1_3", "mobilenet_v2",
    "mobilenet_v3_large", "mobilenet_v3_small", "regnet_x_16gf", "regnet_x_1_6gf", "regnet_x_32gf",
    "regnet_x_3_2gf", "regnet_x_400mf", "regnet_x_800mf", "regnet_x_8gf", "regnet_y_128gf",
    "regnet_y_16gf", "regnet_y_1_6gf", "regnet_y_32gf", "regnet_y_3_2gf", "regnet_y_400mf",
    "regnet_y_800mf", "regnet_y_8gf", "resnet101", "resnet152", "resnet18", "resnet34", "resnet50",
    "resnext101_32x8d", "resnext101_64x4d", "resnext50_32x4d", "shufflenet_v2_x0_5", "shufflenet_v2_x1_0",
    "shufflenet_v2_x1_5", "shufflenet_v2_x2_0", "squeezenet1_0", "squeezenet1_1", "swin_b", "swin_s",
    "swin_t", "swin_v2_b", "swin_v2_s", "swin_v2_t", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16",
    "vgg16_bn", "vgg19", "vgg19_bn", "vit_b_16", "vit_b_32", "vit_h_14", "vit_l_16", "vit_l_32",
    "wide_resnet101_2", "wide_resnet50_2",
)
"""Every classifier of torchvision 0.28's `list_models(module=torchvision.models)`."""

_NO_INIT = (("init_weights", False),)  # meta weights: nothing to initialise, and no FutureWarning
_NO_BACKBONE_WEIGHTS = (("weights_backbone", None),)  # the default would download them

_SEGMENTATION = ("fcn_resnet50", "fcn_resnet101", "deeplabv3_resnet50", "deeplabv3_resnet101",
                 "deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large")
_DETECTION = (("fasterrcnn_resnet50_fpn", 800), ("fasterrcnn_resnet50_fpn_v2", 800),
              ("fasterrcnn_mobilenet_v3_large_fpn", 800), ("retinanet_resnet50_fpn", 800),
              ("retinanet_resnet50_fpn_v2", 800), ("fcos_resnet50_fpn", 800), ("ssd300_vgg16", 300),
              ("ssdlite320_mobilenet_v3_large", 320))
"""Detectors whose `backbone` is captured, at the size their transform feeds it (the R-CNN family
resizes the shorter side to 800)."""

_KERAS_APPLICATIONS = (
    "ConvNeXtBase", "ConvNeXtLarge", "ConvNeXtSmall", "ConvNeXtTiny", "ConvNeXtXLarge", "DenseNet121",
    "DenseNet169", "DenseNet201", "EfficientNetB0", "EfficientNetB1", "EfficientNetB2", "EfficientNetB3",
    "EfficientNetB4", "EfficientNetB5", "EfficientNetB6", "EfficientNetB7", "EfficientNetV2B0",
    "EfficientNetV2B1", "EfficientNetV2B2", "EfficientNetV2B3", "EfficientNetV2L", "EfficientNetV2M",
    "EfficientNetV2S", "InceptionResNetV2", "InceptionV3", "MobileNet", "MobileNetV2", "MobileNetV3Large",
    "MobileNetV3Small", "NASNetLarge", "NASNetMobile", "ResNet101", "ResNet101V2", "ResNet152",
    "ResNet152V2", "ResNet50", "ResNet50V2", "VGG16", "VGG19", "Xception",
)
"""Every model of keras.applications (Keras 3.15)."""

SOURCES: tuple[Source, ...] = (
    *(Source(n, "torchvision", n, nominal=299 if n == "inception_v3" else 224,
             options=_NO_INIT if n in ("inception_v3", "googlenet") else ())
      for n in _TORCHVISION_CLASSIFIERS),
    *(Source(n, "torchvision", n, SEGMENTATION, 520, _NO_BACKBONE_WEIGHTS) for n in _SEGMENTATION),
    *(Source(f"{n}.backbone", "torchvision", n, DETECTION, size, _NO_BACKBONE_WEIGHTS, "backbone")
      for n, size in _DETECTION),
    *(Source(f"keras.{n}", "keras", n) for n in _KERAS_APPLICATIONS),
)


@dataclass(frozen=True)
class Captured:
    """A captured zoo model: its graph and its index entry."""

    graph: Graph
    entry: dict[str, Any]


def capture(source: Source) -> Captured:
    """The graph of `source`, captured from its live framework."""
    capture_framework = {"torchvision": _capture_torchvision, "keras": _capture_keras}[source.framework]
    graph, fixed = capture_framework(source)
    graph.name = source.name
    entry = {"source": _describe(source), "task": source.task, "captured_at": [source.nominal] * 2,
             "fixed_size": fixed, "input_layout": INPUT_LAYOUT[source.framework], "channels": 3}
    return Captured(graph, entry)


INPUT_LAYOUT = {"torchvision": "channels_first", "keras": "channels_last"}
"""Where the channels sit in each framework's image input (every zoo model takes RGB: 3)."""


def _describe(source: Source) -> str:
    if source.framework == "keras":
        return f"keras.applications.{source.builder}(weights=None, include_top=False)"
    options = ", ".join(f"{k}={v!r}" for k, v in source.options)
    return f"torchvision.models.{source.builder}({options})" + (f".{source.part}" if source.part else "")


def _capture_torchvision(source: Source) -> tuple[Graph, bool]:
    from ..api import receptive_field
    from ..frontend import check_sizes
    from ..pytorch import convert
    from ..pytorch.load import build

    model = build(f"torchvision:{source.builder}", dict(source.options))
    if source.part:
        model = getattr(model, source.part)
    model.eval()
    shape = (1, 3, source.nominal, source.nominal)
    builder = convert(model, shape)
    check_sizes(receptive_field(builder.graph, shape[2:]), builder.expected, "PyTorch")
    second = source.nominal + SECOND_SIZE_OFFSET
    try:
        other = convert(model, (1, 3, second, second)).graph
    except FovealError:
        return builder.graph, True  # fails at another size (a fixed positional embedding)
    return builder.graph, graph_json.graph_to_dict(other) != graph_json.graph_to_dict(builder.graph)


def _capture_keras(source: Source) -> tuple[Graph, bool]:
    keras = importlib.import_module("keras")
    from ..keras import graph_from_model

    keras.backend.clear_session()  # auto-generated layer names restart, whatever was built before
    model = getattr(keras.applications, source.builder)(weights=None, include_top=False,
                                                          input_shape=(None, None, 3))
    graph = graph_from_model(model)
    keras.backend.clear_session()
    return graph, False


def write(captured: Iterable[Captured], folder: Path) -> None:
    """Write the graphs and the index into `folder` (a package's zoo folder). Deterministic bytes:
    gzip without a timestamp, sorted index, so an unchanged capture is an unchanged file."""
    graphs = folder / GRAPHS
    graphs.mkdir(parents=True, exist_ok=True)
    models = {}
    for item in captured:
        text = graph_json.dumps(item.graph) + "\n"
        (graphs / f"{item.graph.name}.json.gz").write_bytes(gzip.compress(text.encode("utf-8"), mtime=0))
        models[item.graph.name] = item.entry
    index = {"format": "foveal-zoo", "version": 1, "captured_with": framework_versions(),
             "models": dict(sorted(models.items()))}
    (folder / INDEX).write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")


def framework_versions() -> dict[str, str]:
    versions = {}
    for package in ("torch", "torchvision", "keras"):
        try:
            versions[package] = importlib.import_module(package).__version__
        except ImportError:
            continue
    return versions


def capture_all(sources: Iterable[Source] = SOURCES,
                progress: Callable[[Source], None] | None = None) -> list[Captured]:
    result = []
    for source in sources:
        if progress:
            progress(source)
        result.append(capture(source))
    return result
