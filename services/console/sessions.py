"""Who is signed in: Flask's signed cookie session holding the user id and two times, checked
against the idle and absolute limits on every request (the cookie cannot be altered, but a
stolen or forgotten one must not live forever)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import session

IDLE_KEY, STARTED_KEY, USER_KEY = "seen", "started", "uid"


def sign_in(user_id: str, now: float) -> None:
    # A fresh session: nothing from before the sign-in (a planted CSRF token, say) carries over.
    session.clear()
    session.permanent = True
    session[USER_KEY], session[STARTED_KEY], session[IDLE_KEY] = user_id, now, now


def sign_out() -> None:
    session.clear()


def current_user_id(now: float, idle_seconds: float, max_seconds: float) -> str | None:
    """The signed-in user's id, or None (no session, or one past a limit, which is then dropped)."""
    user_id: Any = session.get(USER_KEY)
    if not isinstance(user_id, str):
        return None
    started, seen = float(session.get(STARTED_KEY, 0)), float(session.get(IDLE_KEY, 0))
    if now - seen > idle_seconds or now - started > max_seconds:
        session.clear()
        session["expired"] = True
        return None
    # Written at most once a minute: every write re-sends the cookie.
    if now - seen > 60 or now < seen:
        session[IDLE_KEY] = now
    return user_id


def just_expired() -> bool:
    return bool(session.pop("expired", False))


Clock = Callable[[], float]
