"""UploadService over gRPC: the file streamed in chunks, one run per file, the final run back.

Who may: as for the other sync writes (scope sync.write, the operator role, or an ACTIVE global
admin / user manager). The caller is the run's started_by; the users service sees the sync
service's own account, as for connector runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import grpc

from services.runtime.db import Database
from services.runtime.errors import FieldViolation, InvalidArgument
from services.runtime.names import parse_name, validate_request_id
from services.sync import convert
from services.sync.adapters.users_client import SyncUsersClient
from services.sync.domain.uploads import MAX_FILE_BYTES
from services.sync.service_layer.uploads import Uploads
from services.sync.servicer import _Base
from steward.sync.v1 import jobs_pb2, uploads_pb2, uploads_pb2_grpc


@dataclass(frozen=True)
class _Upload:
    job_id: str
    file_name: str
    request_id: str
    data: bytes


def _refused(field: str, reason: str, message: str) -> InvalidArgument:
    return InvalidArgument(reason, message, field_violations=[FieldViolation(field, message, reason)])


def receive(chunks: Iterable[uploads_pb2.UploadChunk], limit: int = MAX_FILE_BYTES) -> _Upload:
    """The whole file; job, file_name and request_id from the first chunk (later chunks may
    repeat them, not change them)."""
    first: uploads_pb2.UploadChunk | None = None
    data = bytearray()
    for chunk in chunks:
        if first is None:
            first = chunk
        else:
            for name in ("job", "file_name", "request_id"):
                value = getattr(chunk, name)
                if value and value != getattr(first, name):
                    raise _refused(name, "FIRST_CHUNK_ONLY", f"{name} is set by the first chunk only")
        data += chunk.data
        if len(data) > limit:
            raise _refused("data", "FILE_TOO_LARGE", f"a file may have at most {limit} bytes")
    if first is None:
        raise _refused("job", "REQUIRED", "send the file: a first chunk naming the job")
    job_id = parse_name("jobs", first.job, "job")
    validate_request_id(first.request_id)
    return _Upload(job_id, first.file_name, first.request_id, bytes(data))


class UploadServicer(_Base, uploads_pb2_grpc.UploadServiceServicer):
    def __init__(self, db: Database, users: SyncUsersClient, *, lease_seconds: float = 60.0) -> None:
        super().__init__(db, users)
        self._uploads = Uploads(db, users, lease_seconds=lease_seconds)

    def UploadAssignments(
        self, request_iterator: Iterable[uploads_pb2.UploadChunk], context: grpc.ServicerContext
    ) -> jobs_pb2.Run:
        started_by = self._ensure_writer()
        upload = receive(request_iterator)
        run = self._uploads.assignments(upload.job_id, upload.data, started_by, upload.request_id, upload.file_name)
        return convert.run_to_proto(run)

    def UploadUsers(
        self, request_iterator: Iterable[uploads_pb2.UploadChunk], context: grpc.ServicerContext
    ) -> jobs_pb2.Run:
        started_by = self._ensure_writer()
        upload = receive(request_iterator)
        run = self._uploads.users(upload.job_id, upload.data, started_by, upload.request_id, upload.file_name)
        return convert.run_to_proto(run)
