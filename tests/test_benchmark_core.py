"""`foveal benchmark` with only foveal's core: the receptive fields from the zoo's graphs, the
FLOPs marked unavailable with the reason (tests/core_only.py makes the frameworks unimportable)."""

from __future__ import annotations

import csv
import io

from core_only import run_core_only

from foveal import benchmark, zoo
from foveal.api import receptive_field


def test_the_default_run_needs_no_framework(tmp_path) -> None:
    path = tmp_path / "rf.csv"
    done = run_core_only("benchmark", "--resolutions", "none,224", "--csv", str(path), "--quiet")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert {r["CNN"] for r in rows} == {m.name for m in benchmark.ZOO}
    assert {r["status"] for r in rows} == {"exact"}
    assert {r["FLOPs (Billion)"] for r in rows if r["input resolution"] == "224"} == {"unavailable"}
    assert {r["FLOPs (Billion)"] for r in rows if r["input resolution"] == "None"} == {"None"}
    # keras.applications VGG16 is TF-Slim's vgg_16: the reference table's pool5 row
    pool5 = next(r for r in rows if r["CNN"] == "keras.VGG16" and r["end_point"] == "block5_pool")
    assert (pool5["RF size hor"], pool5["effective stride ver"], pool5["effective padding hor"]) == \
        ("212", "32", "90")
    assert f"foveal: wrote {path}" in done.stderr
    assert "foveal: note: FLOPs unavailable for alexnet" in done.stderr
    assert "install foveal[torch]" in done.stderr
    assert "no FLOPs for the keras models" in done.stderr


def test_any_zoo_name_and_a_fixed_size_graph() -> None:
    done = run_core_only("benchmark", "--models", "densenet201,vit_b_16", "--resolutions", "none,224",
                         "--no-flops", "--quiet")
    assert done.returncode == 1  # vit_b_16 holds only at 224: no row without a size
    lines = done.stdout.splitlines()
    assert any(line.startswith("densenet201") and "features.denseblock3" in line and "| 1799 " in line
               for line in lines)
    assert any(line.startswith("vit_b_16") and "| 224 " in line and "| 16 " in line for line in lines)
    assert "vit_b_16 @ None: zoo model 'vit_b_16' holds only at input size 224x224" in done.stderr
    assert "FLOPs unavailable" not in done.stderr  # not asked for: no note


def test_unknown_names_get_suggestions() -> None:
    done = run_core_only("benchmark", "--models", "densenet20")
    assert done.returncode == 2 and "unknown model 'densenet20'; did you mean densenet201" in done.stderr


def test_stage_ends_are_the_module_outputs_where_the_stride_changes() -> None:
    analysis = receptive_field(zoo.load("resnet50"), None)
    assert benchmark.stage_ends(analysis) == ("relu", "layer1", "layer2", "layer3", "layer4")
    inception = receptive_field(zoo.load("inception_v3"), None)
    # the branches inside Mixed_6a reach further at stride 16 but are not on every path
    assert benchmark.stage_ends(inception) == ("Conv2d_2b_3x3", "Conv2d_4a_3x3", "Mixed_5d", "Mixed_6e",
                                               "Mixed_7c")
