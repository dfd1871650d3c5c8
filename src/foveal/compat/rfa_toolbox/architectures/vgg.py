"""Hand-built VGG graphs: an input node, 3x3 convolutions, 2x2/2 max pools and three dense layers."""

from __future__ import annotations

from ..graphs import EnrichedNetworkNode, LayerDefinition

CONFIGS = {
    "vgg11": [1, "M", 1, "M", 2, "M", 2, "M", 2, "M"],
    "vgg13": [2, "M", 2, "M", 2, "M", 2, "M", 2, "M"],
    "vgg16": [2, "M", 2, "M", 3, "M", 3, "M", 3, "M"],
    "vgg19": [2, "M", 2, "M", 4, "M", 4, "M", 4, "M"],
}


def _node(name: str, layer: LayerDefinition, previous: EnrichedNetworkNode | None) -> EnrichedNetworkNode:
    return EnrichedNetworkNode(name=name, layer_info=layer, predecessors=[previous] if previous else [])


def vgg(config: list) -> EnrichedNetworkNode:
    x = _node("input", LayerDefinition(name="Input", kernel_size=1, stride_size=1), None)
    index = 0
    for item in config:
        if item == "M":
            pool = LayerDefinition(name="MaxPooling", kernel_size=2, stride_size=2)
            x = _node(f"{index}-MaxPooling", pool, x)
            index += 1
            continue
        for _ in range(item):
            x = _node(f"{index}-Conv3x3-BatchNorm-ReLU",
                      LayerDefinition(name="Conv3x3-BatchNorm-ReLU", kernel_size=3, stride_size=1), x)
            index += 1
    for name in ("Readout", "Dense", "Softmax"):
        x = _node(name, LayerDefinition(name="DenseLayer"), x)
    return x


def vgg11() -> EnrichedNetworkNode:
    return vgg(CONFIGS["vgg11"])


def vgg13() -> EnrichedNetworkNode:
    return vgg(CONFIGS["vgg13"])


def vgg16() -> EnrichedNetworkNode:
    return vgg(CONFIGS["vgg16"])


def vgg19() -> EnrichedNetworkNode:
    return vgg(CONFIGS["vgg19"])
