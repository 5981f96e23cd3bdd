"""The users service as the rules service uses it (see services/runtime/service_client.py for
tokens, deadlines and retries)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc

from services.runtime.service_client import RetryPolicy, ServiceCallError
from services.runtime.users_client import BATCH_ROWS, UsersServiceClient
from steward.users.v1 import (
    assignments_pb2,
    events_pb2,
    events_pb2_grpc,
    users_pb2,
    work_pb2,
    work_pb2_grpc,
)

SUBJECT = "service:rules"
SCOPES = ("users.read", "assignments.write", "tasks.write", "resources.write", "events.read")
TASKS_PER_CALL = 1_000  # BatchCreateTasks' limit
# The rules service's name for the shared error type.
UsersCallError = ServiceCallError


class UsersClient(UsersServiceClient):
    def __init__(self, address: str, jwt_secret: str, retry: RetryPolicy | None = None) -> None:
        super().__init__(address, jwt_secret, SUBJECT, SCOPES, retry)
        self.tasks = work_pb2_grpc.TaskServiceStub(self.channel)
        self.resources = work_pb2_grpc.ResourceServiceStub(self.channel)
        self.events = events_pb2_grpc.EventServiceStub(self.channel)

    # --- reads ---

    def user(self, name: str) -> users_pb2.User | None:
        try:
            return self.call(self.users.GetUser, users_pb2.GetUserRequest(name=name))
        except UsersCallError as error:
            if error.code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                return None
            raise

    def team_exists(self, name: str) -> bool:
        try:
            self.call(self.teams.GetTeam, users_pb2.GetTeamRequest(name=name))
        except UsersCallError as error:
            if error.code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                return False
            raise
        return True

    def team_members(self, team: str) -> list[str]:
        members: list[str] = []
        token = ""
        while True:
            request = users_pb2.ListTeamMembersRequest(team=team, page_size=1000, page_token=token)
            reply = self.call(self.teams.ListTeamMembers, request)
            members += [m.user for m in reply.members]
            token = reply.next_page_token
            if not token:
                return members

    def assignment_counts(self, role: str, users: Sequence[str]) -> dict[str, int]:
        request = assignments_pb2.CountAssignmentsRequest(role=role, users=list(users))
        reply = self.call(self.assignments.CountAssignments, request)
        return {c.user: c.accounts for c in reply.counts}

    # --- writes (each with a request_id: the users service applies a retried one once) ---

    def batch_set(self, rows: Sequence[assignments_pb2.AssignmentRow]) -> list[assignments_pb2.AssignmentRowOutcome]:
        """One outcome per row, in row order (rows carry their play's source and request id)."""
        outcomes: list[assignments_pb2.AssignmentRowOutcome] = []
        for start in range(0, len(rows), BATCH_ROWS):
            request = assignments_pb2.BatchSetAssignmentsRequest(rows=rows[start : start + BATCH_ROWS])
            outcomes += self.call(self.assignments.BatchSetAssignments, request).outcomes
        return outcomes

    def batch_create_tasks(self, items: Sequence[work_pb2.CreateTaskRequest]) -> list[work_pb2.TaskOutcome]:
        """One outcome per item, in item order (each item idempotent on its own request id)."""
        outcomes: list[work_pb2.TaskOutcome] = []
        for start in range(0, len(items), TASKS_PER_CALL):
            request = work_pb2.BatchCreateTasksRequest(requests=items[start : start + TASKS_PER_CALL])
            outcomes += self.call(self.tasks.BatchCreateTasks, request).outcomes
        return outcomes

    def register_play(self, play_id: str, display_name: str, owner: str, request_id: str) -> None:
        resource = work_pb2.Resource(
            kind=work_pb2.RESOURCE_KIND_PLAY,
            id=play_id,
            display_name=display_name,
            owner=owner,
            visibility=work_pb2.VISIBILITY_SHARED,
        )
        self.call(
            self.resources.RegisterResource, work_pb2.RegisterResourceRequest(resource=resource, request_id=request_id)
        )

    def unregister_play(self, play_id: str, request_id: str) -> None:
        request = work_pb2.DeleteResourceRequest(name=f"resources/play/{play_id}", request_id=request_id)
        self.call(self.resources.DeleteResource, request)

    def watch(self, after_cursor: str, types: Sequence[str]) -> Any:
        """The users event stream (no deadline: it tails). The returned call iterates events,
        raises grpc.RpcError when the stream breaks, and cancel() ends it from any thread."""
        request = events_pb2.WatchEventsRequest(after_cursor=after_cursor, types=list(types))
        return self.events.WatchEvents(request, metadata=self.metadata())
