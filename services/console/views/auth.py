"""Signing in: accepting an invitation (the emailed link), a one-time link by email
(development), and signing out; through the identity provider in views/oidc.py."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import grpc
from flask import Blueprint, abort, redirect, render_template, request, url_for

from services.console.app import console
from services.console.forms import clean_text, is_email, safe_next
from services.console.rpc_errors import problem_of
from services.console.sessions import just_expired, sign_in, sign_out
from services.console.signin_links import LinkRefused
from steward.users.v1 import users_pb2

blueprint = Blueprint("auth", __name__)
NAME_MAX = 100
SENT = "If this address belongs to an active user, a sign-in link is on its way. It works once."


@blueprint.route("/signin", methods=["GET", "POST"])
def signin() -> Any:
    app = console()
    errors: dict[str, str] = {}
    email = ""
    if request.method == "POST" and not app.config.email_links_on:
        abort(404)  # signing in is through the identity provider only (STEWARD_CONSOLE_EMAIL_LINKS)
    if request.method == "POST":
        email = clean_text(request.form.get("email"), 320)
        if not is_email(email):
            errors["email"] = "Enter your email address, like name@example.com."
        else:
            _send_link(email, safe_next(request.form.get("next")))
            return render_template("signin_sent.html", message=SENT)
    expired = just_expired()
    status = 422 if errors else 200
    return render_template(
        "signin.html",
        email=email,
        errors=errors,
        expired=expired,
        next=safe_next(request.values.get("next")),
        email_links=app.config.email_links_on,
        oidc_name=app.config.oidc_name if app.config.oidc_on else "",
    ), status


def users_of_email(email: str) -> list[users_pb2.User]:
    """The listed users whose primary address this is, looked up as the console's own service
    account (nobody is signed in yet); every sign-in path then keeps those that may sign in."""
    app = console()
    reply = app.gateway.as_console(app.gateway.users.ListUsers, users_pb2.ListUsersRequest(emails=[email]))
    return list(reply.users)


def _send_link(email: str, next_path: str) -> None:
    app = console()
    try:
        found = users_of_email(email)
    except grpc.RpcError as error:  # the person sees the same page either way; the operator sees why
        from services.runtime.logging import get_logger

        get_logger("steward.console").error("signin_lookup_failed", error=problem_of(error).message)
        return
    users = [u for u in found if u.status_policy.may_log_in]
    if not users:
        return
    token = app.links.issue(users[0].uid, app.clock())
    query = {"token": token, **({"next": next_path} if next_path != "/" else {})}
    link = f"{app.config.public_url}/signin/link?{urlencode(query)}"
    minutes = round(app.config.signin_link_minutes)
    app.mailer.send_later(
        users[0].email,
        "Your Steward sign-in link",
        f"Sign in to the Steward console:\n\n{link}\n\nThe link works once, for {minutes} minutes. "
        "If you did not ask for it, ignore this email.\n",
    )


@blueprint.route("/signin/link", methods=["GET", "POST"])
def signin_link() -> Any:
    """GET only shows a button: mail scanners that open links must not use them up."""
    app = console()
    if not app.config.email_links_on:
        message = "Sign-in links are turned off here."
        if app.config.oidc_on:
            message += f" Sign in with {app.config.oidc_name} instead."
        return render_template("error.html", title="Sign-in link refused", message=message, signin="oidc"), 404
    token = request.values.get("token", "")
    next_path = safe_next(request.values.get("next"))
    try:
        claim = app.links.use(token, app.clock()) if request.method == "POST" else app.links.peek(token, app.clock())
    except LinkRefused as refused:
        return render_template("error.html", title="Sign-in link refused", message=str(refused), signin=True), 400
    if request.method == "GET":
        return render_template("signin_link.html", token=token, next=next_path)
    user = app.gateway.as_console(app.gateway.users.GetUser, users_pb2.GetUserRequest(name=f"users/{claim.user_id}"))
    if not user.status_policy.may_log_in:
        message = "This account may not sign in (it is not active)."
        return render_template("error.html", title="Sign-in refused", message=message, signin=True), 403
    sign_in(user.uid, app.clock())
    return redirect(next_path)


@blueprint.route("/accept-invitation", methods=["GET", "POST"])
def accept_invitation() -> Any:
    app = console()
    token = request.values.get("token", "").strip()
    errors: dict[str, str] = {}
    values = {"first_name": "", "last_name": ""}
    problem_message = ""
    if not token:
        problem_message = "This page needs the link from your invitation email. Open that link again."
    elif request.method == "POST":
        for field, label in (("first_name", "first name"), ("last_name", "last name")):
            values[field] = clean_text(request.form.get(field), NAME_MAX + 1)
            if not values[field]:
                errors[field] = f"Enter your {label}."
            elif len(values[field]) > NAME_MAX:
                errors[field] = f"Your {label} may have at most {NAME_MAX} characters."
        if not errors:
            try:
                user = app.gateway.anonymous(
                    app.gateway.users.AcceptInvitation, users_pb2.AcceptInvitationRequest(token=token, **values)
                )
            except grpc.RpcError as error:
                problem = problem_of(error)
                errors.update({k: v for k, v in problem.fields.items() if k in values})
                problem_message = "" if errors and not problem.reason.startswith("INVITATION") else problem.message
            else:
                sign_in(user.uid, app.clock())
                return redirect(url_for("users.welcome"))
    status = 422 if errors or problem_message else 200
    return render_template(
        "accept_invitation.html", token=token, values=values, errors=errors, problem=problem_message
    ), status


@blueprint.post("/signout")
def signout() -> Any:
    sign_out()
    return redirect(url_for("auth.signin"))
