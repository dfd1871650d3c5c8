"""The size expressions of a saved torch.export program, parsed and evaluated by foveal itself.

A `.pt2` program records symbolic sizes as text, `Mul(Integer(2), Symbol('s0', positive=True,
integer=True))` (sympy's `srepr`, torch >= 2.6) or `2*s0` (sympy's `str`, older torch and the keys
of `range_constraints`). torch reads that text with `sympy.sympify`, which evaluates Python:
a file could run any code. foveal never hands such text to sympy or `eval`: this module parses
it with a strict grammar (integers, decimals, quoted names inside `Symbol`/`Float`, symbol names,
`+ - * / // % **`, comparisons, parentheses and a short list of functions, `FUNCTIONS`) and
evaluates it on plain ints with every value bounded, so foveal can replace each symbolic size by
the integer it takes at the input shape being analysed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

from ..errors import FovealError

MAX_EXPRESSION_CHARS = 20_000
"""One expression's text (the longest in real programs are a few hundred characters)."""

MAX_DEPTH = 64
"""Nesting of one expression (parentheses and calls)."""

MAX_MAGNITUDE = 1 << 64
"""Absolute value of every integer met while evaluating (a size, a stride, a product)."""

SYMBOL = re.compile(r"[a-z]{1,4}[0-9]{1,9}")
"""torch's symbol names: s0 (a size of an input), u0 (a data-dependent size), ..."""

_DECIMAL = re.compile(r"-?[0-9]{1,30}(\.[0-9]{0,30})?([eE][+-]?[0-9]{1,3})?")

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<number>[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<string>'[^'\\]*'|"[^"\\]*")
  | (?P<op>\*\*|//|==|!=|<=|>=|[-+*/%<>(),=])
""", re.VERBOSE)

Value = int | float | bool | Fraction


class ExprError(FovealError):
    """A size expression outside foveal's grammar, or one that cannot be evaluated."""


@dataclass(frozen=True)
class Node:
    """A parsed expression: kind is 'int', 'float', 'str', 'name', 'call', 'binary', 'neg' or
    'compare'; `text` is the literal or name, the function or the operator."""

    kind: str
    text: str = ""
    args: tuple[Node, ...] = ()
    keywords: tuple[tuple[str, Node], ...] = ()


def parse(text: str) -> Node:
    """The expression `text` as a tree, or an ExprError naming what is not in the grammar."""
    if not isinstance(text, str):
        raise ExprError(f"an expression must be text, got {type(text).__name__}")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ExprError(f"an expression of {len(text):,} characters is over foveal's limit of "
                        f"{MAX_EXPRESSION_CHARS:,}")
    return _Parser(text).expression()


# -- parsing ----------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str]] = []
        at = 0
        while at < len(text):
            m = _TOKEN.match(text, at)
            if m is None:
                raise ExprError(f"unexpected character {text[at]!r} at position {at} of the expression")
            kind = m.lastgroup or ""
            if kind != "space":
                self.tokens.append((kind, m.group()))
            at = m.end()
        self.at = 0
        self.depth = 0

    def expression(self) -> Node:
        node = self.compare()
        if self.at != len(self.tokens):
            raise ExprError(f"unexpected {self.tokens[self.at][1]!r} after a complete expression")
        return node

    def peek(self) -> str:
        return self.tokens[self.at][1] if self.at < len(self.tokens) else ""

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.at >= len(self.tokens):
            raise ExprError("the expression ends too early")
        token = self.tokens[self.at]
        if expected is not None and token[1] != expected:
            raise ExprError(f"expected {expected!r}, found {token[1]!r}")
        self.at += 1
        return token

    def nested(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError(f"the expression nests deeper than foveal's limit of {MAX_DEPTH}")

    def compare(self) -> Node:
        left = self.additive()
        if self.peek() in ("==", "!=", "<", "<=", ">", ">="):
            op = self.take()[1]
            left = Node("compare", op, (left, self.additive()))
        return left

    def additive(self) -> Node:
        left = self.multiplicative()
        while self.peek() in ("+", "-"):
            op = self.take()[1]
            left = Node("binary", op, (left, self.multiplicative()))
        return left

    def multiplicative(self) -> Node:
        left = self.unary()
        while self.peek() in ("*", "/", "//", "%"):
            op = self.take()[1]
            left = Node("binary", op, (left, self.unary()))
        return left

    def unary(self) -> Node:
        if self.peek() in ("-", "+"):
            op = self.take()[1]
            self.nested()
            operand = self.unary()
            self.depth -= 1
            return Node("neg", "-", (operand,)) if op == "-" else operand
        return self.power()

    def power(self) -> Node:
        base = self.primary()
        if self.peek() == "**":
            self.take()
            self.nested()
            exponent = self.unary()  # right-associative, binds tighter than unary minus on its left
            self.depth -= 1
            return Node("binary", "**", (base, exponent))
        return base

    def primary(self) -> Node:
        kind, text = self.take()
        if kind == "number":
            if len(text) > 40:
                raise ExprError(f"the number {text[:20]}... has more digits than foveal reads")
            return Node("float" if any(c in text for c in ".eE") else "int", text)
        if kind == "string":
            return Node("str", text[1:-1])
        if kind == "name":
            if self.peek() != "(":
                return Node("name", text)
            self.take("(")
            self.nested()
            args: list[Node] = []
            keywords: list[tuple[str, Node]] = []
            while self.peek() != ")":
                if (self.at + 1 < len(self.tokens) and self.tokens[self.at][0] == "name"
                        and self.tokens[self.at + 1][1] == "="):
                    key = self.take()[1]
                    self.take("=")
                    keywords.append((key, self.compare()))
                elif keywords:
                    raise ExprError(f"a positional argument follows a keyword in {text}(...)")
                else:
                    args.append(self.compare())
                if self.peek() != ")":
                    self.take(",")
            self.take(")")
            self.depth -= 1
            return Node("call", text, tuple(args), tuple(keywords))
        if text == "(":
            self.nested()
            inner = self.compare()
            self.take(")")
            self.depth -= 1
            return inner
        raise ExprError(f"unexpected {text!r} in the expression")


# -- what an expression means ---------------------------------------------------------------------


def symbols(node: Node) -> set[str]:
    """The symbol names the expression uses."""
    found: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if n.kind == "name" and SYMBOL.fullmatch(n.text):
            found.add(n.text)
        elif n.kind == "call" and n.text == "Symbol" and n.args and n.args[0].kind == "str":
            found.add(n.args[0].text)
        stack.extend(n.args)
        stack.extend(v for _, v in n.keywords)
    return found


def show(node: Node) -> str:
    """The expression in short infix form, for messages: `2*s0 + 1`."""
    if node.kind in ("int", "float", "name"):
        return node.text
    if node.kind == "str":
        return repr(node.text)
    if node.kind == "neg":
        return f"-{_operand(node.args[0], 3)}"
    if node.kind in ("binary", "compare"):
        left, right = node.args
        level = _precedence(node)
        op = node.text if level >= 2 else f" {node.text} "
        return f"{_operand(left, level)}{op}{_operand(right, level + 1)}"
    name, args = node.text, node.args
    if name in ("Symbol", "Float") and args and args[0].kind == "str":
        plain = SYMBOL.fullmatch(args[0].text) if name == "Symbol" else _DECIMAL.fullmatch(args[0].text)
        return args[0].text if plain else repr(args[0].text)
    if name in ("Integer", "Float") and args:
        return show(args[0])
    if name == "Add" and args:
        return " + ".join(_operand(a, 1) for a in args)
    if name == "Mul" and args:
        return "*".join(_operand(a, 2) for a in args)
    return f"{name}({', '.join(show(a) for a in args)})"


def _precedence(node: Node) -> int:
    if node.kind == "compare":
        return 0
    if node.kind == "binary":
        return {"+": 1, "-": 1, "*": 2, "/": 2, "//": 2, "%": 2, "**": 4}[node.text]
    if node.kind == "neg":
        return 3
    if node.kind == "call" and node.text in ("Add", "Mul"):
        return 1 if node.text == "Add" else 2
    if node.kind == "call" and node.text == "Integer" and node.args and node.args[0].kind == "neg":
        return 3
    return 5


def _operand(node: Node, level: int) -> str:
    text = show(node)
    return f"({text})" if _precedence(node) < level else text


def evaluate(node: Node, values: dict[str, int]) -> Value:
    """The value of the expression with each symbol bound to an int in `values`. Every function is
    one of `FUNCTIONS`; every integer stays within MAX_MAGNITUDE; an unbound symbol is an
    ExprError naming it (`UnboundSymbol`)."""
    return _evaluate(node, values, 0)


class UnboundSymbol(ExprError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"symbol {name!r} has no value")


def _evaluate(node: Node, values: dict[str, int], depth: int) -> Value:
    if depth > MAX_DEPTH * 2:
        raise ExprError("the expression nests too deeply")
    kind = node.kind
    if kind == "int":
        return _bounded(int(node.text))
    if kind == "float":
        return _finite(float(node.text))
    if kind == "str":
        raise ExprError(f"a quoted name {node.text[:40]!r} outside Symbol(...) or Float(...)")
    if kind == "name":
        return _name(node.text, values)
    if kind == "neg":
        return _arith("-", 0, _evaluate(node.args[0], values, depth + 1))
    if kind in ("binary", "compare"):
        a = _evaluate(node.args[0], values, depth + 1)
        b = _evaluate(node.args[1], values, depth + 1)
        return _compare(node.text, a, b) if kind == "compare" else _arith(node.text, a, b)
    return _call(node, values, depth)


def _name(name: str, values: dict[str, int]) -> Value:
    if name in ("True", "true"):
        return True
    if name in ("False", "false"):
        return False
    if not SYMBOL.fullmatch(name):
        raise ExprError(f"unknown name {name[:40]!r} in the expression")
    if name not in values:
        raise UnboundSymbol(name)
    return values[name]


def _call(node: Node, values: dict[str, int], depth: int) -> Value:
    name = node.text
    if name not in FUNCTIONS:
        raise ExprError(f"function {name[:40]!r} is not one foveal evaluates (known: "
                        f"{', '.join(sorted(FUNCTIONS))[:120]}...)")
    low, high = FUNCTIONS[name]
    if not low <= len(node.args) <= high:
        raise ExprError(f"{name} takes {low if low == high else f'{low} to {high}'} arguments, "
                        f"got {len(node.args)}")
    if name == "Symbol":
        return _symbol(node, values)
    if node.keywords and not (name == "Float" and [k for k, _ in node.keywords] == ["precision"]):
        raise ExprError(f"{name}(...) takes no keyword arguments")
    if name == "Float":
        arg = node.args[0]
        if arg.kind == "str":
            if not _DECIMAL.fullmatch(arg.text):
                raise ExprError(f"Float({arg.text[:40]!r}) is not a decimal number")
            return _finite(float(arg.text))
        return _finite(float(_number(_evaluate(arg, values, depth + 1))))
    args = [_evaluate(a, values, depth + 1) for a in node.args]
    if name == "Integer":
        if not isinstance(args[0], int) or isinstance(args[0], bool):
            raise ExprError("Integer(...) takes an integer")
        return args[0]
    if name == "Rational":
        p, q = (_integer(a, name) for a in args)
        if q == 0:
            raise ExprError("Rational with denominator 0")
        return _reduce(Fraction(p, q))
    if name == "Add":
        total: Value = 0
        for a in args:
            total = _arith("+", total, a)
        return total
    if name == "Mul":
        product: Value = 1
        for a in args:
            product = _arith("*", product, a)
        return product
    if name in ("Pow", "PowByNatural", "FloatPow"):
        result = _arith("**", args[0], args[1])
        return _finite(float(result)) if name == "FloatPow" else result
    if name in ("Max", "Min"):
        numbers = [_number(a) for a in args]
        return max(numbers) if name == "Max" else min(numbers)
    if name == "FloorDiv":
        return _arith("//", args[0], args[1])
    if name in ("Mod", "PythonMod"):
        return _arith("%", args[0], args[1])
    if name == "CleanDiv":
        a, b = _integer(args[0], name), _integer(args[1], name)
        if b == 0 or a % b:
            raise ExprError(f"CleanDiv({a}, {b}) does not divide exactly")
        return a // b
    if name == "CeilDiv":
        a, b = _integer(args[0], name), _integer(args[1], name)
        if b == 0:
            raise ExprError("division by zero in the expression")
        return -(-a // b)
    if name in ("IntTrueDiv", "FloatTrueDiv"):
        return _finite(float(_arith("/", args[0], args[1])))
    if name in ("CeilToInt", "FloorToInt", "TruncToInt", "RoundToInt"):
        x = _number(args[0])
        if name == "CeilToInt":
            return _bounded(math.ceil(x))
        if name == "FloorToInt":
            return _bounded(math.floor(x))
        return _bounded(math.trunc(x) if name == "TruncToInt" else round(x))
    if name == "ToFloat":
        return _finite(float(_number(args[0])))
    if name == "TruncToFloat":
        return _finite(float(math.trunc(_number(args[0]))))
    if name == "Identity":
        return args[0]
    if name == "ModularIndexing":
        x, div, mod = (_integer(a, name) for a in args)
        if div == 0 or mod == 0:
            raise ExprError("division by zero in the expression")
        return (x // div) % mod
    if name == "Where":
        return args[1] if _truth(args[0]) else args[2]
    if name in _RELATIONS:
        return _compare(_RELATIONS[name], args[0], args[1])
    if name == "And":
        return all(_truth(a) for a in args)
    if name == "Or":
        return any(_truth(a) for a in args)
    if name == "Not":
        return not _truth(args[0])
    raise ExprError(f"function {name!r} is not one foveal evaluates")  # pragma: no cover


_ASSUMPTIONS = frozenset({"positive", "negative", "nonnegative", "nonpositive", "integer", "real",
                          "finite", "nonzero", "zero", "even", "odd", "extended_real", "rational"})


def _symbol(node: Node, values: dict[str, int]) -> Value:
    arg = node.args[0]
    if arg.kind != "str" or not SYMBOL.fullmatch(arg.text):
        raise ExprError(f"Symbol(...) names {show(arg)[:40]!r}, not a torch size symbol such as 's0'")
    for key, value in node.keywords:
        if key not in _ASSUMPTIONS or value.kind != "name" or value.text not in ("True", "False"):
            raise ExprError(f"Symbol(...) has an unknown assumption {key[:40]}=...")
    return _name(arg.text, values)


FUNCTIONS: dict[str, tuple[int, int]] = {
    "Symbol": (1, 1), "Integer": (1, 1), "Float": (1, 1), "Rational": (2, 2),
    "Add": (1, 1000), "Mul": (1, 1000), "Pow": (2, 2), "PowByNatural": (2, 2), "FloatPow": (2, 2),
    "Max": (1, 1000), "Min": (1, 1000), "FloorDiv": (2, 2), "Mod": (2, 2), "PythonMod": (2, 2),
    "CleanDiv": (2, 2), "CeilDiv": (2, 2), "IntTrueDiv": (2, 2), "FloatTrueDiv": (2, 2),
    "CeilToInt": (1, 1), "FloorToInt": (1, 1), "TruncToInt": (1, 1), "RoundToInt": (1, 1),
    "ToFloat": (1, 1), "TruncToFloat": (1, 1), "Identity": (1, 1), "ModularIndexing": (3, 3),
    "Where": (3, 3), "Eq": (2, 2), "Ne": (2, 2), "Lt": (2, 2), "Le": (2, 2), "Gt": (2, 2),
    "Ge": (2, 2), "Equality": (2, 2), "Unequality": (2, 2), "StrictLessThan": (2, 2),
    "LessThan": (2, 2), "StrictGreaterThan": (2, 2), "GreaterThan": (2, 2), "And": (1, 1000),
    "Or": (1, 1000), "Not": (1, 1),
}
"""Each function foveal evaluates, with its least and most argument counts: sympy's arithmetic and
relations and torch's integer functions (torch.utils._sympy.functions)."""

_RELATIONS = {"Eq": "==", "Equality": "==", "Ne": "!=", "Unequality": "!=", "Lt": "<",
              "StrictLessThan": "<", "Le": "<=", "LessThan": "<=", "Gt": ">",
              "StrictGreaterThan": ">", "Ge": ">=", "GreaterThan": ">="}


# -- bounded arithmetic -----------------------------------------------------------------------------


def _bounded(value: int) -> int:
    if abs(value) > MAX_MAGNITUDE:
        raise ExprError("a value in the expression exceeds foveal's limit of 2**64")
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ExprError("a value in the expression is not finite")
    return value


def _reduce(value: Fraction) -> Value:
    if value.denominator == 1:
        return _bounded(value.numerator)
    if abs(value.numerator) > MAX_MAGNITUDE or value.denominator > MAX_MAGNITUDE:
        raise ExprError("a value in the expression exceeds foveal's limit of 2**64")
    return value


def _number(value: Value) -> int | float | Fraction:
    if isinstance(value, bool):
        raise ExprError("a truth value where the expression needs a number")
    return value


def _integer(value: Value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ExprError(f"{where} takes integers")
    return value


def _truth(value: Value) -> bool:
    if not isinstance(value, bool):
        raise ExprError("a number where the expression needs a truth value")
    return value


def _arith(op: str, a: Value, b: Value) -> Value:
    a, b = _number(a), _number(b)
    if isinstance(a, float) or isinstance(b, float):
        fa, fb = float(a), float(b)
        try:
            if op == "+":
                return _finite(fa + fb)
            if op == "-":
                return _finite(fa - fb)
            if op == "*":
                return _finite(fa * fb)
            if op == "/":
                return _finite(fa / fb)
            if op == "//":
                return _finite(float(math.floor(fa / fb)))
            if op == "%":
                return _finite(fa % fb)
            if op == "**":
                if abs(fb) > 64:
                    raise ExprError("an exponent over 64 in the expression")
                return _finite(float(fa ** fb))
        except (ZeroDivisionError, OverflowError, ValueError):
            raise ExprError(f"cannot compute {fa} {op} {fb} in the expression") from None
        raise ExprError(f"unknown operator {op!r}")  # pragma: no cover
    if op in ("+", "-", "*"):
        result = a + b if op == "+" else a - b if op == "-" else a * b
        return _reduce(Fraction(result)) if isinstance(result, Fraction) else _bounded(result)
    if b == 0 and op in ("/", "//", "%"):
        raise ExprError("division by zero in the expression")
    if op == "/":
        return _reduce(Fraction(a) / Fraction(b))
    if op == "//":
        return _bounded(math.floor(Fraction(a) / Fraction(b)))
    if op == "%":
        return _reduce(Fraction(a) % Fraction(b))
    if op == "**":
        if not isinstance(b, int) or isinstance(a, Fraction):
            raise ExprError("the expression raises to a non-integer power")
        if b < 0:
            if a == 0:
                raise ExprError("division by zero in the expression")
            if abs(b) > 64:
                raise ExprError("an exponent over 64 in the expression")
            return _reduce(Fraction(1, a ** -b))
        if abs(a) > 1 and b > 64:
            raise ExprError("an exponent over 64 in the expression")
        return _bounded(a ** b)
    raise ExprError(f"unknown operator {op!r}")  # pragma: no cover


def _compare(op: str, a: Value, b: Value) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        if op not in ("==", "!="):
            raise ExprError("an ordering of truth values in the expression")
        return (a == b) == (op == "==")
    a, b = _number(a), _number(b)
    return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def solve(node: Node, symbol: str, target: int, values: dict[str, int]) -> int | None:
    """The integer value of `symbol` for which the expression (of `symbol` and symbols bound in
    `values`) equals `target`, when it is linear in `symbol` (2*s0 + 1 = 65 gives s0 = 32);
    None when there is none."""
    try:
        at1 = evaluate(node, {**values, symbol: 1})
        at2 = evaluate(node, {**values, symbol: 2})
        if not (type(at1) is int and type(at2) is int):
            return None
        slope = at2 - at1
        if slope == 0 or (target - at1) % slope:
            return None
        candidate = (target - at1) // slope + 1
        return candidate if evaluate(node, {**values, symbol: candidate}) == target else None
    except ExprError:
        return None
