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


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_readme_python_example() -> None:
    assert run_block(python_blocks()[0]) >= 5


def run_block(block: str, namespace: dict | None = None) -> int:
    """Run the block statement by statement (indented lines continue the one before); top-level
    lines with a literal in their comment are checked. Returns how many were checked."""
    namespace = {} if namespace is None else namespace
    statements: list[str] = []
    for line in block.splitlines():
        if line[:1].isspace() and statements:
            statements[-1] += "\n" + line
        else:
            statements.append(line)
    checked = 0
    for statement in statements:
        code, _, comment = statement.partition("  # ")
        if comment and "\n" not in statement and "=" not in code.split("(")[0]:
            ok, expected = _literal(comment)
            if ok:
                assert eval(code, namespace) == expected, statement
                checked += 1
                continue
        exec(statement, namespace)
    return checked


def test_readme_effective_receptive_field_example(tmp_path, monkeypatch) -> None:
    import pytest

    pytest.importorskip("torch")
    pytest.importorskip("matplotlib")
    block = next(b for b in python_blocks() if "effective_receptive_field" in b)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    assert run_block(block, namespace) >= 1
    erf = namespace["erf"]
    sigma = erf.gaussian.sigma
    assert all(3.0 < s < 4.2 for s in sigma), sigma  # the comment's "about (3.6, 3.6)"
    assert (tmp_path / "erf.png").read_bytes().startswith(b"\x89PNG")
