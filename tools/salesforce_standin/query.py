"""SOQL → parameterised SQLite: field paths, type checks, the view's AccountId rule, and keyset pages.

Every relationship step (`User.Email`, `Territory2.Territory2Model.State`) becomes a correlated scalar
subquery on the parent's primary key. The queried object is therefore the only table in FROM, so a page
ordered by Id walks the primary-key index from the cursor's last key (`Id > ?`) instead of sorting or
skipping rows, and a missing parent yields null as in Salesforce.

Null semantics follow Salesforce, not SQL: `Field != 'x'`, `NOT Field = 'x'` and `Field NOT IN (...)`
match records whose Field is null; `=`, `<`, `>`, `LIKE` and `IN` never match null unless null is the
value. NOT is pushed down to the comparisons (De Morgan), each negated comparison stating the null case.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tools.salesforce_standin import schema
from tools.salesforce_standin.ids import normalize_id
from tools.salesforce_standin.soql import (
    Comparison,
    Condition,
    Junction,
    Literal,
    Negation,
    Path,
    Query,
    SoqlError,
    parse,
)

_NO_SUCH_COLUMN = (
    "No such column '{name}' on entity '{entity}'. If you are attempting to use a custom field, be sure to append "
    "the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."
)
_NO_SUCH_RELATIONSHIP = (
    "Didn't understand relationship '{name}' in field path. If you are attempting to use a custom relationship, be "
    "sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call "
    "for the appropriate names."
)
_NOT_SUPPORTED = (
    "sObject type '{name}' is not supported. If you are attempting to use a custom object, be sure to append the "
    "'__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names."
)
VIEW_RESTRICTION = (
    "Implementation restriction: AccountUserTerritory2View requires a filter by a single AccountId "
    "using the equals operator"
)
_TYPE_NAMES = {
    schema.ID: "id",
    schema.REFERENCE: "id",
    schema.STRING: "string",
    schema.PICKLIST: "string",
    schema.EMAIL: "string",
    schema.BOOLEAN: "boolean",
    schema.DATETIME: "dateTime",
}


def format_datetime(value: dt.datetime) -> str:
    """Salesforce's JSON form of a date-time, always UTC: 2025-01-01T00:00:00.000+0000 (sorts as text)."""
    value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def parse_datetime(text: str) -> dt.datetime:
    """A SOQL date-time literal (Z or ±hh:mm / ±hhmm offset, optional milliseconds) or a stored value."""
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    elif len(text) >= 5 and text[-5] in "+-" and text[-4:].isdigit():
        text = text[:-2] + ":" + text[-2:]
    value = dt.datetime.fromisoformat(text)
    return value.astimezone(dt.UTC)


@dataclass(frozen=True)
class Resolved:
    sql: str  # the SQL expression (with COLLATE NOCASE for text fields)
    field: schema.Field
    parts: tuple[str, ...]  # canonical names: ("User", "Email")
    parents: tuple[schema.SObject, ...]  # the object reached by each relationship step


@dataclass(frozen=True)
class OrderKey:
    sql: str
    descending: bool
    nulls_last: bool

    @property
    def clause(self) -> str:
        return f"{self.sql} {'DESC' if self.descending else 'ASC'} NULLS {'LAST' if self.nulls_last else 'FIRST'}"


@dataclass
class Plan:
    """A compiled query: what to select, from where, in which order; pages are cut from it with keysets."""

    query: Query
    sobject: schema.SObject
    version: float
    count: bool
    columns: list[str] = field(default_factory=list)  # SQL expressions, in row order
    outputs: list[tuple[tuple[str, ...], schema.Field, int]] = field(default_factory=list)
    parent_ids: dict[tuple[str, ...], tuple[schema.SObject, int]] = field(default_factory=dict)
    where_sql: str = ""
    params: list[Any] = field(default_factory=list)
    order: list[OrderKey] = field(default_factory=list)
    key_columns: list[int] = field(default_factory=list)
    limit: int | None = None

    def _select(self, after: Sequence[Any] | None, limit: int) -> tuple[str, list[Any]]:
        conditions = [f"({self.where_sql})"] if self.where_sql else []
        params = list(self.params)
        if after is not None:
            keyset_sql, keyset_params = _keyset(self.order, after)
            conditions.append(keyset_sql)
            params.extend(keyset_params)
        sql = f'SELECT {", ".join(self.columns)} FROM "{self.sobject.name}" t0'
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        sql += " ORDER BY " + ", ".join(key.clause for key in self.order) + f" LIMIT {int(limit)}"
        return sql, params

    def total(self, connection: sqlite3.Connection) -> int:
        sql = f'SELECT COUNT(*) FROM "{self.sobject.name}" t0' + (f" WHERE {self.where_sql}" if self.where_sql else "")
        total = int(connection.execute(sql, self.params).fetchone()[0])
        return min(total, self.limit) if self.limit is not None else total

    def page(
        self, connection: sqlite3.Connection, after: Sequence[Any] | None, size: int
    ) -> tuple[list[dict[str, Any]], list[Any] | None, bool]:
        """Up to `size` records after the key `after`; returns them, the last record's key, and whether more follow."""
        sql, params = self._select(after, size + 1)
        rows = connection.execute(sql, params).fetchall()
        more = len(rows) > size
        rows = rows[:size]
        last = [rows[-1][index] for index in self.key_columns] if rows else None
        return [self._record(row) for row in rows], last, more

    def _record(self, row: Sequence[Any]) -> dict[str, Any]:
        base = f"/services/data/v{self.version:.1f}/sobjects/"
        record: dict[str, Any] = {
            "attributes": {"type": self.sobject.name, "url": base + f"{self.sobject.name}/{row[0]}"}
        }
        for parts, item, index in self.outputs:
            target: dict[str, Any] | None = record
            for depth in range(len(parts) - 1):
                assert target is not None
                name = parts[depth]
                if name not in target:
                    parent, id_index = self.parent_ids[parts[: depth + 1]]
                    parent_id = row[id_index]
                    target[name] = (
                        None
                        if parent_id is None
                        else {"attributes": {"type": parent.name, "url": base + f"{parent.name}/{parent_id}"}}
                    )
                target = target[name]
                if target is None:
                    break
            if target is not None:
                target[parts[-1]] = _json_value(row[index], item)
        return record


def _json_value(value: Any, item: schema.Field) -> Any:
    if value is None:
        return None
    if item.type == schema.BOOLEAN:
        return bool(value)
    return value


def _keyset(order: list[OrderKey], after: Sequence[Any]) -> tuple[str, list[Any]]:
    """Rows strictly after `after` in `order` (which ends with a unique key), null placement included."""
    alternatives: list[str] = []
    params: list[Any] = []
    for index, key in enumerate(order):
        terms: list[str] = []
        term_params: list[Any] = []
        for previous, value in zip(order[:index], after[:index], strict=True):
            if value is None:
                terms.append(f"{previous.sql} IS NULL")
            else:
                terms.append(f"{previous.sql} = ?")
                term_params.append(value)
        value = after[index]
        if value is None:
            if key.nulls_last:
                continue  # nothing sorts after null here but equal keys, handled by the next key
            terms.append(f"{key.sql} IS NOT NULL")
        else:
            comparison = f"{key.sql} {'<' if key.descending else '>'} ?"
            terms.append(f"({comparison} OR {key.sql} IS NULL)" if key.nulls_last else comparison)
            term_params.append(value)
        alternatives.append("(" + " AND ".join(terms) + ")")
        params.extend(term_params)
    return ("(" + " OR ".join(alternatives) + ")" if alternatives else "0"), params


class Compiler:
    def __init__(self, query: Query, version: float, now: dt.datetime) -> None:
        self.query = query
        self.version = version
        self.now = now
        self.aliases = 0
        sobject = schema.lookup(query.sobject, version)
        if sobject is None:
            raise SoqlError("INVALID_TYPE", _NOT_SUPPORTED.format(name=query.sobject), query.sobject_pos)
        self.sobject = sobject

    def compile(self) -> Plan:
        query = self.query
        plan = Plan(query, self.sobject, self.version, query.count, limit=query.limit)
        plan.columns.append('t0."Id"')
        seen: set[tuple[str, ...]] = set()
        for path in query.fields:
            resolved = self.resolve(path)
            if resolved.parts in seen:
                raise SoqlError("MALFORMED_QUERY", f"duplicate field selected: {'.'.join(resolved.parts)}", path.pos)
            seen.add(resolved.parts)
            for depth, parent in enumerate(resolved.parents):
                prefix = resolved.parts[: depth + 1]
                if prefix not in plan.parent_ids:
                    id_sql = self.resolve(Path((*resolved.parts[: depth + 1], "Id"), path.pos)).sql
                    plan.parent_ids[prefix] = (parent, len(plan.columns))
                    plan.columns.append(id_sql)
            plan.outputs.append((resolved.parts, resolved.field, len(plan.columns)))
            plan.columns.append(resolved.sql)
        if self.sobject.name == schema.VIEW and not _filters_one_account(query.where):
            raise SoqlError("MALFORMED_QUERY", VIEW_RESTRICTION)
        if query.where is not None:
            plan.where_sql = self.condition(query.where, False, plan.params)
        for item in query.order:
            resolved = self.resolve(item.path)
            nulls_last = item.descending if item.nulls_last is None else item.nulls_last
            plan.order.append(OrderKey(resolved.sql, item.descending, nulls_last))
            if resolved.parts == ("Id",):
                break  # a unique key: anything after it never decides
        if not plan.order or plan.order[-1].sql != self.resolve(Path(("Id",), 0)).sql:
            plan.order.append(OrderKey(self.resolve(Path(("Id",), 0)).sql, False, False))
        for key in plan.order:
            plan.key_columns.append(len(plan.columns))
            plan.columns.append(key.sql)
        return plan

    # ---- field paths ----

    def resolve(self, path: Path) -> Resolved:
        sobject = self.sobject
        steps: list[tuple[str, schema.SObject]] = []  # (foreign-key column on the previous object, parent)
        parts: list[str] = []
        parents: list[schema.SObject] = []
        for name in path.parts[:-1]:
            reference = sobject.relationship(name, self.version)
            if reference is None or reference.reference_to is None:
                raise SoqlError("INVALID_FIELD", _NO_SUCH_RELATIONSHIP.format(name=name), path.pos)
            parent = schema.lookup(reference.reference_to, self.version)
            assert parent is not None
            steps.append((reference.name, parent))
            parts.append(reference.relationship or name)
            parents.append(parent)
            sobject = parent
        item = sobject.field(path.parts[-1], self.version)
        if item is None:
            entity = sobject.name
            raise SoqlError("INVALID_FIELD", _NO_SUCH_COLUMN.format(name=path.parts[-1], entity=entity), path.pos)
        parts.append(item.name)
        aliases = [self._alias() for _ in steps]
        sql = f'{aliases[-1] if aliases else "t0"}."{item.name}"'
        for index in reversed(range(len(steps))):
            foreign_key, parent = steps[index]
            outer = "t0" if index == 0 else aliases[index - 1]
            alias = aliases[index]
            sql = f'(SELECT {sql} FROM "{parent.name}" {alias} WHERE {alias}."Id" = {outer}."{foreign_key}")'
        if item.is_text:
            sql += " COLLATE NOCASE"
        return Resolved(sql, item, tuple(parts), tuple(parents))

    def _alias(self) -> str:
        self.aliases += 1
        return f"p{self.aliases}"

    # ---- conditions ----

    def condition(self, node: Condition, negated: bool, params: list[Any]) -> str:
        if isinstance(node, Negation):
            return self.condition(node.item, not negated, params)
        if isinstance(node, Junction):
            conjunction = (node.op == "AND") != negated  # De Morgan
            parts = [self.condition(item, negated, params) for item in node.items]
            return "(" + (" AND " if conjunction else " OR ").join(parts) + ")"
        return self.comparison(node, negated != node.negated, params)

    def comparison(self, node: Comparison, negated: bool, params: list[Any]) -> str:
        resolved = self.resolve(node.path)
        item, expr = resolved.field, resolved.sql
        values = [self.value(node, resolved, literal) for literal in node.values]
        includes_null = any(value is None for value in values)
        present = [value for value in values if value is not None]
        positive: list[str] = []  # alternatives over the non-null values; null is handled below
        local: list[Any] = []
        if node.op == "LIKE":
            if item.type not in (schema.STRING, schema.PICKLIST, schema.EMAIL):
                raise SoqlError(
                    "INVALID_QUERY_FILTER_OPERATOR", f"invalid operator on {_TYPE_NAMES[item.type]} field", node.pos
                )
            if includes_null:
                raise SoqlError("INVALID_QUERY_FILTER_OPERATOR", "invalid LIKE pattern: null", node.pos)
            positive.append(f"{expr} LIKE ? ESCAPE '\\'")
            local.append(present[0])
        elif node.op == "IN":
            singles = [value for value in present if not isinstance(value, tuple)]
            ranges = [value for value in present if isinstance(value, tuple)]
            if singles:
                positive.append(f"{expr} IN ({', '.join('?' * len(singles))})")
                local.extend(singles)
            for start, end in ranges:
                positive.append(f"({expr} >= ? AND {expr} < ?)")
                local.extend([start, end])
        elif present:
            self._check_operator(node, item)
            value = present[0]
            if isinstance(value, tuple):
                start, end = value
                sql, bounds = {
                    "=": (f"({expr} >= ? AND {expr} < ?)", [start, end]),
                    "<": (f"{expr} < ?", [start]),
                    "<=": (f"{expr} < ?", [end]),
                    ">": (f"{expr} >= ?", [end]),
                    ">=": (f"{expr} >= ?", [start]),
                }[node.op]
                positive.append(sql)
                local.extend(bounds)
            else:
                positive.append(f"{expr} {node.op} ?")
                local.append(value)
        elif node.op != "=":
            includes_null = False  # `Field < null` matches nothing
        params.extend(local)
        matched = " OR ".join(positive)
        if not negated:
            alternatives = ([f"{expr} IS NULL"] if includes_null else []) + positive
            return "(" + " OR ".join(alternatives) + ")" if alternatives else "0"
        if includes_null:
            return f"({expr} IS NOT NULL AND NOT ({matched}))" if positive else f"({expr} IS NOT NULL)"
        return f"({expr} IS NULL OR NOT ({matched}))" if positive else "1"

    def _check_operator(self, node: Comparison, item: schema.Field) -> None:
        if item.type == schema.BOOLEAN and node.op != "=":
            raise SoqlError("INVALID_QUERY_FILTER_OPERATOR", "invalid operator on boolean field", node.pos)

    def value(self, node: Comparison, resolved: Resolved, literal: Literal) -> Any:
        """The SQL parameter for a literal compared with a field: None for null, a (start, end) pair for a range."""
        item = resolved.field
        name = ".".join(resolved.parts)
        if literal.kind == "null":
            return None
        if item.type in (schema.ID, schema.REFERENCE):
            if literal.kind != "string":
                raise _wrong_type(name, "id", True, literal)
            if node.op == "LIKE":
                return literal.value
            normalized = normalize_id(literal.value)
            if normalized is None:
                raise SoqlError("INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {literal.value}", literal.pos)
            return normalized
        if item.is_text:
            if literal.kind != "string":
                raise _wrong_type(name, "string", True, literal)
            return literal.like if node.op == "LIKE" else literal.value
        if item.type == schema.BOOLEAN:
            if literal.kind != "boolean":
                raise _wrong_type(name, "boolean", False, literal)
            return 1 if literal.value else 0
        if item.type == schema.DATETIME:
            if literal.kind == "datetime":
                return format_datetime(parse_datetime(literal.value))
            if literal.kind == "date_literal":
                return self._date_range(*literal.value)
            raise _wrong_type(name, "dateTime", False, literal)
        raise _wrong_type(name, _TYPE_NAMES[item.type], False, literal)

    def _date_range(self, word: str, days: int) -> tuple[str, str]:
        today = self.now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        one = dt.timedelta(days=1)
        start, end = {
            "TODAY": (today, today + one),
            "YESTERDAY": (today - one, today),
            "TOMORROW": (today + one, today + 2 * one),
            "LAST_N_DAYS": (today - days * one, today + one),
            "NEXT_N_DAYS": (today + one, today + (days + 1) * one),
        }[word]
        return format_datetime(start), format_datetime(end)


def _wrong_type(name: str, type_name: str, quoted: bool, literal: Literal) -> SoqlError:
    quotes = "should be enclosed in quotes" if quoted else "should not be enclosed in quotes"
    return SoqlError(
        "INVALID_FIELD",
        f"value of filter criterion for field '{name}' must be of type {type_name} and {quotes}",
        literal.pos,
    )


def _filters_one_account(where: Condition | None) -> bool:
    """Salesforce answers AccountUserTerritory2View only under a top-level `AccountId = '<one id>'` criterion."""
    if where is None:
        return False
    items = where.items if isinstance(where, Junction) and where.op == "AND" else (where,)
    return any(
        isinstance(item, Comparison)
        and not item.negated
        and item.op == "="
        and [part.lower() for part in item.path.parts] == ["accountid"]
        and item.values[0].kind == "string"
        for item in items
    )


def compile_query(text: str, version: float, now: dt.datetime) -> Plan:
    return Compiler(parse(text), version, now).compile()
