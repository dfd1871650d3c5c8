"""Raw-signal models, analysed at `input_shape=(N, L)` (the model adds its own channel dim):
Hugging Face's wav2vec2 against golden values and the NaN oracle, frame by frame.

wav2vec2's feature encoder is seven convolutions, kernels (10, 3, 3, 3, 3, 2, 2) and strides
(5, 2, 2, 2, 2, 2, 2): a frame reads 400 samples every 320 (25 ms every 20 ms at 16 kHz). Its
positional embedding is a grouped Conv1d of k frames with padding k / 2 whose last output is
dropped (`Wav2Vec2SamePadLayer`), so frame i reads frames i - k/2 .. i + k/2 - 1. Attention then
makes every frame global. With `feat_extract_norm="group"` the first conv is followed by a
GroupNorm with one group per channel, which normalises over time: everything after it is global.

fx cannot trace the Hugging Face model (it iterates and assigns into proxies); `capture="auto"`
falls back to torch.export.
"""

from __future__ import annotations

import pytest
import torch
import torch_models as TM

import foveal
from foveal.pytorch import verify

TM.import_torchvision()  # transformers' lazy imports reach torchvision (see torch_models)
transformers = pytest.importorskip("transformers")

FRAME_SIZE, FRAME_STRIDE = 400, 320


def wav2vec2(norm: str, **overrides):
    """A Wav2Vec2Model with one transformer layer; "layer" is the large/lv60 variant (layer norm
    after each conv, pre-norm transformer), "group" the base variant."""
    config = dict(num_hidden_layers=1, feat_extract_norm=norm, do_stable_layer_norm=norm == "layer",
                  apply_spec_augment=False)
    config.update(overrides)
    torch.manual_seed(0)
    return transformers.Wav2Vec2Model(transformers.Wav2Vec2Config(**config)).eval()


def tiny(norm: str):
    """Standard conv kernels and strides with 8 channels, hidden size 16, a positional conv of
    4 frames: small enough for verify's batch of L samples."""
    return wav2vec2(norm, hidden_size=16, num_attention_heads=2, intermediate_size=32, conv_dim=(8,) * 7,
                    num_conv_pos_embeddings=4, num_conv_pos_embedding_groups=4)


def frames(first: int, last: int) -> tuple[int, int]:
    """The samples read by frames first..last of the feature encoder."""
    return (first * FRAME_STRIDE, last * FRAME_STRIDE + FRAME_SIZE - 1)


def test_wav2vec2_standard_sizes_at_one_second() -> None:
    """The real widths (512-channel encoder, 768 hidden, positional conv of 128 frames in 16
    groups) on meta weights at 16 kHz: 49 frames."""
    model = wav2vec2("layer").to("meta")
    result = foveal.receptive_field(model, (1, 16000))
    for name in ("feature_extractor", "encoder.pos_conv_embed", "encoder"):
        assert result[name].status == "exact", (name, result[name].reasons)
    features = result["feature_extractor"]
    assert features.size == (FRAME_SIZE,) and features.stride == (FRAME_STRIDE,)
    assert features.output_shape == (49,)
    assert features.region(0) == (frames(0, 0),) and features.region(48) == (frames(48, 48),)
    assert result["feature_extractor.conv_layers.0"].size == (10,)
    position = result["encoder.pos_conv_embed"]  # frames i - 64 .. i + 63
    assert position.size == (127 * FRAME_STRIDE + FRAME_SIZE,) and position.stride == (FRAME_STRIDE,)
    assert position.region(0) == (frames(-64, 63),)
    assert position.region(48, clip=True) == (frames(0, 48),)
    assert result["encoder"].is_global == (True,)


def test_wav2vec2_group_norm_makes_everything_global() -> None:
    model = wav2vec2("group").to("meta")
    result = foveal.receptive_field(model, (1, 16000))
    assert result["feature_extractor.conv_layers.0.conv"].size == (10,)
    for name in ("feature_extractor.conv_layers.0", "feature_extractor", "encoder"):
        assert result[name].status == "exact" and result[name].is_global == (True,), name


def test_wav2vec2_frames_agree_with_nan_injection() -> None:
    """Six frames (2000 samples, the last 80 read by none): every frame checked."""
    model = tiny("layer")
    result = foveal.receptive_field(model, (1, 2000))
    features = result["feature_extractor"]
    assert features.status == "exact" and features.output_shape == (6,)
    assert [features.region(i) for i in range(6)] == [(frames(i, i),) for i in range(6)]
    position = result["encoder.pos_conv_embed"]  # frames i - 2 .. i + 1, clipped
    assert position.status == "exact"
    assert [position.region(i, clip=True) for i in (0, 1, 2, 5)] == [
        (frames(0, 1),), (frames(0, 2),), (frames(0, 3),), (frames(3, 5),)]
    encoder = result["encoder"]
    assert encoder.status == "exact" and encoder.region(3, clip=True) == (frames(0, 5),)
    check = verify(model, (1, 2000), ["feature_extractor", "encoder.pos_conv_embed", "encoder"])
    assert check.agrees, check.summary()
    assert check["feature_extractor"].checked == 6


def test_wav2vec2_group_norm_variant_agrees_with_nan_injection() -> None:
    model = tiny("group")
    result = foveal.receptive_field(model, (1, 2000))
    assert result["feature_extractor"].is_global == (True,)
    check = verify(model, (1, 2000), ["feature_extractor.conv_layers.0", "feature_extractor", "encoder"])
    assert check.agrees, check.summary()


def test_wav2vec2_built_under_the_meta_device() -> None:
    """Built under torch.device('meta'), wav2vec2 keeps masked_spec_embed (torch.Tensor(...),
    registered first) on the CPU: the example input still goes on meta, with the convs."""
    with torch.device("meta"):
        model = wav2vec2("layer", num_conv_pos_embeddings=4, num_conv_pos_embedding_groups=4)
    assert {p.device.type for p in model.parameters()} == {"cpu", "meta"}
    model(torch.empty(1, 2000, device="meta"))  # the model runs
    assert foveal.receptive_field(model, (1, 2000))["feature_extractor"].size == (FRAME_SIZE,)
