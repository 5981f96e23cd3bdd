"""Property-based: any sequence of lifecycle operations keeps seats and statuses consistent.

Each example runs a fresh users service (real gRPC, real SQLite, real SMTP sink) and drives it
with random operations. After every step the invariants are checked through the public API:
- seats used per license == CREATED + ACTIVE users outside exempt domains, and never over the limit;
- every status change the service reports is one of the lifecycle table's transitions, and
  every refused change is one the table does not have (or a seat/protection rule).
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from pathlib import Path

import grpc
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from services.users.app import build_spec
from services.users.config import SmtpSettings, UsersConfig
from services.users.domain.licenses import LicensePolicy
from services.users.domain.lifecycle import TRANSITIONS, Action
from services.users.domain.model import License, UserStatus
from steward.users.v1 import users_pb2 as pb
from steward.users.v1 import users_pb2_grpc
from tests.conftest import bearer, settings_for, start_service, stop_service
from tests.processes import free_port
from tests.smtp_sink import SmtpSink, token_in

LIMITS = {License.PRACTITIONER: 1, License.CONTRIBUTOR: 1}
EXEMPT = "partner.io"
PROTO_LICENSE = {
    License.PRACTITIONER: pb.LICENSE_PRACTITIONER,
    License.CONTRIBUTOR: pb.LICENSE_CONTRIBUTOR,
    License.VIEWER: pb.LICENSE_VIEWER,
}
STATUS = {getattr(pb, f"USER_STATUS_{s.value}"): s for s in UserStatus}
ADMIN = bearer()
ALLOWED_REFUSALS = {"TRANSITION_NOT_ALLOWED", "LICENSE_EXHAUSTED", "NOT_INVITED"}


class UserDirectory(RuleBasedStateMachine):
    users = Bundle("users")

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="steward-sm-"))
        self.sink = SmtpSink(free_port()).start()
        config = UsersConfig(
            licenses=LicensePolicy(LIMITS, frozenset({EXEMPT})),
            smtp=SmtpSettings(host="127.0.0.1", port=self.sink.port, poll_seconds=0.02),
        )
        self.running = start_service(build_spec(config), settings_for("users", f"sqlite:///{self.folder}/u.db"))
        self.stub = users_pb2_grpc.UserServiceStub(self.running.channel)
        self.known: dict[str, UserStatus] = {}  # name -> last status the service reported
        self.counter = itertools.count()

    def teardown(self) -> None:
        stop_service(self.running)
        self.sink.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _act(self, name: str, action: Action, call) -> None:
        before = self.known[name]
        try:
            after = STATUS[call().status]
        except grpc.RpcError as error:
            assert error.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.RESOURCE_EXHAUSTED), error
            legal = (before, action) in TRANSITIONS
            assert (
                not legal or error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED or action is Action.SEND_INVITATION
            ), f"{action} refused from {before}: {error.details()}"
            return
        assert TRANSITIONS.get((before, action)) == after, f"{before} --{action}--> {after} is not in the table"
        self.known[name] = after

    @rule(target=users, license=st.sampled_from(list(License)), exempt=st.booleans(), send=st.booleans())
    def invite(self, license: License, exempt: bool, send: bool):
        email = f"u{next(self.counter)}@{EXEMPT if exempt else 'example.com'}"
        try:
            (user,) = self.stub.InviteUsers(
                pb.InviteUsersRequest(emails=[email], license=PROTO_LICENSE[license], send_invitation=send),
                metadata=ADMIN,
            ).users
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and not exempt, error
            return None
        assert STATUS[user.status] is UserStatus.CREATED
        self.known[user.name] = UserStatus.CREATED
        return (user.name, email)

    @rule(target=users, license=st.sampled_from(list(License)))
    def import_disabled(self, license: License):
        email = f"imported{next(self.counter)}@example.com"
        reply = self.stub.UpsertUsers(
            pb.UpsertUsersRequest(
                rows=[
                    pb.UpsertUserRow(
                        email=email, license=PROTO_LICENSE[license], status=pb.USER_STATUS_CREATED_DISABLED
                    )
                ]
            ),
            metadata=ADMIN,
        )
        name = reply.outcomes[0].user
        self.known[name] = UserStatus.CREATED_DISABLED
        return (name, email)

    @rule(user=users)
    def accept(self, user):
        if user is None or self.known[user[0]] is not UserStatus.CREATED or not self.sink.to(user[1]):
            return
        token = token_in(self.sink.to(user[1])[-1])
        try:
            reply = self.stub.AcceptInvitation(pb.AcceptInvitationRequest(token=token, first_name="A", last_name="B"))
        except grpc.RpcError as error:  # an older email's token after a resend, or an already used one
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error
            return
        assert STATUS[reply.status] is UserStatus.ACTIVE
        self.known[user[0]] = UserStatus.ACTIVE

    @rule(user=users, action=st.sampled_from([Action.ACTIVATE, Action.DISABLE, Action.DELETE]))
    def change(self, user, action: Action):
        if user is None:
            return
        method = {
            Action.ACTIVATE: (self.stub.ActivateUser, pb.ActivateUserRequest),
            Action.DISABLE: (self.stub.DisableUser, pb.DisableUserRequest),
            Action.DELETE: (self.stub.DeleteUser, pb.DeleteUserRequest),
        }[action]
        self._act(user[0], action, lambda: method[0](method[1](name=user[0]), metadata=ADMIN))

    @rule(user=consumes(users))
    def cancel(self, user):
        if user is None:
            return
        self._act(
            user[0],
            Action.CANCEL_INVITATION,
            lambda: self.stub.CancelInvitation(pb.CancelInvitationRequest(name=user[0]), metadata=ADMIN),
        )

    @rule(user=users)
    def bulk_invite(self, user):
        if user is None:
            return
        before = self.known[user[0]]
        reply = self.stub.BulkUserAction(
            pb.BulkUserActionRequest(action=pb.BULK_ACTION_SEND_INVITATION, users=[user[0]]), metadata=ADMIN
        )
        outcome = reply.outcomes[0]
        if outcome.result == pb.BulkUserOutcome.RESULT_DONE:
            self.known[user[0]] = TRANSITIONS[(before, Action.SEND_INVITATION)]
        else:
            assert outcome.reason in ALLOWED_REFUSALS, outcome
            assert (before, Action.SEND_INVITATION) not in TRANSITIONS or outcome.reason == "LICENSE_EXHAUSTED"

    @invariant()
    def seats_match_the_directory(self) -> None:
        listed = self.stub.ListUsers(pb.ListUsersRequest(show_deleted=True, page_size=1000), metadata=ADMIN).users
        assert {u.name: STATUS[u.status] for u in listed} == self.known
        expected = dict.fromkeys(License, 0)
        for user in listed:
            if STATUS[user.status] in (UserStatus.CREATED, UserStatus.ACTIVE) and not user.email.endswith(EXEMPT):
                expected[next(k for k, v in PROTO_LICENSE.items() if v == user.license)] += 1
        usage = self.stub.GetLicenseUsage(pb.GetLicenseUsageRequest(), metadata=ADMIN)
        used = {next(k for k, v in PROTO_LICENSE.items() if v == e.license): e.used for e in usage.entries}
        assert used == expected
        for license, limit in LIMITS.items():
            assert used[license] <= limit


UserDirectory.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_user_directory = UserDirectory.TestCase
