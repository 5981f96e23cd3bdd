"""AssignmentService, TaskService and ResourceService over gRPC."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, cast

import grpc
from google.rpc import code_pb2

from services.runtime.db import utcnow
from services.runtime.errors import DomainError, ErrorKind, FieldViolation, InvalidArgument, Violations
from services.runtime.idempotency import request_digest
from services.runtime.names import parse_name, validate_request_id
from services.runtime.pagination import PageRequest, list_response_page
from services.runtime.protobuf import enum_filter, update_paths
from services.users import convert
from services.users.adapters.item_records import ItemRecord
from services.users.adapters.work_repository import resource_key, task_key
from services.users.domain.assignments import EmptyValue, Role, RoleSource, Source, WriteSource, check_role_key
from services.users.domain.permissions import Actor
from services.users.domain.work import (
    MAX_TASK_BATCH,
    PRIVATE_KINDS,
    Resource,
    ResourceKind,
    Visibility,
    check_account_id,
    is_account_id,
)
from services.users.service_layer import assignments as use
from services.users.service_layer import work
from services.users.servicer import UsersServicerBase
from services.users.unit_of_work import UsersUnitOfWork
from steward.users.v1 import assignments_pb2 as pb
from steward.users.v1 import assignments_pb2_grpc, work_pb2, work_pb2_grpc

_ROLE_PATHS = {
    "display_name": "display_name",
    "description": "description",
    "source": "source",
    "empty_value": "empty_value",
}


def _write_source(message: pb.WriteSource, field: str = "source") -> WriteSource:
    source = convert.required_enum(message.source, convert.SOURCE_FROM_PROTO, f"{field}.source")
    team = None
    if source is Source.PLAY:
        team = parse_name("teams", message.play_team, f"{field}.play_team")
    return WriteSource(source, message.source_ref, team)


def _user_ref(message: pb.UserRef, field: str) -> use.UserRef:
    kind = message.WhichOneof("ref")
    if kind == "user":
        return use.UserRef(user_id=parse_name("users", message.user, f"{field}.user"))
    if kind == "email":
        return use.UserRef(email=message.email)
    if kind == "full_name" and message.full_name.strip():
        return use.UserRef(full_name=message.full_name)
    raise InvalidArgument(
        "USER_REQUIRED",
        f"{field} must name a user by id, email or full name",
        field_violations=[FieldViolation(field, "name a user", "REQUIRED")],
    )


_ROW_RESULT = {
    use.Result.SET: pb.AssignmentRowOutcome.RESULT_SET,
    use.Result.CLEARED: pb.AssignmentRowOutcome.RESULT_CLEARED,
    use.Result.UNCHANGED: pb.AssignmentRowOutcome.RESULT_UNCHANGED,
    None: pb.AssignmentRowOutcome.RESULT_FAILED,
}


# The idempotency records of BatchSetAssignments rows (AssignmentRow.request_id), apart from
# those of whole calls; the response stored is the row's AssignmentRowOutcome.
ROW_RECORDS = "BatchSetAssignments.row"
# BatchCreateTasks items share CreateTask's records: an item retried as a single call (or the
# other way round) is answered from the record, as the same request would be.
TASK_RECORDS = "CreateTask"

_FAILED = pb.AssignmentRowOutcome.RESULT_FAILED


def _code(kind: ErrorKind | None) -> int:
    """The google.rpc.Code of an error of this kind (an ErrorKind is named as its code is)."""
    return code_pb2.Code.Value(kind.value) if kind is not None else code_pb2.UNKNOWN


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_RESULT_OF = {name: result for result, name in _ROW_RESULT.items() if result is not None}


class _SetRequest(NamedTuple):
    write: WriteSource | None  # None: every row names its own
    rows: list[use.BatchRow]
    # Rows with a request_id: row index -> (request id, digest of the row as it writes).
    keyed: dict[int, tuple[str, str]]


def _set_request(request: pb.BatchSetAssignmentsRequest) -> _SetRequest:
    """The writer, rows and row request ids of a BatchSetAssignmentsRequest. Rows naming one user
    share one UserRef, rows naming one writer one WriteSource (a batch of 10,000 rows names a few
    hundred users and a few writers)."""
    rows = request.rows
    write = None
    if request.HasField("source") or not rows or not all(row.HasField("source") for row in rows):
        write = _write_source(request.source)
    problems = Violations()
    refs: dict[bytes, use.UserRef] = {}
    writers: dict[bytes, WriteSource] = {}
    keyed_rows: list[int] = []
    batch = []
    for i, row in enumerate(rows):
        ref = None
        if row.HasField("user"):
            key = row.user.SerializeToString()
            ref = refs.get(key)
            if ref is None:
                ref = refs[key] = _user_ref(row.user, f"rows[{i}].user")
        own = None
        if row.HasField("source"):
            key = row.source.SerializeToString()
            own = writers.get(key)
            if own is None:
                own = _checked(problems, _write_source, row.source, f"rows[{i}].source")
                if own is not None:
                    writers[key] = own
        if row.request_id:
            keyed_rows.append(i)
        batch.append(use.BatchRow(row.account_id, row.role.removeprefix("roles/"), ref, own))
    keyed = {
        i: (rows[i].request_id, _row_digest(rows[i], request.source))
        for i in _item_request_ids({i: rows[i].request_id for i in keyed_rows}, "rows", problems)
    }
    problems.raise_if_any("invalid batch request")
    return _SetRequest(write, batch, keyed)


def _item_request_ids(request_ids: Mapping[int, str], items: str, problems: Violations) -> list[int]:
    """The items (by index) whose request_id is a UUID that no earlier item of the request has;
    the others are field violations ("{items}[i].request_id")."""
    first: dict[str, int] = {}
    for i, request_id in request_ids.items():
        field = f"{items}[{i}].request_id"
        if _UUID.fullmatch(request_id) is None:  # what validate_request_id accepts, 5x faster
            try:
                validate_request_id(request_id, field)
            except InvalidArgument as bad:
                problems.items.extend(bad.field_violations)
                continue
        if request_id in first:
            problems.add(field, f"{items}[{first[request_id]}] has this request_id too", "REQUEST_ID_DUPLICATE")
            continue
        first[request_id] = i
    return list(first.values())


def _row_digest(row: pb.AssignmentRow, source: pb.WriteSource) -> str:
    """What a row writes, for its request_id: the same row under the same id is a replay, other
    content a reuse. The writer is the row's own or the request's, whichever it writes as."""
    written = pb.AssignmentRow(
        account_id=row.account_id,
        role=f"roles/{row.role.removeprefix('roles/')}",
        user=row.user if row.HasField("user") else None,
        source=row.source if row.HasField("source") else source,
    )
    # runtime.idempotency.request_digest of a message without request_id, without its copy.
    return hashlib.sha256(written.SerializeToString(deterministic=True)).hexdigest()


def _answered_rows(uow: UsersUnitOfWork, keyed: Mapping[int, tuple[str, str]]) -> dict[int, use.RowOutcome]:
    """The rows whose request_id was applied before, answered as they were then (or, for other
    content under the same id, failed as REQUEST_ID_REUSED): one query for the whole batch."""
    if not keyed:
        return {}
    known = uow.item_records.find(ROW_RECORDS, [request_id for request_id, _ in keyed.values()])
    answered: dict[int, use.RowOutcome] = {}
    for i, (request_id, digest) in keyed.items():
        record = known.get(request_id)
        if record is None:
            continue
        if record.request_digest != digest:
            answered[i] = use.RowOutcome(
                None,
                "",
                "REQUEST_ID_REUSED",
                "request_id was already used for a row with other fields",
                "",
                ErrorKind.INVALID_ARGUMENT,
            )
            continue
        first = pb.AssignmentRowOutcome.FromString(record.response)
        answered[i] = use.RowOutcome(
            _RESULT_OF[first.result],
            first.user.removeprefix("users/"),
            first.reason,
            first.description,
            first.previous_user.removeprefix("users/"),
        )
    return answered


def _set_response(outcomes: list[use.RowOutcome]) -> pb.BatchSetAssignmentsResponse:
    response = pb.BatchSetAssignmentsResponse(
        changed_count=sum(1 for o in outcomes if o.result in (use.Result.SET, use.Result.CLEARED)),
        failed_count=sum(1 for o in outcomes if o.result is None),
    )
    add = response.outcomes.add  # in place: building each message and copying it costs 3x
    for i, o in enumerate(outcomes):
        if o.result is None:
            add(row=i, result=_FAILED, reason=o.reason, description=o.description, code=_code(o.error))
            continue
        add(
            row=i,
            result=_ROW_RESULT[o.result],
            user=f"users/{o.user_id}" if o.user_id else "",
            reason=o.reason,
            description=o.description,
            previous_user=f"users/{o.previous_user_id}" if o.previous_user_id else "",
        )
    return response


def _count_request(request: pb.CountAssignmentsRequest) -> tuple[str, list[str]]:
    """The role key and user ids of a CountAssignmentsRequest; every problem reported at once."""
    problems = Violations()

    def checked(parse: Callable[..., str], *args: str) -> str:
        try:
            return parse(*args)
        except InvalidArgument as bad:
            problems.items.extend(bad.field_violations)
            return ""

    key = checked(convert.role_key, request.role, "role")
    if not request.users:
        problems.add("users", "name at least one user", "REQUIRED")
    elif len(request.users) > use.MAX_COUNT_USERS:
        problems.add("users", f"at most {use.MAX_COUNT_USERS} users; got {len(request.users)}", "TOO_MANY")
    user_ids = [checked(parse_name, "users", name, f"users[{i}]") for i, name in enumerate(request.users)]
    problems.raise_if_any("invalid count request")
    return key, user_ids


def _checked(problems: Violations, parse: Callable[..., Any], *args: Any) -> Any:
    """parse(*args), its field violations collected into `problems` (None then)."""
    try:
        return parse(*args)
    except InvalidArgument as bad:
        problems.items.extend(bad.field_violations)
        return None


def _slot(account_id: str, role: str, rows: str, index: int, problems: Violations) -> tuple[str, str]:
    """(account id, role key) of row `index` of a batch's `rows`, its problems collected."""
    if is_account_id(account_id) and (key := _valid_role_key(role)):
        return account_id, key  # the common case, without building field names
    field = f"{rows}[{index}]"
    check_account_id(account_id, f"{field}.account_id", problems)
    key = _checked(problems, convert.role_key, role, f"{field}.role")
    if key is not None:
        _checked(problems, check_role_key, key, f"{field}.role")
    return account_id, key or ""


@functools.lru_cache(maxsize=1024)
def _valid_role_key(role: str) -> str:
    """The key of a well-formed role name, else "" (a batch names a handful of roles)."""
    try:
        key = convert.role_key(role)
        check_role_key(key)
    except InvalidArgument:
        return ""
    return key


def _batch_size(count: int, field: str, problems: Violations) -> None:
    if not count:
        problems.add(field, "name at least one row", "REQUIRED")
    elif count > use.MAX_BATCH:
        problems.add(field, f"at most {use.MAX_BATCH} rows; got {count}", "TOO_MANY")


def _clear_request(request: pb.BatchClearAssignmentsRequest) -> tuple[list[use.ClearRow], WriteSource]:
    """The rows and writer of a BatchClearAssignmentsRequest; every problem reported at once."""
    problems = Violations()
    write = _checked(problems, _write_source, request.source)
    _batch_size(len(request.rows), "rows", problems)
    rows = []
    for i, row in enumerate(request.rows):
        account_id, key = _slot(row.account_id, row.role, "rows", i, problems)
        expected = (
            _checked(problems, parse_name, "users", row.expected_user, f"rows[{i}].expected_user")
            if row.expected_user
            else None
        )
        rows.append(use.ClearRow(account_id, key, expected))
    problems.raise_if_any("invalid batch clear request")
    return rows, write


def _get_request(request: pb.BatchGetAssignmentsRequest) -> list[tuple[str, str]]:
    problems = Violations()
    _batch_size(len(request.keys), "keys", problems)
    slots = [_slot(k.account_id, k.role, "keys", i, problems) for i, k in enumerate(request.keys)]
    problems.raise_if_any("invalid batch get request")
    return slots


class AssignmentServicer(UsersServicerBase, assignments_pb2_grpc.AssignmentServiceServicer):
    def CreateRole(self, request: pb.CreateRoleRequest, context: grpc.ServicerContext) -> pb.Role:
        now = utcnow()
        role = Role(
            key=request.role.key,
            display_name=request.role.display_name,
            description=request.role.description,
            source=convert.ROLE_SOURCE_FROM_PROTO.get(request.role.source, RoleSource.EDITABLE),
            empty_value=convert.EMPTY_FROM_PROTO.get(request.role.empty_value, EmptyValue.KEEP_EXISTING),
            builtin=False,
            create_time=now,
            update_time=now,
        )
        return self._write(
            "CreateRole",
            request,
            pb.Role,
            lambda uow, actor: convert.role_to_proto(use.create_role(uow, actor, role, now)),
        )

    def GetRole(self, request: pb.GetRoleRequest, context: grpc.ServicerContext) -> pb.Role:
        key = convert.role_key(request.name, "name")
        return self._read(lambda uow, _: convert.role_to_proto(use.get_role(uow, key)))

    def ListRoles(self, request: pb.ListRolesRequest, context: grpc.ServicerContext) -> pb.ListRolesResponse:
        def run(uow: UsersUnitOfWork, _: Actor) -> pb.ListRolesResponse:
            def fetch(page: PageRequest) -> list[Role]:
                return uow.roles.list_page(limit=page.limit, after=page.after)

            roles, token = list_response_page(request.page_size, request.page_token, {}, 1, fetch, lambda r: (r.key,))
            return pb.ListRolesResponse(roles=[convert.role_to_proto(r) for r in roles], next_page_token=token)

        return self._read(run)

    def UpdateRole(self, request: pb.UpdateRoleRequest, context: grpc.ServicerContext) -> pb.Role:
        key = convert.role_key(request.role.name or request.role.key, "role.name")
        paths = update_paths(request.update_mask, frozenset(_ROLE_PATHS))
        values: dict[str, Any] = {
            "display_name": request.role.display_name,
            "description": request.role.description,
            "source": convert.ROLE_SOURCE_FROM_PROTO.get(request.role.source),
            "empty_value": convert.EMPTY_FROM_PROTO.get(request.role.empty_value),
        }
        for path in ("source", "empty_value"):
            if path in paths and values[path] is None:
                raise InvalidArgument(
                    "REQUIRED",
                    f"role.{path} is required when named in update_mask",
                    field_violations=[FieldViolation(f"role.{path}", "is required", "REQUIRED")],
                )
        changes = {_ROLE_PATHS[p]: values[p] for p in paths}
        return self._write(
            "UpdateRole",
            request,
            pb.Role,
            lambda uow, actor: convert.role_to_proto(
                use.update_role(uow, actor, key, request.role.etag, changes, utcnow())
            ),
        )

    def DeleteRole(self, request: pb.DeleteRoleRequest, context: grpc.ServicerContext) -> pb.DeleteRoleResponse:
        key = convert.role_key(request.name, "name")
        return self._write(
            "DeleteRole",
            request,
            pb.DeleteRoleResponse,
            lambda uow, actor: pb.DeleteRoleResponse(
                cleared_assignments=use.delete_role(uow, actor, key, request.force, utcnow())
            ),
        )

    def SetAssignment(self, request: pb.SetAssignmentRequest, context: grpc.ServicerContext) -> pb.Assignment:
        key = convert.role_key(request.role)
        ref = _user_ref(request.user, "user")
        write = _write_source(request.source)
        return self._write(
            "SetAssignment",
            request,
            pb.Assignment,
            lambda uow, actor: convert.assignment_to_proto(
                use.set_assignment(uow, actor, request.account_id, key, ref, write, utcnow())
            ),
        )

    def ClearAssignment(
        self, request: pb.ClearAssignmentRequest, context: grpc.ServicerContext
    ) -> pb.ClearAssignmentResponse:
        key = convert.role_key(request.role)
        write = _write_source(request.source)

        def run(uow: UsersUnitOfWork, actor: Actor) -> pb.ClearAssignmentResponse:
            previous = use.clear_assignment(uow, actor, request.account_id, key, write, utcnow())
            return pb.ClearAssignmentResponse(previous_user=f"users/{previous}" if previous else "")

        return self._write("ClearAssignment", request, pb.ClearAssignmentResponse, run)

    def BatchSetAssignments(
        self, request: pb.BatchSetAssignmentsRequest, context: grpc.ServicerContext
    ) -> pb.BatchSetAssignmentsResponse:
        write, rows, keyed = _set_request(request)
        validate_only = request.validate_only

        def run(uow: UsersUnitOfWork, actor: Actor) -> pb.BatchSetAssignmentsResponse:
            now = utcnow()
            answered = _answered_rows(uow, keyed)
            outcomes = use.batch_set(uow, actor, rows, write, now, answered, validate_only=validate_only)
            response = _set_response(outcomes)
            if keyed and not validate_only:  # applied rows only: a failed row records nothing, and is retried
                uow.item_records.add(
                    ROW_RECORDS,
                    [
                        ItemRecord(request_id, digest, response.outcomes[i].SerializeToString())
                        for i, (request_id, digest) in keyed.items()
                        if i not in answered and outcomes[i].result is not None
                    ],
                    now,
                )
            return response

        if validate_only:
            return self._validate("BatchSetAssignments", request, pb.BatchSetAssignmentsResponse, run)
        return self._write("BatchSetAssignments", request, pb.BatchSetAssignmentsResponse, run)

    def BatchClearAssignments(
        self, request: pb.BatchClearAssignmentsRequest, context: grpc.ServicerContext
    ) -> pb.BatchClearAssignmentsResponse:
        rows, write = _clear_request(request)
        result_name = {
            use.ClearResult.CLEARED: pb.ClearRowOutcome.CLEARED,
            use.ClearResult.SKIPPED: pb.ClearRowOutcome.SKIPPED,
            None: pb.ClearRowOutcome.FAILED,
        }

        def run(uow: UsersUnitOfWork, actor: Actor) -> pb.BatchClearAssignmentsResponse:
            outcomes = use.batch_clear(uow, actor, rows, write, request.only_own, utcnow())
            return pb.BatchClearAssignmentsResponse(
                outcomes=[
                    pb.ClearRowOutcome(
                        index=i, result=result_name[o.result], reason=o.reason, description=o.description
                    )
                    for i, o in enumerate(outcomes)
                ],
                cleared_count=sum(1 for o in outcomes if o.result is use.ClearResult.CLEARED),
                skipped_count=sum(1 for o in outcomes if o.result is use.ClearResult.SKIPPED),
            )

        return self._write("BatchClearAssignments", request, pb.BatchClearAssignmentsResponse, run)

    def BatchGetAssignments(
        self, request: pb.BatchGetAssignmentsRequest, context: grpc.ServicerContext
    ) -> pb.BatchGetAssignmentsResponse:
        slots = _get_request(request)

        def run(uow: UsersUnitOfWork, _: Actor) -> pb.BatchGetAssignmentsResponse:
            held = uow.assignment_batches.holders(slots, lock=False)
            return pb.BatchGetAssignmentsResponse(
                assignments=[convert.assignment_to_proto(held[slot]) for slot in sorted(held)]
            )

        return self._read(run)

    def GetAccountTeam(self, request: pb.GetAccountTeamRequest, context: grpc.ServicerContext) -> pb.AccountTeam:
        as_of = request.as_of.ToDatetime(tzinfo=convert.dt.UTC) if request.HasField("as_of") else None

        def run(uow: UsersUnitOfWork, _: Actor) -> pb.AccountTeam:
            team = use.team_as_of(uow, request.account_id, as_of)
            return pb.AccountTeam(
                account_id=request.account_id,
                assignments=[convert.assignment_to_proto(a) for a in team],
                attributes={f"{a.role_key}___tid": f"users/{a.user_id}" for a in team},
            )

        return self._read(run)

    def ListAssignments(
        self, request: pb.ListAssignmentsRequest, context: grpc.ServicerContext
    ) -> pb.ListAssignmentsResponse:
        user_id = parse_name("users", request.user, "user") if request.user else None
        key = request.role.removeprefix("roles/") or None
        source = enum_filter(request.source, convert.SOURCE_FROM_PROTO, "source")
        if len(request.source_ref) > use.MAX_SOURCE_REF:
            raise InvalidArgument(
                "TOO_LONG",
                f"source_ref has at most {use.MAX_SOURCE_REF} characters",
                field_violations=[FieldViolation("source_ref", f"at most {use.MAX_SOURCE_REF} characters", "TOO_LONG")],
            )
        # Tokens stay bound to their filters; a request without the source filters keeps the
        # fingerprint it always had, so tokens issued before they existed stay valid.
        filters: dict[str, object] = {"user": user_id, "role": key, "account": request.account_id}
        if source is not None:
            filters["source"] = source.value
        if request.source_ref:
            filters["source_ref"] = request.source_ref

        def run(uow: UsersUnitOfWork, _: Actor) -> pb.ListAssignmentsResponse:
            def fetch(page: PageRequest) -> list[Any]:
                return uow.assignments.list_page(
                    limit=page.limit,
                    after=page.after,
                    user_id=user_id,
                    role_key=key,
                    account_id=request.account_id or None,
                    source=source,
                    source_ref=request.source_ref or None,
                )

            found, token = list_response_page(
                request.page_size,
                request.page_token,
                filters,
                2,
                fetch,
                lambda a: (a.account_id, a.role_key),
            )
            return pb.ListAssignmentsResponse(
                assignments=[convert.assignment_to_proto(a) for a in found], next_page_token=token
            )

        return self._read(run)

    def ListAssignmentHistory(
        self, request: pb.ListAssignmentHistoryRequest, context: grpc.ServicerContext
    ) -> pb.ListAssignmentHistoryResponse:
        user_id = parse_name("users", request.user, "user") if request.user else None
        key = request.role.removeprefix("roles/") or None

        def run(uow: UsersUnitOfWork, _: Actor) -> pb.ListAssignmentHistoryResponse:
            def fetch(page: PageRequest) -> list[Any]:
                return uow.assignments.history_page(
                    limit=page.limit,
                    after=page.after,
                    account_id=request.account_id or None,
                    role_key=key,
                    user_id=user_id,
                )

            found, token = list_response_page(
                request.page_size,
                request.page_token,
                {"user": user_id, "role": key, "account": request.account_id},
                1,
                fetch,
                lambda pair: (pair[0],),
            )
            return pb.ListAssignmentHistoryResponse(
                changes=[convert.change_to_proto(c) for _, c in found], next_page_token=token
            )

        return self._read(run)

    def CountAssignments(
        self, request: pb.CountAssignmentsRequest, context: grpc.ServicerContext
    ) -> pb.CountAssignmentsResponse:
        key, user_ids = _count_request(request)

        def run(uow: UsersUnitOfWork, _: Actor) -> pb.CountAssignmentsResponse:
            counts = use.count_assignments(uow, key, user_ids)
            return pb.CountAssignmentsResponse(
                counts=[pb.UserAssignmentCount(user=f"users/{uid}", accounts=n) for uid, n in counts]
            )

        return self._read(run)


class TaskServicer(UsersServicerBase, work_pb2_grpc.TaskServiceServicer):
    def CreateTask(self, request: work_pb2.CreateTaskRequest, context: grpc.ServicerContext) -> work_pb2.Task:
        assignee = parse_name("users", request.task.assignee, "task.assignee")
        due = request.task.due_time.ToDatetime(tzinfo=convert.dt.UTC) if request.task.HasField("due_time") else None
        play = request.created_by_play
        if play:
            parse_name("plays", play, "created_by_play")
        return self._write(
            TASK_RECORDS,
            request,
            work_pb2.Task,
            lambda uow, actor: convert.task_to_proto(
                work.create_task(uow, actor, request.task.account_id, request.task.title, assignee, due, play, utcnow())
            ),
        )

    def BatchCreateTasks(
        self, request: work_pb2.BatchCreateTasksRequest, context: grpc.ServicerContext
    ) -> work_pb2.BatchCreateTasksResponse:
        items, keys = _task_items(request)

        def run(uow: UsersUnitOfWork, actor: Actor) -> work_pb2.BatchCreateTasksResponse:
            now = utcnow()
            known = uow.item_records.find(
                TASK_RECORDS, [keys[i][0] for i, item in enumerate(items) if not isinstance(item, DomainError)]
            )
            outcomes: list[work_pb2.TaskOutcome | None] = [None] * len(items)
            fresh: list[int] = []
            for i, item in enumerate(items):
                request_id, digest = keys[i]
                record = known.get(request_id)
                if isinstance(item, DomainError):
                    outcomes[i] = _failed_task(i, item)
                elif record is None:
                    fresh.append(i)
                elif record.request_digest == digest:
                    outcomes[i] = work_pb2.TaskOutcome(index=i, task=work_pb2.Task.FromString(record.response))
                else:
                    outcomes[i] = _failed_task(i, _REUSED)
            created = work.batch_create_tasks(uow, actor, [cast(work.TaskItem, items[i]) for i in fresh], now)
            records = []
            for i, result in zip(fresh, created, strict=True):
                if isinstance(result, DomainError):
                    outcomes[i] = _failed_task(i, result)
                    continue
                task = convert.task_to_proto(result)
                outcomes[i] = work_pb2.TaskOutcome(index=i, task=task)
                records.append(ItemRecord(keys[i][0], keys[i][1], task.SerializeToString()))
            uow.item_records.add(TASK_RECORDS, records, now)
            done = [o for o in outcomes if o is not None]
            return work_pb2.BatchCreateTasksResponse(
                outcomes=done,
                created_count=sum(1 for o in done if o.HasField("task")),
                failed_count=sum(1 for o in done if not o.HasField("task")),
            )

        return self._write("BatchCreateTasks", request, work_pb2.BatchCreateTasksResponse, run)

    def GetTask(self, request: work_pb2.GetTaskRequest, context: grpc.ServicerContext) -> work_pb2.Task:
        task_id = parse_name("tasks", request.name)
        return self._read(lambda uow, _: convert.task_to_proto(work.get_task(uow, task_id)))

    def ListTasks(
        self, request: work_pb2.ListTasksRequest, context: grpc.ServicerContext
    ) -> work_pb2.ListTasksResponse:
        assignee = parse_name("users", request.assignee, "assignee") if request.assignee else None
        status = enum_filter(request.status, convert.TASK_STATUS_FROM_PROTO, "status")

        def run(uow: UsersUnitOfWork, _: Actor) -> work_pb2.ListTasksResponse:
            def fetch(page: PageRequest) -> list[Any]:
                return uow.tasks.list_page(
                    limit=page.limit,
                    after=page.after,
                    assignee_id=assignee,
                    account_id=request.account_id or None,
                    status=status,
                )

            found, token = list_response_page(
                request.page_size,
                request.page_token,
                {"assignee": assignee, "account": request.account_id, "status": request.status},
                2,
                fetch,
                task_key,
            )
            return work_pb2.ListTasksResponse(tasks=[convert.task_to_proto(t) for t in found], next_page_token=token)

        return self._read(run)

    def CompleteTask(self, request: work_pb2.CompleteTaskRequest, context: grpc.ServicerContext) -> work_pb2.Task:
        task_id = parse_name("tasks", request.name)
        return self._write(
            "CompleteTask",
            request,
            work_pb2.Task,
            lambda uow, actor: convert.task_to_proto(work.complete_task(uow, actor, task_id, utcnow())),
        )


_REUSED = InvalidArgument("REQUEST_ID_REUSED", "request_id was already used for a different request")


def _failed_task(index: int, error: DomainError) -> work_pb2.TaskOutcome:
    """The outcome of an item that failed as CreateTask would have: its google.rpc.Code (an
    ErrorKind is named as the code is), reason and description."""
    return work_pb2.TaskOutcome(index=index, code=_code(error.kind), reason=error.reason, description=error.message)


def _task_item(item: work_pb2.CreateTaskRequest) -> work.TaskItem | InvalidArgument:
    """One item as CreateTask reads its request; a malformed name fails the item, as it would fail
    the call (INVALID_ARGUMENT, RESOURCE_NAME_INVALID)."""
    try:
        assignee = parse_name("users", item.task.assignee, "task.assignee")
        if item.created_by_play:
            parse_name("plays", item.created_by_play, "created_by_play")
    except InvalidArgument as bad:
        return bad
    due = item.task.due_time.ToDatetime(tzinfo=convert.dt.UTC) if item.task.HasField("due_time") else None
    return work.TaskItem(item.task.account_id, item.task.title, assignee, due, item.created_by_play)


def _task_items(
    request: work_pb2.BatchCreateTasksRequest,
) -> tuple[list[work.TaskItem | InvalidArgument], list[tuple[str, str]]]:
    """The items of a BatchCreateTasksRequest (or why each is malformed) and their (request id,
    digest): the digest CreateTask's records keep of the same request. Problems of the request
    itself (no items, too many, request ids missing, malformed or repeated) are reported at once."""
    problems = Violations()
    count = len(request.requests)
    if not count:
        problems.add("requests", "name at least one task", "REQUIRED")
    elif count > MAX_TASK_BATCH:
        problems.add("requests", f"at most {MAX_TASK_BATCH} tasks; got {count}", "TOO_MANY")
        problems.raise_if_any("invalid batch of tasks")
    for i, item in enumerate(request.requests):
        if not item.request_id:
            problems.add(
                f"requests[{i}].request_id", "is required: each task of a batch is retried on its own", "REQUIRED"
            )
    _item_request_ids(
        {i: item.request_id for i, item in enumerate(request.requests) if item.request_id}, "requests", problems
    )
    items = [_task_item(item) for item in request.requests]
    keys = [(item.request_id, request_digest(item)) for item in request.requests]
    problems.raise_if_any("invalid batch of tasks")
    return items, keys


def _resource_name(name: str, field: str = "name") -> tuple[ResourceKind, str]:
    parts = name.split("/", 2)
    kind = ResourceKind.__members__.get(parts[1].upper()) if len(parts) == 3 and parts[0] == "resources" else None
    if kind is None or not parts[2]:
        raise InvalidArgument(
            "RESOURCE_NAME_INVALID",
            f"{field} must look like resources/<kind>/<id>",
            field_violations=[FieldViolation(field, "resources/<kind>/<id>", "RESOURCE_NAME_INVALID")],
        )
    return kind, parts[2]


class ResourceServicer(UsersServicerBase, work_pb2_grpc.ResourceServiceServicer):
    def RegisterResource(
        self, request: work_pb2.RegisterResourceRequest, context: grpc.ServicerContext
    ) -> work_pb2.Resource:
        given = request.resource
        kind = convert.required_enum(given.kind, convert.KIND_FROM_PROTO, "resource.kind")
        if not given.id:
            raise InvalidArgument(
                "REQUIRED",
                "resource.id is required",
                field_violations=[FieldViolation("resource.id", "is required", "REQUIRED")],
            )
        resource = Resource(
            kind=kind,
            id=given.id,
            display_name=given.display_name,
            owner_id=parse_name("users", given.owner, "resource.owner"),
            visibility=convert.VISIBILITY_FROM_PROTO.get(
                given.visibility, Visibility.PRIVATE if kind in PRIVATE_KINDS else Visibility.SHARED
            ),
            update_time=utcnow(),
            campaign_status=convert.CAMPAIGN_FROM_PROTO.get(given.campaign_status),
            senders=[parse_name("users", s, f"resource.senders[{i}]") for i, s in enumerate(given.senders)],
            bcc=[parse_name("users", s, f"resource.bcc[{i}]") for i, s in enumerate(given.bcc)],
        )
        return self._write(
            "RegisterResource",
            request,
            work_pb2.Resource,
            lambda uow, actor: convert.resource_to_proto(work.register_resource(uow, actor, resource, utcnow())),
        )

    def ListResources(
        self, request: work_pb2.ListResourcesRequest, context: grpc.ServicerContext
    ) -> work_pb2.ListResourcesResponse:
        owner = parse_name("users", request.owner, "owner")
        kind = enum_filter(request.kind, convert.KIND_FROM_PROTO, "kind")

        def run(uow: UsersUnitOfWork, _: Actor) -> work_pb2.ListResourcesResponse:
            def fetch(page: PageRequest) -> list[Resource]:
                return uow.resources.list_page(limit=page.limit, after=page.after, owner_id=owner, kind=kind)

            found, token = list_response_page(
                request.page_size, request.page_token, {"owner": owner, "kind": request.kind}, 2, fetch, resource_key
            )
            return work_pb2.ListResourcesResponse(
                resources=[convert.resource_to_proto(r) for r in found], next_page_token=token
            )

        return self._read(run)

    def UpdateResourceOwner(
        self, request: work_pb2.UpdateResourceOwnerRequest, context: grpc.ServicerContext
    ) -> work_pb2.Resource:
        kind, resource_id = _resource_name(request.name)
        owner = parse_name("users", request.owner, "owner")
        return self._write(
            "UpdateResourceOwner",
            request,
            work_pb2.Resource,
            lambda uow, actor: convert.resource_to_proto(
                work.change_owner(uow, actor, kind, resource_id, owner, utcnow())
            ),
        )

    def DeleteResource(
        self, request: work_pb2.DeleteResourceRequest, context: grpc.ServicerContext
    ) -> work_pb2.DeleteResourceResponse:
        kind, resource_id = _resource_name(request.name)
        return self._write(
            "DeleteResource",
            request,
            work_pb2.DeleteResourceResponse,
            lambda uow, actor: work_pb2.DeleteResourceResponse(
                deleted=work.delete_resource(uow, actor, kind, resource_id, utcnow())
            ),
        )
