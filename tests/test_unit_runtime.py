"""Pure logic of the shared runtime: page tokens, resource names, etags, tokens."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from services.runtime.auth import mint_token, principal_from_metadata, verify_token
from services.runtime.errors import Aborted, InvalidArgument, Unauthenticated
from services.runtime.etag import check_etag, make_etag
from services.runtime.names import parse_name, validate_request_id
from services.runtime.pagination import DEFAULT_PAGE_SIZE, encode_token, fingerprint, parse_page
from services.runtime.protobuf import timestamp

SECRET = "unit-secret-" + "y" * 32


def test_page_token_round_trips_its_key():
    query = fingerprint(show_deleted=False)
    page = parse_page(10, encode_token(("a@example.com", "id-1"), query), query, key_length=2)
    assert page.after == ("a@example.com", "id-1") and page.size == 10 and page.limit == 11


def test_zero_page_size_means_default():
    assert parse_page(0, "", fingerprint(), key_length=1).size == DEFAULT_PAGE_SIZE


def test_all_pagination_problems_are_reported_together():
    with pytest.raises(InvalidArgument) as err:
        parse_page(-5, "!!!", fingerprint(), key_length=2)
    assert {v.field for v in err.value.field_violations} == {"page_size", "page_token"}


def test_token_with_wrong_key_shape_is_invalid():
    query = fingerprint()
    with pytest.raises(InvalidArgument):
        parse_page(1, encode_token(("only-one",), query), query, key_length=2)


def test_next_token_only_when_more_rows_exist():
    page = parse_page(2, "", fingerprint(), key_length=1)
    assert page.next_token(["a", "b"], lambda r: (r,)) == ""
    token = page.next_token(["a", "b", "c"], lambda r: (r,))
    assert parse_page(2, token, fingerprint(), key_length=1).after == ("b",)


def test_resource_names():
    uid = "0b8f5a4e-9f7c-4d59-9a53-2a3c1f3e8d11"
    assert parse_name("users", f"users/{uid}") == uid
    for bad in ["", uid, f"users/{uid}/x", f"users/{uid.upper()}x", "users/{}".format(uid.replace("-", ""))]:
        with pytest.raises(InvalidArgument):
            parse_name("users", bad)


def test_request_id_must_be_uuid_when_given():
    validate_request_id("")
    validate_request_id("0b8f5a4e-9f7c-4d59-9a53-2a3c1f3e8d11")
    with pytest.raises(InvalidArgument):
        validate_request_id("abc")


def test_etag_changes_with_version_and_is_checked():
    first, second = make_etag("id", 1), make_etag("id", 2)
    assert first != second
    check_etag("", second)
    check_etag(second, second)
    with pytest.raises(Aborted):
        check_etag(first, second)


def test_token_claims_round_trip():
    principal = verify_token(SECRET, mint_token(SECRET, "service:rules", scopes=["users.read"], roles=[]))
    assert principal.subject == "service:rules" and principal.is_service_account
    assert principal.has_scope("users.read") and not principal.has_scope("users.write")
    assert not principal.is_admin


def test_admin_role_grants_every_scope():
    principal = verify_token(SECRET, mint_token(SECRET, "root", roles=["admin"]))
    assert principal.has_scope("anything")


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ([], "TOKEN_MISSING"),
        ([("authorization", "Token abc")], "TOKEN_MISSING"),
        ([("authorization", "Bearer abc")], "TOKEN_INVALID"),
        (
            [("authorization", "Bearer " + mint_token(SECRET, "x", ttl_seconds=1, now=time.time() - 100))],
            "TOKEN_EXPIRED",
        ),
        ([("authorization", "Bearer " + mint_token("other-" + SECRET, "x"))], "TOKEN_INVALID"),
    ],
)
def test_metadata_problems(metadata, reason):
    with pytest.raises(Unauthenticated) as err:
        principal_from_metadata(SECRET, metadata)
    assert err.value.reason == reason


@given(st.datetimes(timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=5, minutes=30))])))
def test_timestamps_are_what_protobuf_itself_makes_of_a_datetime(value):
    expected = Timestamp()
    expected.FromDatetime(value.astimezone(dt.UTC))
    assert timestamp(value) == expected


def test_a_lost_race_in_the_database_is_aborted_and_an_outage_unavailable():
    """Deadlocks and serialization failures roll the transaction back whole: retry the call."""
    import psycopg.errors
    from sqlalchemy.exc import OperationalError

    from services.runtime.errors import ErrorKind
    from services.runtime.interceptor import database_error

    for cause in (psycopg.errors.DeadlockDetected(), psycopg.errors.SerializationFailure()):
        mapped = database_error(OperationalError("UPDATE ...", {}, cause))
        assert (mapped.kind, mapped.reason) == (ErrorKind.ABORTED, "TRANSACTION_CONFLICT")
    down = database_error(OperationalError("SELECT 1", {}, psycopg.OperationalError("connection refused")))
    assert (down.kind, down.reason) == (ErrorKind.UNAVAILABLE, "DATABASE_UNAVAILABLE")
