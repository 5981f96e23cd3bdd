"""UserService through a real server: GetUser, ListUsers (pagination), UpdateUser (mask, etag, request_id)."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from services.users.app import SPEC as USERS
from services.users.domain.model import License, UserStatus
from steward.users.v1 import users_pb2, users_pb2_grpc
from tests.conftest import bearer
from tests.errors import call_fails
from tests.seed import add_user


@pytest.fixture
def users(serve):
    running = serve(USERS)
    return users_pb2_grpc.UserServiceStub(running.channel), running.db


def test_get_user_returns_the_stored_user(users, admin):
    stub, db = users
    ada = add_user(db, "Ada@Example.com", license=License.CONTRIBUTOR, custom_attributes={"region": "emea"})
    got = stub.GetUser(users_pb2.GetUserRequest(name=f"users/{ada.id}"), metadata=admin)
    assert got.name == f"users/{ada.id}" and got.uid == ada.id
    assert got.email == "Ada@Example.com"
    assert got.status == users_pb2.USER_STATUS_ACTIVE
    assert got.license == users_pb2.LICENSE_CONTRIBUTOR
    assert dict(got.custom_attributes) == {"region": "emea"}
    assert got.create_time.ToDatetime().year == 2026
    assert got.etag


def test_get_unknown_user_is_not_found_with_reason(users, admin):
    stub, _ = users
    missing = str(uuid.uuid4())
    failure = call_fails(stub.GetUser, users_pb2.GetUserRequest(name=f"users/{missing}"), metadata=admin)
    assert failure.code == grpc.StatusCode.NOT_FOUND
    assert failure.reason == "USER_NOT_FOUND"
    assert failure.error_metadata["user"] == f"users/{missing}"
    assert failure.trailing.get("x-request-id")


@pytest.mark.parametrize("name", ["", "users/", "users/123", "plays/" + str(uuid.uuid4()), "users/../etc"])
def test_malformed_user_name_is_invalid_argument(users, admin, name):
    stub, _ = users
    failure = call_fails(stub.GetUser, users_pb2.GetUserRequest(name=name), metadata=admin)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "name" in failure.field_violations


def test_list_users_pages_through_everyone_in_email_order(users, admin):
    stub, db = users
    emails = [f"user{i:02d}@example.com" for i in range(7)]
    for email in reversed(emails):
        add_user(db, email)
    add_user(db, "gone@example.com", status=UserStatus.DELETED)
    seen, token, pages = [], "", 0
    while True:
        reply = stub.ListUsers(users_pb2.ListUsersRequest(page_size=3, page_token=token), metadata=admin)
        seen += [u.email for u in reply.users]
        pages += 1
        token = reply.next_page_token
        if not token:
            break
    assert seen == emails
    assert pages == 3


def test_list_users_shows_deleted_only_when_asked(users, admin):
    stub, db = users
    add_user(db, "live@example.com")
    add_user(db, "gone@example.com", status=UserStatus.DELETED)
    default = stub.ListUsers(users_pb2.ListUsersRequest(), metadata=admin)
    everyone = stub.ListUsers(users_pb2.ListUsersRequest(show_deleted=True), metadata=admin)
    assert [u.email for u in default.users] == ["live@example.com"]
    assert [u.email for u in everyone.users] == ["gone@example.com", "live@example.com"]


@pytest.mark.parametrize(("page_size", "reason"), [(-1, "PAGE_SIZE_NEGATIVE"), (1001, "PAGE_SIZE_TOO_LARGE")])
def test_page_size_out_of_range_is_invalid_argument(users, admin, page_size, reason):
    stub, _ = users
    failure = call_fails(stub.ListUsers, users_pb2.ListUsersRequest(page_size=page_size), metadata=admin)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.violation_reasons == {"page_size": reason}


@pytest.mark.parametrize("token", ["garbage", "eyJ2IjoxfQ", "%%%", "eyJ2IjoxLCJrIjpbMV0sInEiOiJ4In0"])
def test_garbage_page_token_is_invalid_argument(users, admin, token):
    stub, _ = users
    failure = call_fails(stub.ListUsers, users_pb2.ListUsersRequest(page_token=token), metadata=admin)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.violation_reasons == {"page_token": "PAGE_TOKEN_INVALID"}


def test_page_token_cannot_be_reused_with_other_filters(users, admin):
    stub, db = users
    for i in range(3):
        add_user(db, f"u{i}@example.com")
    first = stub.ListUsers(users_pb2.ListUsersRequest(page_size=1), metadata=admin)
    failure = call_fails(
        stub.ListUsers,
        users_pb2.ListUsersRequest(page_size=1, page_token=first.next_page_token, show_deleted=True),
        metadata=admin,
    )
    assert failure.violation_reasons == {"page_token": "PAGE_TOKEN_MISMATCH"}


def _update(stub, user, metadata, request_id="", etag=None, **fields):
    request = users_pb2.UpdateUserRequest(
        user=users_pb2.User(name=f"users/{user.id}", etag=user.etag if etag is None else etag, **fields),
        update_mask=FieldMask(paths=list(fields)),
        request_id=request_id,
    )
    return stub.UpdateUser, request, metadata


def test_update_user_changes_only_masked_fields_and_moves_the_etag(users, admin):
    stub, db = users
    ada = add_user(db, "ada@example.com", signature="old")
    method, request, md = _update(stub, ada, admin, first_name="Augusta")
    request.user.signature = "not in the mask"
    updated = method(request, metadata=md)
    assert updated.first_name == "Augusta"
    assert updated.signature == "old"
    assert updated.etag != ada.etag
    assert stub.GetUser(users_pb2.GetUserRequest(name=updated.name), metadata=admin) == updated


def test_update_with_stale_etag_is_aborted_and_changes_nothing(users, admin):
    stub, db = users
    ada = add_user(db, "ada@example.com")
    method, request, md = _update(stub, ada, admin, first_name="One")
    method(request, metadata=md)
    method, request, md = _update(stub, ada, admin, first_name="Two")  # still carries the first etag
    failure = call_fails(method, request, metadata=md)
    assert failure.code == grpc.StatusCode.ABORTED
    assert failure.reason == "ETAG_MISMATCH"
    assert stub.GetUser(users_pb2.GetUserRequest(name=f"users/{ada.id}"), metadata=admin).first_name == "One"


def test_update_mask_naming_a_read_only_field_is_refused(users, admin):
    stub, db = users
    ada = add_user(db, "ada@example.com")
    request = users_pb2.UpdateUserRequest(
        user=users_pb2.User(name=f"users/{ada.id}", email="x@example.com"),
        update_mask=FieldMask(paths=["status", "create_time"]),
    )
    failure = call_fails(stub.UpdateUser, request, metadata=admin)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(failure.field_violations) == {"update_mask.paths"}
    assert "status" in failure.message and "create_time" in failure.message


def test_update_reports_every_invalid_field_and_writes_none(users, admin):
    stub, db = users
    ada = add_user(db, "ada@example.com")
    method, request, md = _update(
        stub, ada, admin, first_name="x" * 101, alternative_emails=["ok@example.com", "not-an-email", "ADA@example.com"]
    )
    failure = call_fails(method, request, metadata=md)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(failure.field_violations) == {"first_name", "alternative_emails[1]", "alternative_emails[2]"}
    stored = stub.GetUser(users_pb2.GetUserRequest(name=f"users/{ada.id}"), metadata=admin)
    assert stored.first_name == "Ada" and list(stored.alternative_emails) == []


def test_users_edit_their_own_profile_but_not_others(users):
    stub, db = users
    ada, bob = add_user(db, "ada@example.com"), add_user(db, "bob@example.com")
    method, request, md = _update(stub, ada, bearer(ada.id, roles=()), last_name="Byron")
    assert method(request, metadata=md).last_name == "Byron"
    method, request, md = _update(stub, bob, bearer(ada.id, roles=()), last_name="Hacked")
    failure = call_fails(method, request, metadata=md)
    assert failure.code == grpc.StatusCode.PERMISSION_DENIED


def test_deleted_users_profile_cannot_be_edited(users, admin):
    stub, db = users
    gone = add_user(db, "gone@example.com", status=UserStatus.DELETED)
    method, request, md = _update(stub, gone, admin, first_name="Back")
    failure = call_fails(method, request, metadata=md)
    assert failure.code == grpc.StatusCode.FAILED_PRECONDITION
    assert failure.reason == "USER_DELETED"


def test_retry_with_same_request_id_answers_the_same_and_writes_once(users, admin):
    stub, db = users
    ada = add_user(db, "ada@example.com")
    request_id = str(uuid.uuid4())
    method, request, md = _update(stub, ada, admin, request_id=request_id, signature="Cheers")
    first = method(request, metadata=md)
    second = method(request, metadata=md)  # a client retry after a lost response
    assert second == first
    # Had the retry written again, the version (and so the etag) would have moved on.
    assert stub.GetUser(users_pb2.GetUserRequest(name=first.name), metadata=admin).etag == first.etag


def test_request_id_reused_for_another_request_is_refused(users, admin):
    stub, db = users
    ada = add_user(db, "ada@example.com")
    request_id = str(uuid.uuid4())
    method, request, md = _update(stub, ada, admin, request_id=request_id, signature="One")
    method(request, metadata=md)
    method, request, md = _update(stub, ada, admin, request_id=request_id, signature="Two", etag="")
    failure = call_fails(method, request, metadata=md)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.reason == "REQUEST_ID_REUSED"


def test_request_id_must_be_a_uuid(users, admin):
    stub, db = users
    ada = add_user(db, "ada@example.com")
    method, request, md = _update(stub, ada, admin, request_id="retry-1", signature="x")
    failure = call_fails(method, request, metadata=md)
    assert failure.violation_reasons == {"request_id": "REQUEST_ID_INVALID"}


def test_empty_update_mask_is_refused(users, admin):
    stub, db = users
    ada = add_user(db, "ada@example.com")
    request = users_pb2.UpdateUserRequest(user=users_pb2.User(name=f"users/{ada.id}", first_name="X"))
    failure = call_fails(stub.UpdateUser, request, metadata=admin)
    assert failure.violation_reasons == {"update_mask": "UPDATE_MASK_REQUIRED"}


def test_concurrent_retries_of_one_request_write_once_and_agree(users, admin):
    """A client that times out and retries while the first attempt is still running."""
    from concurrent.futures import ThreadPoolExecutor

    stub, db = users
    ada = add_user(db, "ada@example.com")
    method, request, md = _update(stub, ada, admin, request_id=str(uuid.uuid4()), signature="Once")
    with ThreadPoolExecutor(max_workers=6) as pool:
        replies = list(pool.map(lambda _: method(request, metadata=md), range(6)))
    assert all(reply == replies[0] for reply in replies)
    stored = stub.GetUser(users_pb2.GetUserRequest(name=f"users/{ada.id}"), metadata=admin)
    assert stored.etag == replies[0].etag and stored.signature == "Once"
