"""Built-in example graphs, hand-built to match torchvision's VGG-16 and ResNet-18 layer by layer.

Node names follow torchvision's module paths; a stage name ('layer4') is an identity node on the
stage's output, so `analysis['layer4']` reads as it does for a captured model.
"""

from __future__ import annotations

from collections.abc import Callable

from . import ops as O
from .graph import Graph


def vgg16() -> Graph:
    g = Graph(2, name="vgg16")
    x = g.input("input")
    index = 0
    for stage in ([64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]):
        for _ in stage:
            x = g.add(f"features.{index}", O.conv(3, padding=1), x, label="Conv2d")
            x = g.add(f"features.{index + 1}", O.elementwise("relu"), x, label="ReLU")
            index += 2
        x = g.add(f"features.{index}", O.max_pool(2, 2), x, label="MaxPool2d")
        index += 1
    x = g.add("features", O.elementwise("identity"), x, label="Sequential")
    x = g.add("avgpool", O.adaptive_pool(7), x, label="AdaptiveAvgPool2d")
    x = g.add("classifier.0", O.dense(), x, label="Linear")
    x = g.add("classifier.1", O.elementwise("relu"), x, label="ReLU")
    x = g.add("classifier.3", O.dense(), x, label="Linear")
    x = g.add("classifier.4", O.elementwise("relu"), x, label="ReLU")
    g.add("classifier.6", O.dense(), x, label="Linear")
    return g


def _basic_block(g: Graph, x: str, prefix: str, stride: int) -> str:
    y = g.add(f"{prefix}.conv1", O.conv(3, stride, 1), x, label="Conv2d")
    y = g.add(f"{prefix}.bn1", O.elementwise("batch_norm"), y, label="BatchNorm2d")
    y = g.add(f"{prefix}.relu1", O.elementwise("relu"), y, label="ReLU")
    y = g.add(f"{prefix}.conv2", O.conv(3, 1, 1), y, label="Conv2d")
    y = g.add(f"{prefix}.bn2", O.elementwise("batch_norm"), y, label="BatchNorm2d")
    if stride != 1:
        x = g.add(f"{prefix}.downsample.0", O.conv(1, stride), x, label="Conv2d")
        x = g.add(f"{prefix}.downsample.1", O.elementwise("batch_norm"), x, label="BatchNorm2d")
    y = g.add(f"{prefix}.add", O.add(), [y, x], label="add")
    return g.add(prefix, O.elementwise("relu"), y, label="BasicBlock")


def resnet18() -> Graph:
    g = Graph(2, name="resnet18")
    x = g.input("input")
    x = g.add("conv1", O.conv(7, 2, 3), x, label="Conv2d")
    x = g.add("bn1", O.elementwise("batch_norm"), x, label="BatchNorm2d")
    x = g.add("relu", O.elementwise("relu"), x, label="ReLU")
    x = g.add("maxpool", O.max_pool(3, 2, 1), x, label="MaxPool2d")
    for stage in range(1, 5):
        for block in range(2):
            stride = 2 if stage > 1 and block == 0 else 1
            x = _basic_block(g, x, f"layer{stage}.{block}", stride)
        x = g.add(f"layer{stage}", O.elementwise("identity"), x, label="Sequential")
    x = g.add("avgpool", O.adaptive_pool(1), x, label="AdaptiveAvgPool2d")
    x = g.add("flatten", O.elementwise("flatten"), x, label="flatten")
    g.add("fc", O.dense(), x, label="Linear")
    return g


EXAMPLES: dict[str, Callable[[], Graph]] = {"vgg16": vgg16, "resnet18": resnet18}
