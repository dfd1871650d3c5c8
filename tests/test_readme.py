"""The README's Python example runs, and the values its comments show are what foveal returns."""

from __future__ import annotations

import ast
import pathlib
import re

README = pathlib.Path(__file__).parents[1] / "README.md"


def _literal(comment: str):
    for part in comment.split(": "):
        try:
            return True, ast.literal_eval(part.strip())
        except (ValueError, SyntaxError):
            continue
    return False, None


def test_readme_python_example() -> None:
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    namespace: dict = {}
    checked = 0
    for line in block.splitlines():
        code, _, comment = line.partition("  # ")
        if comment and "=" not in code.split("(")[0]:
            ok, expected = _literal(comment)
            if ok:
                assert eval(code, namespace) == expected, line
                checked += 1
                continue
        exec(code, namespace)
    assert checked >= 5
