"""Sync connections: the list, a new connection (its secrets are written once and never shown
again) and Test, which says what the connection can read."""

from __future__ import annotations

import re
import uuid
from typing import Any

import grpc
from flask import flash, redirect, render_template, request, url_for

from services.console.app import console
from services.console.forms import clean_text
from services.console.rpc_errors import problem_of
from services.console.views.sync import (
    CONNECTORS,
    _call,
    _fields_to_form,
    _not_found,
    _request_id,
    _require_writer,
    _service_words,
    _uid,
    _when,
    blueprint,
)
from steward.sync.v1 import connections_pb2 as cpb

_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$")
_VERSION = re.compile(r"^\d{2,3}\.\d$")
GRANTS = {"client_credentials": cpb.O_AUTH_GRANT_CLIENT_CREDENTIALS, "jwt_bearer": cpb.O_AUTH_GRANT_JWT_BEARER}


@blueprint.get("/connections")
def list_connections() -> Any:
    reply = _call(console().gateway.connections.ListConnections, cpb.ListConnectionsRequest(page_size=100))
    return render_template("sync/connections.html", connections=list(reply.connections), when=_when)


CONNECTION_FORM = {
    "display_name": "",
    "instance_url": "",
    "api_version": "62.0",
    "grant": "client_credentials",
    "token_url": "",
    "client_id": "",
    "username": "",
    "request_id": "",
}


@blueprint.route("/connections/new", methods=["GET", "POST"])
def new_connection() -> Any:
    _require_writer()
    form = dict(CONNECTION_FORM, request_id=str(uuid.uuid4()))
    errors: dict[str, str] = {}
    problems: list[str] = []
    if request.method == "POST":
        form = {key: clean_text(request.form.get(key), 2000) for key in form}
        # Secrets are read once and never put back into the page.
        secret = (request.form.get("client_secret") or "").strip()
        private_key = (request.form.get("private_key") or "").strip()
        if not form["display_name"] or len(form["display_name"]) > 200:
            errors["display_name"] = "Enter a name of at most 200 characters."
        if not _URL.match(form["instance_url"]):
            errors["instance_url"] = "Enter the org's address, like https://acme.my.salesforce.com."
        if not _VERSION.match(form["api_version"]) or float(form["api_version"]) < 42.0:
            errors["api_version"] = "Enter an API version like 62.0 (at least 42.0)."
        if form["token_url"] and not _URL.match(form["token_url"]):
            errors["token_url"] = "Enter a web address, or leave it empty for the org's default."
        if not form["client_id"]:
            errors["client_id"] = "Enter the connected app's client id."
        if form["grant"] not in GRANTS:
            errors["grant"] = "Choose client credentials or JWT bearer."
        elif form["grant"] == "client_credentials" and not secret:
            errors["client_secret"] = "Enter the client secret."
        elif form["grant"] == "jwt_bearer":
            if not form["username"]:
                errors["username"] = "Enter the Salesforce username the token is for."
            if not private_key:
                errors["private_key"] = "Enter the private key that signs the assertion."
        if not errors:
            connection = cpb.Connection(
                display_name=form["display_name"],
                instance_url=form["instance_url"],
                api_version=form["api_version"],
                oauth=cpb.OAuthSettings(
                    grant=GRANTS[form["grant"]],
                    token_url=form["token_url"],
                    client_id=form["client_id"],
                    client_secret=secret if form["grant"] == "client_credentials" else "",
                    username=form["username"] if form["grant"] == "jwt_bearer" else "",
                    private_key=private_key if form["grant"] == "jwt_bearer" else "",
                ),
            )
            call = cpb.CreateConnectionRequest(connection=connection, request_id=_request_id(form["request_id"]))
            try:
                created = _call(console().gateway.connections.CreateConnection, call)
            except grpc.RpcError as error:
                found = problem_of(error)
                if found.code not in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ALREADY_EXISTS):
                    raise
                problems = [_service_words(found)] if not found.fields else ["The connection was not created."]
                keys = {k: k for k in ("display_name", "instance_url", "api_version", "token_url", "client_id")}
                keys |= {"client_secret": "client_secret", "username": "username", "private_key": "private_key"}
                problems += _fields_to_form(found, keys, errors)
            else:
                flash(f"Connection {created.display_name} created. Test it to see what it can read.")
                return redirect(url_for("sync.list_connections"))
    status = 422 if errors or problems else 200
    return render_template(
        "sync/connection_form.html", form=form, errors=errors, problems=problems, grants=list(GRANTS)
    ), status


@blueprint.post("/connections/<uid>/test")
def test_connection(uid: str) -> Any:
    _require_writer()
    name = f"connections/{_uid(uid)}"
    try:
        connection = _call(console().gateway.connections.GetConnection, cpb.GetConnectionRequest(name=name))
        reply = _call(console().gateway.connections.TestConnection, cpb.TestConnectionRequest(name=name), 60.0)
    except grpc.RpcError as error:
        _not_found(error)
        raise
    return render_template("sync/connection_test.html", connection=connection, reply=reply, connectors=CONNECTORS)
