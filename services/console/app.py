"""The Flask application: settings, the signed-in user of each request, CSRF, access logs and the
error pages (no stack trace ever reaches a browser: a 500 page shows an id that is also logged)."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import grpc
from flask import Flask, Response, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from services.console import oidc
from services.console.config import ConsoleConfig
from services.console.gateway import Gateway
from services.console.mailer import Mailer
from services.console.rpc_errors import problem_of
from services.console.sessions import Clock, current_user_id, sign_out
from services.console.signin_links import SigninLinks
from services.runtime.logging import get_logger
from steward.users.v1 import users_pb2

log = get_logger("steward.console")
# Pages anyone may open; every other page needs a signed-in user.
PUBLIC_ENDPOINTS = frozenset(
    {
        "auth.signin",
        "auth.signin_link",
        "auth.accept_invitation",
        "oidc.start",
        "oidc.callback",
        "health.healthz",
        "health.readyz",
        "static",
    }
)
SIGNED_OUT_CODES = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED)


@dataclass
class Console:
    config: ConsoleConfig
    gateway: Gateway
    links: SigninLinks
    mailer: Mailer
    clock: Clock = field(default=time.time)
    # authlib's client of the identity provider; None without OIDC (services/console/oidc.py).
    oidc: Any = None


def console() -> Console:
    from flask import current_app

    found: Console = current_app.extensions["steward_console"]
    return found


def me() -> users_pb2.User:
    user: users_pb2.User = g.me
    return user


def may_manage_users(user: users_pb2.User) -> bool:
    """What decides whether admin actions are shown; the users service decides again on each call."""
    return bool(user.global_admin or user.user_management)


def create_app(config: ConsoleConfig, clock: Clock = time.time) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=config.session_key,
        SESSION_COOKIE_NAME="steward_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.secure_cookies,
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=config.session_max_hours),
        # The token lives as long as the session; the session's own limits end both.
        WTF_CSRF_TIME_LIMIT=None,
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    CSRFProtect(app)
    gateway = Gateway(
        config.users_address, config.rules_address, config.sync_address, config.jwt_secret, config.call_token_seconds
    )
    app.extensions["steward_console"] = Console(
        config,
        gateway,
        SigninLinks(config.session_key, config.signin_link_minutes * 60),
        Mailer(config.smtp),
        clock,
        oidc.register(app, config),
    )

    from services.console.views import auth, health, users
    from services.console.views import oidc as oidc_views

    app.register_blueprint(health.blueprint)
    app.register_blueprint(auth.blueprint)
    app.register_blueprint(oidc_views.blueprint)
    app.register_blueprint(users.blueprint)
    from services.console.views import accounts, plays, reassign, roles, teams, user_page
    from services.console.views import sync as sync_views

    for pages in (user_page, reassign, teams, roles, accounts, plays, sync_views):
        app.register_blueprint(pages.blueprint)

    @app.before_request
    def _start() -> ResponseReturnValue | None:
        g.started, g.request_id = time.perf_counter(), uuid.uuid4().hex[:12]
        if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
            return None
        user_id = current_user_id(clock(), config.session_idle_minutes * 60, config.session_max_hours * 3600)
        if user_id is None:
            return redirect(url_for("auth.signin", next=request.path))
        try:
            g.me = gateway.as_user(user_id, gateway.users.GetUser, users_pb2.GetUserRequest(name=f"users/{user_id}"))
        except grpc.RpcError as error:
            if problem_of(error).code not in SIGNED_OUT_CODES:
                raise
            # The signed-in user is gone or may no longer sign in (disabled, deleted).
            sign_out()
            return redirect(url_for("auth.signin"))
        return None

    @app.after_request
    def _finish(response: Response) -> Response:
        # The token of a link travels in the query string: the log names the path only.
        log.info(
            "http_request",
            method=request.method,
            path=request.path,
            status=response.status_code,
            duration_ms=round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 1),
            request_id=g.get("request_id"),
        )
        response.headers.setdefault("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        # Same-origin only: links carry tokens, and CSRF checks the referrer over https.
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.errorhandler(CSRFError)
    def _csrf(error: CSRFError) -> tuple[str, int]:
        message = "This form was not sent from this console page or it is too old. Go back, reload and try again."
        return render_template("error.html", title="Form refused", message=message), 400

    @app.errorhandler(grpc.RpcError)
    def _rpc(error: grpc.RpcError) -> Any:
        problem = problem_of(error)
        log.warning("rpc_failed", path=request.path, code=problem.code.name, reason=problem.reason)
        status = 403 if problem.code == grpc.StatusCode.PERMISSION_DENIED else 503
        return render_template("error.html", title="The request failed", message=problem.message), status

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> tuple[str, int]:
        code = error.code or 500
        titles = {403: "Not allowed", 404: "Not found", 405: "Not allowed", 413: "Too large"}
        message = {403: "You do not have the rights to do that."}.get(code, error.description or "")
        return render_template("error.html", title=titles.get(code, error.name), message=message), code

    @app.errorhandler(Exception)
    def _crash(error: Exception) -> tuple[str, int]:
        error_id = uuid.uuid4().hex[:12]
        log.exception("unhandled_error", error_id=error_id, path=request.path)
        message = f"Something went wrong on our side. Error id {error_id}: give it to your administrator."
        return render_template("error.html", title="Something went wrong", message=message), 500

    @app.context_processor
    def _globals() -> dict[str, Any]:
        user = g.get("me")
        return {"me": user, "can_manage": bool(user and may_manage_users(user))}

    return app
