"""The Users page: the list with its filter, invitations and bulk actions with each user's outcome."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from services.console.app import console, may_manage_users, me
from services.console.forms import clean_text, is_email, positive_int, split_emails
from services.console.rpc_errors import problem_of, words_for_reason
from services.console.user_pages import SERVICE_PAGE, filtered_page
from steward.users.v1 import users_pb2

blueprint = Blueprint("users", __name__)
PAGE_SIZE = 25
STATUSES = {
    "": 0,
    "created": users_pb2.USER_STATUS_CREATED,
    "active": users_pb2.USER_STATUS_ACTIVE,
    "disabled": users_pb2.USER_STATUS_DISABLED,
    "created_disabled": users_pb2.USER_STATUS_CREATED_DISABLED,
}
LICENSES = {
    "practitioner": users_pb2.LICENSE_PRACTITIONER,
    "contributor": users_pb2.LICENSE_CONTRIBUTOR,
    "viewer": users_pb2.LICENSE_VIEWER,
}
# The bulk actions of the product's User screen, as the users service names them.
BULK_ACTIONS = {
    "send-invitation": users_pb2.BULK_ACTION_SEND_INVITATION,
    "activate": users_pb2.BULK_ACTION_ACTIVATE,
    "disable": users_pb2.BULK_ACTION_DISABLE,
    "change-license": users_pb2.BULK_ACTION_UPDATE_LICENSE,
    "add-to-team": users_pb2.BULK_ACTION_ADD_TO_TEAM,
    "delete": users_pb2.BULK_ACTION_DELETE,
}
MAX_INVITES = 100


def status_word(status: int) -> str:
    return users_pb2.UserStatus.Name(status).removeprefix("USER_STATUS_").replace("_", " ").lower()


def license_word(license: int) -> str:
    return users_pb2.License.Name(license).removeprefix("LICENSE_").lower()


def _require_manager() -> None:
    # The service refuses anyway; the console refuses first, so a forged form never gets that far.
    if not may_manage_users(me()):
        abort(403)


def _as_me(method: Any, request_message: Any) -> Any:
    app = console()
    return app.gateway.as_user(me().uid, method, request_message)


@blueprint.get("/")
def welcome() -> Any:
    return redirect(url_for("users.list_users"))


@blueprint.get("/users")
def list_users() -> Any:
    app = console()
    status_key = request.args.get("status", "")
    status = STATUSES.get(status_key, 0)
    text = clean_text(request.args.get("q"), 200)
    size = positive_int(request.args.get("size"), PAGE_SIZE, 200)

    def fetch(token: str) -> users_pb2.ListUsersResponse:
        reply: users_pb2.ListUsersResponse = _as_me(
            app.gateway.users.ListUsers, users_pb2.ListUsersRequest(page_size=SERVICE_PAGE, page_token=token)
        )
        return reply

    users, next_cursor = filtered_page(fetch, status, text, size, request.args.get("page", ""))
    seats, seat_exempt = _license_usage() if may_manage_users(me()) else ([], [])
    return render_template(
        "users.html",
        users=users,
        next_cursor=next_cursor,
        first_page=not request.args.get("page"),
        status_key=status_key if status else "",
        statuses=[k for k in STATUSES if k],
        q=text,
        status_word=status_word,
        license_word=license_word,
        bulk_actions=list(BULK_ACTIONS),
        licenses=list(LICENSES),
        teams=_teams() if may_manage_users(me()) else [],
        request_id=str(uuid.uuid4()),
        seats=seats,
        seat_exempt=seat_exempt,
    )


def _teams() -> list[users_pb2.Team]:
    """The teams a bulk "add to team" may name (the first 1,000, by name)."""
    try:
        reply = _as_me(console().gateway.teams.ListTeams, users_pb2.ListTeamsRequest(page_size=1000))
    except grpc.RpcError:
        return []
    return sorted(reply.teams, key=lambda t: t.display_name.lower())


def _license_usage() -> tuple[list[dict[str, Any]], list[str]]:
    """GetLicenseUsage in rows; nothing when the service will not say (the list still shows)."""
    try:
        usage = _as_me(console().gateway.users.GetLicenseUsage, users_pb2.GetLicenseUsageRequest())
    except grpc.RpcError:
        return [], []
    rows = [
        {"license": license_word(e.license), "used": e.used, "limit": e.limit if e.HasField("limit") else None}
        for e in usage.entries
    ]
    return rows, list(usage.exempt_domains)


@blueprint.route("/users/invite", methods=["GET", "POST"])
def invite() -> Any:
    _require_manager()
    errors: dict[str, str] = {}
    form = {"emails": "", "license": "viewer", "send": "yes", "request_id": str(uuid.uuid4())}
    problem = ""
    if request.method == "POST":
        form = {k: clean_text(request.form.get(k), 20_000) for k in form}
        emails = split_emails(form["emails"])
        bad = [e for e in emails if not is_email(e)]
        if not emails:
            errors["emails"] = "Enter at least one email address."
        elif bad:
            errors["emails"] = f"Not an email address: {', '.join(bad[:5])}."
        elif len(emails) > MAX_INVITES:
            errors["emails"] = f"Invite at most {MAX_INVITES} people at a time."
        if form["license"] not in LICENSES:
            errors["license"] = "Choose practitioner, contributor or viewer."
        if not errors:
            call = users_pb2.InviteUsersRequest(
                emails=emails,
                license=LICENSES[form["license"]],
                send_invitation=form["send"] == "yes",
                request_id=form["request_id"] if _is_uuid(form["request_id"]) else str(uuid.uuid4()),
            )
            try:
                reply = _as_me(console().gateway.users.InviteUsers, call)
            except grpc.RpcError as error:
                found = problem_of(error)
                if found.code != grpc.StatusCode.INVALID_ARGUMENT and not found.fields:
                    raise
                problem = found.message if not found.fields else "No one was invited."
                for path, text in found.field_list():
                    key = "emails" if path.startswith("emails") else path if path in form else ""
                    if key:
                        errors[key] = f"{errors[key]} {text}" if key in errors else text
                    else:
                        problem = f"{problem} {path}: {text}"
            else:
                flash(f"Invited {len(reply.users)}: {', '.join(u.email for u in reply.users)}.")
                return redirect(url_for("users.list_users"))
    status = 422 if errors or problem else 200
    return render_template("invite.html", form=form, errors=errors, problem=problem, licenses=list(LICENSES)), status


@blueprint.post("/users/bulk")
def bulk() -> Any:
    _require_manager()
    action = request.form.get("action", "")
    names = [n for n in request.form.getlist("user") if n.startswith("users/") and len(n) <= 64][:1000]
    license_key, team = request.form.get("license", ""), request.form.get("team", "")
    problems = []
    if action not in BULK_ACTIONS:
        problems.append(f"Choose an action: {', '.join(a.replace('-', ' ') for a in BULK_ACTIONS)}.")
    if not names:
        problems.append("Select at least one user.")
    if action == "change-license" and license_key not in LICENSES:
        problems.append("Choose the license to give them.")
    if action == "add-to-team" and not (team.startswith("teams/") and len(team) <= 64):
        problems.append("Choose the team to add them to.")
    # Deleting cannot be undone: the box must be ticked, as the product's screen asks to confirm.
    if action == "delete" and request.form.get("confirm_delete") != "yes":
        problems.append("Tick \"Yes, delete them\" to delete users: it cannot be undone.")
    if problems:
        flash(" ".join(problems), "error")
        return redirect(url_for("users.list_users"))
    request_id = request.form.get("request_id", "")
    call = users_pb2.BulkUserActionRequest(
        action=BULK_ACTIONS[action], users=names, request_id=request_id if _is_uuid(request_id) else str(uuid.uuid4())
    )
    if action == "change-license":
        call.license = LICENSES[license_key]
    if action == "add-to-team":
        call.team_membership.CopyFrom(users_pb2.TeamMembership(team=team, role=users_pb2.TEAM_ROLE_MEMBER))
    reply = _as_me(console().gateway.users.BulkUserAction, call)
    rows = [
        {
            "user": _email_of(outcome.user),
            "done": outcome.result == users_pb2.BulkUserOutcome.RESULT_DONE,
            "reason": outcome.reason,
            "why": words_for_reason(outcome.reason, outcome.description) if outcome.reason else "",
        }
        for outcome in reply.outcomes
    ]
    return render_template(
        "bulk_result.html",
        action=action.replace("-", " "),
        rows=rows,
        done=reply.done_count,
        skipped=reply.skipped_count,
    )


def _email_of(name: str) -> str:
    try:
        user: users_pb2.User = _as_me(console().gateway.users.GetUser, users_pb2.GetUserRequest(name=name))
    except grpc.RpcError:
        return name
    return user.email


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
