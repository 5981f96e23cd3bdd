"""SCIM filters (RFC 7644 §3.4.2.2, parsed by scim2-models) as SQL over Steward's tables, so that
totalResults and paging are the database's: nothing is filtered in memory.

Strings compare case-insensitively unless the attribute is caseExact (ids, externalId). An
attribute no column answers for is refused with invalidFilter rather than matching silently.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from scim2_models import InvalidFilterException
from scim2_models.path import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    FilterVisitor,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)
from sqlalchemy import String, and_, cast, func, literal, not_, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from services.users.adapters.orm import (
    ScimGroupRecord,
    ScimUserRecord,
    TeamMembershipRecord,
    TeamRecord,
    UserRecord,
    user_status_where,
)
from services.users.adapters.scim_repository import user_name_key
from services.users.domain.model import normalize_email
from services.users.scim.hygiene import UNSTORABLE, storable
from services.users.scim.schemas import CORE_GROUP, CORE_USER, ENTERPRISE_USER, STEWARD_USER

Clause = ColumnElement[bool]
_U, _S = UserRecord, ScimUserRecord


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _text(value: Any, op: CompareOperator) -> str:
    if not isinstance(value, str):
        raise InvalidFilterException(detail=f"{op.value} needs a string here, got {value!r}")
    if not storable(value):  # a filter's escapes can spell a NUL or a lone surrogate
        raise InvalidFilterException(detail=UNSTORABLE)
    return value


def _string(column: Any, op: CompareOperator, value: Any, case_exact: bool) -> Clause:
    value = _text(value, op)
    if not case_exact:
        column, value = func.lower(column), value.lower()
    if op is CompareOperator.eq:
        return column == value
    if op is CompareOperator.ne:
        return or_(column != value, column.is_(None))
    patterns = {CompareOperator.co: "%{}%", CompareOperator.sw: "{}%", CompareOperator.ew: "%{}"}
    if op in patterns:
        return column.like(patterns[op].format(_escape(value)), escape="\\")
    return _ordered(column, op, value)


def _ordered(column: Any, op: CompareOperator, value: Any) -> Clause:
    compare: dict[CompareOperator, Callable[[Any, Any], Clause]] = {
        CompareOperator.eq: lambda c, v: c == v,
        CompareOperator.ne: lambda c, v: c != v,
        CompareOperator.gt: lambda c, v: c > v,
        CompareOperator.ge: lambda c, v: c >= v,
        CompareOperator.lt: lambda c, v: c < v,
        CompareOperator.le: lambda c, v: c <= v,
    }
    if op not in compare:
        raise InvalidFilterException(detail=f"{op.value} does not apply to this attribute")
    return compare[op](column, value)


def _time(column: Any, op: CompareOperator, value: Any) -> Clause:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidFilterException(detail=f"{value!r} is not a date and time") from exc
    if not isinstance(value, dt.datetime):
        raise InvalidFilterException(detail=f"{value!r} is not a date and time")
    return _ordered(column, op, value if value.tzinfo else value.replace(tzinfo=dt.UTC))


def _boolean(clause: Clause, op: CompareOperator, value: Any) -> Clause:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        value = value.lower() == "true"  # Entra ID writes booleans as strings
    if not isinstance(value, bool) or op not in (CompareOperator.eq, CompareOperator.ne):
        raise InvalidFilterException(detail="a boolean attribute takes eq or ne with true or false")
    return clause if value == (op is CompareOperator.eq) else not_(clause)


def _key(path: AttrPath) -> str:
    """The attribute's name in our tables' terms: schema-qualified names reduce to their own."""
    name = path.attr if path.sub_attr is None else f"{path.attr}.{path.sub_attr}"
    return f"{path.uri}:{name}" if path.uri else name


class _SqlFilter(FilterVisitor[Clause]):
    """Shared logic; subclasses say which columns answer for which attribute."""

    core: str = ""
    # Attributes held in one string column: name -> (column, caseExact).
    strings: dict[str, tuple[Any, bool]] = {}

    def _name(self, path: AttrPath) -> str:
        key = _key(path)
        if path.uri == self.core:
            key = key.removeprefix(f"{self.core}:")
        return key.lower()

    def compare(self, name: str, op: CompareOperator, value: Any) -> Clause:
        raise NotImplementedError

    def present(self, name: str) -> Clause:
        raise NotImplementedError

    def visit_comparison(self, node: Comparison) -> Clause:
        name = self._name(node.attr_path)
        if name in self.strings:
            column, case_exact = self.strings[name]
            return _string(column, node.op, node.value, case_exact)
        return self.compare(name, node.op, node.value)

    def visit_present(self, node: Present) -> Clause:
        return self.present(self._name(node.attr_path))

    def visit_not(self, node: Not) -> Clause:
        return not_(self.visit(node.expr))

    def visit_logical_expr(self, node: LogicalExpr) -> Clause:
        terms = [self.visit(term) for term in node.terms]
        return and_(*terms) if node.op is LogicalOperator.and_ else or_(*terms)

    def visit_value_path(self, node: ValuePath) -> Clause:
        """emails[type eq "work" and value co "@x"]: each sub-filter is asked of the attribute's
        entries, which Steward keeps one column per sub-attribute."""
        prefix = self._name(node.attr_path)

        class Inner(type(self)):  # type: ignore[misc]
            def _name(self, path: AttrPath) -> str:
                return f"{prefix}.{path.attr.lower()}"

        return Inner().visit(node.val_filter)

    def unknown(self, name: str) -> InvalidFilterException:
        return InvalidFilterException(detail=f"filtering on {name!r} is not supported")


class UserFilter(_SqlFilter):
    core = CORE_USER.lower()
    strings = {
        "externalid": (_S.external_id, True),
        "id": (_U.id, True),
        "name.givenname": (_U.first_name, False),
        "name.familyname": (_U.last_name, False),
        f"{ENTERPRISE_USER}:manager.value".lower(): (_U.manager_id, True),
        f"{ENTERPRISE_USER}:manager".lower(): (_U.manager_id, True),
        f"{STEWARD_USER}:currentlicense".lower(): (_U.license, False),
    }

    def compare(self, name: str, op: CompareOperator, value: Any) -> Clause:
        if name == "username":
            if op is CompareOperator.eq and isinstance(value, str) and storable(value):
                # The lookup every provider makes before creating: two indexed keys, no scan.
                return or_(
                    _S.user_name_key == user_name_key(value),
                    and_(_S.user_id.is_(None), _U.email_normalized == normalize_email(value)),
                )
            return _string(func.coalesce(_S.user_name, _U.email), op, value, False)
        if name in ("emails", "emails.value"):
            return or_(_string(_U.email, op, value, False), self._alternative(op, value))
        if name == "emails.type":
            labels = func.lower(cast(_S.email_labels, String))
            if op is not CompareOperator.eq:
                raise InvalidFilterException(detail="emails.type takes eq")
            word = _escape(_text(value, op).lower())
            return or_(labels.like(f'%"type": "{word}"%', escape="\\"), labels.like(f'%"type":"{word}"%', escape="\\"))
        if name == "emails.primary":
            return _boolean(true(), op, value)  # the login email is every user's primary one
        if name == "active":
            return _boolean(user_status_where(lambda p: p.enabled), op, value)
        if name in ("meta.created", "meta.lastmodified"):
            return _time(_U.create_time if name == "meta.created" else _U.update_time, op, value)
        if name == f"{STEWARD_USER}:license".lower():  # only as the provider assigned it
            return and_(_string(_U.license, op, value, False), _S.license_managed.is_(True))
        if name == f"{STEWARD_USER}:globaladmin".lower():
            return _boolean(_U.global_admin.is_(True), op, value)
        raise self.unknown(name)

    def _alternative(self, op: CompareOperator, value: Any) -> Clause:
        """Alternative emails live in a JSON array: matched on its text, quotes included, which
        keeps eq, sw and ew exact on every dialect."""
        value = _text(value, op)
        text = func.lower(cast(_U.alternative_emails, String))
        word = _escape(value.lower())
        patterns = {
            CompareOperator.eq: f'%"{word}"%',
            CompareOperator.co: f"%{word}%",
            CompareOperator.sw: f'%"{word}%',
            CompareOperator.ew: f'%{word}"%',
        }
        if op is CompareOperator.ne:
            return not_(text.like(f'%"{word}"%', escape="\\"))
        if op not in patterns:
            raise InvalidFilterException(detail=f"{op.value} does not apply to emails")
        return text.like(patterns[op], escape="\\")

    def present(self, name: str) -> Clause:
        always = {"username", "emails", "emails.value", "id", "active", "meta.created", "meta.lastmodified"}
        if name in always or name == f"{STEWARD_USER}:currentlicense".lower():
            return true()
        columns = {
            "externalid": _S.external_id.is_not(None),
            "name": or_(_U.first_name != "", _U.last_name != ""),
            "name.givenname": _U.first_name != "",
            "name.familyname": _U.last_name != "",
            f"{ENTERPRISE_USER}:manager".lower(): _U.manager_id.is_not(None),
            f"{ENTERPRISE_USER}:manager.value".lower(): _U.manager_id.is_not(None),
            f"{STEWARD_USER}:license".lower(): _S.license_managed == true(),
            f"{STEWARD_USER}:globaladmin".lower(): true(),
            "emails.type": _S.email_labels.is_not(None),
            "emails.primary": true(),
        }
        if name not in columns:
            raise self.unknown(name)
        return columns[name]


class GroupFilter(_SqlFilter):
    core = CORE_GROUP.lower()
    strings = {
        "displayname": (TeamRecord.display_name, False),
        "externalid": (ScimGroupRecord.external_id, True),
        "id": (TeamRecord.id, True),
    }

    def compare(self, name: str, op: CompareOperator, value: Any) -> Clause:
        if name in ("members", "members.value"):
            member = _string(TeamMembershipRecord.user_id, op, value, True)
            return select(literal(1)).where(TeamMembershipRecord.team_id == TeamRecord.id, member).exists()
        if name in ("meta.created", "meta.lastmodified"):
            return _time(TeamRecord.create_time if name == "meta.created" else TeamRecord.update_time, op, value)
        raise self.unknown(name)

    def present(self, name: str) -> Clause:
        if name in ("displayname", "id", "meta.created", "meta.lastmodified"):
            return true()
        if name == "externalid":
            return ScimGroupRecord.external_id.is_not(None)
        if name in ("members", "members.value"):
            return select(literal(1)).where(TeamMembershipRecord.team_id == TeamRecord.id).exists()
        raise self.unknown(name)


def where(visitor: _SqlFilter, node: FilterNode | None) -> Clause:
    return true() if node is None else visitor.visit(node)
