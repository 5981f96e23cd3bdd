"""What every service that calls the users service needs from it: the stubs, its roles, and
users looked up by email. Each service adds its own calls in a subclass."""

from __future__ import annotations

from collections.abc import Sequence

from services.runtime.service_client import RetryPolicy, ServiceClient
from steward.users.v1 import assignments_pb2, assignments_pb2_grpc, users_pb2, users_pb2_grpc

# Rows per BatchSetAssignments / BatchGetAssignments call: the users service's limit.
BATCH_ROWS = 10_000


class UsersServiceClient(ServiceClient):
    def __init__(
        self, address: str, jwt_secret: str, subject: str, scopes: Sequence[str], retry: RetryPolicy | None = None
    ) -> None:
        super().__init__(address, jwt_secret, subject, scopes, retry)
        self.users = users_pb2_grpc.UserServiceStub(self.channel)
        self.teams = users_pb2_grpc.TeamServiceStub(self.channel)
        self.assignments = assignments_pb2_grpc.AssignmentServiceStub(self.channel)

    def role_names(self) -> set[str]:
        """ "roles/{key}" of every account role."""
        names: set[str] = set()
        token = ""
        while True:
            request = assignments_pb2.ListRolesRequest(page_size=1000, page_token=token)
            reply = self.call(self.assignments.ListRoles, request)
            names.update(role.name for role in reply.roles)
            token = reply.next_page_token
            if not token:
                return names

    def users_by_email(self, emails: Sequence[str]) -> dict[str, users_pb2.User]:
        """Lower-cased email -> user (not deleted), looked up 1,000 at a time."""
        found: dict[str, users_pb2.User] = {}
        wanted = sorted({e.strip().lower() for e in emails if e.strip()})
        for start in range(0, len(wanted), 1000):
            token = ""
            while True:
                request = users_pb2.ListUsersRequest(
                    page_size=1000, page_token=token, emails=wanted[start : start + 1000]
                )
                reply = self.call(self.users.ListUsers, request)
                found.update((u.email.lower(), u) for u in reply.users)
                token = reply.next_page_token
                if not token:
                    break
        return found

    def holders(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """(account id, role name) -> "users/{uid}" of the current holder, for the held ones."""
        held: dict[tuple[str, str], str] = {}
        for start in range(0, len(keys), BATCH_ROWS):
            request = assignments_pb2.BatchGetAssignmentsRequest(
                keys=[assignments_pb2.AssignmentKey(account_id=a, role=r) for a, r in keys[start : start + BATCH_ROWS]]
            )
            reply = self.call(self.assignments.BatchGetAssignments, request)
            held |= {(a.account_id, a.role): a.user for a in reply.assignments}
        return held
