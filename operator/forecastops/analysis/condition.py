"""Success and failure conditions such as ``result > 0.01``: a tiny, safe evaluator.

A condition is parsed once, when the spec is read, into a small typed tree; evaluating it
only walks that tree. Nothing is ever handed to ``eval``.

Grammar (``result`` is the measured value; numbers are decimals, ``1e-3`` allowed)::

    condition  := or
    or         := and (("or" | "||") and)*
    and        := not (("and" | "&&") not)*
    not        := ("not" | "!") not | comparison | "(" condition ")"
    comparison := sum ("<" | "<=" | ">" | ">=" | "==" | "!=") sum
    sum        := product (("+" | "-") product)*
    product    := unary (("*" | "/") unary)*
    unary      := "-" unary | "result" | NUMBER | "(" sum ")"

Examples: ``result > 0.01``, ``result <= 0.2 && result >= 0``,
``not (result * 100 > 5)``, ``result / 1000 < 0.25``.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NoReturn, TypeAlias


class ConditionError(ValueError):
    """A condition that cannot be parsed, or cannot be evaluated for a value."""


_NUMBER_PATTERN = r"(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_NUMBER = re.compile(_NUMBER_PATTERN)
_TOKEN = re.compile(
    rf"\s*(?:(?P<number>{_NUMBER_PATTERN})"
    r"|(?P<word>[A-Za-z_]\w*)"
    r"|(?P<op><=|>=|==|!=|&&|\|\||[<>!()+\-*/]))"
)
_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
}
_WORDS = {"and": "&&", "or": "||", "not": "!"}


# The tree: numeric nodes evaluate to float, boolean nodes to bool.
@dataclass(frozen=True)
class _Number:
    value: float

    def num(self, result: float) -> float:
        return self.value


@dataclass(frozen=True)
class _Result:
    def num(self, result: float) -> float:
        return result


@dataclass(frozen=True)
class _Negate:
    operand: _Num

    def num(self, result: float) -> float:
        return -self.operand.num(result)


@dataclass(frozen=True)
class _Binary:
    """Two numeric operands joined by `op`."""

    op: str
    left: _Num
    right: _Num

    def operands(self, result: float) -> tuple[float, float]:
        return self.left.num(result), self.right.num(result)


class _Arithmetic(_Binary):
    def num(self, result: float) -> float:
        left, right = self.operands(result)
        if self.op == "/" and right == 0:
            raise ConditionError("division by zero")
        return _ARITHMETIC[self.op](left, right)


class _Compare(_Binary):
    def holds(self, result: float) -> bool:
        return _COMPARISONS[self.op](*self.operands(result))


@dataclass(frozen=True)
class _Not:
    operand: _Bool

    def holds(self, result: float) -> bool:
        return not self.operand.holds(result)


@dataclass(frozen=True)
class _Junction:
    op: str  # "&&" or "||"
    parts: tuple[_Bool, ...]

    def holds(self, result: float) -> bool:
        values = (part.holds(result) for part in self.parts)
        return all(values) if self.op == "&&" else any(values)


_Num: TypeAlias = _Number | _Result | _Negate | _Arithmetic
_Bool: TypeAlias = _Compare | _Not | _Junction


@dataclass(frozen=True)
class Expression:
    """A parsed condition; `holds(result)` evaluates it for one measured value."""

    text: str
    _tree: _Bool = field(repr=False, compare=False)

    def holds(self, result: float) -> bool:
        """True when the condition holds for `result`.

        >>> parse_condition("result > 0.01").holds(0.5)
        True
        >>> parse_condition("result >= 0 && result < 1").holds(1.0)
        False
        """
        if math.isnan(result):
            raise ConditionError("the result is NaN")
        return self._tree.holds(result)

    def __str__(self) -> str:
        return self.text


def parse_condition(text: str) -> Expression:
    """Parse `text`; raises ConditionError naming the problem and its position."""
    return Expression(text, _Parser(text).parse())


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0

    def parse(self) -> _Bool:
        if not self.tokens:
            raise ConditionError("the condition is empty")
        tree = self._or()
        if self.pos < len(self.tokens):
            self._fail(f"unexpected {self.tokens[self.pos]!r}")
        return tree

    # Boolean levels.
    def _or(self) -> _Bool:
        return self._junction("||", self._and)

    def _and(self) -> _Bool:
        return self._junction("&&", self._not)

    def _junction(self, op: str, operand: Callable[[], _Bool]) -> _Bool:
        parts = [operand()]
        while self._accept(op):
            parts.append(operand())
        return parts[0] if len(parts) == 1 else _Junction(op, tuple(parts))

    def _not(self) -> _Bool:
        if self._accept("!"):
            return _Not(self._not())
        if self._peek() == "(" and self._parenthesis_is_boolean():
            self._expect("(")
            inner = self._or()
            self._expect(")")
            return inner
        return self._comparison()

    def _comparison(self) -> _Bool:
        left = self._sum()
        op = self._peek()
        if op not in _COMPARISONS:
            self._fail("expected a comparison such as 'result > 0.01'")
        self.pos += 1
        return _Compare(op, left, self._sum())

    # Numeric levels.
    def _sum(self) -> _Num:
        return self._arithmetic(("+", "-"), self._product)

    def _product(self) -> _Num:
        return self._arithmetic(("*", "/"), self._unary)

    def _arithmetic(self, ops: tuple[str, ...], operand: Callable[[], _Num]) -> _Num:
        node = operand()
        while (op := self._peek()) in ops:
            self.pos += 1
            node = _Arithmetic(op, node, operand())
        return node

    def _unary(self) -> _Num:
        token = self._peek()
        if token is None:
            self._fail("unexpected end of the condition")
        self.pos += 1
        if token == "-":
            return _Negate(self._unary())
        if token == "result":
            return _Result()
        if token == "(":
            inner = self._sum()
            self._expect(")")
            return inner
        if _NUMBER.fullmatch(token):
            return _Number(float(token))
        self.pos -= 1
        if token[0].isalpha() or token[0] == "_":
            self._fail(f"unknown name {token!r}: only 'result' and numbers are allowed")
        self._fail(f"expected a number, 'result' or '(' but found {token!r}")

    def _parenthesis_is_boolean(self) -> bool:
        """Whether the parenthesis at the cursor holds a condition (not just arithmetic)."""
        depth = 0
        for token in self.tokens[self.pos :]:
            if token == "(":
                depth += 1
            elif token == ")":
                depth -= 1
                if depth == 0:
                    return False
            elif token in _COMPARISONS or token in ("&&", "||", "!"):
                return True  # arithmetic never holds a comparison
        return False

    # Cursor helpers.
    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _accept(self, token: str) -> bool:
        if self._peek() == token:
            self.pos += 1
            return True
        return False

    def _expect(self, token: str) -> None:
        if not self._accept(token):
            self._fail(f"expected {token!r}")

    def _fail(self, problem: str) -> NoReturn:
        where = " ".join(self.tokens[: self.pos]) or "the start"
        raise ConditionError(f"{self.text!r}: {problem} (after {where})")


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    stripped = text.rstrip()
    while pos < len(stripped):
        match = _TOKEN.match(stripped, pos)
        if not match:
            raise ConditionError(f"{text!r}: unexpected character {stripped[pos:].lstrip()[0]!r}")
        token = match.group(match.lastgroup or "")
        tokens.append(_WORDS.get(token, token))
        pos = match.end()
    return tokens
