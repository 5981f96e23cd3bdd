"""The users service as the sync service uses it (tokens, deadlines, retries, roles and users by
email: the shared UsersServiceClient)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from services.runtime.service_client import RetryPolicy, ServiceCallError
from services.runtime.users_client import UsersServiceClient
from steward.users.v1 import assignments_pb2, users_pb2

SUBJECT = "service:sync"
# users.upsert: file uploads (UpsertUsers, which also adds the users to the teams a line names).
# Not users.manage: the sync service never disables, deletes or reassigns users.
SCOPES = ("users.read", "users.upsert", "assignments.write")
UsersCallError = ServiceCallError


class SyncUsersClient(UsersServiceClient):
    def __init__(self, address: str, jwt_secret: str, retry: RetryPolicy | None = None) -> None:
        # Batches of 10,000 rows take seconds: a longer deadline than interactive calls.
        super().__init__(address, jwt_secret, SUBJECT, SCOPES, retry or RetryPolicy(deadline_seconds=120.0))

    def is_admin(self, user_id: str) -> bool:
        """An ACTIVE global admin or user manager (the directory decides, not the token)."""
        try:
            user = self.call(self.users.GetUser, users_pb2.GetUserRequest(name=f"users/{user_id}"))
        except ServiceCallError as error:
            if error.code.name in ("NOT_FOUND", "INVALID_ARGUMENT"):
                return False
            raise
        return user.status == users_pb2.USER_STATUS_ACTIVE and (user.global_admin or user.user_management)

    def set_assignments(
        self, rows: Sequence[assignments_pb2.AssignmentRow], job: str, request_id: str
    ) -> assignments_pb2.BatchSetAssignmentsResponse:
        source = assignments_pb2.WriteSource(source=assignments_pb2.ASSIGNMENT_SOURCE_INTEGRATION, source_ref=job)
        request = assignments_pb2.BatchSetAssignmentsRequest(rows=list(rows), source=source, request_id=request_id)
        return self.call(self.assignments.BatchSetAssignments, request)

    def check_assignments(
        self, rows: Sequence[assignments_pb2.AssignmentRow], job: str
    ) -> assignments_pb2.BatchSetAssignmentsResponse:
        """What set_assignments would answer now, row by row, writing nothing (validate_only)."""
        source = assignments_pb2.WriteSource(source=assignments_pb2.ASSIGNMENT_SOURCE_INTEGRATION, source_ref=job)
        request = assignments_pb2.BatchSetAssignmentsRequest(rows=list(rows), source=source, validate_only=True)
        return self.call(self.assignments.BatchSetAssignments, request)

    def _written_page(self, job: str, page_size: int, token: str = "") -> assignments_pb2.ListAssignmentsResponse:
        """A page of the assignments whose current holder this job wrote."""
        request = assignments_pb2.ListAssignmentsRequest(
            page_size=page_size,
            page_token=token,
            source=assignments_pb2.ASSIGNMENT_SOURCE_INTEGRATION,
            source_ref=job,
        )
        return self.call(self.assignments.ListAssignments, request)

    def holds_any(self, job: str) -> bool:
        """Does the job hold any assignment now (did it write a current holder)?"""
        return bool(self._written_page(job, 1).assignments)

    def written_by(self, job: str) -> Iterator[assignments_pb2.Assignment]:
        """Assignments whose current holder this job wrote. The next page is fetched while the
        caller goes through this one: a full run's stale scan pages through every assignment
        the job holds (435,000 in the benchmark org), and the two sides overlap."""

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="written-by") as pool:
            ahead = pool.submit(self._written_page, job, 1000)
            while True:
                reply = ahead.result()
                if reply.next_page_token:
                    ahead = pool.submit(self._written_page, job, 1000, reply.next_page_token)
                yield from reply.assignments
                if not reply.next_page_token:
                    return

    def clear_own(
        self, rows: Sequence[assignments_pb2.ClearRow], job: str, request_id: str
    ) -> assignments_pb2.BatchClearAssignmentsResponse:
        source = assignments_pb2.WriteSource(source=assignments_pb2.ASSIGNMENT_SOURCE_INTEGRATION, source_ref=job)
        request = assignments_pb2.BatchClearAssignmentsRequest(
            rows=list(rows), source=source, only_own=True, request_id=request_id
        )
        return self.call(self.assignments.BatchClearAssignments, request)

    # --- file uploads ---

    def upsert_users(self, rows: Sequence[users_pb2.UpsertUserRow], request_id: str) -> users_pb2.UpsertUsersResponse:
        return self.call(self.users.UpsertUsers, users_pb2.UpsertUsersRequest(rows=list(rows), request_id=request_id))

    def all_teams(self) -> list[users_pb2.Team]:
        stub = self.teams
        found: list[users_pb2.Team] = []
        token = ""
        while True:
            reply = self.call(stub.ListTeams, users_pb2.ListTeamsRequest(page_size=1000, page_token=token))
            found.extend(reply.teams)
            token = reply.next_page_token
            if not token:
                return found
