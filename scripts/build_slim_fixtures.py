"""Build the TF-slim golden fixtures of tests/test_slim_table.py (run once, on purpose).

Built with: tf-slim 1.1.0, tensorflow-cpu 2.21.0, tf-keras 2.21.0, protobuf 7.36.2, Python 3.11.

    pip install tf-slim==1.1.0      # not a foveal dependency: the tests only read the fixtures
    python scripts/build_slim_fixtures.py [--table .../google_receptive_field_table.md]

Each network is built as the receptive_field library's rf_benchmark.py builds it (TF1 graph mode, a
fresh tf.Graph per model, a placeholder `input_image` of shape (1, None, None, 3)), then cut down to
the subgraph its end-points need. Variables stay VariableV2 nodes (shapes only, no weight values,
never frozen), so every fixture is small. Written per variant into tests/fixtures/slim/:

* `<variant>.pb.gz`: the gzip-compressed binary GraphDef (deterministic: sorted maps, gzip mtime 0);
* `<variant>.json`: the end-points in the table's order, each its key and the op whose output it is;
* `table_rows.csv`: the published table's rows for the variants built here (FLOPs kept for
  reference; the tests do not use them).

Differences from rf_benchmark.py, forced by tf_slim.nets (a copy of an older research/slim):
alexnet_v2 and vgg take neither `num_classes=None` nor `global_pool`, so they are built with their
classifier head (num_classes=1000), which the end-point subgraphs (up to pool5) leave out;
inception_v2 has no `use_separable_conv` (only the default separable variant exists); inception_v4,
inception_resnet_v2 and mobilenet_v1 are not in tf_slim.nets, so they are skipped.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import importlib
import io
import json
import pkgutil
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "slim"
TABLE = Path("/work/shared/reference/google_receptive_field_table.md")
TABLE_SOURCE = ("google-research/receptive_field, receptive_field/RECEPTIVE_FIELD_TABLE.md "
                "(HEAD f12ae8e, 2021-03-30)")

VGG_KEYS = ["conv1/conv1_1", "pool1", "conv2/conv2_1", "pool2", "conv3/conv3_1", "conv3/conv3_2",
            "pool3", "conv4/conv4_1", "conv4/conv4_2", "pool4", "conv5/conv5_1", "conv5/conv5_2",
            "pool5"]
ENDPOINTS = {
    "alexnet_v2": [f"alexnet_v2/{k}" for k in
                   ["conv1", "pool1", "conv2", "conv3", "conv4", "conv5", "pool5"]],
    "vgg_a": [f"vgg_a/{k}" for k in VGG_KEYS],
    "vgg_16": [f"vgg_16/{k}" for k in VGG_KEYS],
    "inception_v2": ["Conv2d_1a_7x7", "MaxPool_2a_3x3", "Conv2d_2b_1x1", "Conv2d_2c_3x3",
                     "MaxPool_3a_3x3", "Mixed_3b", "Mixed_3c", "Mixed_4a", "Mixed_4b", "Mixed_4c",
                     "Mixed_4d", "Mixed_4e", "Mixed_5a", "Mixed_5b", "Mixed_5c"],
    "inception_v3": ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_3a_3x3",
                     "Conv2d_3b_1x1", "Conv2d_4a_3x3", "MaxPool_5a_3x3", "Mixed_5b", "Mixed_5c",
                     "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
                     "Mixed_7a", "Mixed_7b", "Mixed_7c"],
}
RESNETS = [f"resnet_{v}_{d}" for v in ("v1", "v2") for d in (50, 101, 152, 200)]
for _name in RESNETS:
    ENDPOINTS[_name] = [f"{_name}/block{i}" for i in range(1, 5)]


def alias_legacy_layers() -> None:
    """tf-slim 1.1 imports tf_keras.legacy_tf_layers, which tf_keras 2.21 keeps under .src."""
    legacy = importlib.import_module("tf_keras.src.legacy_tf_layers")
    sys.modules["tf_keras.legacy_tf_layers"] = legacy
    for module in pkgutil.iter_modules(legacy.__path__):
        sys.modules[f"tf_keras.legacy_tf_layers.{module.name}"] = importlib.import_module(
            f"tf_keras.src.legacy_tf_layers.{module.name}")


def builders() -> dict[str, Callable]:
    """variant -> function(input_image) -> end_points dict, as rf_benchmark.py calls them."""
    import tf_slim as slim
    from tf_slim.nets import alexnet, inception_v2, inception_v3, resnet_v1, resnet_v2, vgg

    def classic(fn: Callable) -> Callable:
        return lambda x: fn(x, num_classes=1000, is_training=False)[1]

    def resnet(fn: Callable) -> Callable:
        def build(x):
            with slim.arg_scope(resnet_v1.resnet_arg_scope()):
                return fn(x, num_classes=None, is_training=False, global_pool=False)[1]
        return build

    table = {
        "alexnet_v2": classic(alexnet.alexnet_v2),
        "vgg_a": classic(vgg.vgg_a),
        "vgg_16": classic(vgg.vgg_16),
        "inception_v2": lambda x: inception_v2.inception_v2_base(x)[1],
        "inception_v3": lambda x: inception_v3.inception_v3_base(x)[1],
    }
    for name in RESNETS:
        module = resnet_v1 if name.startswith("resnet_v1") else resnet_v2
        table[name] = resnet(getattr(module, name))
    return table


def build(variant: str, builder: Callable) -> tuple[bytes, dict[str, str]]:
    """The pruned GraphDef (serialised) and the end-point key -> op name map."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        image = tf.compat.v1.placeholder(tf.float32, (1, None, None, 3), name="input_image")
        end_points = builder(image)
    ops = {key: end_points[key].op.name for key in ENDPOINTS[variant]}
    pruned = tf.compat.v1.graph_util.extract_sub_graph(graph.as_graph_def(), sorted(set(ops.values())))
    return pruned.SerializeToString(deterministic=True), ops


def table_rows(table: Path, variants: list[str]) -> list[list[str]]:
    """The published table's data rows for `variants`, in the table's order."""
    rows = []
    for line in table.read_text().splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) == 7 and cells[0] in variants:
            rows.append(cells)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, default=TABLE, help="the published RECEPTIVE_FIELD_TABLE.md")
    args = parser.parse_args()
    alias_legacy_layers()
    import tensorflow as tf

    tf.compat.v1.disable_eager_execution()
    OUT.mkdir(parents=True, exist_ok=True)
    built = []
    for variant, builder in builders().items():
        data, ops = build(variant, builder)
        (OUT / f"{variant}.pb.gz").write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
        (OUT / f"{variant}.json").write_text(json.dumps(
            {"variant": variant, "input": "input_image",
             "end_points": [{"key": key, "op": op} for key, op in ops.items()]},
            indent=1, sort_keys=True) + "\n")
        built.append(variant)
        print(f"{variant}: {len(data)} bytes, {(OUT / f'{variant}.pb.gz').stat().st_size} gzipped")
    rows = table_rows(args.table, built)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["cnn", "resolution", "end_point", "flops_billion", "rf", "effective_stride",
                     "effective_padding"])
    writer.writerows(rows)
    (OUT / "table_rows.csv").write_text(text.getvalue())
    print(f"table_rows.csv: {len(rows)} rows from {args.table}")


if __name__ == "__main__":
    main()
