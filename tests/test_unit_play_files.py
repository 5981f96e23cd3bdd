"""Play files (services/cli/play_files.py): the authors' form to the protobuf Play and back."""

from __future__ import annotations

import json
import textwrap

import pytest
import yaml

from services.cli import play_files as pf
from steward.rules.v1 import events_pb2, plays_pb2

EXAMPLE = """\
name: Enterprise onboarding
description: Give new enterprise accounts a CSM
owner: alice@example.com
origin_team: teams/6f1c
status: active
trigger:
  event: account_created
  criteria:
    all:
      - {field: segment, op: equals, value: Enterprise}
      - {field: arr, op: greater_than, value: 10000}
actions:
  - update_value: {role: success_manager, user: bob@example.com}
  - update_value: {role: sales_manager, round_robin: {users: [a@x.com, users/123]}}
  - update_value: {role: sales_manager, round_robin: {team: teams/abc}}
  - update_value: {role: renewal_manager, holder_of_role: success_manager}
  - create_task: {title: Kick-off call, holder_of_role: success_manager, due_in_days: 3}
  - create_task: {title: Review, user: bob@example.com}
"""
USERS = {"alice@example.com": "users/alice-uid", "a@x.com": "users/a-uid"}
EMAILS = {name: email for email, name in USERS.items()}


def resolve(email: str) -> str | None:
    return USERS.get(email.lower())


def label(name: str) -> str:
    return EMAILS.get(name, name)


def convert(data):
    play, issues = pf.file_to_play(data, resolve)
    return play, {path: reason for path, _, reason in issues}


def test_the_example_converts_to_the_proto_the_server_expects():
    play, problems = convert(yaml.safe_load(EXAMPLE))
    assert problems == {}
    assert play.display_name == "Enterprise onboarding" and play.owner == "users/alice-uid"
    assert play.status == plays_pb2.PLAY_STATUS_ACTIVE and play.origin_team == "teams/6f1c"
    assert play.trigger.event_type == events_pb2.EVENT_TYPE_ACCOUNT_CREATED and not play.trigger.custom_event_type
    assert play.trigger.criteria["all"][1]["value"] == 10000
    first, robin, team, holder, task, review = play.actions
    assert (first.update_value.role, first.update_value.user) == ("roles/success_manager", "bob@example.com")
    assert list(robin.update_value.round_robin.users) == ["a@x.com", "users/123"]
    assert team.update_value.round_robin.team == "teams/abc"
    assert holder.update_value.holder_of_role == "roles/success_manager"
    assert (task.create_task.title, task.create_task.holder_of_role, task.create_task.due_in_days) == (
        "Kick-off call",
        "roles/success_manager",
        3,
    )
    assert review.create_task.WhichOneof("assignee") == "user" and review.create_task.due_in_days == 0


def test_file_to_proto_to_file_is_the_identity_for_the_example():
    data = yaml.safe_load(EXAMPLE)
    play, problems = convert(data)
    assert problems == {}
    back = pf.play_to_file(play, label)
    assert back == data
    assert list(back) == list(data)  # the same key order too: written back, it reads the same
    assert yaml.safe_load(pf.to_yaml(back)) == data
    # ...and through the wire format, as a play comes back from the server.
    assert pf.play_to_file(plays_pb2.Play.FromString(play.SerializeToString()), label) == data


def test_canonical_form_prefixes_nothing_and_orders_keys_whatever_the_file_wrote():
    data = {
        "actions": [{"update_value": {"user": "users/a-uid", "role": "roles/success_manager"}}],
        "trigger": {"criteria": {"value": 2.0, "op": "equals", "field": "tier"}, "custom": "renewal.signed"},
        "owner": "users/alice-uid",
        "status": "DRAFT",
        "name": "Renewals",
    }
    play, problems = convert(data)
    assert problems == {}
    assert play.trigger.event_type == events_pb2.EVENT_TYPE_CUSTOM
    assert play.trigger.custom_event_type == "renewal.signed"
    assert pf.to_yaml(pf.play_to_file(play, label)) == textwrap.dedent(
        """\
        name: Renewals
        owner: alice@example.com
        status: draft
        trigger:
          custom: renewal.signed
          criteria:
            field: tier
            op: equals
            value: 2
        actions:
        - update_value:
            role: success_manager
            user: a@x.com
        """
    )


def test_omitted_fields_stay_unset_and_are_left_out_when_written_back():
    play, problems = convert({"name": "Bare", "trigger": {"event": "account_updated"}, "actions": []})
    assert problems == {}
    assert not play.owner and play.status == plays_pb2.PLAY_STATUS_UNSPECIFIED
    assert not play.trigger.HasField("criteria")
    assert pf.play_to_file(play, label) == {"name": "Bare", "trigger": {"event": "account_updated"}}


def test_bad_enum_names_are_problems_at_their_key_path():
    _, problems = convert(
        {
            "name": "X",
            "status": "running",
            "trigger": {"event": "account_deleted"},
            "actions": [{"create_task": {"title": "t", "user": "a@x.com"}}],
        }
    )
    assert problems == {"status": "ENUM_INVALID", "trigger.event": "ENUM_INVALID"}


def test_unknown_keys_are_problems_listing_the_path():
    _, problems = convert(
        {
            "name": "X",
            "colour": "blue",
            "trigger": {"event": "account_created", "critera": {}},
            "actions": [
                {"create_task": {"title": "t", "user": "a@x.com"}},
                {"update_value": {"role": "success_manager", "usr": "bob@example.com"}},
                {"assign": {"role": "x"}},
            ],
        }
    )
    assert problems == {
        "colour": "UNKNOWN_KEY",
        "trigger.critera": "UNKNOWN_KEY",
        "actions[1].update_value.usr": "UNKNOWN_KEY",
        "actions[2].assign": "UNKNOWN_KEY",
    }


def test_wrong_shapes_are_problems_not_exceptions():
    _, problems = convert(
        {
            "name": 12,
            "owner": "nobody@example.com",
            "trigger": {"event": "account_created", "custom": "x", "criteria": {"since": yaml.safe_load("2026-01-01")}},
            "actions": [
                "update_value",
                {"update_value": {"role": "r", "user": "u@x.com", "holder_of_role": "h"}},
                {"update_value": {"role": "r", "round_robin": {"users": "a@x.com"}}},
                {"create_task": {"title": "t", "user": "u@x.com", "due_in_days": "soon"}},
                {"create_task": {"title": "t"}, "update_value": {"role": "r", "user": "u@x.com"}},
            ],
        }
    )
    assert problems == {
        "name": "REQUIRED",
        "owner": "USER_UNKNOWN",
        "trigger": "ONE_OF",
        "trigger.criteria.since": "TYPE_INVALID",
        "actions[0]": "TYPE_INVALID",
        "actions[1].update_value": "ONE_OF",
        "actions[2].update_value.round_robin.users": "TYPE_INVALID",
        "actions[3].create_task.due_in_days": "TYPE_INVALID",
        "actions[4]": "ONE_OF",
    }
    assert pf.file_to_play(["not", "a", "play"], resolve)[1] == [("", "a mapping of keys to values", "TYPE_INVALID")]


def test_a_file_holds_documents_or_lists_of_plays(tmp_path):
    (tmp_path / "a.yaml").write_text("name: A\n---\n- name: B\n- name: C\n---\n")
    (tmp_path / "b.json").write_text(json.dumps([{"name": "D"}]))
    (tmp_path / "c.yml").write_text("name: E\n")
    (tmp_path / "notes.txt").write_text("not a play")
    sources, problems = pf.load_path(tmp_path)
    assert problems == []
    assert [(s.file.rsplit("/", 1)[-1], s.index, s.label) for s in sources] == [
        ("a.yaml", 0, "A"),
        ("a.yaml", 1, "B"),
        ("a.yaml", 2, "C"),
        ("b.json", 0, "D"),
        ("c.yml", 0, "E"),
    ]
    single, _ = pf.load_path(tmp_path / "c.yml")
    assert [s.label for s in single] == ["E"]


@pytest.mark.parametrize(
    ("name", "text", "reason", "where"),
    [
        ("broken.yaml", "name: [unclosed\n", "YAML_INVALID", "line "),
        ("broken.json", '{"name": ', "JSON_INVALID", "line 1"),
        ("scalar.yaml", "just text\n", "PLAY_INVALID", "a play"),
    ],
)
def test_unreadable_files_are_problems_with_the_file_name(tmp_path, name, text, reason, where):
    (tmp_path / name).write_text(text)
    sources, problems = pf.load_path(tmp_path)
    assert sources == []
    [problem] = problems
    assert (problem.file, problem.reason) == (str(tmp_path / name), reason)
    assert problem.description.startswith(where)


def test_missing_paths_and_empty_directories_are_problems(tmp_path):
    assert [p.reason for p in pf.load_path(tmp_path / "nope")[1]] == ["FILE_NOT_FOUND"]
    assert [p.reason for p in pf.load_path(tmp_path)[1]] == ["NO_FILES"]


def test_problems_name_file_play_and_path():
    [source] = pf.load_text("plays/x.yaml", "name: Onboarding\nstatus: on\n")[0]
    _, problems = pf.convert(source, resolve)
    assert [str(p) for p in problems] == [
        "plays/x.yaml: Onboarding: status: must be text (quote it) [TYPE_INVALID]",
        "plays/x.yaml: Onboarding: trigger: required [REQUIRED]",
    ]
    [unnamed] = pf.load_text("y.yaml", "- {}\n- description: no name\n")[0][1:]
    assert unnamed.label == "play #2"


def test_duplicate_names_across_files():
    sources = [pf.PlaySource("a.yaml", 0, {}), pf.PlaySource("a.yaml", 1, {}), pf.PlaySource("b.yaml", 0, {})]
    problems = pf.duplicate_names([(sources[0], "X"), (sources[1], "X"), (sources[2], "X")])
    assert sorted(problems) == [1, 2]
    assert problems[1].reason == "NAME_DUPLICATE" and "a.yaml (play #1)" in problems[1].description
    assert problems[2].file == "b.yaml" and problems[2].description.endswith("in a.yaml")


def test_owner_emails_and_defaults_kept_from_the_saved_play():
    sources = pf.load_text("a.yaml", "- {name: A, owner: Alice@Example.com}\n- {name: B, owner: users/1}\n")[0]
    assert pf.owner_emails(sources) == {"Alice@Example.com"}
    desired, _ = convert({"name": "A", "trigger": {"event": "account_created"}})
    saved = plays_pb2.Play(owner="users/alice-uid", status=plays_pb2.PLAY_STATUS_PAUSED)
    pf.fill_defaults(desired, saved)
    assert (desired.owner, desired.status) == ("users/alice-uid", plays_pb2.PLAY_STATUS_PAUSED)
    explicit, _ = convert(
        {"name": "A", "owner": "users/x", "status": "active", "trigger": {"event": "account_created"}}
    )
    pf.fill_defaults(explicit, saved)
    assert (explicit.owner, explicit.status) == ("users/x", plays_pb2.PLAY_STATUS_ACTIVE)


@pytest.mark.parametrize(
    ("server", "file"),
    [
        ("play.actions[1].update_value.role", "actions[1].update_value.role"),
        ("play.trigger.criteria.all[0].op", "trigger.criteria.all[0].op"),
        ("play.display_name", "name"),
        ("play.trigger.event_type", "trigger.event"),
        ("play.trigger.custom_event_type", "trigger.custom"),
        ("play", ""),
        ("update_mask", "update_mask"),
    ],
)
def test_server_field_paths_in_file_terms(server, file):
    assert pf.file_path(server) == file


SEGMENT = """\
name: Renewal coming up
status: active
trigger:
  kind: enters_segment
  activation: existing_and_new
  criteria:
    all:
      - {field: segment, op: equals, value: Enterprise}
      - {field: renewal_date, op: within_next_days, value: 90}
      - not: {field: success_manager___tid, op: exists}
actions:
  - create_task: {title: Plan the renewal, user: a@x.com, due_in_days: 7}
"""
MANUAL = """\
name: Escalate
webhook_secret_env: ESCALATE_HOOK_KEY
trigger:
  kind: manual
actions:
  - create_task: {title: Tell the group, holder_of_role: success_manager, on_parent_account: true}
  - call_webhook: {url: https://hooks.example.com/steward, timeout_seconds: 5}
  - call_webhook: {url: http://hooks.example.com/other}
"""
SECRET = "s" * 40


def test_a_segment_play_converts_and_writes_back_the_same():
    data = yaml.safe_load(SEGMENT)
    play, problems = convert(data)
    assert problems == {}
    assert play.trigger.kind == plays_pb2.TRIGGER_KIND_ENTERS_SEGMENT
    assert play.trigger.activation == plays_pb2.ACTIVATION_SCOPE_EXISTING_AND_NEW
    assert play.trigger.event_type == events_pb2.EVENT_TYPE_UNSPECIFIED  # no event: it is a segment play
    assert play.trigger.criteria["all"][1]["op"] == "within_next_days"
    back = pf.play_to_file(plays_pb2.Play.FromString(play.SerializeToString()), label)
    assert back == data and list(back["trigger"]) == ["kind", "activation", "criteria"]


def test_a_manual_play_with_parent_tasks_and_webhooks_reads_its_secret_from_the_environment():
    data = yaml.safe_load(MANUAL)
    play, issues = pf.file_to_play(data, resolve, {"ESCALATE_HOOK_KEY": SECRET})
    assert issues == []
    assert play.trigger.kind == plays_pb2.TRIGGER_KIND_MANUAL and not play.trigger.HasField("criteria")
    assert play.webhook_secret == SECRET
    task, hook, other = play.actions
    assert task.create_task.on_parent_account and task.create_task.holder_of_role == "roles/success_manager"
    assert (hook.call_webhook.url, hook.call_webhook.timeout_seconds) == ("https://hooks.example.com/steward", 5)
    assert other.call_webhook.timeout_seconds == 0  # the server's default (10 s)
    # Written back: everything but where the secret comes from, which the server never shows.
    back = pf.play_to_file(play, label)
    assert "webhook_secret_env" not in back and SECRET not in pf.to_yaml(back)
    assert back == {k: v for k, v in data.items() if k != "webhook_secret_env"}


def test_a_missing_secret_variable_is_a_problem_naming_the_variable():
    data = yaml.safe_load(MANUAL)
    _, issues = pf.file_to_play(data, resolve, {})
    assert [(path, reason) for path, _, reason in issues] == [("webhook_secret_env", "ENV_MISSING")]
    assert "ESCALATE_HOOK_KEY" in issues[0][1]
    _, issues = pf.file_to_play(data, resolve, {"ESCALATE_HOOK_KEY": ""})
    assert [reason for _, _, reason in issues] == ["ENV_MISSING"]
    _, problems = convert({**data, "webhook_secret_env": 7})
    assert problems == {"webhook_secret_env": "TYPE_INVALID"}


def test_the_secret_variable_defaults_to_the_process_environment(monkeypatch):
    monkeypatch.setenv("ESCALATE_HOOK_KEY", SECRET)
    play, problems = convert(yaml.safe_load(MANUAL))
    assert problems == {} and play.webhook_secret == SECRET


def test_defaults_of_the_new_keys_are_left_out_when_written_back():
    play, problems = convert(
        {
            "name": "Defaults",
            "trigger": {"kind": "exits_segment", "activation": "new_only", "criteria": {"field": "x", "op": "exists"}},
            "actions": [{"create_task": {"title": "t", "user": "a@x.com", "on_parent_account": False}}],
        }
    )
    assert problems == {}
    assert play.trigger.activation == plays_pb2.ACTIVATION_SCOPE_NEW_ONLY
    assert pf.play_to_file(play, label) == {
        "name": "Defaults",
        "trigger": {"kind": "exits_segment", "criteria": {"field": "x", "op": "exists"}},
        "actions": [{"create_task": {"title": "t", "user": "a@x.com"}}],
    }
    # kind event is the default too; the server answers it for every event play.
    explicit, _ = convert({"name": "E", "trigger": {"kind": "event", "event": "account_created"}})
    assert explicit.trigger.kind == plays_pb2.TRIGGER_KIND_EVENT
    assert pf.play_to_file(explicit, label)["trigger"] == {"event": "account_created"}
    # An activation on an event play is the server's to refuse; written back, it stays visible.
    odd, problems = convert({"name": "O", "trigger": {"event": "account_created", "activation": "new_only"}})
    assert problems == {} and pf.play_to_file(odd, label)["trigger"] == {
        "event": "account_created",
        "activation": "new_only",
    }


def test_which_trigger_keys_go_with_which_kind_is_left_to_the_server():
    # A manual or segment play names no event; one with an event or criteria converts as written
    # and the server's validation says what is wrong (at trigger.event, trigger.criteria).
    manual, problems = convert({"name": "M", "trigger": {"kind": "manual"}})
    assert problems == {} and manual.trigger.event_type == events_pb2.EVENT_TYPE_UNSPECIFIED
    mixed, problems = convert(
        {"name": "M", "trigger": {"kind": "manual", "event": "account_created", "criteria": {"field": "a"}}}
    )
    assert problems == {} and mixed.trigger.event_type == events_pb2.EVENT_TYPE_ACCOUNT_CREATED
    # Kind event (the default) still needs its event.
    assert convert({"name": "E", "trigger": {"kind": "event"}})[1] == {"trigger.event": "REQUIRED"}


def test_bad_values_of_the_new_keys_are_problems_at_their_key_path():
    _, problems = convert(
        {
            "name": "X",
            "trigger": {"kind": "on_demand", "activation": "everyone"},
            "actions": [
                {"create_task": {"title": "t", "user": "a@x.com", "on_parent_account": "yes"}},
                {"call_webhook": {"url": "https://x", "timeout_seconds": "ten", "method": "GET"}},
                {"call_webhook": {"timeout_seconds": 3}},
            ],
        }
    )
    assert problems == {
        "trigger.kind": "ENUM_INVALID",  # and no "trigger.event: required": the kind is unknown
        "trigger.activation": "ENUM_INVALID",
        "actions[0].create_task.on_parent_account": "TYPE_INVALID",
        "actions[1].call_webhook.timeout_seconds": "TYPE_INVALID",
        "actions[1].call_webhook.method": "UNKNOWN_KEY",
        # actions[2] names no url: a value the server refuses (URL_INVALID), not a file problem.
    }


@pytest.mark.parametrize(
    ("server", "file"),
    [
        ("play.trigger.kind", "trigger.kind"),
        ("play.trigger.activation", "trigger.activation"),
        ("play.trigger.criteria", "trigger.criteria"),
        ("play.webhook_secret", "webhook_secret_env"),
        ("play.actions[2].call_webhook.url", "actions[2].call_webhook.url"),
    ],
)
def test_server_field_paths_of_the_new_fields_in_file_terms(server, file):
    assert pf.file_path(server) == file


def test_every_field_of_every_kind_of_action_can_be_written_in_a_file():
    # The file form walks the Action message: a kind whose fields it cannot hold fails here.
    seen: set[str] = set()

    def walk(descriptor):
        seen.add(descriptor.full_name)
        for field in descriptor.fields:
            assert field.type in pf.FILE_TYPES, f"{field.full_name}: add its type to play_files"
            if field.message_type is not None and field.message_type.full_name not in seen:
                walk(field.message_type)

    walk(plays_pb2.Action.DESCRIPTOR)
    assert {"steward.rules.v1.UpdateValueAction", "steward.rules.v1.RoundRobin"} <= seen


def test_what_the_message_can_hold_is_left_to_the_server_to_judge():
    play, problems = convert(
        {
            "name": "X",
            "trigger": {"event": "account_created"},
            "actions": [
                {"update_value": {}},  # no role, no value: ROLE_INVALID and VALUE_INVALID
                {"update_value": {"role": "r", "round_robin": {"users": ["a@x.com"], "team": "teams/t"}}},
                {"create_task": {"title": "t", "user": "a@x.com", "due_in_days": 99999}},
                {"call_webhook": {"timeout_seconds": 3}},  # no url: URL_INVALID
                {},  # no kind: ACTION_INVALID
            ],
        }
    )
    assert problems == {}
    assert [a.WhichOneof("action") for a in play.actions] == [
        "update_value",
        "update_value",
        "create_task",
        "call_webhook",
        None,
    ]
    robin = play.actions[1].update_value.round_robin
    assert (list(robin.users), robin.team) == (["a@x.com"], "teams/t")
    assert play.actions[2].create_task.due_in_days == 99999
