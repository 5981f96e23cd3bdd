"""CreatePlay and UpdatePlay with validate_only (AIP-163), against real users and rules servers:
everything is checked, nothing is written, and the answer is the play as it would be. This is
how `steward plays validate` checks files, with no validator of its own."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.field_mask_pb2 import FieldMask

from steward.rules.v1 import plays_pb2
from steward.users.v1 import work_pb2
from tests.conftest import RulesApi
from tests.errors import call_fails
from tests.plays_kit import create_play, person, play_message, team_with

CSM = "roles/success_manager"
SECRET = "0123456789abcdef" * 3
# One action of every kind.
EVERY_KIND: list[dict[str, Any]] = [
    {"update_value": {"role": CSM, "round_robin": {"users": ["owner@example.com"]}}},
    {"create_task": {"title": "Kick-off", "holder_of_role": CSM, "due_in_days": 3, "on_parent_account": True}},
    {"call_webhook": {"url": "https://hooks.example.com/steward", "timeout_seconds": 5}},
]
# Each kind wrong in its own way.
REFUSED: list[dict[str, Any]] = [
    {"update_value": {"role": "roles/nope", "round_robin": {"users": ["owner@example.com"], "team": "teams/x"}}},
    {"create_task": {"title": " ", "user": "ghost@example.com", "due_in_days": 4000}},
    {"call_webhook": {"url": "ftp://hooks.example.com", "timeout_seconds": 31}},
    {},
]


def plays_named(api: RulesApi, md) -> list[str]:
    return [p.display_name for p in api.plays.ListPlays(plays_pb2.ListPlaysRequest(), metadata=md).plays]


def registered(api: RulesApi, md, owner) -> list[str]:
    request = work_pb2.ListResourcesRequest(owner=f"users/{owner.id}", kind=work_pb2.RESOURCE_KIND_PLAY)
    return [r.id for r in api.users.resources.ListResources(request, metadata=md).resources]


def test_create_with_validate_only_answers_the_play_and_writes_nothing(rules_api, admin):
    api = rules_api
    owner = person(api, "owner@example.com")
    team = team_with(api, admin, "CS", owner)
    play = play_message("Every kind", EVERY_KIND, owner=owner, team=team, webhook_secret=SECRET)

    checked = api.plays.CreatePlay(plays_pb2.CreatePlayRequest(play=play, validate_only=True), metadata=admin)
    assert (checked.display_name, checked.owner, checked.origin_team) == ("Every kind", f"users/{owner.id}", team)
    assert list(checked.actions) == list(play.actions)
    assert checked.has_webhook_secret and not checked.webhook_secret
    assert checked.version == 1 and not checked.HasField("stats")
    assert plays_named(api, admin) == []
    assert registered(api, admin, owner) == []
    # Asking again changes nothing either, and the play can then be created as it was checked.
    api.plays.CreatePlay(plays_pb2.CreatePlayRequest(play=play, validate_only=True), metadata=admin)
    created = api.plays.CreatePlay(plays_pb2.CreatePlayRequest(play=play), metadata=admin)
    assert list(created.actions) == list(checked.actions)
    assert plays_named(api, admin) == ["Every kind"]


def test_create_with_validate_only_reports_every_action_problem_and_writes_nothing(rules_api, admin):
    api = rules_api
    owner = person(api, "owner@example.com")
    play = play_message("Refused", REFUSED, owner=owner, team=team_with(api, admin, "CS", owner))
    refused = call_fails(
        api.plays.CreatePlay, plays_pb2.CreatePlayRequest(play=play, validate_only=True), metadata=admin
    )
    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.violation_reasons == {
        "play.actions[0].update_value.round_robin": "ROUND_ROBIN_INVALID",
        "play.actions[1].create_task.title": "TITLE_INVALID",
        "play.actions[1].create_task.due_in_days": "DUE_INVALID",
        "play.actions[1].create_task.user": "USER_UNKNOWN",  # what parses is looked up too
        "play.actions[2].call_webhook.url": "URL_INVALID",
        "play.actions[2].call_webhook.timeout_seconds": "TIMEOUT_INVALID",
        "play.actions[3]": "ACTION_INVALID",
        "play.webhook_secret": "WEBHOOK_SECRET_REQUIRED",
    }
    assert plays_named(api, admin) == [] and registered(api, admin, owner) == []

    # With the shapes right, every reference is looked up, still writing nothing.
    named = play_message(
        "Refused",
        [
            {"update_value": {"role": "roles/nope", "holder_of_role": "roles/gone"}},
            {"create_task": {"title": "Call", "user": "ghost@example.com"}},
        ],
        owner=owner,
        team=team_with(api, admin, "CS 2", owner),
    )
    refused = call_fails(
        api.plays.CreatePlay, plays_pb2.CreatePlayRequest(play=named, validate_only=True), metadata=admin
    )
    assert refused.violation_reasons == {
        "play.actions[0].update_value.role": "ROLE_UNKNOWN",
        "play.actions[0].update_value.holder_of_role": "ROLE_UNKNOWN",
        "play.actions[1].create_task.user": "USER_UNKNOWN",
    }
    assert plays_named(api, admin) == []


def test_update_with_validate_only_answers_the_change_and_writes_nothing(rules_api, admin):
    api = rules_api
    owner = person(api, "owner@example.com")
    team = team_with(api, admin, "CS", owner)
    saved = create_play(api, admin, "Kick-off", EVERY_KIND[1:2], owner=owner, team=team)
    change = plays_pb2.Play(name=saved.name, etag=saved.etag, actions=play_message("", EVERY_KIND).actions)
    change.webhook_secret = SECRET
    mask = FieldMask(paths=["actions", "webhook_secret"])

    checked = api.plays.UpdatePlay(
        plays_pb2.UpdatePlayRequest(play=change, update_mask=mask, validate_only=True), metadata=admin
    )
    # Nothing was saved: the answer keeps the saved version and etag.
    assert (checked.name, checked.version, checked.etag) == (saved.name, saved.version, saved.etag)
    assert list(checked.actions) == list(change.actions) and checked.has_webhook_secret
    now = api.plays.GetPlay(plays_pb2.GetPlayRequest(name=saved.name), metadata=admin)
    assert (now.version, now.etag, list(now.actions)) == (saved.version, saved.etag, list(saved.actions))
    assert not now.has_webhook_secret

    change.ClearField("actions")
    change.actions.extend(play_message("", REFUSED).actions)
    refused = call_fails(
        api.plays.UpdatePlay,
        plays_pb2.UpdatePlayRequest(play=change, update_mask=mask, validate_only=True),
        metadata=admin,
    )
    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.violation_reasons["play.actions[2].call_webhook.url"] == "URL_INVALID"
    assert refused.violation_reasons["play.actions[3]"] == "ACTION_INVALID"
    now = api.plays.GetPlay(plays_pb2.GetPlayRequest(name=saved.name), metadata=admin)
    assert (now.version, list(now.actions)) == (saved.version, list(saved.actions))
