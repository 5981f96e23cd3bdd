"""Invitations and the user lifecycle through the real UserService, with emails in a real SMTP sink."""

from __future__ import annotations

import grpc
import pytest

from services.users.config import UsersConfig
from services.users.domain.licenses import LicensePolicy
from services.users.domain.model import License
from steward.users.v1 import users_pb2 as pb
from tests.errors import call_fails
from tests.smtp_sink import token_in

P = pb.LICENSE_PRACTITIONER


def invite(api, admin, *emails, **kwargs):
    return api.users.InviteUsers(
        pb.InviteUsersRequest(emails=list(emails), license=kwargs.pop("license", P), **kwargs), metadata=admin
    ).users


def get(api, admin, user):
    return api.users.GetUser(pb.GetUserRequest(name=user.name), metadata=admin)


def test_invite_email_accept_makes_the_user_active(users_api, smtp, admin):
    api = users_api()
    (ada,) = invite(api, admin, "Ada@Example.com")
    assert ada.status == pb.USER_STATUS_CREATED and ada.invitation_expire_time.seconds > 0
    (mail,) = smtp.wait_for("Ada@Example.com")
    assert "invited" in mail["Subject"]
    accepted = api.users.AcceptInvitation(
        pb.AcceptInvitationRequest(token=token_in(mail), first_name="Ada", last_name="Lovelace")
    )
    assert (accepted.status, accepted.first_name) == (pb.USER_STATUS_ACTIVE, "Ada")
    assert get(api, admin, ada).status == pb.USER_STATUS_ACTIVE


def test_comma_separated_addresses_invite_everyone(users_api, smtp, admin):
    api = users_api()
    users = invite(api, admin, "a@example.com, b@example.com", "c@example.com")
    assert [u.email for u in users] == ["a@example.com", "b@example.com", "c@example.com"]
    for address in ("a@example.com", "b@example.com", "c@example.com"):
        smtp.wait_for(address)


def test_bad_addresses_are_reported_one_by_one_and_nobody_is_created(users_api, admin):
    api = users_api()
    invite(api, admin, "taken@example.com", send_invitation=False)
    failure = call_fails(
        api.users.InviteUsers,
        pb.InviteUsersRequest(
            emails=["ok@example.com", "not-an-email", "dup@example.com, DUP@example.com", "TAKEN@example.com"],
            license=P,
        ),
        metadata=admin,
    )
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.violation_reasons == {
        "emails[1]": "EMAIL_INVALID",
        "emails[2]": "EMAIL_REPEATED",
        "emails[3]": "EMAIL_ALREADY_REGISTERED",
    }
    emails = [u.email for u in api.users.ListUsers(pb.ListUsersRequest(), metadata=admin).users]
    assert emails == ["taken@example.com"]  # ok@example.com was not half-created


def test_license_is_required(users_api, admin):
    api = users_api()
    failure = call_fails(api.users.InviteUsers, pb.InviteUsersRequest(emails=["a@example.com"]), metadata=admin)
    assert failure.violation_reasons == {"license": "REQUIRED"}


def test_invited_later_in_bulk(users_api, smtp, admin):
    api = users_api()
    (bob,) = invite(api, admin, "bob@example.com", send_invitation=False)
    assert bob.status == pb.USER_STATUS_CREATED and not bob.HasField("invitation_expire_time")
    assert smtp.to("bob@example.com") == []
    reply = api.users.BulkUserAction(
        pb.BulkUserActionRequest(action=pb.BULK_ACTION_SEND_INVITATION, users=[bob.name]), metadata=admin
    )
    assert reply.done_count == 1
    smtp.wait_for("bob@example.com")


def test_invitation_tokens_are_single_use(users_api, smtp, admin):
    api = users_api()
    invite(api, admin, "ada@example.com")
    token = token_in(smtp.wait_for("ada@example.com")[0])
    request = pb.AcceptInvitationRequest(token=token, first_name="Ada", last_name="L")
    api.users.AcceptInvitation(request)
    again = call_fails(api.users.AcceptInvitation, request)
    assert (again.code, again.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "INVITATION_USED")
    unknown = call_fails(
        api.users.AcceptInvitation, pb.AcceptInvitationRequest(token="x" * 43, first_name="A", last_name="B")
    )
    assert (unknown.code, unknown.reason) == (grpc.StatusCode.NOT_FOUND, "INVITATION_NOT_FOUND")


def test_expired_invitations_do_not_work(users_api, smtp, admin):
    api = users_api(UsersConfig(invitation_ttl_hours=0))
    invite(api, admin, "late@example.com")
    token = token_in(smtp.wait_for("late@example.com")[0])
    failure = call_fails(
        api.users.AcceptInvitation, pb.AcceptInvitationRequest(token=token, first_name="L", last_name="Ate")
    )
    assert failure.reason == "INVITATION_EXPIRED"


def test_resend_replaces_the_token(users_api, smtp, admin):
    api = users_api()
    (ada,) = invite(api, admin, "ada@example.com")
    first = token_in(smtp.wait_for("ada@example.com")[0])
    api.users.ResendInvitation(pb.ResendInvitationRequest(name=ada.name), metadata=admin)
    second = token_in(smtp.wait_for("ada@example.com", count=2)[1])
    assert first != second
    old = call_fails(api.users.AcceptInvitation, pb.AcceptInvitationRequest(token=first, first_name="A", last_name="L"))
    assert old.reason == "INVITATION_REVOKED"
    api.users.AcceptInvitation(pb.AcceptInvitationRequest(token=second, first_name="A", last_name="L"))


def test_accept_needs_names(users_api, smtp, admin):
    api = users_api()
    invite(api, admin, "ada@example.com")
    token = token_in(smtp.wait_for("ada@example.com")[0])
    failure = call_fails(api.users.AcceptInvitation, pb.AcceptInvitationRequest(token=token, first_name=" "))
    assert set(failure.field_violations) == {"first_name", "last_name"}


def test_cancel_invitation_deletes_the_created_user_and_frees_the_address(users_api, smtp, admin):
    api = users_api()
    (ada,) = invite(api, admin, "ada@example.com")
    token = token_in(smtp.wait_for("ada@example.com")[0])
    cancelled = api.users.CancelInvitation(pb.CancelInvitationRequest(name=ada.name), metadata=admin)
    assert cancelled.status == pb.USER_STATUS_DELETED
    assert (
        call_fails(
            api.users.AcceptInvitation, pb.AcceptInvitationRequest(token=token, first_name="A", last_name="L")
        ).reason
        == "INVITATION_REVOKED"
    )
    (again,) = invite(api, admin, "ada@example.com", send_invitation=False)
    assert again.uid != ada.uid


def _active(api, admin, smtp, email, **kwargs):
    invite(api, admin, email, **kwargs)
    token = token_in(smtp.wait_for(email)[0])
    return api.users.AcceptInvitation(pb.AcceptInvitationRequest(token=token, first_name="F", last_name="L"))


def test_disable_and_activate_send_emails_and_follow_the_table(users_api, smtp, admin):
    api = users_api()
    ada = _active(api, admin, smtp, "ada@example.com")
    disabled = api.users.DisableUser(pb.DisableUserRequest(name=ada.name, etag=ada.etag), metadata=admin)
    assert disabled.status == pb.USER_STATUS_DISABLED
    assert smtp.wait_for("ada@example.com", count=2)[1]["Subject"] == "Your Steward access was disabled"
    again = call_fails(api.users.DisableUser, pb.DisableUserRequest(name=ada.name), metadata=admin)
    assert (again.code, again.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "TRANSITION_NOT_ALLOWED")
    assert "ACTIVATE" in again.message and again.precondition_violations
    active = api.users.ActivateUser(pb.ActivateUserRequest(name=ada.name), metadata=admin)
    assert active.status == pb.USER_STATUS_ACTIVE
    assert smtp.wait_for("ada@example.com", count=3)[2]["Subject"] == "Your Steward access was re-enabled"
    deleted = api.users.DeleteUser(pb.DeleteUserRequest(name=ada.name), metadata=admin)
    assert deleted.status == pb.USER_STATUS_DELETED
    for call, request in (
        (api.users.ActivateUser, pb.ActivateUserRequest(name=ada.name)),
        (api.users.DeleteUser, pb.DeleteUserRequest(name=ada.name)),
    ):
        assert call_fails(call, request, metadata=admin).reason == "TRANSITION_NOT_ALLOWED"
    # Deleted users are hidden from lists but still resolve by name.
    assert get(api, admin, ada).status == pb.USER_STATUS_DELETED
    assert api.users.ListUsers(pb.ListUsersRequest(), metadata=admin).users == []


def test_created_users_can_be_neither_activated_nor_disabled(users_api, admin):
    api = users_api()
    (ada,) = invite(api, admin, "ada@example.com", send_invitation=False)
    for call, request in (
        (api.users.ActivateUser, pb.ActivateUserRequest(name=ada.name)),
        (api.users.DisableUser, pb.DisableUserRequest(name=ada.name)),
    ):
        assert call_fails(call, request, metadata=admin).reason == "TRANSITION_NOT_ALLOWED"


def test_global_admins_cannot_be_disabled_or_deleted(users_api, smtp, admin):
    api = users_api()
    boss = _active(api, admin, smtp, "boss@example.com", global_admin=True)
    for call, request in (
        (api.users.DisableUser, pb.DisableUserRequest(name=boss.name)),
        (api.users.DeleteUser, pb.DeleteUserRequest(name=boss.name)),
    ):
        assert call_fails(call, request, metadata=admin).reason == "GLOBAL_ADMIN_PROTECTED"


def test_status_change_with_stale_etag_is_aborted(users_api, smtp, admin):
    api = users_api()
    ada = _active(api, admin, smtp, "ada@example.com")
    api.users.UpdateUser(
        pb.UpdateUserRequest(user=pb.User(name=ada.name, signature="x"), update_mask={"paths": ["signature"]}),
        metadata=admin,
    )
    failure = call_fails(api.users.DisableUser, pb.DisableUserRequest(name=ada.name, etag=ada.etag), metadata=admin)
    assert failure.reason == "ETAG_MISMATCH"


def test_seats_are_limited_per_license_and_freed_by_disable(users_api, smtp, admin):
    api = users_api(UsersConfig(licenses=LicensePolicy({License.PRACTITIONER: 2}, frozenset({"partner.io"}))))
    a = _active(api, admin, smtp, "a@example.com")
    invite(api, admin, "b@example.com", send_invitation=False)
    failure = call_fails(
        api.users.InviteUsers, pb.InviteUsersRequest(emails=["c@example.com"], license=P), metadata=admin
    )
    assert (failure.code, failure.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "LICENSE_EXHAUSTED")
    assert failure.error_metadata["license"] == "PRACTITIONER" and "PRACTITIONER" in failure.message
    invite(api, admin, "helper@partner.io", send_invitation=False)  # exempt domain: no seat needed
    invite(api, admin, "v@example.com", license=pb.LICENSE_VIEWER, send_invitation=False)  # no viewer limit
    usage = {e.license: e for e in api.users.GetLicenseUsage(pb.GetLicenseUsageRequest(), metadata=admin).entries}
    assert (usage[P].used, usage[P].limit) == (2, 2)
    assert usage[pb.LICENSE_VIEWER].used == 1 and not usage[pb.LICENSE_VIEWER].HasField("limit")
    api.users.DisableUser(pb.DisableUserRequest(name=a.name), metadata=admin)
    invite(api, admin, "c@example.com", send_invitation=False)  # the disabled user's seat is free again
    reactivate = call_fails(api.users.ActivateUser, pb.ActivateUserRequest(name=a.name), metadata=admin)
    assert reactivate.reason == "LICENSE_EXHAUSTED"


def test_license_downgrade_to_viewer_is_refused(users_api, admin):
    api = users_api()
    (ada,) = invite(api, admin, "ada@example.com", send_invitation=False)
    failure = call_fails(
        api.users.UpdateUser,
        pb.UpdateUserRequest(
            user=pb.User(name=ada.name, license=pb.LICENSE_VIEWER), update_mask={"paths": ["license"]}
        ),
        metadata=admin,
    )
    assert (failure.code, failure.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "LICENSE_DOWNGRADE_NOT_ALLOWED")
    assert "re-invite" in failure.message or "invite them again" in failure.message
    up = api.users.UpdateUser(
        pb.UpdateUserRequest(
            user=pb.User(name=ada.name, license=pb.LICENSE_CONTRIBUTOR), update_mask={"paths": ["license"]}
        ),
        metadata=admin,
    )
    assert up.license == pb.LICENSE_CONTRIBUTOR


@pytest.mark.parametrize("uuid_mode", [False, True])
def test_email_changes_only_in_uuid_mode(users_api, admin, uuid_mode):
    api = users_api(UsersConfig(uuid_mode=uuid_mode))
    (ada,) = invite(api, admin, "ada@example.com", send_invitation=False)
    request = pb.UpdateUserRequest(
        user=pb.User(name=ada.name, email="ada@new.example.com"), update_mask={"paths": ["email"]}
    )
    if uuid_mode:
        changed = api.users.UpdateUser(request, metadata=admin)
        assert (changed.email, changed.uid) == ("ada@new.example.com", ada.uid)
    else:
        assert call_fails(api.users.UpdateUser, request, metadata=admin).reason == "EMAIL_IMMUTABLE"


def test_manager_hierarchy_refuses_cycles(users_api, admin):
    api = users_api()
    a, b, c = invite(api, admin, "a@example.com", "b@example.com", "c@example.com", send_invitation=False)

    def set_manager(user, manager):
        return api.users.UpdateUser(
            pb.UpdateUserRequest(
                user=pb.User(name=user.name, manager=manager.name), update_mask={"paths": ["manager"]}
            ),
            metadata=admin,
        )

    set_manager(b, a)
    assert set_manager(c, b).manager == b.name
    failure = call_fails(
        api.users.UpdateUser,
        pb.UpdateUserRequest(user=pb.User(name=a.name, manager=c.name), update_mask={"paths": ["manager"]}),
        metadata=admin,
    )
    assert (failure.code, failure.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "MANAGER_CYCLE")
    selfish = call_fails(
        api.users.UpdateUser,
        pb.UpdateUserRequest(user=pb.User(name=a.name, manager=a.name), update_mask={"paths": ["manager"]}),
        metadata=admin,
    )
    assert selfish.reason == "MANAGER_CYCLE"


def test_invite_with_request_id_is_not_repeated(users_api, smtp, admin):
    import uuid

    api = users_api()
    request = pb.InviteUsersRequest(emails=["once@example.com"], license=P, request_id=str(uuid.uuid4()))
    first = api.users.InviteUsers(request, metadata=admin)
    second = api.users.InviteUsers(request, metadata=admin)
    assert first == second
    smtp.wait_for("once@example.com")
    import time

    time.sleep(0.3)  # give a (wrong) second email the time to arrive
    assert len(smtp.to("once@example.com")) == 1
