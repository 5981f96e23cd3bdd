"""Roles: the Account Assignment page. Each account role with where its value comes from (edited
in Steward or written only by an integration), what an empty value in an import does, its team
attribute and how many accounts it is set on; a custom role created and a role edited (only the
changed fields, with the etag it was read with)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import grpc
from flask import Blueprint, flash, redirect, render_template, request, url_for
from google.protobuf.field_mask_pb2 import FieldMask

from services.console.app import console
from services.console.forms import clean_text
from services.console.views.people_kit import (
    as_me,
    expected_problem,
    field_errors,
    read_or_404,
    request_id_of,
    require_manager,
    valid_id,
)
from steward.users.v1 import assignments_pb2 as apb

blueprint = Blueprint("roles", __name__)
SOURCES = {"editable": apb.ROLE_SOURCE_EDITABLE, "integration_only": apb.ROLE_SOURCE_INTEGRATION_ONLY}
SOURCE_WORDS = {"editable": "Editable in Steward", "integration_only": "Integration only"}
EMPTY = {"keep_existing": apb.EMPTY_VALUE_KEEP_EXISTING, "clear": apb.EMPTY_VALUE_CLEAR}
EMPTY_WORDS = {"keep_existing": "Keep the existing user", "clear": "Clear the role"}
FIELDS = ("key", "display_name", "description", "source", "empty_value")
KEY = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def _word(table: Mapping[str, int], value: int) -> str:
    return next((k for k, v in table.items() if v == value), "")


def _form_of(role: apb.Role) -> dict[str, str]:
    return {
        "key": role.key,
        "display_name": role.display_name,
        "description": role.description,
        "source": _word(SOURCES, role.source) or "editable",
        "empty_value": _word(EMPTY, role.empty_value) or "keep_existing",
        "etag": role.etag,
    }


def _read_form() -> dict[str, str]:
    return {
        "key": clean_text(request.form.get("key"), 64),
        "display_name": clean_text(request.form.get("display_name"), 101),
        "description": clean_text(request.form.get("description"), 1001),
        "source": request.form.get("source", ""),
        "empty_value": request.form.get("empty_value", ""),
        "etag": clean_text(request.form.get("etag"), 100),
        "request_id": request_id_of(request.form.get("request_id")),
    }


def _check(form: dict[str, str], new: bool) -> dict[str, str]:
    errors = {}
    if new and not KEY.match(form["key"]):
        errors["key"] = "Use lower-case letters, digits and underscores, starting with a letter (at most 63)."
    if not form["display_name"]:
        errors["display_name"] = "Enter the name people see."
    elif len(form["display_name"]) > 100:
        errors["display_name"] = "At most 100 characters."
    if len(form["description"]) > 1000:
        errors["description"] = "At most 1000 characters."
    if form["source"] not in SOURCES:
        errors["source"] = "Choose editable or integration only."
    if form["empty_value"] not in EMPTY:
        errors["empty_value"] = "Choose keep or clear."
    return errors


def _render(template: str, status: int, **values: Any) -> Any:
    return (
        render_template(
            template, sources=SOURCE_WORDS, empties=EMPTY_WORDS, source_of=_word, SOURCES=SOURCES, EMPTY=EMPTY, **values
        ),
        status,
    )


@blueprint.route("/roles", methods=["GET", "POST"])
def list_roles() -> Any:
    app = console()
    form = {
        "key": "",
        "display_name": "",
        "description": "",
        "source": "editable",
        "empty_value": "keep_existing",
        "request_id": request_id_of(None),
    }
    errors: dict[str, str] = {}
    problem = ""
    if request.method == "POST":
        require_manager()
        form = _read_form()
        errors = _check(form, new=True)
        if not errors:
            role = apb.Role(
                key=form["key"],
                display_name=form["display_name"],
                description=form["description"],
                source=SOURCES[form["source"]],
                empty_value=EMPTY[form["empty_value"]],
            )
            try:
                created = as_me(
                    app.gateway.assignments.CreateRole, apb.CreateRoleRequest(role=role, request_id=form["request_id"])
                )
            except grpc.RpcError as error:
                found = expected_problem(error)
                errors, problem = field_errors(found, FIELDS, prefix="role.")
                if found.reason == "ROLE_EXISTS":
                    errors["key"] = found.message
            else:
                flash(f"Role {created.display_name} created; its team attribute is {created.attribute}.")
                return redirect(url_for("roles.list_roles"))
    roles = list(as_me(app.gateway.assignments.ListRoles, apb.ListRolesRequest(page_size=500)).roles)
    return _render(
        "people/roles.html", 422 if errors or problem else 200, roles=roles, form=form, errors=errors, problem=problem
    )


@blueprint.route("/roles/<key>", methods=["GET", "POST"])
def edit(key: str) -> Any:
    valid_id(key)
    app = console()
    if request.method == "POST":
        require_manager()
    role: apb.Role = read_or_404(app.gateway.assignments.GetRole, apb.GetRoleRequest(name=f"roles/{key}"))
    form = _form_of(role)
    errors: dict[str, str] = {}
    problem = ""
    if request.method == "POST":
        sent = _read_form()
        sent["key"] = role.key
        errors = _check(sent, new=False)
        changed = [k for k in FIELDS[1:] if sent[k] != form[k]]
        form = {**sent}
        if not errors and not changed:
            flash("Nothing changed.")
            return redirect(url_for("roles.list_roles"))
        if not errors:
            update = apb.Role(
                name=role.name,
                etag=sent["etag"] or role.etag,
                display_name=sent["display_name"],
                description=sent["description"],
                source=SOURCES[sent["source"]],
                empty_value=EMPTY[sent["empty_value"]],
            )
            mask = FieldMask(paths=changed)
            call = apb.UpdateRoleRequest(role=update, update_mask=mask, request_id=request_id_of(None))
            try:
                as_me(app.gateway.assignments.UpdateRole, call)
            except grpc.RpcError as error:
                found = expected_problem(error)
                errors, problem = field_errors(found, FIELDS, prefix="role.")
                if found.reason == "ETAG_MISMATCH":
                    role = as_me(app.gateway.assignments.GetRole, apb.GetRoleRequest(name=role.name))
                    form = _form_of(role)
            else:
                flash(f"Role {sent['display_name']} saved.")
                return redirect(url_for("roles.list_roles"))
    return _render(
        "people/role.html", 422 if errors or problem else 200, role=role, form=form, errors=errors, problem=problem
    )
