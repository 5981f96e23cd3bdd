"""Concurrent writers: the database, not luck, keeps one user per email and seats within limits."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc

from services.users.config import UsersConfig
from services.users.domain.licenses import LicensePolicy
from services.users.domain.model import License
from steward.users.v1 import users_pb2 as pb

P = pb.LICENSE_PRACTITIONER


def _race(calls):
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(call) for call in calls]
    results = []
    for future in futures:
        try:
            results.append(("ok", future.result()))
        except grpc.RpcError as error:
            results.append((error.code(), error))
    return results


def test_concurrent_invites_of_one_email_create_one_user(users_api, admin):
    api = users_api()
    request = pb.InviteUsersRequest(emails=["same@example.com"], license=P, send_invitation=False)
    results = _race([lambda: api.users.InviteUsers(request, metadata=admin) for _ in range(8)])
    assert [r for r, _ in results].count("ok") == 1
    assert {r for r, _ in results} - {"ok"} <= {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ALREADY_EXISTS}
    listed = api.users.ListUsers(pb.ListUsersRequest(), metadata=admin).users
    assert [u.email for u in listed] == ["same@example.com"]


def test_concurrent_invites_never_exceed_the_seat_limit(users_api, admin):
    api = users_api(UsersConfig(licenses=LicensePolicy({License.PRACTITIONER: 3})))
    calls = [
        lambda i=i: api.users.InviteUsers(
            pb.InviteUsersRequest(emails=[f"u{i}@example.com"], license=P, send_invitation=False), metadata=admin
        )
        for i in range(8)
    ]
    results = _race(calls)
    assert [r for r, _ in results].count("ok") == 3
    assert {r for r, _ in results} - {"ok"} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    usage = api.users.GetLicenseUsage(pb.GetLicenseUsageRequest(), metadata=admin)
    assert next(e.used for e in usage.entries if e.license == P) == 3
