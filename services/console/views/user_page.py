"""One user's page: who they are, their teams, and the edit form (name, license) that sends only
the changed fields in an UpdateUser FieldMask with the etag it was read with."""

from __future__ import annotations

from typing import Any

import grpc
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from google.protobuf.field_mask_pb2 import FieldMask

from services.console.app import console, may_manage_users, me
from services.console.forms import clean_text
from services.console.views.people_kit import (
    as_me,
    expected_problem,
    field_errors,
    read_or_404,
    request_id_of,
    valid_id,
    when,
)
from services.console.views.users import LICENSES, license_word, status_word
from steward.users.v1 import users_pb2

blueprint = Blueprint("user_page", __name__)
NAME_LIMIT = 100
FIELDS = ("first_name", "last_name", "license")


def _get(uid: str) -> users_pb2.User:
    request_message = users_pb2.GetUserRequest(name=f"users/{uid}")
    user: users_pb2.User = read_or_404(console().gateway.users.GetUser, request_message)
    return user


def _may_edit(user: users_pb2.User) -> bool:
    return may_manage_users(me()) or user.uid == me().uid


def _form_of(user: users_pb2.User) -> dict[str, str]:
    return {
        "first_name": user.first_name,
        "last_name": user.last_name,
        "license": license_word(user.license) if user.license else "",
        "etag": user.etag,
    }


def _team_names(user: users_pb2.User) -> dict[str, str]:
    names = {}
    for membership in user.team_memberships[:50]:
        try:
            team = as_me(console().gateway.teams.GetTeam, users_pb2.GetTeamRequest(name=membership.team))
        except grpc.RpcError:
            continue  # a team this user may not read: its resource name stands in
        names[membership.team] = team.display_name
    return names


@blueprint.route("/users/<uid>", methods=["GET", "POST"])
def show(uid: str) -> Any:
    valid_id(uid)
    if request.method == "POST" and not may_manage_users(me()) and uid != me().uid:
        abort(403)  # before any read: a forged form learns nothing
    user = _get(uid)
    form = _form_of(user)
    errors: dict[str, str] = {}
    problem = ""
    if request.method == "POST":
        if not _may_edit(user):
            abort(403)
        sent = {k: clean_text(request.form.get(k), NAME_LIMIT + 1) for k in (*FIELDS, "etag")}
        manager = may_manage_users(me())
        for key in ("first_name", "last_name"):
            if not sent[key]:
                errors[key] = "Enter a name."
            elif len(sent[key]) > NAME_LIMIT:
                errors[key] = f"At most {NAME_LIMIT} characters."
        if manager and sent["license"] not in LICENSES:
            errors["license"] = "Choose practitioner, contributor or viewer."
        changed = [k for k in ("first_name", "last_name") if sent[k] != form[k]]
        if manager and sent["license"] != form["license"]:
            changed.append("license")
        form = {**form, **{k: sent[k] for k in FIELDS}, "etag": sent["etag"]}
        if not errors and not changed:
            flash("Nothing changed.")
            return redirect(url_for("user_page.show", uid=uid))
        if not errors:
            update = users_pb2.User(
                name=user.name,
                etag=sent["etag"] or user.etag,
                first_name=sent["first_name"],
                last_name=sent["last_name"],
                license=LICENSES.get(sent["license"], users_pb2.LICENSE_UNSPECIFIED),
            )
            call = users_pb2.UpdateUserRequest(
                user=update, update_mask=FieldMask(paths=changed), request_id=request_id_of(None)
            )
            try:
                as_me(console().gateway.users.UpdateUser, call)
            except grpc.RpcError as error:
                found = expected_problem(error)
                errors, problem = field_errors(found, FIELDS, prefix="user.")
                if found.reason == "ETAG_MISMATCH":
                    user = _get(uid)  # show what is there now, with its etag
                    form = _form_of(user)
            else:
                flash(f"Saved {', '.join(p.replace('_', ' ') for p in changed)}.")
                return redirect(url_for("user_page.show", uid=uid))
    status = 422 if errors or problem else 200
    return (
        render_template(
            "people/user.html",
            user=user,
            form=form,
            errors=errors,
            problem=problem,
            may_edit=_may_edit(user),
            team_names=_team_names(user),
            licenses=list(LICENSES),
            status_word=status_word,
            license_word=license_word,
            when=when,
        ),
        status,
    )
