"""A failed gRPC call in words for a page: the message, the field violations of google.rpc
BadRequest keyed by field, and the ErrorInfo reason, as tests/errors.py decodes them."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

# Reasons whose service text is written for developers; what a person should read instead.
REASON_WORDS = {
    "INVITATION_NOT_FOUND": "This invitation link is not valid. Ask your administrator for a new invitation.",
    "INVITATION_USED": "This invitation was already accepted. Sign in instead.",
    "INVITATION_REVOKED": "This invitation was replaced or cancelled. Use the newest invitation email.",
    "INVITATION_EXPIRED": "This invitation has expired. Ask your administrator to send it again.",
    "TRANSITION_NOT_ALLOWED": "That action does not apply to this user's status.",
    "GLOBAL_ADMIN_PROTECTED": "Global admins cannot be disabled or deleted.",
    "LICENSE_EXHAUSTED": "No seat is left on that license.",
    "LICENSE_DOWNGRADE_NOT_ALLOWED": "A practitioner or contributor cannot become a viewer.",
    "ALREADY_IN_STATE": "Already in that state.",
    "USER_NOT_FOUND": "No such user.",
}
CODE_WORDS = {
    grpc.StatusCode.PERMISSION_DENIED: "You do not have the rights to do that.",
    grpc.StatusCode.UNAUTHENTICATED: "Your sign-in is no longer accepted. Sign in again.",
    grpc.StatusCode.UNAVAILABLE: "The users service cannot be reached right now. Try again in a moment.",
    grpc.StatusCode.DEADLINE_EXCEEDED: "The users service took too long to answer. Try again.",
}


@dataclass
class Problem:
    message: str
    reason: str = ""
    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN
    fields: dict[str, str] = field(default_factory=dict)

    def field_list(self) -> list[tuple[str, str]]:
        return sorted(self.fields.items())


def words_for_reason(reason: str, fallback: str) -> str:
    return REASON_WORDS.get(reason, fallback)


def problem_of(error: grpc.RpcError) -> Problem:
    code = error.code() if callable(getattr(error, "code", None)) else grpc.StatusCode.UNKNOWN
    details = (error.details() if callable(getattr(error, "details", None)) else "") or ""
    out = Problem(details or code.name.replace("_", " ").lower(), code=code)
    status = rpc_status.from_call(error) if isinstance(error, grpc.Call) else None
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            out.reason = info.reason
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            out.fields = {v.field: v.description for v in bad.field_violations}
    if out.reason in REASON_WORDS:
        out.message = REASON_WORDS[out.reason]
    elif code in CODE_WORDS:
        out.message = CODE_WORDS[code]
    return out
