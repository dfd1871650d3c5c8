"""How an Analysis prints: the answer at a glance, in a notebook or a REPL."""

from __future__ import annotations

import foveal


def test_a_classifier_prints_its_last_local_layer() -> None:
    text = repr(foveal.receptive_field("resnet50", 224))
    assert text.startswith("<foveal.Analysis of 'resnet50' (H, W, input 224 x 224), ")
    assert "output 'fc': global: reads the whole input" in text
    assert text.endswith("last spatial layer 'layer4': receptive field 427 x 427, effective stride 32 x 32, "
                         "effective padding 213 x 213>")
    assert str(foveal.receptive_field("resnet50", 224)) == text


def test_a_local_output_prints_its_own_numbers() -> None:
    analysis = foveal.receptive_field("resnet50", 224, output="layer2")
    assert ("output 'layer2': receptive field 91 x 91, effective stride 8 x 8, effective padding 45 x 45"
            in repr(analysis))
    assert "last spatial layer" not in repr(analysis)
