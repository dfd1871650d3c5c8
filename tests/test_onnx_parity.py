"""ONNX exports of timm transformers against the PyTorch front-end on the same module, module by
module: Swin (window attention, shifted windows written as torch.roll, patch merging written as a
view), PVT v2 (spatial-reduction attention: keys on a coarser grid), LeViT (attention
downsampling: queries subsampled) and CaiT (class attention: a class token that attends to the
grid, then joins it). Both exporters: TorchScript (`dynamo=False`) and dynamo.

The ONNX front-end follows the same layout model (`foveal.layout`) and the same mixing rule
(`foveal.mixing`) as the PyTorch one, so both must give the same answer: status, size, stride,
padding, output grid and the regions of several positions of every module whose output both
name, and of the model's output. The PyTorch front-end is itself checked against NaN injection
(tests/test_windows.py, tests/test_tokens.py, tests/test_timm_ops.py).

Matching: the TorchScript exporter names nodes after the module scopes
(`/layers/layers.0/blocks/blocks.1/attn/qkv/MatMul`), the dynamo exporter keeps them in each
node's `pkg.torch.onnx.name_scopes` metadata (a Conv it fused a BatchNorm into has the norm's
scope and reads the conv's `<path>.weight`). A module's output is the last node in its scope
(in the file's order, which is the execution order) that foveal analysed; modules called more
than once are skipped (one scope, several outputs).
"""

from __future__ import annotations

import ast
import functools

import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

import onnx_models as OM  # noqa: E402
import torch_models as TM  # noqa: E402
from torch import nn  # noqa: E402

import foveal  # noqa: E402

MODELS = {  # small: few layers, few channels, a small image (random weights)
    "swin": ("swin_tiny_patch4_window7_224",
             {"img_size": 112, "depths": (2, 2), "num_heads": (1, 2), "embed_dim": 16}, 112),
    "pvt_v2": ("pvt_v2_b0", {"depths": (1, 1, 1, 1), "embed_dims": (8, 16, 24, 32),
                             "num_heads": (1, 1, 1, 1)}, 64),
    "levit": ("levit_128s", {"img_size": 64, "depth": (1, 1, 1)}, 64),
    "cait": ("cait_xxs24_224", {"img_size": 32, "patch_size": 8, "depth": 1, "depth_token_only": 1,
                                "embed_dim": 16, "num_heads": 2}, 32),
}
COMPARED = (nn.Conv2d, nn.Linear, nn.LayerNorm)
"""Module types whose every single call must be matched in the export (a check of the matching)."""


@pytest.fixture(scope="module", autouse=True)
def _free_the_models():
    yield
    module.cache_clear()


@functools.cache
def module(key: str) -> nn.Module:
    """timm's backbone (`forward_features`), in eval mode with random weights."""
    name, kwargs, _ = MODELS[key]
    timm = TM.import_timm()
    torch.manual_seed(0)
    return TM.features(timm.create_model(name, pretrained=False, **kwargs)).eval()


def input_shape(key: str) -> tuple[int, int, int, int]:
    size = MODELS[key][2]
    return (1, 3, size, size)


def scopes(node, dynamo: bool) -> list[str]:
    """The module paths a node's scope lies in, outermost first (the wrapper's `inner.` included)."""
    if dynamo:
        meta = {p.key: p.value for p in node.metadata_props}
        found = meta.get("pkg.torch.onnx.name_scopes")
        paths = [s for s in ast.literal_eval(found)[:-1] if s] if found else []
        # a Conv with a BatchNorm fused in has the norm's scope and reads the conv's weight (a
        # random one: the exporter shares equal weights, a norm's ones, between modules)
        weights = [t.removesuffix(".weight") for t in node.input[1:2] if t.endswith(".weight")]
        return paths + [w for w in weights if node.op_type == "Conv" and w.rpartition(".")[0] in paths]
    path = OM.legacy_module_path(node.name)
    if path is None:
        return []
    parts = ["inner", *path.split(".")]
    return [".".join(parts[:k]) for k in range(1, len(parts) + 1)]


def module_outputs(model, analysis, dynamo: bool, paths: set[str]) -> dict[str, str]:
    """Module path -> the foveal node of the last analysed ONNX node in its scope."""
    out: dict[str, str] = {}
    for node in model.graph.node:
        if node.name in analysis:
            for path in scopes(node, dynamo):
                if path in paths:
                    out[path] = node.name
    return out


def positions(shape: tuple) -> list[tuple[int, ...]]:
    """The first, the middle and the last position of an output grid."""
    if not shape or not all(isinstance(n, int) for n in shape):
        return []
    return sorted({tuple(0 for _ in shape), tuple(n // 2 for n in shape), tuple(n - 1 for n in shape)})


def answer(result) -> tuple:
    return (OM.rf(result), [result.region(*p) for p in positions(result.output_shape)],
            [result.region(*p, clip=True) for p in positions(result.output_shape)])


def export(key: str, dynamo: bool, path) -> None:
    try:
        model = OM.export(module(key), input_shape(key), dynamo)
    except Exception as err:  # the exporter's own failure, not foveal's
        if not dynamo:
            raise
        pytest.skip(f"the dynamo exporter cannot export {MODELS[key][0]} here: {type(err).__name__}: {err}")
    onnx.save(model, path)


def check(key: str, dynamo: bool, tmp_path) -> None:
    path = tmp_path / f"{key}.onnx"
    export(key, dynamo, path)
    shape = input_shape(key)
    ta = foveal.receptive_field(module(key), shape)
    oa = foveal.receptive_field(str(path), shape)
    assert oa.unsupported_ops == {}
    assert ta.output.status == oa.output.status == "exact", (oa.output.name, oa.output.reasons)
    assert answer(oa.output) == answer(ta.output)

    named = {n: m for n, m in module(key).named_modules() if n}
    once = {n for n in named if n in ta and f"{n}@2" not in ta}
    found = module_outputs(onnx.load(str(path)), oa, dynamo, once)
    differ = [f"{p} ({found[p]}): torch {answer(ta[p])}, onnx {answer(oa[found[p]])}"
              for p in found if answer(ta[p]) != answer(oa[found[p]])]
    assert not differ, f"{len(differ)} of {len(found)} modules differ:\n" + "\n".join(differ[:5])
    missed = sorted(n for n in once if isinstance(named[n], COMPARED) and n not in found)
    assert not missed, f"modules without an ONNX output: {missed}"
    assert len(found) >= 20


@pytest.mark.parametrize("key", sorted(MODELS))
def test_torchscript_export_agrees_module_by_module(key, tmp_path):
    check(key, False, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(MODELS))
def test_dynamo_export_agrees_module_by_module(key, tmp_path):
    """The dynamo exporter takes 3 to 15 s per model here (its first call more)."""
    check(key, True, tmp_path)
