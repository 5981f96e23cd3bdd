"""A tokenizer and parser for the SOQL subset the emulator answers.

    SELECT field, Rel.Field, ... | COUNT()
    FROM Object
    [WHERE condition]                  -- =, !=, <>, <, <=, >, >=, [NOT] IN (...), LIKE, AND, OR, NOT, ( )
    [ORDER BY path [ASC|DESC] [NULLS FIRST|LAST], ...]
    [LIMIT n]

Like Salesforce, AND and OR may not be mixed at one level without parentheses. Values: 'strings' (with
backslash escapes), numbers, true/false/null, date-times (2025-01-01T00:00:00Z, +02:00 offsets), dates
(2025-01-01) and the date literals TODAY, YESTERDAY, TOMORROW, LAST_N_DAYS:n, NEXT_N_DAYS:n.

This parser is independent of Steward's own SOQL filter code on purpose: the emulator is the reference
the connector is tested against.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

MAX_QUERY_LENGTH = 100_000

KEYWORDS = frozenset(
    [
        "SELECT",
        "FROM",
        "WHERE",
        "AND",
        "OR",
        "NOT",
        "IN",
        "LIKE",
        "ORDER",
        "BY",
        "ASC",
        "DESC",
        "NULLS",
        "FIRST",
        "LAST",
        "LIMIT",
        "OFFSET",
        "GROUP",
        "HAVING",
        "TRUE",
        "FALSE",
        "NULL",
        "INCLUDES",
        "EXCLUDES",
        "WITH",
        "FOR",
        "USING",
        "TYPEOF",
    ]
)
DATE_LITERALS = frozenset({"TODAY", "YESTERDAY", "TOMORROW"})
DATE_N_LITERALS = frozenset({"LAST_N_DAYS", "NEXT_N_DAYS"})

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\dT]))
  | (?P<number>[+-]?\d+(?:\.\d+)?(?![\w.]))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),.:])
  | (?P<string>')
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


class SoqlError(Exception):
    """A query Salesforce would reject: `code` is the errorCode (MALFORMED_QUERY, INVALID_FIELD, ...)."""

    def __init__(self, code: str, text: str, pos: int | None = None) -> None:
        super().__init__(text)
        self.code = code
        self.text = text
        self.pos = pos

    def message(self, query: str) -> str:
        """Salesforce's message shape: the query line, a caret, `ERROR at Row:r:Column:c`, then the reason."""
        if self.pos is None:
            return self.text
        row = query.count("\n", 0, self.pos) + 1
        line_start = query.rfind("\n", 0, self.pos) + 1
        line_end = query.find("\n", self.pos)
        line = query[line_start : line_end if line_end >= 0 else len(query)]
        column = self.pos - line_start
        if len(line) > 200:  # keep long generated queries readable: a window around the problem
            start = max(0, column - 100)
            line, column = line[start : start + 200], column - start
        return f"\n{line}\n{' ' * column}^\nERROR at Row:{row}:Column:{self.pos - line_start + 1}\n{self.text}"


@dataclass(frozen=True)
class Token:
    kind: str  # ident, string, number, datetime, date, op, punct, eof
    value: str
    pos: int
    like: str = ""  # for strings: the value as a LIKE pattern (\% and \_ stay escaped, \\ escaped)

    @property
    def upper(self) -> str:
        return self.value.upper()

    def is_keyword(self, *words: str) -> bool:
        return self.kind == "ident" and self.upper in words


def tokenize(query: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(query):
        match = _TOKEN.match(query, pos)
        if match is None:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{query[pos]}'", pos)
        kind = match.lastgroup or ""
        if kind == "string":
            token, pos = _string(query, pos)
            tokens.append(token)
            continue
        if kind != "space":
            tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    tokens.append(Token("eof", "", len(query)))
    return tokens


def _string(query: str, start: int) -> tuple[Token, int]:
    value: list[str] = []
    like: list[str] = []
    pos = start + 1
    while True:
        if pos >= len(query):
            raise SoqlError("MALFORMED_QUERY", "unexpected end of query: unterminated string literal", start)
        char = query[pos]
        if char == "'":
            return Token("string", "".join(value), start, "".join(like)), pos + 1
        if char == "\\":
            escaped = query[pos + 1 : pos + 2]
            if escaped in ("%", "_"):
                value.append(escaped)
                like.append("\\" + escaped)
            elif escaped in _ESCAPES:
                value.append(_ESCAPES[escaped])
                like.append("\\\\" if escaped == "\\" else _ESCAPES[escaped])
            else:
                raise SoqlError(
                    "MALFORMED_QUERY",
                    "Invalid string literal '"
                    + query[start : pos + 2]
                    + "'. Illegal character sequence '\\"
                    + escaped
                    + "' in string literal.",
                    pos,
                )
            pos += 2
            continue
        value.append(char)
        like.append(char)
        pos += 1


# ---- syntax tree ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Path:
    parts: tuple[str, ...]
    pos: int

    @property
    def text(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True)
class Literal:
    kind: str  # string, number, boolean, null, datetime, date, date_literal
    value: Any
    pos: int
    source: str
    like: str = ""


@dataclass(frozen=True)
class Comparison:
    path: Path
    op: str  # =, <, <=, >, >=, IN, LIKE
    values: tuple[Literal, ...]
    negated: bool  # != / <> are a negated =, NOT IN a negated IN
    pos: int


@dataclass(frozen=True)
class Junction:
    op: str  # AND, OR
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Negation:
    item: Condition


Condition = Comparison | Junction | Negation


@dataclass(frozen=True)
class OrderItem:
    path: Path
    descending: bool = False
    nulls_last: bool | None = None  # None: the default (nulls first ascending, last descending)


@dataclass
class Query:
    text: str
    sobject: str
    sobject_pos: int
    fields: list[Path] = field(default_factory=list)
    count: bool = False
    where: Condition | None = None
    order: list[OrderItem] = field(default_factory=list)
    limit: int | None = None


# ---- parser ---------------------------------------------------------------------------------------


def parse(query: str) -> Query:
    if len(query) > MAX_QUERY_LENGTH:
        raise SoqlError("MALFORMED_QUERY", f"SOQL statements cannot be longer than {MAX_QUERY_LENGTH} characters")
    return _Parser(query, tokenize(query)).query()


class _Parser:
    def __init__(self, text: str, tokens: list[Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.index = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != "eof":
            self.index += 1
        return token

    def unexpected(self, token: Token | None = None) -> SoqlError:
        token = token or self.current
        if token.kind == "eof":
            return SoqlError("MALFORMED_QUERY", "unexpected token: <EOF>", token.pos)
        shown = self.text[token.pos : token.pos + max(len(token.value), 1)] if token.kind != "string" else token.value
        return SoqlError("MALFORMED_QUERY", f"unexpected token: '{shown}'", token.pos)

    def expect_keyword(self, word: str) -> Token:
        if not self.current.is_keyword(word):
            raise self.unexpected()
        return self.advance()

    def expect_punct(self, char: str) -> Token:
        if self.current.kind != "punct" or self.current.value != char:
            raise self.unexpected()
        return self.advance()

    def query(self) -> Query:
        self.expect_keyword("SELECT")
        fields: list[Path] = []
        count = False
        if self.current.is_keyword("COUNT") and self.tokens[self.index + 1].value == "(":
            self.advance()
            self.expect_punct("(")
            if self.current.kind != "punct" or self.current.value != ")":
                raise SoqlError(
                    "MALFORMED_QUERY", "the emulator supports COUNT() only, not COUNT(field)", self.current.pos
                )
            self.advance()
            count = True
        else:
            fields.append(self.path())
            while self.current.kind == "punct" and self.current.value == ",":
                self.advance()
                fields.append(self.path())
        self.expect_keyword("FROM")
        if self.current.kind != "ident" or self.current.upper in KEYWORDS:
            raise self.unexpected()
        sobject = self.advance()
        query = Query(self.text, sobject.value, sobject.pos, fields=fields, count=count)
        if self.current.kind == "ident" and self.current.upper not in KEYWORDS:
            raise SoqlError("MALFORMED_QUERY", "the emulator does not support object aliases", self.current.pos)
        if self.current.is_keyword("WHERE"):
            self.advance()
            query.where = self.condition()
        if self.current.is_keyword("ORDER"):
            self.advance()
            self.expect_keyword("BY")
            query.order.append(self.order_item())
            while self.current.kind == "punct" and self.current.value == ",":
                self.advance()
                query.order.append(self.order_item())
        if self.current.is_keyword("LIMIT"):
            self.advance()
            token = self.advance()
            if token.kind != "number" or not token.value.isdigit():
                raise self.unexpected(token)
            query.limit = int(token.value)
        if self.current.kind != "eof":
            raise self.unexpected()
        return query

    def path(self) -> Path:
        token = self.current
        if token.kind != "ident" or token.upper in KEYWORDS:
            raise self.unexpected()
        parts = [self.advance().value]
        while self.current.kind == "punct" and self.current.value == ".":
            self.advance()
            if self.current.kind != "ident":
                raise self.unexpected()
            parts.append(self.advance().value)
        if self.current.kind == "punct" and self.current.value == "(":
            raise SoqlError("MALFORMED_QUERY", f"the emulator does not support the function {parts[-1]}()", token.pos)
        return Path(tuple(parts), token.pos)

    def order_item(self) -> OrderItem:
        path = self.path()
        descending = False
        nulls_last: bool | None = None
        if self.current.is_keyword("ASC", "DESC"):
            descending = self.advance().upper == "DESC"
        if self.current.is_keyword("NULLS"):
            self.advance()
            if not self.current.is_keyword("FIRST", "LAST"):
                raise self.unexpected()
            nulls_last = self.advance().upper == "LAST"
        return OrderItem(path, descending, nulls_last)

    # condition := term ((AND term)* | (OR term)*); mixing AND and OR needs parentheses, as in Salesforce.
    def condition(self) -> Condition:
        first = self.term()
        if not self.current.is_keyword("AND", "OR"):
            return first
        op = self.current.upper
        items = [first]
        while self.current.is_keyword("AND", "OR"):
            if self.current.upper != op:
                raise self.unexpected()
            self.advance()
            items.append(self.term())
        return Junction(op, tuple(items))

    def term(self) -> Condition:
        if self.current.is_keyword("NOT"):
            self.advance()
            return Negation(self.term())
        if self.current.kind == "punct" and self.current.value == "(":
            self.advance()
            inner = self.condition()
            self.expect_punct(")")
            return inner
        return self.comparison()

    def comparison(self) -> Comparison:
        path = self.path()
        token = self.current
        if token.kind == "op":
            self.advance()
            op = {"!=": "=", "<>": "="}.get(token.value, token.value)
            return Comparison(path, op, (self.value(),), token.value in ("!=", "<>"), token.pos)
        negated = False
        if token.is_keyword("NOT"):
            self.advance()
            negated = True
            if not self.current.is_keyword("IN"):
                raise self.unexpected()
        if self.current.is_keyword("IN"):
            op_token = self.advance()
            self.expect_punct("(")
            if self.current.is_keyword("SELECT"):
                raise SoqlError(
                    "MALFORMED_QUERY", "the emulator does not support semi-join subqueries", self.current.pos
                )
            values = [self.value()]
            while self.current.kind == "punct" and self.current.value == ",":
                self.advance()
                values.append(self.value())
            self.expect_punct(")")
            return Comparison(path, "IN", tuple(values), negated, op_token.pos)
        if token.is_keyword("LIKE"):
            self.advance()
            return Comparison(path, "LIKE", (self.value(),), False, token.pos)
        if token.is_keyword("INCLUDES", "EXCLUDES"):
            raise SoqlError("MALFORMED_QUERY", f"the emulator does not support {token.upper}", token.pos)
        raise self.unexpected()

    def value(self) -> Literal:
        token = self.advance()
        source = self.text[token.pos : token.pos + len(token.value)]
        if token.kind == "string":
            return Literal(
                "string", token.value, token.pos, self.text[token.pos : self.current.pos].rstrip(), token.like
            )
        if token.kind == "number":
            return Literal("number", float(token.value) if "." in token.value else int(token.value), token.pos, source)
        if token.kind in ("datetime", "date"):
            return Literal(token.kind, token.value, token.pos, source)
        if token.kind == "ident":
            word = token.upper
            if word in ("TRUE", "FALSE"):
                return Literal("boolean", word == "TRUE", token.pos, source)
            if word == "NULL":
                return Literal("null", None, token.pos, source)
            if word in DATE_LITERALS:
                return Literal("date_literal", (word, 0), token.pos, source)
            if word in DATE_N_LITERALS:
                self.expect_punct(":")
                number = self.advance()
                if number.kind != "number" or not number.value.isdigit():
                    raise self.unexpected(number)
                return Literal("date_literal", (word, int(number.value)), token.pos, f"{token.value}:{number.value}")
        raise self.unexpected(token)
