"""foveal with only its core importable, as on an install without extras: a fresh Python in which
torch, torchvision, keras, tensorflow, onnx, numpy and protobuf cannot be imported (test_zoo.py,
test_onnx_hostile.py, test_tensorflow_hostile.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

FRAMEWORKS = ("torch", "torchvision", "keras", "tensorflow", "onnx", "numpy", "google.protobuf")

BLOCK = textwrap.dedent(f"""
    import sys
    FRAMEWORKS = {FRAMEWORKS!r}
    for name in FRAMEWORKS:
        sys.modules[name] = None  # any import of them fails
""")

CLI = textwrap.dedent("""
    from foveal.cli import main
    status = main(sys.argv[1:])
    assert not [m for m in sys.modules if m.split(".")[0] in FRAMEWORKS and sys.modules[m] is not None]
    raise SystemExit(status)
""")
"""`foveal <arguments>`, which must not have imported any of the frameworks."""


def run_core_only(*args: str, script: str = CLI, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`script` (by default the CLI) run with the frameworks unimportable; `args` are its
    sys.argv[1:]. Its exit status, stdout and stderr (text) come back."""
    return subprocess.run([sys.executable, "-c", BLOCK + textwrap.dedent(script), *args], capture_output=True,
                          text=True, timeout=timeout)
