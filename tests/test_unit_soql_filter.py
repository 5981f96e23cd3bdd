"""The ETM job's query filter: SOQL WHERE parsing, type rules, canonical rendering, evaluation."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.runtime.errors import ErrorKind
from services.sync.domain.soql_filter import (
    COMPARISON_OPS,
    FIELDS,
    And,
    Comparison,
    FieldType,
    Filter,
    FilterError,
    InList,
    Like,
    Not,
    Or,
    accounts_pinned,
    and_filter,
    evaluate,
    parse,
    render,
)

UTC = dt.UTC
ACCOUNT = "0018c00002VY27fAAD"
FIELD_LIST = (
    "a field name (one of Id, AccountId, UserId, User.Email, User.Name, "
    "RoleInTerritory2, Territory2Id, LastModifiedDate)"
)
CONDITION = FIELD_LIST + ", NOT or '('"
OPERATOR = "an operator (=, !=, <, <=, >, >=, IN, NOT IN, LIKE)"
ID_VALUE = "a quoted string such as '0018c00002VY27fAAD'"
TEXT_VALUE = "a quoted string such as 'CSM'"
DATETIME_VALUE = "a date-time such as 2025-01-01T00:00:00Z or a date such as 2025-01-01"
ESCAPE = "an escape sequence (\\n, \\r, \\t, \\b, \\f, \\\", \\', \\\\, \\uXXXX"


def canonical(text: str) -> str:
    return render(parse(text))


# --- the issue's examples -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "tree", "rendered"),
    [
        (f"AccountId = '{ACCOUNT}'", Comparison("AccountId", "=", ACCOUNT), f"AccountId = '{ACCOUNT}'"),
        ("RoleInTerritory2 = 'CSM'", Comparison("RoleInTerritory2", "=", "CSM"), "RoleInTerritory2 = 'CSM'"),
        (
            "Territory2Id = '0MIJ7000000wkBcOAI'",
            Comparison("Territory2Id", "=", "0MIJ7000000wkBcOAI"),
            "Territory2Id = '0MIJ7000000wkBcOAI'",
        ),
        (
            "LastModifiedDate > 2025-01-01T00:00:00Z",
            Comparison("LastModifiedDate", ">", dt.datetime(2025, 1, 1, tzinfo=UTC)),
            "LastModifiedDate > 2025-01-01T00:00:00Z",
        ),
    ],
)
def test_the_issue_examples_parse_and_render_canonically(typed: str, tree: Filter, rendered: str) -> None:
    assert parse(typed) == tree
    assert render(tree) == rendered


def test_fields_keywords_and_spacing_are_canonicalised() -> None:
    typed = "  user.email   like '%@example.com'and(roleinterritory2<>'CSM'or ID not in('a','b'))  "
    assert canonical(typed) == "User.Email LIKE '%@example.com' AND (RoleInTerritory2 != 'CSM' OR Id NOT IN ('a', 'b'))"


def test_the_field_table_is_exported_with_types() -> None:
    assert FIELDS == {
        "Id": FieldType.ID,
        "AccountId": FieldType.ID,
        "UserId": FieldType.ID,
        "User.Email": FieldType.TEXT,
        "User.Name": FieldType.TEXT,
        "RoleInTerritory2": FieldType.TEXT,
        "Territory2Id": FieldType.ID,
        "LastModifiedDate": FieldType.DATETIME,
    }


# --- precedence and parentheses -------------------------------------------------------------------

A, B, C, D = (Comparison("Id", "=", x) for x in "abcd")


@pytest.mark.parametrize(
    ("typed", "tree", "rendered"),
    [
        ("Id='a' AND Id='b' OR Id='c'", Or((And((A, B)), C)), "(Id = 'a' AND Id = 'b') OR Id = 'c'"),
        ("Id='a' OR Id='b' AND Id='c'", Or((A, And((B, C)))), "Id = 'a' OR (Id = 'b' AND Id = 'c')"),
        ("(Id='a' OR Id='b') AND Id='c'", And((Or((A, B)), C)), "(Id = 'a' OR Id = 'b') AND Id = 'c'"),
        ("NOT Id='a' AND Id='b'", And((Not(A), B)), "NOT (Id = 'a') AND Id = 'b'"),
        ("NOT (Id='a' AND Id='b')", Not(And((A, B))), "NOT (Id = 'a' AND Id = 'b')"),
        ("NOT NOT Id='a'", Not(Not(A)), "NOT (NOT (Id = 'a'))"),
        ("Id='a' OR NOT Id='b' AND Id='c'", Or((A, And((Not(B), C)))), "Id = 'a' OR (NOT (Id = 'b') AND Id = 'c')"),
        # same-operator groups flatten: one tree per meaning
        (
            "(Id='a' AND Id='b') AND (Id='c' AND Id='d')",
            And((A, B, C, D)),
            "Id = 'a' AND Id = 'b' AND Id = 'c' AND Id = 'd'",
        ),
        ("((((Id='a'))))", A, "Id = 'a'"),
        ("Id='a' or Id='b' OR Id='c'", Or((A, B, C)), "Id = 'a' OR Id = 'b' OR Id = 'c'"),
    ],
)
def test_not_binds_tighter_than_and_and_and_tighter_than_or(typed: str, tree: Filter, rendered: str) -> None:
    assert parse(typed) == tree
    assert render(tree) == rendered
    assert parse(rendered) == tree


# --- literals ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("literal", "value", "rendered"),
    [
        (r"'it\'s'", "it's", r"'it\'s'"),
        (r"'back\\slash'", "back\\slash", r"'back\\slash'"),
        (r"'a\nb\Nc'", "a\nb\nc", r"'a\nb\nc'"),
        (r"'\r\R\t\T\b\B\f\F'", "\r\r\t\t\b\b\f\f", r"'\r\r\t\t\b\b\f\f'"),
        (r"'say \"hi\"'", 'say "hi"', "'say \"hi\"'"),
        (r"'caf\u00e9'", "café", "'café'"),
        (r"'\u005C'", "\\", r"'\\'"),
        ("'raw\ttab'", "raw\ttab", r"'raw\ttab'"),
        ("'bell\x07'", "bell\x07", r"'bell\u0007'"),
        ("'100% _x_'", "100% _x_", "'100% _x_'"),
        ("''", "", "''"),
        ("'élan ✓'", "élan ✓", "'élan ✓'"),
    ],
)
def test_string_literals_decode_their_escapes_and_render_re_escaped(literal: str, value: str, rendered: str) -> None:
    tree = parse(f"User.Name = {literal}")
    assert tree == Comparison("User.Name", "=", value)
    assert render(tree) == f"User.Name = {rendered}"


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("2025-01-01T00:00:00Z", dt.datetime(2025, 1, 1, tzinfo=UTC)),
        ("2025-01-01T02:30:00+02:00", dt.datetime(2025, 1, 1, 0, 30, tzinfo=UTC)),
        ("2024-12-31T23:00:00-08:00", dt.datetime(2025, 1, 1, 7, tzinfo=UTC)),
        ("2025-01-01T00:15:00+00:30", dt.datetime(2024, 12, 31, 23, 45, tzinfo=UTC)),
        ("2024-02-29", dt.datetime(2024, 2, 29, tzinfo=UTC)),  # a date is its midnight UTC
    ],
)
def test_date_time_literals_are_converted_to_utc(literal: str, value: dt.datetime) -> None:
    tree = parse(f"LastModifiedDate >= {literal}")
    assert tree == Comparison("LastModifiedDate", ">=", value)
    assert isinstance(tree, Comparison)
    assert tree.value == value and getattr(tree.value, "tzinfo", None) is UTC
    assert render(tree) == f"LastModifiedDate >= {value:%Y-%m-%dT%H:%M:%SZ}"


def test_null_renders_as_null_and_keywords_in_upper_case() -> None:
    assert canonical("user.name = NULL and accountid != Null") == "User.Name = null AND AccountId != null"
    assert parse("Id = null") == Comparison("Id", "=", None)


def test_in_lists_of_strings_and_date_times() -> None:
    assert parse("LastModifiedDate in (2025-01-01, 2025-01-02T00:00:00+01:00)") == InList(
        "LastModifiedDate", (dt.datetime(2025, 1, 1, tzinfo=UTC), dt.datetime(2025, 1, 1, 23, tzinfo=UTC))
    )
    assert canonical("RoleInTerritory2 NOT IN ('CSM','AE' , 'SE')") == "RoleInTerritory2 NOT IN ('CSM', 'AE', 'SE')"


def test_like_keeps_its_escapes_apart_from_wildcards() -> None:
    tree = parse(r"User.Name LIKE 'Ter\%%\_x\\%'")
    assert tree == Like("User.Name", r"Ter\%%\_x\\%")
    assert render(tree) == r"User.Name LIKE 'Ter\%%\_x\\%'"
    assert canonical(r"User.Name LIKE 'O\'Br%'") == r"User.Name LIKE 'O\'Br%'"


# --- type rules -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "position", "expected", "says"),
    [
        ("AccountId = 123", 12, ID_VALUE + " or null", "quote it, '123'"),
        ("User.Name = -1.5", 12, TEXT_VALUE + " or null", "takes no numbers"),
        ("LastModifiedDate > 20250101", 19, DATETIME_VALUE, "takes no numbers"),
        ("AccountId = true", 12, ID_VALUE + " or null", "not a boolean field"),
        ("User.Name != FALSE", 13, TEXT_VALUE + " or null", "not a boolean field"),
        ("LastModifiedDate > '2025-01-01T00:00:00Z'", 19, DATETIME_VALUE, "write it unquoted"),
        ("User.Email = 2025-01-01", 13, TEXT_VALUE + " or null", "not date-times"),
        (
            "LastModifiedDate LIKE '2025%'",
            17,
            "an operator (=, !=, <, <=, >, >=, IN, NOT IN)",
            "LIKE needs a text or id",
        ),
        ("User.Name LIKE null", 15, "a quoted pattern such as 'A%'", "unexpected 'null'"),
        ("User.Name > null", 12, TEXT_VALUE, "null is not allowed with >"),
        ("LastModifiedDate <= null", 20, DATETIME_VALUE, "only with = and !="),
        ("Id IN ('a', null)", 12, ID_VALUE, "null is not allowed in IN lists"),
        ("Id IN ('a', 2025-01-01)", 12, ID_VALUE, "not date-times"),
        ("LastModifiedDate IN (2025-01-01, 'x')", 33, DATETIME_VALUE, "write it unquoted"),
        ("AccountId = 'a\\%'", 14, ESCAPE + ")", "only allowed in LIKE"),
    ],
)
def test_values_must_fit_the_field_type(typed: str, position: int, expected: str, says: str) -> None:
    with pytest.raises(FilterError) as caught:
        parse(typed)
    assert (caught.value.position, caught.value.expected) == (position, expected)
    assert says in caught.value.message


def test_trees_built_by_code_are_checked_too() -> None:
    with pytest.raises(ValueError, match="unknown field"):
        Comparison("Name) OR (Id", "=", "x")
    with pytest.raises(ValueError, match="unknown field"):
        Comparison("accountid", "=", "x")  # trees hold canonical names only
    with pytest.raises(ValueError, match="operator"):
        Comparison("Id", "LIKE", "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="null"):
        Comparison("Id", "<", None)
    with pytest.raises(ValueError, match="timezone-aware"):
        Comparison("LastModifiedDate", ">", dt.datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="whole seconds"):
        Comparison("LastModifiedDate", ">", dt.datetime(2025, 1, 1, 0, 0, 0, 5, tzinfo=UTC))
    with pytest.raises(ValueError, match="strings"):
        Comparison("Id", "=", dt.datetime(2025, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="at least one"):
        InList("Id", ())
    with pytest.raises(ValueError, match="LIKE pattern"):
        Like("Id", "a\\b")
    with pytest.raises(ValueError, match="at least two"):
        And((A,))
    with pytest.raises(TypeError):
        Not("Id = 'a'")  # type: ignore[arg-type]
    offset = dt.timezone(dt.timedelta(hours=2))
    assert Comparison("LastModifiedDate", ">", dt.datetime(2025, 1, 1, 2, tzinfo=offset)) == Comparison(
        "LastModifiedDate", ">", dt.datetime(2025, 1, 1, tzinfo=UTC)
    )


# --- errors: first problem, exact position, what was expected ------------------------------------------


@pytest.mark.parametrize(
    ("typed", "position", "expected", "says"),
    [
        ("", 0, CONDITION, "unexpected end of the filter"),
        ("   ", 3, CONDITION, "unexpected end of the filter"),
        ("Name = 'x'", 0, FIELD_LIST, "unknown field 'Name'"),
        ("Id = 'a' AND Account.Name = 'x'", 13, FIELD_LIST, "unknown field 'Account.Name'"),
        ("AccountId 'x'", 10, OPERATOR, "unexpected the string 'x'"),
        ("AccountId == 'x'", 11, ID_VALUE + " or null", "unexpected '='"),
        ("AccountId = ", 12, ID_VALUE + " or null", "end of the filter"),
        ("AccountId = 'x", 12, "a closing quote (')", "not closed"),
        ("User.Name = 'a\\qb'", 14, ESCAPE + "; \\% and \\_ in LIKE)", "'\\q' is not a SOQL escape"),
        ("User.Name = 'a\\u12G4'", 14, ESCAPE + "; \\% and \\_ in LIKE)", "'\\u12G4' is not"),
        ("AccountId = 'x' LIMIT 1", 16, "AND, OR or the end of the filter", "unexpected 'LIMIT'"),
        ("AccountId = 'x' ; DELETE", 16, "AND, OR or the end of the filter", "unexpected ';'"),
        ("(AccountId = 'x'", 16, "AND, OR or ')'", "end of the filter"),
        ("(AccountId = 'x'))", 17, "AND, OR or the end of the filter", "unexpected ')'"),
        ("()", 1, CONDITION, "empty parentheses"),
        ("Id = 'a' AND ()", 14, CONDITION, "empty parentheses"),
        ("AccountId IN ()", 14, ID_VALUE, "IN needs at least one value"),
        ("AccountId IN 'a'", 13, "'(' and a list of values", "unexpected the string 'a'"),
        ("AccountId IN ('a' 'b')", 18, "',' or ')'", "unexpected the string 'b'"),
        ("AccountId IN ('a',)", 18, ID_VALUE, "unexpected ')'"),
        ("Id NOT 'x'", 7, "IN", "unexpected the string 'x'"),
        ("Id NOT LIKE 'x%'", 7, "IN", "SOQL has no NOT LIKE"),
        ("Id = 'a' AND", 12, CONDITION, "end of the filter"),
        ("Id = 'a' AND OR Id = 'b'", 13, CONDITION, "unexpected 'OR'"),
        ("NOT", 3, CONDITION, "end of the filter"),
        ("LastModifiedDate > 2025-13-01T00:00:00Z", 19, DATETIME_VALUE, "month must be in 1..12"),
        ("LastModifiedDate > 2025-01-01T00:00:00.000Z", 19, DATETIME_VALUE, "neither a date-time nor a date"),
        ("LastModifiedDate > 2025-01-01T10", 19, DATETIME_VALUE, "neither a date-time nor a date"),
        ("LastModifiedDate > 2025-01-01T00:00:00+25:00", 19, DATETIME_VALUE, "not a valid date-time"),
        ("LastModifiedDate > TODAY", 19, DATETIME_VALUE, "unexpected 'TODAY'"),
        ("LastModifiedDate > ٢٠٢٥-01-01", 19, DATETIME_VALUE, "unexpected '٢'"),  # ASCII digits only
        # the first problem wins, even when a later one would stop the tokenizer
        ("Name = 'x", 0, FIELD_LIST, "unknown field"),
    ],
)
def test_a_bad_filter_reports_its_first_problem_with_position_and_expectation(
    typed: str, position: int, expected: str, says: str
) -> None:
    with pytest.raises(FilterError) as caught:
        parse(typed)
    error = caught.value
    assert (error.position, error.expected) == (position, expected)
    assert says in error.message
    assert error.message.startswith(f"invalid query filter at position {position}: ")


def test_a_filter_error_is_an_invalid_argument_with_details() -> None:
    with pytest.raises(FilterError) as caught:
        parse("AccountId = 'x' LIMIT 1")
    error = caught.value
    assert error.kind is ErrorKind.INVALID_ARGUMENT
    assert error.reason == "QUERY_FILTER_INVALID"
    assert error.metadata == {"position": "16", "expected": "AND, OR or the end of the filter"}
    assert [(v.field, v.reason) for v in error.field_violations] == [("query_filter", "QUERY_FILTER_INVALID")]


def test_limits_keep_the_parser_bounded() -> None:
    with pytest.raises(FilterError) as caught:
        parse("(" * 60 + "Id = 'a'" + ")" * 60)
    assert caught.value.position == 50  # the 51st parenthesis
    with pytest.raises(FilterError) as caught:
        parse("NOT " * 51 + "Id = 'a'")
    assert caught.value.position == 200
    with pytest.raises(FilterError) as caught:
        parse("User.Name = '" + "x" * 4001 + "'")
    assert (caught.value.position, caught.value.expected) == (12, "a string of at most 4000 characters")
    assert parse("User.Name = '" + "x" * 4000 + "'") == Comparison("User.Name", "=", "x" * 4000)
    with pytest.raises(FilterError) as caught:
        parse("Id = 'a' OR " * 1000 + "Id = 'a'")
    assert caught.value.position == 10_000


# --- injection ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        "AccountId = 'x' OR Id != null) LIMIT 1 --",
        "AccountId = 'x\\' OR 1=1",
        "AccountId = 'x' OR 1=1",
        "AccountId = 'x'; DELETE FROM Account",
        "AccountId = 'x' /* comment */",
        "AccountId = 'x' ORDER BY Id",
        "AccountId = 'x' AND Id IN (SELECT Id FROM User)",
        "AccountId = 'x'\n-- rest",
    ],
)
def test_injection_attempts_are_refused(typed: str) -> None:
    with pytest.raises(FilterError):
        parse(typed)


def test_an_escaped_backslash_ends_the_literal_where_the_tree_says() -> None:
    # 'x\\' is the string x\ and the OR after it is a real condition, kept inside the filter's own tree
    tree = parse("AccountId = 'x\\\\' OR Id != null")
    assert tree == Or((Comparison("AccountId", "=", "x\\"), Comparison("Id", "!=", None)))
    assert render(and_filter(tree, A)) == "(AccountId = 'x\\\\' OR Id != null) AND Id = 'a'"


@pytest.mark.parametrize(
    ("typed", "value", "rendered"),
    [
        ("AccountId = 'x\\' OR 1=1'", "x' OR 1=1", "AccountId = 'x\\' OR 1=1'"),
        ("AccountId = 'x\\' OR Id != null) LIMIT 1 --'", "x' OR Id != null) LIMIT 1 --", None),
        ("AccountId = 'x\\u0027 OR Id != null'", "x' OR Id != null", "AccountId = 'x\\' OR Id != null'"),
        ("AccountId = 'x\\\\\\' OR 1=1'", "x\\' OR 1=1", "AccountId = 'x\\\\\\' OR 1=1'"),
    ],
)
def test_quotes_inside_a_literal_are_neutralised(typed: str, value: str, rendered: str | None) -> None:
    tree = parse(typed)
    assert tree == Comparison("AccountId", "=", value)
    out = render(tree)
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    # the whole input is one string literal, its quotes escaped, and nothing follows it
    assert out == f"AccountId = '{escaped}'"
    assert rendered is None or out == rendered
    assert parse(out) == tree


def test_and_filter_keeps_the_admins_or_inside_its_group() -> None:
    admin = parse("RoleInTerritory2 = 'CSM' OR AccountId != null")
    watermark = Comparison("LastModifiedDate", ">", dt.datetime(2026, 3, 1, 12, tzinfo=UTC))
    combined = and_filter(admin, watermark)
    assert combined == And((admin, watermark))
    assert render(combined) == (
        "(RoleInTerritory2 = 'CSM' OR AccountId != null) AND LastModifiedDate > 2026-03-01T12:00:00Z"
    )
    assert and_filter(None, watermark) is watermark
    conjunction = parse("Id = 'a' AND Id = 'b'")
    assert and_filter(conjunction, watermark) == And((A, B, watermark))


# --- property: render and parse agree ---------------------------------------------------------------

TEXT_FIELDS = [f for f, t in FIELDS.items() if t is not FieldType.DATETIME]
_offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))
datetimes: st.SearchStrategy[str | dt.datetime] = st.datetimes(
    min_value=dt.datetime(1900, 1, 2), max_value=dt.datetime(2100, 12, 30), timezones=_offsets
).map(lambda d: d.replace(microsecond=0))
strings: st.SearchStrategy[str | dt.datetime] = st.text(max_size=12)
like_patterns = st.lists(
    st.one_of(
        st.sampled_from(["%", "_", "\\%", "\\_", "\\\\"]),
        st.characters(exclude_characters="\\"),
    ),
    max_size=8,
).map("".join)


@st.composite
def comparisons(draw: st.DrawFn) -> Comparison:
    field = draw(st.sampled_from(list(FIELDS)))
    op = draw(st.sampled_from(COMPARISON_OPS))
    if op in ("=", "!=") and draw(st.booleans()):
        return Comparison(field, op, None)
    return Comparison(field, op, draw(datetimes if FIELDS[field] is FieldType.DATETIME else strings))


@st.composite
def in_lists(draw: st.DrawFn) -> InList:
    field = draw(st.sampled_from(list(FIELDS)))
    values = draw(st.lists(datetimes if FIELDS[field] is FieldType.DATETIME else strings, min_size=1, max_size=4))
    return InList(field, tuple(values), draw(st.booleans()))


likes = st.builds(Like, st.sampled_from(TEXT_FIELDS), like_patterns)
trees: st.SearchStrategy[Filter] = st.recursive(
    st.one_of(comparisons(), in_lists(), likes),
    lambda children: st.one_of(
        st.lists(children, min_size=2, max_size=4).map(lambda items: And(tuple(items))),
        st.lists(children, min_size=2, max_size=4).map(lambda items: Or(tuple(items))),
        children.map(Not),
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(trees)
def test_render_then_parse_gives_the_same_tree_and_render_is_a_fixed_point(tree: Filter) -> None:
    rendered = render(tree)
    assert parse(rendered) == tree
    assert render(parse(rendered)) == rendered


TOKEN_SOUP = [
    "Id", "user.name", "LastModifiedDate", "Nope", "=", "!=", "<>", "<", ">=", "'a'", "'b\\'c'", "'%\\_'", "'x",
    "null", "true", "1", "2025-01-01T00:00:00+02:00", "2025-01-01",
    "(", ")", ",", "AND", "or", "NOT", "IN", "LIKE", ";",
]  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.lists(st.sampled_from(TOKEN_SOUP), max_size=14).map(" ".join),
        st.text(max_size=40),
    )
)
def test_any_text_either_parses_to_a_canonical_tree_or_fails_with_a_position(text: str) -> None:
    try:
        tree = parse(text)
    except FilterError as error:
        assert 0 <= error.position <= len(text)
        assert error.expected
        return
    rendered = render(tree)
    assert parse(rendered) == tree
    assert render(parse(rendered)) == rendered


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_every_string_literal_round_trips_as_one_literal(value: str) -> None:
    tree = Comparison("User.Name", "=", value)
    assert parse(render(tree)) == tree


# --- evaluation ----------------------------------------------------------------------------------------

ROW = {
    "Id": "0MYxx0000000001AAA",
    "AccountId": ACCOUNT,
    "UserId": "005xx000001Sv6AAAS",
    "User.Email": "Ann.Lee@Example.com",
    "User.Name": "Ann O'Lee",
    "RoleInTerritory2": "CSM",
    "Territory2Id": "0MIJ7000000wkBcOAI",
    "LastModifiedDate": dt.datetime(2025, 6, 1, 12, tzinfo=UTC),
}
NO_ROLE = {**ROW, "RoleInTerritory2": None}
NO_EMAIL = {k: v for k, v in ROW.items() if k != "User.Email"}


@pytest.mark.parametrize(
    ("typed", "row", "matches"),
    [
        ("RoleInTerritory2 = 'CSM'", ROW, True),
        ("RoleInTerritory2 = 'csm'", ROW, True),  # text = is case-insensitive
        ("RoleInTerritory2 != 'CSM'", ROW, False),
        ("RoleInTerritory2 != 'AE'", ROW, True),
        ("RoleInTerritory2 = 'CSM'", NO_ROLE, False),
        ("RoleInTerritory2 != 'CSM'", NO_ROLE, True),  # null is a value unequal to 'CSM'
        ("RoleInTerritory2 = null", NO_ROLE, True),
        ("RoleInTerritory2 = null", ROW, False),
        ("RoleInTerritory2 != null", ROW, True),
        ("RoleInTerritory2 != null", NO_ROLE, False),
        ("User.Email = null", NO_EMAIL, True),  # a missing key is null
        ("User.Email != null", NO_EMAIL, False),
        ("User.Name < 'b'", ROW, True),
        ("User.Name <= 'ANN O''LEE'".replace("''", "\\'"), ROW, True),
        ("User.Name > 'Ann'", ROW, True),
        ("User.Name >= 'b'", ROW, False),
        ("RoleInTerritory2 < 'z'", NO_ROLE, False),  # nothing to order
        ("LastModifiedDate > 2025-06-01T11:59:59Z", ROW, True),
        ("LastModifiedDate > 2025-06-01T12:00:00Z", ROW, False),
        ("LastModifiedDate >= 2025-06-01T14:00:00+02:00", ROW, True),  # the same instant
        ("LastModifiedDate = 2025-06-01T08:00:00-04:00", ROW, True),
        ("LastModifiedDate < 2025-06-02", ROW, True),
        ("LastModifiedDate <= 2025-06-01", ROW, False),  # a date is its midnight
        ("RoleInTerritory2 IN ('AE', 'csm')", ROW, True),
        ("RoleInTerritory2 IN ('AE', 'SE')", ROW, False),
        ("RoleInTerritory2 NOT IN ('AE', 'SE')", ROW, True),
        ("RoleInTerritory2 NOT IN ('AE', 'CSM')", ROW, False),
        ("RoleInTerritory2 IN ('CSM')", NO_ROLE, False),
        ("RoleInTerritory2 NOT IN ('CSM')", NO_ROLE, True),
        ("LastModifiedDate IN (2025-01-01, 2025-06-01T12:00:00Z)", ROW, True),
        ("User.Email LIKE '%@example.COM'", ROW, True),  # LIKE is case-insensitive
        ("User.Email LIKE 'ann%'", ROW, True),
        ("User.Email LIKE 'ann'", ROW, False),  # the whole value must match
        ("User.Name LIKE 'Ann O_Lee'", ROW, True),
        ("User.Name LIKE 'Ann O\\'%'", ROW, True),
        ("User.Email LIKE '%'", NO_EMAIL, False),
        ("NOT User.Email LIKE 'x%'", NO_EMAIL, True),
        ("AccountId = '0018c00002VY27f'", ROW, True),  # the 15-character form of the same id
        ("AccountId = '0018C00002VY27FAAD'", ROW, True),  # 18-character ids are case-insensitive
        ("AccountId = '0018C00002VY27F'", ROW, False),  # 15-character ids are case-sensitive
        ("AccountId IN ('0018c00002vy27faad')", ROW, True),
        ("Id = 'abcdeabcdeabcde999'", {**ROW, "Id": "ABCDEABCDEABCDE"}, False),  # 999 is no id suffix
        ("NOT RoleInTerritory2 = 'CSM'", ROW, False),
        ("NOT RoleInTerritory2 = 'CSM'", NO_ROLE, True),
        ("RoleInTerritory2 = 'AE' OR User.Name LIKE 'Ann%'", ROW, True),
        ("RoleInTerritory2 = 'CSM' AND LastModifiedDate > 2026-01-01", ROW, False),
    ],
)
def test_evaluate_follows_soql(typed: str, row: dict[str, object], matches: bool) -> None:
    assert evaluate(parse(typed), row) is matches


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        (r"100\%", "100%", True),
        (r"100\%", "1000", False),
        ("100%", "1000", True),
        (r"a\_b", "a_b", True),
        (r"a\_b", "axb", False),
        ("a_b", "axb", True),
        (r"a\\%", "a\\tail", True),
        (r"a\\%", "atail", False),
        ("a.c*", "a.c*", True),  # regex characters are plain characters
        ("a.c*", "abcc", False),
        ("line%", "line1\nline2", True),
    ],
)
def test_like_wildcards_and_escapes(pattern: str, value: str, matches: bool) -> None:
    assert evaluate(Like("User.Name", pattern), {"User.Name": value}) is matches


def test_evaluate_refuses_rows_of_the_wrong_shape() -> None:
    with pytest.raises(TypeError, match="timezone-aware"):
        evaluate(parse("LastModifiedDate > 2025-01-01"), {"LastModifiedDate": dt.datetime(2025, 6, 1)})
    with pytest.raises(TypeError, match="string"):
        evaluate(parse("User.Name = 'a'"), {"User.Name": 7})


# --- single-account queries ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "pinned"),
    [
        (f"AccountId = '{ACCOUNT}'", ACCOUNT),
        (f"accountid = '{ACCOUNT}' AND RoleInTerritory2 = 'CSM'", ACCOUNT),
        (f"RoleInTerritory2 = 'CSM' AND (AccountId = '{ACCOUNT}' AND User.Email != null)", ACCOUNT),
        (f"AccountId IN ('{ACCOUNT}')", ACCOUNT),
        (f"AccountId = '{ACCOUNT}' AND AccountId = '0018c00002VY27f'", ACCOUNT),  # the same account twice
        (f"AccountId = '{ACCOUNT}' AND AccountId = '0018c00002VY27gAAD'", None),  # two accounts: nothing matches
        (f"AccountId = '{ACCOUNT}' OR RoleInTerritory2 = 'CSM'", None),
        (f"AccountId IN ('{ACCOUNT}', '0018c00002VY27gAAD')", None),
        (f"AccountId NOT IN ('{ACCOUNT}')", None),
        (f"AccountId != '{ACCOUNT}'", None),
        (f"NOT AccountId = '{ACCOUNT}'", None),
        ("AccountId = null", None),
        (f"AccountId LIKE '{ACCOUNT}'", None),
        (f"Id = '{ACCOUNT}'", None),
        (f"(AccountId = '{ACCOUNT}' OR Id = 'a') AND Id = 'b'", None),
    ],
)
def test_accounts_pinned(typed: str, pinned: str | None) -> None:
    assert accounts_pinned(parse(typed)) == pinned


def test_accounts_pinned_with_no_filter_and_with_a_watermark() -> None:
    watermark = Comparison("LastModifiedDate", ">", dt.datetime(2026, 3, 1, tzinfo=UTC))
    assert accounts_pinned(None) is None
    assert accounts_pinned(and_filter(parse(f"AccountId = '{ACCOUNT}'"), watermark)) == ACCOUNT
