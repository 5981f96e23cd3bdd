"""The admin's query filter: a SOQL WHERE clause over the object a Salesforce connector reads
(AccountUserTerritory2View, AccountTeamMember).

The admin types e.g. ``RoleInTerritory2 = 'CSM' AND LastModifiedDate > 2025-01-01T00:00:00Z``.
It is parsed by the recursive-descent grammar below into an immutable tree, checked against
the known fields and their types, and rendered back as canonical SOQL. Only the rendering
is ever sent to Salesforce, and it is built from the tree alone (field names from FIELDS,
keywords, re-escaped literals), so nothing the admin types can close a string, add a
clause or comment out the rest of the query.

Grammar (keywords are case-insensitive; NOT binds tighter than AND, AND tighter than OR)::

    filter     := or_expr EOF
    or_expr    := and_expr ("OR" and_expr)*
    and_expr   := not_expr ("AND" not_expr)*
    not_expr   := "NOT" not_expr | "(" or_expr ")" | condition
    condition  := field ("=" | "!=" | "<>" | "<" | "<=" | ">" | ">=") value
                | field ["NOT"] "IN" "(" value ("," value)* ")"
                | field "LIKE" string
    value      := string | number | "TRUE" | "FALSE" | "NULL" | datetime | date

Canonical rendering: fields in their canonical case, keywords upper case, single spaces,
``<>`` written ``!=``, an AND/OR group nested in another always in parentheses (SOQL refuses
AND and OR mixed without them), NOT always written ``NOT (...)``, strings single-quoted and
re-escaped, date-times as ``YYYY-MM-DDThh:mm:ssZ`` in UTC.

Pure domain: no I/O.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final, Literal, NoReturn, TypeAlias

from services.runtime.errors import FieldViolation, InvalidArgument


class FieldType(StrEnum):
    ID = "id"  # a Salesforce id, written as a quoted string
    TEXT = "text"
    DATETIME = "datetime"


# The fields an admin may filter on, by canonical name: those of AccountUserTerritory2View and
# of AccountTeamMember (one name has one type in both). Each connector says which of them its
# object has (fields_of on the parsed filter).
FIELDS: Final[Mapping[str, FieldType]] = MappingProxyType(
    {
        "Id": FieldType.ID,
        "AccountId": FieldType.ID,
        "UserId": FieldType.ID,
        "User.Email": FieldType.TEXT,
        "User.Name": FieldType.TEXT,
        "RoleInTerritory2": FieldType.TEXT,
        "Territory2Id": FieldType.ID,
        "TeamMemberRole": FieldType.TEXT,
        "AccountAccessLevel": FieldType.TEXT,
        "LastModifiedDate": FieldType.DATETIME,
    }
)

MAX_LENGTH: Final = 10_000  # characters in a whole filter
MAX_STRING_LENGTH: Final = 4_000  # Salesforce: "Strings in WHERE clauses can't exceed 4,000 characters"
MAX_DEPTH: Final = 50  # nested parentheses and NOTs; keeps the recursion bounded

ComparisonOp: TypeAlias = Literal["=", "!=", "<", "<=", ">", ">="]
COMPARISON_OPS: Final[tuple[ComparisonOp, ...]] = ("=", "!=", "<", "<=", ">", ">=")
# A literal in the tree: a string (text and id fields), an aware UTC date-time with whole
# seconds (date-time fields), or None for null. Numbers and booleans are part of the grammar
# but no field of the view takes them, so they never reach the tree.
Value: TypeAlias = str | dt.datetime | None


class FilterError(InvalidArgument):
    """A query filter that does not parse or does not type-check.

    `position` is a 0-based character offset into the filter text, `expected` says what the
    grammar would have accepted there, `message` is the whole human-readable sentence.
    """

    def __init__(self, position: int, expected: str, message: str, *, field: str = "query_filter") -> None:
        super().__init__(
            "QUERY_FILTER_INVALID",
            message,
            metadata={"position": str(position), "expected": expected},
            field_violations=[FieldViolation(field, message, "QUERY_FILTER_INVALID")],
        )
        self.position = position
        self.expected = expected


# --- the tree ------------------------------------------------------------------------------
# Every node checks itself on construction (ValueError), so a tree built by code rather than
# by parse() renders to valid, injection-free SOQL too.


@dataclass(frozen=True)
class Comparison:
    field: str
    op: ComparisonOp
    value: Value

    def __post_init__(self) -> None:
        if self.op not in COMPARISON_OPS:
            raise ValueError(f"unknown comparison operator {self.op!r}")
        # How Salesforce orders ids (case, 15 vs 18 characters) is not documented, and the
        # stand-in and Steward disagreed on it: ids compare only for (in)equality.
        if self.op not in ("=", "!=") and _field_type(self.field) is FieldType.ID:
            raise ValueError(f"{self.field} is an id: ids are compared only with = and !=")
        if self.value is None:
            _field_type(self.field)
            if self.op not in ("=", "!="):
                raise ValueError("null is only allowed with = and !=")
        else:
            object.__setattr__(self, "value", _checked_value(self.field, self.value))


@dataclass(frozen=True)
class InList:
    field: str
    values: tuple[str | dt.datetime, ...]
    negated: bool = False

    def __post_init__(self) -> None:
        values = tuple(self.values)
        if not values:
            raise ValueError("IN needs at least one value")
        if any(v is None for v in values):
            raise ValueError("null is not allowed in IN lists")
        object.__setattr__(self, "values", tuple(_checked_value(self.field, v) for v in values))


@dataclass(frozen=True)
class Like:
    """`pattern` keeps LIKE's own escapes: ``%`` and ``_`` are wildcards, and a backslash
    always escapes the next character, which is ``%``, ``_`` or ``\\`` (a literal one)."""

    field: str
    pattern: str

    def __post_init__(self) -> None:
        # Salesforce refuses LIKE on id and date-time fields (found by the equivalence test
        # against the stand-in: tests/test_sync_filter_equivalence.py).
        if _field_type(self.field) is not FieldType.TEXT:
            raise ValueError(f"LIKE needs a text field; {self.field} is {_field_type(self.field).value}")
        if not isinstance(self.pattern, str) or _LIKE_PATTERN.fullmatch(self.pattern) is None:
            raise ValueError("a LIKE pattern escapes only %, _ and \\ with a backslash")
        if len(_unescape_like(self.pattern)) > MAX_STRING_LENGTH:
            raise ValueError(f"strings in SOQL have at most {MAX_STRING_LENGTH} characters")


@dataclass(frozen=True)
class And:
    items: tuple[Filter, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", _flatten(And, self.items))


@dataclass(frozen=True)
class Or:
    items: tuple[Filter, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", _flatten(Or, self.items))


@dataclass(frozen=True)
class Not:
    item: Filter

    def __post_init__(self) -> None:
        _check_node(self.item)


Filter: TypeAlias = Comparison | InList | Like | And | Or | Not
_LIKE_PATTERN: Final = re.compile(r"(?:[^\\]|\\[\\%_])*", re.DOTALL)


def _flatten(kind: type[And] | type[Or], items: tuple[Filter, ...]) -> tuple[Filter, ...]:
    # (a AND b) AND c is a AND b AND c: one canonical tree for each meaning.
    flat: list[Filter] = []
    for item in items:
        _check_node(item)
        flat.extend(item.items if isinstance(item, kind) else (item,))
    if len(flat) < 2:
        raise ValueError(f"{kind.__name__} needs at least two items")
    return tuple(flat)


def _check_node(item: object) -> None:
    if not isinstance(item, Comparison | InList | Like | And | Or | Not):
        raise TypeError(f"not a filter node: {item!r}")


def _field_type(field: str) -> FieldType:
    if field not in FIELDS:
        raise ValueError(f"unknown field {field!r}; fields are {', '.join(FIELDS)}")
    return FIELDS[field]


def _checked_value(field: str, value: object) -> str | dt.datetime:
    if _field_type(field) is FieldType.DATETIME:
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            raise ValueError(f"{field} takes timezone-aware date-times")
        if value.microsecond:
            raise ValueError("SOQL date-time literals have whole seconds")
        return value.astimezone(dt.UTC)
    if not isinstance(value, str):
        raise ValueError(f"{field} takes strings")
    if len(value) > MAX_STRING_LENGTH:
        raise ValueError(f"strings in SOQL have at most {MAX_STRING_LENGTH} characters")
    if _field_type(field) is FieldType.ID and _SALESFORCE_ID.fullmatch(value) is None:
        # Salesforce answers INVALID_QUERY_FILTER_OPERATOR "invalid ID field" at run time;
        # saying it when the filter is saved is kinder (found by the equivalence test).
        raise ValueError(f"{field} takes Salesforce ids: 15 or 18 letters and digits, e.g. '0018c00002VY27fAAD'")
    return value


_SALESFORCE_ID: Final = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")


# --- errors: what the grammar expects --------------------------------------------------------


def _expect_field(fields: Collection[str]) -> str:
    return f"a field name (one of {', '.join(fields)})"


_EXPECT_OPERATOR: Final = "an operator (=, !=, <, <=, >, >=, IN, NOT IN, LIKE)"
_EXPECT_PLAIN_ESCAPE: Final = "an escape sequence (\\n, \\r, \\t, \\b, \\f, \\\", \\', \\\\, \\uXXXX)"
_EXPECT_ESCAPE: Final = _EXPECT_PLAIN_ESCAPE[:-1] + "; \\% and \\_ in LIKE)"
_EXPECT_VALUE: Final = {
    FieldType.ID: "a quoted string such as '0018c00002VY27fAAD'",
    FieldType.TEXT: "a quoted string such as 'CSM'",
    FieldType.DATETIME: "a date-time such as 2025-01-01T00:00:00Z or a date such as 2025-01-01",
}


def _error(position: int, expected: str, problem: str) -> FilterError:
    return FilterError(
        position, expected, f"invalid query filter at position {position}: {problem}; expected {expected}"
    )


# --- tokens ----------------------------------------------------------------------------------

_TokenKind: TypeAlias = Literal["word", "string", "number", "datetime", "op", "(", ")", ",", "char", "eof"]


@dataclass(frozen=True)
class _Token:
    kind: _TokenKind
    text: str  # as typed
    pos: int
    value: Any = None  # word: upper-cased text; string: (LIKE-form text, position of a \% or \_); datetime

    def describe(self) -> str:
        if self.kind == "eof":
            return "end of the filter"
        shown = self.text if len(self.text) <= 40 else self.text[:37] + "..."
        return f"the string {shown}" if self.kind == "string" else f"'{shown}'"


_WORD: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_NUMBER: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)", re.ASCII)
_DATE: Final = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)
_DATETIME: Final = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:Z|([+-])(\d{2}):(\d{2}))", re.ASCII)
_OPERATORS: Final = ("<=", ">=", "!=", "<>", "=", "<", ">")
# SOQL's quoted-string escapes (Salesforce, "Quoted String Escape Sequences"); \b is taken
# as backspace U+0008 as in Java, which SOQL is built on, though the table calls it "bell".
_ESCAPES: Final = {
    "n": "\n", "N": "\n", "r": "\r", "R": "\r", "t": "\t", "T": "\t",
    "b": "\b", "B": "\b", "f": "\f", "F": "\f", '"': '"', "'": "'",
}  # fmt: skip


def _tokens(text: str) -> Iterator[_Token]:
    """Tokens one at a time, so that the first error in the text is the one reported."""
    i = 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i == len(text):
            yield _Token("eof", "", i)
            return
        c = text[i]
        if c == "'":
            token = _string(text, i)
        elif m := _DATE.match(text, i):
            token = _date_time(text, i, m)
        elif m := _NUMBER.match(text, i):
            token = _Token("number", m.group(), i)
        elif m := _WORD.match(text, i):
            token = _Token("word", m.group(), i, m.group().upper())
        elif op := next((op for op in _OPERATORS if text.startswith(op, i)), None):
            token = _Token("op", op, i, "!=" if op == "<>" else op)
        elif c in "(),":
            token = _Token(c, c, i)  # type: ignore[arg-type]
        else:
            token = _Token("char", c, i)
        yield token
        i += len(token.text)


def _string(text: str, start: int) -> _Token:
    out: list[str] = []
    like_escape: int | None = None  # where the first \% or \_ is: those are for LIKE only
    i = start + 1
    while True:
        if i >= len(text):
            raise _error(start, "a closing quote (')", f"the string at position {start} is not closed")
        c = text[i]
        if c == "'":
            break
        if c != "\\":
            out.append(c)
            i += 1
            continue
        e = text[i + 1 : i + 2]
        if e in _ESCAPES:
            out.append(_ESCAPES[e])
            i += 2
        elif e in ("\\", "%", "_"):  # kept escaped: LIKE tells them from wildcards
            out.append("\\" + e)
            if e != "\\" and like_escape is None:
                like_escape = i
            i += 2
        elif (
            e == "u"
            and re.fullmatch(r"[0-9A-Fa-f]{4}", text[i + 2 : i + 6])
            and not 0xD800 <= int(text[i + 2 : i + 6], 16) <= 0xDFFF
        ):
            char = chr(int(text[i + 2 : i + 6], 16))
            out.append("\\\\" if char == "\\" else char)  # a backslash spelled \u005C is a literal one
            i += 6
        else:
            shown = text[i : i + 6] if e == "u" else text[i : i + 2]
            raise _error(i, _EXPECT_ESCAPE, f"'{shown}' is not a SOQL escape sequence")
    decoded = "".join(out)
    if len(_unescape_like(decoded)) > MAX_STRING_LENGTH:
        raise _error(start, f"a string of at most {MAX_STRING_LENGTH} characters", "the string is too long")
    return _Token("string", text[start : i + 1], start, (decoded, like_escape))


def _date_time(text: str, start: int, date: re.Match[str]) -> _Token:
    expected = _EXPECT_VALUE[FieldType.DATETIME]
    m = _DATETIME.match(text, start)
    end = m.end() if m else date.end()
    if end < len(text) and (text[end].isalnum() or text[end] in ":.+-_"):
        raise _error(start, expected, f"'{text[start : end + 1]}...' is neither a date-time nor a date")
    try:
        y, mo, d = (int(g) for g in date.groups())
        if m is None:
            # A date on a date-time field means its midnight UTC: Salesforce itself refuses
            # date values on dateTime fields, so the canonical form is the date-time.
            value = dt.datetime(y, mo, d, tzinfo=dt.UTC)
        else:
            hh, mm, ss = (int(g) for g in m.groups()[3:6])
            sign, oh, om = m.group(7), m.group(8), m.group(9)
            offset = (
                dt.timedelta(hours=int(oh), minutes=int(om)) * (-1 if sign == "-" else 1) if sign else dt.timedelta()
            )
            value = dt.datetime(y, mo, d, hh, mm, ss, tzinfo=dt.timezone(offset)).astimezone(dt.UTC)
    except (ValueError, OverflowError) as exc:
        raise _error(start, expected, f"'{text[start:end]}' is not a valid date-time ({exc})") from None
    return _Token("datetime", text[start:end], start, value)


# --- parser ----------------------------------------------------------------------------------


def parse(text: str, fields: Collection[str] = tuple(FIELDS)) -> Filter:
    """Parse and type-check a filter over `fields` (the object's, among FIELDS); raise
    FilterError at the first problem.

    A blank filter is an error here: a job without a filter has none (None), not an empty one.
    """
    if len(text) > MAX_LENGTH:
        raise _error(MAX_LENGTH, f"a filter of at most {MAX_LENGTH} characters", "the filter is too long")
    return _Parser(text, fields).parse()


class _Parser:
    def __init__(self, text: str, fields: Collection[str]) -> None:
        self._tokens = _tokens(text)
        self.tok = next(self._tokens)
        self.depth = 0
        self.fields = {name.lower(): name for name in fields if name in FIELDS}
        self.expect_field = _expect_field(fields)
        self.expect_condition = f"{self.expect_field}, NOT or '('"

    def parse(self) -> Filter:
        node = self.or_expr()
        if self.tok.kind != "eof":
            self.fail("AND, OR or the end of the filter")
        return node

    def advance(self) -> _Token:
        tok, self.tok = self.tok, next(self._tokens)
        return tok

    def fail(self, expected: str, problem: str | None = None) -> NoReturn:
        raise _error(self.tok.pos, expected, problem or f"unexpected {self.tok.describe()}")

    def is_word(self, *words: str) -> bool:
        return self.tok.kind == "word" and self.tok.value in words

    def or_expr(self) -> Filter:
        items = [self.and_expr()]
        while self.is_word("OR"):
            self.advance()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self) -> Filter:
        items = [self.not_expr()]
        while self.is_word("AND"):
            self.advance()
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else And(tuple(items))

    def not_expr(self) -> Filter:
        if not (self.is_word("NOT") or self.tok.kind == "("):
            return self.condition()
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail("a less deeply nested filter", f"more than {MAX_DEPTH} nested parentheses and NOTs")
        if self.advance().kind == "(":
            if self.tok.kind == ")":
                self.fail(self.expect_condition, "empty parentheses")
            node: Filter = self.or_expr()
            if self.tok.kind != ")":
                self.fail("AND, OR or ')'")
            self.advance()
        else:
            node = Not(self.not_expr())
        self.depth -= 1
        return node

    def condition(self) -> Filter:
        if self.tok.kind != "word" or self.tok.value in _KEYWORDS:
            self.fail(self.expect_condition)
        field = self.fields.get(self.tok.text.lower())
        if field is None:
            self.fail(self.expect_field, f"unknown field '{self.tok.text}'")
        self.advance()
        ftype = FIELDS[field]
        if self.tok.kind == "op":
            if ftype is FieldType.ID and self.tok.value not in ("=", "!="):
                self.fail("=, !=, IN or NOT IN", f"{field} is an id: ids are compared only for (in)equality")
            op: ComparisonOp = self.advance().value
            return Comparison(field, op, self.value(field, op))
        if self.is_word("LIKE"):
            if ftype is not FieldType.TEXT:
                self.fail(
                    "an operator (=, !=, <, <=, >, >=, IN, NOT IN)",
                    f"LIKE needs a text field; {field} is {ftype.value}",
                )
            self.advance()
            if self.tok.kind != "string":
                self.fail("a quoted pattern such as 'A%'")
            return Like(field, self.advance().value[0])
        negated = self.is_word("NOT")
        if negated:
            self.advance()
            if self.is_word("LIKE"):
                hint = f"write NOT ({field} LIKE ...)" if ftype is FieldType.TEXT else f"{field} takes no LIKE"
                self.fail("IN", f"SOQL has no NOT LIKE: {hint}")
            if not self.is_word("IN"):
                self.fail("IN")
        if not self.is_word("IN"):
            self.fail(_EXPECT_OPERATOR)
        self.advance()
        if self.tok.kind != "(":
            self.fail("'(' and a list of values")
        self.advance()
        if self.tok.kind == ")":
            self.fail(_EXPECT_VALUE[ftype], "IN needs at least one value")
        values = [self.value(field, "IN")]
        while self.tok.kind == ",":
            self.advance()
            values.append(self.value(field, "IN"))
        if self.tok.kind != ")":
            self.fail("',' or ')'")
        self.advance()
        return InList(field, tuple(v for v in values if v is not None), negated)

    def value(self, field: str, op: str) -> Value:
        """The literal after `field op`, checked against the field's type."""
        ftype, tok = FIELDS[field], self.tok
        nullable = op in ("=", "!=")
        expected = _EXPECT_VALUE[ftype] + (" or null" if nullable else "")
        if self.is_word("NULL"):
            if not nullable:
                where = "in IN lists" if op == "IN" else f"with {op}"
                self.fail(_EXPECT_VALUE[ftype], f"null is not allowed {where}; only with = and !=")
            self.advance()
            return None
        if self.is_word("TRUE", "FALSE"):
            self.fail(expected, f"{field} is not a boolean field (no field of AccountUserTerritory2View is)")
        if tok.kind == "number":
            hint = "" if ftype is FieldType.DATETIME else f": quote it, '{tok.text}'"
            self.fail(expected, f"{field} takes no numbers{hint}")
        if tok.kind == "string" and ftype is not FieldType.DATETIME:
            text, like_escape = tok.value
            if like_escape is not None:
                raise _error(like_escape, _EXPECT_PLAIN_ESCAPE, "\\% and \\_ are only allowed in LIKE patterns")
            value = _unescape_like(text)
            if ftype is FieldType.ID and _SALESFORCE_ID.fullmatch(value) is None:
                self.fail(_EXPECT_VALUE[FieldType.ID], f"{field} takes Salesforce ids (15 or 18 letters and digits)")
            self.advance()
            return value
        if tok.kind == "datetime" and ftype is FieldType.DATETIME:
            self.advance()
            return tok.value
        if tok.kind == "string":
            self.fail(expected, f"{field} is a date-time: write it unquoted, e.g. 2025-01-01T00:00:00Z")
        if tok.kind == "datetime":
            self.fail(expected, f"{field} takes quoted strings, not date-times")
        self.fail(expected)


_KEYWORDS: Final = frozenset({"AND", "OR", "NOT", "IN", "LIKE", "TRUE", "FALSE", "NULL"})


def _unescape_like(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text, flags=re.DOTALL)


# --- rendering -------------------------------------------------------------------------------

_RENDER_ESCAPES: Final = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def _escape_char(c: str) -> str:
    if c in _RENDER_ESCAPES:
        return _RENDER_ESCAPES[c]
    if ord(c) < 0x20 or ord(c) == 0x7F:  # other control characters, spelled out
        return f"\\u{ord(c):04X}"
    return c


def _render_value(value: Value) -> str:
    if value is None:
        return "null"
    if isinstance(value, dt.datetime):
        v = value.astimezone(dt.UTC)
        return f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}Z"
    return "'" + "".join(_escape_char(c) for c in value) + "'"


def _render_pattern(pattern: str) -> str:
    # LIKE's escapes (\%, \_, \\) are already SOQL escapes; every other character is escaped
    # as in any string.
    return (
        "'"
        + "".join(p if p.startswith("\\") else _escape_char(p) for p in re.findall(r"\\.|.", pattern, re.DOTALL))
        + "'"
    )


def render(node: Filter) -> str:
    """Canonical SOQL for a tree; parse(render(t)) == t."""
    if isinstance(node, Comparison):
        return f"{node.field} {node.op} {_render_value(node.value)}"
    if isinstance(node, InList):
        values = ", ".join(_render_value(v) for v in node.values)
        return f"{node.field} {'NOT IN' if node.negated else 'IN'} ({values})"
    if isinstance(node, Like):
        return f"{node.field} LIKE {_render_pattern(node.pattern)}"
    if isinstance(node, Not):
        return f"NOT ({render(node.item)})"
    joiner = " AND " if isinstance(node, And) else " OR "
    return joiner.join(f"({render(i)})" if isinstance(i, And | Or) else render(i) for i in node.items)


def and_filter(a: Filter | None, b: Filter) -> Filter:
    """The admin's optional filter AND a generated clause (e.g. the incremental watermark
    ``LastModifiedDate > ts``). Grouping is the tree's, so an OR in `a` cannot escape."""
    return b if a is None else And((a, b))


# --- evaluation ------------------------------------------------------------------------------
# SOQL semantics over one row, keyed by canonical field names; a missing key is null.
#
# - Two-valued logic, no UNKNOWN: SOQL treats null as a value unequal to every literal, so
#   `f != 'x'` and `f NOT IN (...)` are true for a null f, and NOT simply negates. (Unlike SQL;
#   this is how orgs behave, the SOQL reference does not spell it out.)
# - `f = null` is true when f is null or missing, `f != null` when it has a value.
# - <, <=, >, >= and LIKE are false for a null f: there is nothing to order or match.
# - Text fields compare case-insensitively (casefold): SOQL's = is case-insensitive except on
#   unique case-sensitive fields, which this view has none of. <, >, ... use casefold too, an
#   approximation of the org's collation.
# - Id fields compare on the 15-character case-sensitive id: an 18-character id is the same
#   id plus a suffix that encodes the case of the first 15, so '0018c00002VY27f' and
#   '0018C00002VY27FAAD' both name the record 0018c00002VY27fAAD, as in Salesforce.
# - LIKE (text fields only) is case-insensitive, % is any run of characters, _ one character,
#   \% \_ \\ are the literal characters.
# - Date-times compare as instants; row values must be timezone-aware.


def evaluate(node: Filter, row: Mapping[str, Any]) -> bool:
    if isinstance(node, And):
        return all(evaluate(i, row) for i in node.items)
    if isinstance(node, Or):
        return any(evaluate(i, row) for i in node.items)
    if isinstance(node, Not):
        return not evaluate(node.item, row)
    actual = _row_value(row, node.field)
    if isinstance(node, Like):
        return actual is not None and _like_regex(node.pattern).fullmatch(str(actual)) is not None
    if isinstance(node, InList):
        if actual is None:
            return node.negated
        found = any(_key(node.field, actual) == _key(node.field, v) for v in node.values)
        return found != node.negated
    if node.value is None or actual is None:
        same = node.value is None and actual is None
        return same if node.op == "=" else not same if node.op == "!=" else False
    left, right = _key(node.field, actual), _key(node.field, node.value)
    return _COMPARE[node.op](left, right)


_COMPARE: Final[Mapping[str, Any]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _row_value(row: Mapping[str, Any], field: str) -> Any:
    value = row.get(field)
    if value is None:
        return None
    if FIELDS[field] is FieldType.DATETIME:
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            raise TypeError(f"row value of {field} must be a timezone-aware datetime, not {value!r}")
    elif not isinstance(value, str):
        raise TypeError(f"row value of {field} must be a string, not {value!r}")
    return value


def _key(field: str, value: str | dt.datetime) -> Any:
    ftype = FIELDS[field]
    if ftype is FieldType.DATETIME:
        return value
    assert isinstance(value, str)
    return _id_key(value) if ftype is FieldType.ID else value.casefold()


_ID_SUFFIX: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def _id_key(value: str) -> str:
    """The 15-character form of an 18-character Salesforce id; anything else as it is."""
    if len(value) != 18 or not (value.isascii() and value.isalnum()):
        return value
    head, chars = value[:15], []
    for chunk, flag in enumerate(value[15:].upper()):
        bits = _ID_SUFFIX.find(flag)
        if bits < 0:
            return value  # not a suffix character: not an id
        for i, c in enumerate(head[chunk * 5 : chunk * 5 + 5]):
            upper = bits >> i & 1
            if upper and not c.isalpha():
                return value  # the suffix does not fit: not an id
            chars.append(c.upper() if upper else c.lower())
    return "".join(chars)


def _like_regex(pattern: str) -> re.Pattern[str]:
    parts = re.findall(r"\\.|.", pattern, re.DOTALL)
    body = "".join(".*" if p == "%" else "." if p == "_" else re.escape(p[-1]) for p in parts)
    return re.compile(body, re.IGNORECASE | re.DOTALL)


# --- single-account queries ------------------------------------------------------------------


def accounts_pinned(node: Filter | None) -> str | None:
    """The one AccountId the filter requires, if it requires exactly one at the top level
    (``AccountId = '0018c00002VY27fAAD'`` or ``AccountId IN (...)`` with one id, alone or AND-ed with other conditions):
    the connector then queries AccountUserTerritory2View, which Salesforce only answers
    for one account at a time. None otherwise, and when two different ids are required
    (nothing matches then)."""
    if node is None:
        return None
    items = node.items if isinstance(node, And) else (node,)
    pins = [pin for item in items if (pin := _pinned_value(item)) is not None]
    if not pins or len({_id_key(pin) for pin in pins}) > 1:
        return None
    return pins[0]


def _pinned_value(node: Filter) -> str | None:
    if isinstance(node, Comparison) and node.field == "AccountId" and node.op == "=":
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, InList) and node.field == "AccountId" and not node.negated and len(node.values) == 1:
        value = node.values[0]
        return value if isinstance(value, str) else None
    return None


def fields_of(node: Filter) -> set[str]:
    """The canonical names of the fields a filter tests."""
    if isinstance(node, Comparison | InList | Like):
        return {node.field}
    if isinstance(node, Not):
        return fields_of(node.item)
    return set().union(*(fields_of(item) for item in node.items))
