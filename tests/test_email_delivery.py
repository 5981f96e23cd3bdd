"""The notification outbox: delivered at least once, after crashes and SMTP outages, once per replica set."""

from __future__ import annotations

import time

from services.users.app import build_spec
from services.users.config import SmtpSettings, UsersConfig
from steward.users.v1 import users_pb2 as pb
from steward.users.v1 import users_pb2_grpc
from tests.conftest import settings_for, start_service, stop_service
from tests.processes import free_port
from tests.smtp_sink import SmtpSink

P = pb.LICENSE_PRACTITIONER


def _users(databases_url, smtp_port: int | None, **smtp):
    config = UsersConfig(
        smtp=SmtpSettings(host="127.0.0.1" if smtp_port else "", port=smtp_port or 25, poll_seconds=0.05, **smtp)
    )
    running = start_service(build_spec(config), settings_for("users", databases_url))
    return running, users_pb2_grpc.UserServiceStub(running.channel)


def test_emails_committed_before_a_crash_are_sent_after_restart(databases, smtp, admin):
    url = databases.url("users")
    first, stub = _users(url, None)  # committed, never sent: as if the process died right after commit
    stub.InviteUsers(pb.InviteUsersRequest(emails=["ada@example.com"], license=P), metadata=admin)
    stop_service(first)
    assert smtp.messages == []
    second, _ = _users(url, smtp.port)
    try:
        assert smtp.wait_for("ada@example.com")[0]["Subject"] == "You are invited to Steward"
    finally:
        stop_service(second)


def test_smtp_outage_is_retried_until_delivered(databases, admin):
    port = free_port()  # nothing listens here yet
    running, stub = _users(databases.url("users"), port, retry_base_seconds=0.1)
    sink = SmtpSink(port)
    try:
        stub.InviteUsers(pb.InviteUsersRequest(emails=["bob@example.com"], license=P), metadata=admin)
        time.sleep(0.5)  # several failed attempts
        sink.start()
        assert len(sink.wait_for("bob@example.com")) == 1
    finally:
        sink.stop()
        stop_service(running)


def test_two_replicas_send_each_email_once(databases, smtp, admin):
    url = databases.url("users")
    one, stub = _users(url, smtp.port)
    two, _ = _users(url, smtp.port)
    try:
        emails = [f"u{i}@example.com" for i in range(30)]
        stub.InviteUsers(pb.InviteUsersRequest(emails=emails, license=P), metadata=admin)
        for address in emails:
            smtp.wait_for(address)
        time.sleep(0.5)  # a duplicate would have arrived by now
        assert sorted(m["To"] for m in smtp.messages) == sorted(emails)
    finally:
        stop_service(one)
        stop_service(two)
