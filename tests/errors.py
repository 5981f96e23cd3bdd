"""Reads google.rpc details off a failed call, the way a client would."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


@dataclass
class RpcFailure:
    code: grpc.StatusCode
    message: str
    reason: str = ""
    error_metadata: dict[str, str] = field(default_factory=dict)
    field_violations: dict[str, str] = field(default_factory=dict)
    violation_reasons: dict[str, str] = field(default_factory=dict)
    precondition_violations: list[error_details_pb2.PreconditionFailure.Violation] = field(default_factory=list)
    trailing: dict[str, str] = field(default_factory=dict)


def failure(error: grpc.RpcError) -> RpcFailure:
    out = RpcFailure(error.code(), error.details() or "")
    out.trailing = {k: v for k, v in (error.trailing_metadata() or ()) if isinstance(v, str)}
    status = rpc_status.from_call(error)
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            out.reason, out.error_metadata = info.reason, dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            out.field_violations = {v.field: v.description for v in bad.field_violations}
            out.violation_reasons = {v.field: v.reason for v in bad.field_violations}
        elif detail.Is(error_details_pb2.PreconditionFailure.DESCRIPTOR):
            pre = error_details_pb2.PreconditionFailure()
            detail.Unpack(pre)
            out.precondition_violations = list(pre.violations)
    return out


def call_fails(method, request, **kwargs) -> RpcFailure:
    try:
        method(request, **kwargs)
    except grpc.RpcError as error:
        return failure(error)
    raise AssertionError(f"{method} succeeded but was expected to fail")
