"""`python -m foveal.compat.receptive_field.python.util.examples.compute_rf --graph_path G
--output_path O --input_node I --output_node N`: the reference's script at its own path, run by
`foveal compute-rf` (foveal.compat.receptive_field.compute_rf), which writes the same six lines."""

from __future__ import annotations

import sys

from ....compute_rf import LINES, main

__all__ = ["LINES", "main"]

if __name__ == "__main__":
    from ......cli import main as _cli

    raise SystemExit(_cli(["compute-rf", *sys.argv[1:]]))
