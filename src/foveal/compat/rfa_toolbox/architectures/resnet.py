"""Hand-built ResNet graphs as rfa_toolbox draws them: a 7x7/2 conv and 3x3/2 pool stem without an
input node, four stages of basic or bottleneck blocks (3x3 and 1x1 conv-BN-ReLU units, a 1x1/2
projection on the first block of stages 1-3), a "global pooling" node of kernel 1 and a dense layer."""

from __future__ import annotations

from collections.abc import Callable

from ..graphs import EnrichedNetworkNode, LayerDefinition

Block = Callable[[EnrichedNetworkNode, int, int, int], EnrichedNetworkNode]


def _unit(previous: EnrichedNetworkNode, prefix: str, kernel: int, stride: int) -> EnrichedNetworkNode:
    name = f"Conv{kernel}x{kernel}-BatchNorm-ReLU"
    return EnrichedNetworkNode(name=f"{prefix}-{name}", predecessors=[previous],
                               layer_info=LayerDefinition(name=name, kernel_size=kernel, stride_size=stride))


def _join(block_input: EnrichedNetworkNode, last: EnrichedNetworkNode, stage: int, block: int,
          stride: int) -> EnrichedNetworkNode:
    skip = block_input if stride == 1 else EnrichedNetworkNode(
        name=f"BlockSkip{stage}-SkipDownsample", predecessors=[block_input],
        layer_info=LayerDefinition(name="1x1Conv-Projection", kernel_size=1, stride_size=2))
    return EnrichedNetworkNode(name=f"Stage{stage}-Block{block}-Addition", predecessors=[skip, last],
                               layer_info=LayerDefinition(name="Addition", kernel_size=1, stride_size=1))


def residual_block(x: EnrichedNetworkNode, stage: int, block: int, stride: int = 1) -> EnrichedNetworkNode:
    y = _unit(x, f"Stage{stage}-Block{block}-0", 3, stride)
    y = _unit(y, f"Stage{stage}-Block{block}-1", 3, 1)
    return _join(x, y, stage, block, stride)


def bottleneck(x: EnrichedNetworkNode, stage: int, block: int, stride: int = 1) -> EnrichedNetworkNode:
    y = _unit(x, f"Stage{stage}-Block{block}-0", 1, stride)
    y = _unit(y, f"Stage{stage}-Block{block}-1", 3, 1)
    y = _unit(y, f"Stage{stage}-Block{block}-2", 1, 1)
    return _join(x, y, stage, block, stride)


def resnet(stages: list[int], block: Block) -> EnrichedNetworkNode:
    x = EnrichedNetworkNode(name="StemConv", predecessors=[],
                            layer_info=LayerDefinition(name="Conv7x7", kernel_size=7, stride_size=2))
    x = EnrichedNetworkNode(name="StemPool", predecessors=[x],
                            layer_info=LayerDefinition(name="MaxPool3x3", kernel_size=3, stride_size=2))
    for stage, count in enumerate(stages):
        for i in range(count):
            x = block(x, stage, i, 2 if stage > 0 and i == 0 else 1)
    x = EnrichedNetworkNode(name="GlobalAveragePooling", predecessors=[x],
                            layer_info=LayerDefinition(name="Global Average Pooling", kernel_size=1))
    return EnrichedNetworkNode(name="Softmax", predecessors=[x],
                               layer_info=LayerDefinition(name="DenseLayer"))


def resnet18() -> EnrichedNetworkNode:
    return resnet([2, 2, 2, 2], residual_block)


def resnet36() -> EnrichedNetworkNode:
    return resnet([3, 4, 6, 3], residual_block)


def resnet50() -> EnrichedNetworkNode:
    return resnet([3, 4, 6, 3], bottleneck)


def resnet101() -> EnrichedNetworkNode:
    return resnet([3, 4, 23, 3], bottleneck)


def resnet152() -> EnrichedNetworkNode:
    return resnet([3, 8, 36, 3], bottleneck)
