"""What every CLI command that calls a service needs: a channel, a token, and readable errors."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import typer
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from rich.console import Console
from rich.table import Table

from services.cli.secrets import jwt_secret
from services.runtime.auth import mint_token
from services.runtime.config import service_address
from services.users.service_layer.bootstrap import bootstrap_admin_id

DEV_ADMIN_EMAIL = "admin@steward.local"
console = Console()
errors = Console(stderr=True)
T = TypeVar("T")


def bearer_token() -> str:
    """STEWARD_TOKEN if set; otherwise, on a dev machine, a short-lived token of the bootstrap admin."""
    token = os.environ.get("STEWARD_TOKEN")
    if token:
        return token
    secret = jwt_secret()
    if not secret:
        errors.print("[red]set STEWARD_TOKEN (e.g. from `make run`), or STEWARD_JWT_SECRET to mint one[/red]")
        raise typer.Exit(2)
    admin = os.environ.get("STEWARD_BOOTSTRAP_ADMIN_EMAIL") or DEV_ADMIN_EMAIL
    return mint_token(secret, bootstrap_admin_id(admin), ttl_seconds=300)


def call(
    service: str,
    stub_type: Callable[[grpc.Channel], Any],
    invoke: Callable[[Any, list[tuple[str, str]]], T],
    failure_exit: int = 1,
) -> T:
    """Run one call; a failure prints its status and details and exits `failure_exit` (no stack trace)."""
    metadata = [("authorization", f"Bearer {bearer_token()}")]
    with grpc.insecure_channel(service_address(service)) as channel:
        try:
            return invoke(stub_type(channel), metadata)
        except grpc.RpcError as error:
            print_error(error)
            raise typer.Exit(failure_exit) from error


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str
    reason: str


def error_details(error: grpc.RpcError) -> tuple[str, list[FieldViolation]]:
    """The google.rpc details of a failed call: the ErrorInfo reason and the BadRequest field violations."""
    reason, violations = "", []
    status = rpc_status.from_call(error)
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations += [FieldViolation(v.field, v.description, v.reason) for v in bad.field_violations]
        elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
    return reason, violations


def print_error(error: grpc.RpcError) -> None:
    errors.print(f"[red]{error.code().name}[/red]: {error.details()}")
    reason, violations = error_details(error)
    if reason:
        errors.print(f"  reason: {reason}")
    for violation in violations:
        errors.print(f"  {violation.field}: {violation.description} [{violation.reason}]")


def as_dict(message: Message) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True)


def emit(
    items: Sequence[Message] | Message, columns: Iterable[tuple[str, Callable[[Any], object]]], as_json: bool
) -> None:
    rows = [items] if isinstance(items, Message) else list(items)
    if as_json:
        data = [as_dict(r) for r in rows]
        print(json.dumps(data[0] if isinstance(items, Message) else data, indent=2))
        return
    columns = list(columns)
    table = Table(*(name for name, _ in columns))
    for row in rows:
        table.add_row(*(str(get(row)) for _, get in columns))
    console.print(table)


def all_pages(request: Any, field: str, fetch: Callable[[Any], Any]) -> list[Any]:
    """Follow next_page_token until the last page; `request` is reused with each token in turn."""
    items: list[Any] = []
    while True:
        reply = fetch(request)
        items += list(getattr(reply, field))
        if not reply.next_page_token:
            return items
        request.page_token = reply.next_page_token


def resource(collection: str, ident: str) -> str:
    """Accept a bare UUID or a full resource name."""
    return ident if ident.startswith(f"{collection}/") else f"{collection}/{ident}"
