"""An account's team: who holds each role on the account now, who held it as of a moment
(GetAccountTeam as_of), and the account's assignment history, each change a link to the team as
it was right after it."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

from services.console.app import console
from services.console.forms import clean_text
from services.console.views.people_kit import as_me, directory, email_by_name, parse_moment, when
from steward.users.v1 import assignments_pb2 as apb

blueprint = Blueprint("accounts", __name__)
ACCOUNT_LIMIT = 200
HISTORY_PAGE = 100


def source_word(source: int) -> str:
    return apb.AssignmentSource.Name(source).removeprefix("ASSIGNMENT_SOURCE_").lower()


@blueprint.get("/accounts")
def account_team() -> Any:
    app = console()
    account_id = clean_text(request.args.get("account_id"), ACCOUNT_LIMIT + 1)
    as_of_text = clean_text(request.args.get("as_of"), 41)
    errors: dict[str, str] = {}
    if len(account_id) > ACCOUNT_LIMIT:
        errors["account_id"] = f"An account id has at most {ACCOUNT_LIMIT} characters."
    as_of = parse_moment(as_of_text) if as_of_text else None
    if as_of_text and as_of is None:
        errors["as_of"] = "Enter a date like 2026-03-31, or a date and time like 2026-03-31T17:30."
    if as_of_text and not account_id:
        errors["account_id"] = "Enter the account id."
    now_team = then_team = None
    history: list[apb.AssignmentChange] = []
    roles: dict[str, str] = {}
    emails: dict[str, str] = {}
    if account_id and not errors:
        now_team = as_me(app.gateway.assignments.GetAccountTeam, apb.GetAccountTeamRequest(account_id=account_id))
        if as_of is not None:
            then_team = as_me(
                app.gateway.assignments.GetAccountTeam, apb.GetAccountTeamRequest(account_id=account_id, as_of=as_of)
            )
        history = list(
            as_me(
                app.gateway.assignments.ListAssignmentHistory,
                apb.ListAssignmentHistoryRequest(account_id=account_id, page_size=HISTORY_PAGE),
            ).changes
        )
        roles = {r.name: r.display_name for r in as_me(app.gateway.assignments.ListRoles, apb.ListRolesRequest()).roles}
        emails = email_by_name(directory())
        # The actor of a change is a token subject: a user's id, or a service such as "service:etm".
        emails |= {name.removeprefix("users/"): email for name, email in emails.items()}
    return (
        render_template(
            "people/account.html",
            account_id=account_id,
            as_of_text=as_of_text,
            as_of_words=when(as_of, precise=True) if as_of is not None else "",
            errors=errors,
            now_team=now_team,
            then_team=then_team,
            history=history,
            roles=roles,
            emails=emails,
            when=when,
            source_word=source_word,
        ),
        422 if errors else 200,
    )
