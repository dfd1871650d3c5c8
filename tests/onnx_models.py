"""Test-only helpers for the ONNX front-end: exports of torchvision models (legacy TorchScript and
dynamo exporters), foveal's naming of ONNX nodes, hand-made graphs, and a Keras model exported to
ONNX in a subprocess (torch backend).

Exports are cached per (model, exporter, size, dynamic) for the whole test session: the legacy
exporter takes well under a second per model, the dynamo exporter 1 to 7 s.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import onnx
import torch
import torch_models as TM
from onnx import TensorProto, helper
from torch import nn

# ops whose ONNX node is one torch module call (the legacy exporter folds BatchNorm into Conv: same RF)
WINDOW_OPS = {"Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"}
WINDOW_MODULES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.MaxPool2d, nn.AvgPool2d,
                  nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
CONV_MODULES = (nn.Conv2d, nn.ConvTranspose2d)


@functools.cache
def torchvision_module(name: str, **kwargs) -> nn.Module:
    """A torchvision model with real (random) CPU weights: the exporters run the model."""
    tv = TM.import_torchvision()
    torch.manual_seed(0)
    return tv.models.get_model(name, weights=None, **kwargs).eval()


def unet() -> nn.Module:
    torch.manual_seed(0)
    return TM.UNet().eval()


def export(module: nn.Module, shape: tuple[int, ...], dynamo: bool, dynamic: bool = False) -> onnx.ModelProto:
    """The model as exported to ONNX, in memory; `dynamic`: H and W (and, legacy, N) symbolic."""
    x = torch.zeros(shape)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if dynamo:
            dynamic_shapes = None
            if dynamic:
                h, w = torch.export.Dim("h", min=16, max=1024), torch.export.Dim("w", min=16, max=1024)
                dynamic_shapes = ({2: h, 3: w},)
            with contextlib.redirect_stdout(io.StringIO()):
                program = torch.onnx.export(module, (x,), dynamo=True, verbose=False,
                                            dynamic_shapes=dynamic_shapes)
            return program.model_proto
        buffer = io.BytesIO()
        axes = {"image": {0: "batch", 2: "height", 3: "width"}} if dynamic else None
        torch.onnx.export(module, (x,), buffer, dynamo=False, input_names=["image"], dynamic_axes=axes)
        return onnx.load_from_string(buffer.getvalue())


@functools.cache
def exported(name: str, dynamo: bool, size: int = 64, dynamic: bool = False, **kwargs) -> onnx.ModelProto:
    module = unet() if name == "unet" else torchvision_module(name, **kwargs)
    return export(module, input_shape(name, size), dynamo, dynamic)


def input_shape(name: str, size: int) -> tuple[int, int, int, int]:
    return (1, 1 if name == "unet" else 3, size, size)


def module_of(name: str, **kwargs) -> nn.Module:
    return unet() if name == "unet" else torchvision_module(name, **kwargs)


def node_names(graph: onnx.GraphProto) -> list[str]:
    """foveal's name of each node: its `name`, or its first output when the name is empty or taken."""
    taken = {i.name for i in graph.input}
    names = []
    for node in graph.node:
        name = node.name if node.name and node.name not in taken else node.output[0]
        taken.add(name)
        names.append(name)
    return names


def legacy_module_path(node_name: str) -> str | None:
    """The TorchScript exporter's scopes -> module path: each scope is the attribute name in the
    parent, a container's child written `parent.i`. `/layer1/layer1.0/conv1/Conv` -> `layer1.0.conv1`,
    `/features/features.1/block/block.1/fc1/Conv` -> `features.1.block.1.fc1`."""
    scopes = node_name.split("/")[1:-1]
    if not node_name.startswith("/") or not scopes:
        return None
    path: list[str] = []
    for previous, scope in zip([None, *scopes], scopes):
        path.append(scope[len(previous) + 1:] if previous and scope.startswith(previous + ".") else scope)
    return ".".join(path)


def rf(result) -> tuple:
    return (result.status, result.size, result.stride, result.padding, result.output_shape)


def rf_no_shape(result) -> tuple:
    return (result.status, result.size, result.stride, result.padding)


# -- hand-made graphs ------------------------------------------------------------------------------


def weight(name: str, shape: tuple[int, ...]) -> TensorProto:
    size = 1
    for s in shape:
        size *= s
    return helper.make_tensor(name, TensorProto.FLOAT, shape, [0.5] * size)


def image_input(name: str = "x", shape: tuple[int, ...] = (1, 1, 32, 32)) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def output_info(name: str = "y") -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["n", "c", "h", "w"])


def conv(inp: str, out: str, name: str, w: str = "w", stride: int = 1, pad: int = 1) -> onnx.NodeProto:
    return helper.make_node("Conv", [inp, w], [out], name=name, kernel_shape=[3, 3], strides=[stride, stride],
                            pads=[pad] * 4)


def model(nodes, inputs=None, outputs=None, initializers=None, opset: int = 17, functions=(),
          extra_opsets=()) -> onnx.ModelProto:
    if initializers is None:
        initializers = [weight("w", (1, 1, 3, 3))]
    graph = helper.make_graph(nodes, "g", inputs or [image_input()], outputs or [output_info()],
                              initializer=initializers)
    opsets = [helper.make_opsetid("", opset), *(helper.make_opsetid(d, v) for d, v in extra_opsets)]
    return helper.make_model(graph, opset_imports=opsets, functions=list(functions))


def small_cnn(opset: int = 17) -> onnx.ModelProto:
    """x -> conv s2 -> relu -> conv -> y."""
    return model([conv("x", "a", "conv1", stride=2), helper.make_node("Relu", ["a"], ["r"], name="relu"),
                  conv("r", "y", "conv2")], opset=opset)


# -- Keras, exported by Keras 3 itself (torch backend, TorchScript exporter) ---------------------------

KERAS_SCRIPT = textwrap.dedent('''
    import json, sys, warnings
    warnings.simplefilter("ignore")
    import keras
    import numpy as np
    import foveal
    assert keras.backend.backend() == "torch"
    L = keras.layers
    inp = keras.Input((32, 48, 3), name="image")
    x = L.Conv2D(8, (3, 5), strides=(1, 2), padding="same", name="c1")(inp)
    x = L.ReLU(name="relu")(L.BatchNormalization(name="bn")(x))
    p = L.MaxPooling2D((2, 3), strides=(2, 1), name="pool")(x)
    a = L.Conv2D(8, 3, padding="same", dilation_rate=(2, 1), name="a")(p)
    b = L.DepthwiseConv2D((3, 1), padding="same", name="b")(p)
    c = L.Concatenate(name="cat")([a, b])
    d = L.Conv2D(4, (3, 2), strides=2, padding="same", name="d")(c)
    u = L.Conv2DTranspose(4, 3, strides=2, padding="same", name="up")(d)
    s = L.Add(name="add")([u, L.Conv2D(4, (1, 3), padding="same", name="skip")(p)])
    out = L.Dense(5, name="head")(L.GlobalAveragePooling2D(name="gap")(s))
    model = keras.Model(inp, out)
    model(np.zeros((1, 32, 48, 3), "float32"))
    model.export(sys.argv[1], format="onnx", verbose=False)
    a = foveal.receptive_field(model, (32, 48))
    layers = {r.name: {"class": type(model.get_layer(r.name)).__name__, **r.to_dict(),
                       "output_shape": list(r.output_shape)}
              for r in a if r.name != "image"}
    json.dump({"output": a.output.name, "layers": layers}, open(sys.argv[2], "w"))
''')


def keras_export(folder: Path) -> tuple[Path, dict]:
    """(the .onnx file, foveal's Keras analysis as JSON); raises RuntimeError with the stderr tail."""
    script, path, result = folder / "keras_export.py", folder / "keras.onnx", folder / "keras.json"
    script.write_text(KERAS_SCRIPT)
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    run = subprocess.run([sys.executable, str(script), str(path), str(result)], env=env, capture_output=True,
                         text=True, timeout=300)
    if run.returncode != 0:
        raise RuntimeError(run.stderr[-3000:])
    return path, json.loads(result.read_text())


def frozen_parameters(model: onnx.ModelProto, feeds: dict) -> onnx.ModelProto:
    """A copy whose computed parameter inputs (Pad's pads, Slice's bounds, Reshape's shape...) are
    initializers holding the values onnx's reference evaluator computes for `feeds`: the graph
    without its shape arithmetic, to tell foveal's layout tracking from its folding."""
    from onnx.reference import ReferenceEvaluator

    produced = [o for node in model.graph.node for o in node.output if o]
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    del probe.graph.output[:]
    probe.graph.output.extend(helper.make_empty_tensor_value_info(o) for o in produced)
    values = dict(zip(produced, ReferenceEvaluator(probe).run(None, feeds)))
    out = onnx.ModelProto()
    out.CopyFrom(model)
    initializers = {t.name for t in out.graph.initializer}
    for node in out.graph.node:
        if node.op_type in ("Shape", "Constant"):
            continue
        for k, name in enumerate(node.input):
            if k and name and name not in initializers and values[name].dtype.kind in "iub" \
                    and values[name].ndim <= 1:
                frozen = f"{name}::frozen"
                if frozen not in initializers:
                    out.graph.initializer.append(onnx.numpy_helper.from_array(values[name], frozen))
                    initializers.add(frozen)
                node.input[k] = frozen
    return out
