"""Signing in through the identity provider (services/console/oidc.py): the button's POST sends
the browser to the provider, whose answer comes back to the callback; the person is the Steward
user whose primary address is the ID token's verified email, if that user may sign in."""

from __future__ import annotations

from typing import Any

import grpc
from flask import Blueprint, abort, redirect, render_template, request, session

from services.console.app import console, log
from services.console.forms import safe_next
from services.console.oidc import SigninRefused, authorize_redirect, identity_from_callback
from services.console.rpc_errors import problem_of
from services.console.sessions import sign_in
from services.console.views.auth import users_of_email

blueprint = Blueprint("oidc", __name__)
NEXT_KEY = "oidc_next"


@blueprint.post("/signin/oidc")
def start() -> Any:
    """A POST (with the CSRF token of the sign-in page), so another site cannot start it."""
    app = console()
    if app.oidc is None:
        abort(404)
    session[NEXT_KEY] = safe_next(request.form.get("next"))
    try:
        return authorize_redirect(app.oidc, app.config)
    except SigninRefused as refused:
        log.error("oidc_start_failed", error=repr(refused.__cause__))
        return _refused(refused)


@blueprint.get("/signin/oidc/callback")
def callback() -> Any:
    app = console()
    if app.oidc is None:
        abort(404)
    next_path = safe_next(session.pop(NEXT_KEY, None))
    try:
        identity = identity_from_callback(app.oidc, app.config, request.args.to_dict())
    except SigninRefused as refused:
        # The cause (a bad signature, another audience, a provider error) is for the operator only.
        log.warning("oidc_signin_refused", error=repr(refused.__cause__ or refused), status=refused.status)
        return _refused(refused)
    try:
        found = users_of_email(identity.email)
    except grpc.RpcError as error:
        log.error("oidc_lookup_failed", error=problem_of(error).message)
        message = "Steward could not look up your account just now. Try again in a minute."
        return render_template("error.html", title="Sign-in failed", message=message, signin="oidc"), 503
    allowed = [u for u in found if u.status_policy.may_log_in]
    if not allowed:
        if found:
            message = f"The Steward account of {identity.email} may not sign in (it is not active)."
        else:
            message = f"No Steward user has the address {identity.email}. Ask an administrator to invite you."
        log.info("oidc_signin_refused", reason="no active user", known=bool(found))
        return render_template("error.html", title="Sign-in refused", message=message, signin="oidc"), 403
    sign_in(allowed[0].uid, app.clock())
    log.info("oidc_signed_in", user_id=allowed[0].uid)
    return redirect(next_path)


def _refused(refused: SigninRefused) -> tuple[str, int]:
    page = render_template("error.html", title="Sign-in refused", message=str(refused), signin="oidc")
    return page, refused.status
