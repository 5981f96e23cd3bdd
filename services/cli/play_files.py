"""Play files: the form workflow authors write (YAML or JSON) to and from the protobuf Play.

One play, in the file form (keys in this order when written back):

    name: Enterprise onboarding               # Play.display_name: what `plays apply` matches on
    description: Give new enterprise accounts a CSM
    owner: alice@example.com                  # or users/{uid}; omitted: the caller (new plays)
    origin_team: teams/6f1c...
    status: active                            # draft | active | paused
    priority: 5                               # default 0: the highest wins a role two plays set
    webhook_secret_env: ONBOARDING_HOOK_KEY   # names the environment variable holding the secret
    trigger:
      kind: event                             # default; or enters_segment | exits_segment | manual
      event: account_created                  # or `custom: renewal.signed` (kind event only)
      criteria: {all: [{field: segment, op: equals, value: Enterprise}]}   # verbatim
    actions:
      - update_value: {role: success_manager, user: bob@example.com}
      - update_value: {role: sales_manager, round_robin: {users: [a@x.com, users/123]}}
      - update_value: {role: sales_manager, round_robin: {team: teams/abc}}
      - update_value: {role: renewal_manager, holder_of_role: success_manager}
      - create_task: {title: Kick-off call, holder_of_role: success_manager, due_in_days: 3}
      - create_task: {title: Tell the group, user: bob@example.com, on_parent_account: true}
      - call_webhook: {url: https://hooks.example.com/steward, timeout_seconds: 10}

Segment plays fire when an account starts (enters_segment) or stops (exits_segment) meeting
their criteria, which are required and read the account's state; `activation: existing_and_new`
also runs an enters_segment play for the accounts already inside when it is activated (default
new_only). Manual plays have no event and no criteria: `steward plays run PLAY --account ID`.

    trigger:
      kind: enters_segment
      activation: existing_and_new            # segment kinds only; default new_only
      criteria:
        all:
          - {field: segment, op: equals, value: Enterprise}
          - {field: renewal_date, op: within_next_days, value: 90}   # also within_last_days,
          - not: {field: success_manager___tid, op: exists}          # older_than_days

call_webhook actions sign their requests with the play's webhook secret, which is write-only:
a file never holds it, only `webhook_secret_env`, the name of the environment variable read when
validate, diff or apply run (a missing variable is an ENV_MISSING problem). The server never
shows the secret, so it is not part of what diff compares (see play_to_file).

A file holds one play, several as YAML documents separated by `---`, or a list of plays.
Pure: nothing here calls a service; looking users up is left to functions passed in.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from google.protobuf.json_format import MessageToDict

from steward.rules.v1 import events_pb2, plays_pb2

EXTENSIONS = (".yaml", ".yml", ".json")
# "alice@example.com" -> "users/{uid}", or None when there is no such user.
ResolveEmail = Callable[[str], str | None]
# "users/{uid}" -> what a file shows for that user (its email; the name itself when unknown).
UserLabel = Callable[[str], str]

STATUSES = {
    name.removeprefix("PLAY_STATUS_").lower(): number
    for name, number in plays_pb2.PlayStatus.items()
    if number != plays_pb2.PLAY_STATUS_UNSPECIFIED
}
EVENTS = {
    name.removeprefix("EVENT_TYPE_").lower(): number
    for name, number in events_pb2.EventType.items()
    if number not in (events_pb2.EVENT_TYPE_UNSPECIFIED, events_pb2.EVENT_TYPE_CUSTOM)
}
KINDS = {
    name.removeprefix("TRIGGER_KIND_").lower(): number
    for name, number in plays_pb2.TriggerKind.items()
    if number != plays_pb2.TRIGGER_KIND_UNSPECIFIED
}
ACTIVATIONS = {
    name.removeprefix("ACTIVATION_SCOPE_").lower(): number
    for name, number in plays_pb2.ActivationScope.items()
    if number != plays_pb2.ACTIVATION_SCOPE_UNSPECIFIED
}
SEGMENT_KINDS = (plays_pb2.TRIGGER_KIND_ENTERS_SEGMENT, plays_pb2.TRIGGER_KIND_EXITS_SEGMENT)
PLAY_KEYS = (
    "name",
    "description",
    "owner",
    "origin_team",
    "status",
    "priority",
    "webhook_secret_env",
    "trigger",
    "actions",
)
TRIGGER_KEYS = ("kind", "event", "custom", "activation", "criteria")
ACTION_KEYS = ("update_value", "create_task", "call_webhook")
UPDATE_VALUE_KEYS = ("role", "user", "round_robin", "holder_of_role")
ROUND_ROBIN_KEYS = ("users", "team")
CREATE_TASK_KEYS = ("title", "user", "holder_of_role", "due_in_days", "on_parent_account")
CALL_WEBHOOK_KEYS = ("url", "timeout_seconds")
# Criteria keep their content; only their keys get a stable order (unknown keys follow, sorted).
CRITERIA_ORDER = ("all", "any", "not", "field", "op", "value", "from", "to")
# Server field paths (play.trigger.event_type) in file terms (trigger.event).
_SERVER_PATHS = {
    "display_name": "name",
    "trigger.event_type": "trigger.event",
    "trigger.custom_event_type": "trigger.custom",
    "trigger.kind": "trigger.kind",
    "trigger.activation": "trigger.activation",
    "webhook_secret": "webhook_secret_env",
}


@dataclass(frozen=True)
class Problem:
    """Something wrong with one play of one file; `path` is in file terms (actions[1].update_value.role)."""

    file: str
    play: str
    path: str
    description: str
    reason: str

    def __str__(self) -> str:
        where = ": ".join(part for part in (self.file, self.play, self.path) if part)
        return f"{where}: {self.description} [{self.reason}]"


@dataclass
class PlaySource:
    """One play as written: its file, its position among that file's plays, its raw data."""

    file: str
    index: int
    data: Any

    @property
    def label(self) -> str:
        name = self.data.get("name") if isinstance(self.data, dict) else None
        return name if isinstance(name, str) and name.strip() else f"play #{self.index + 1}"

    def problem(self, path: str, description: str, reason: str) -> Problem:
        return Problem(self.file, self.label, path, description, reason)


# --- reading files -------------------------------------------------------------------------


def load_path(path: Path) -> tuple[list[PlaySource], list[Problem]]:
    """Every play of a file, or of the *.yaml, *.yml and *.json files of a directory (sorted, not
    recursive), and the problems of files that could not be read as plays."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS)
        if not files:
            return [], [Problem(str(path), "", "", "no *.yaml, *.yml or *.json files here", "NO_FILES")]
    elif path.is_file():
        files = [path]
    else:
        return [], [Problem(str(path), "", "", "no such file or directory", "FILE_NOT_FOUND")]
    sources: list[PlaySource] = []
    problems: list[Problem] = []
    for file in files:
        found, trouble = load_text(str(file), _read(file), json_only=file.suffix.lower() == ".json")
        sources += found
        problems += trouble
    return sources, problems


def _read(file: Path) -> str | Problem:
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return Problem(str(file), "", "", f"cannot read: {error}", "FILE_UNREADABLE")


def load_text(file: str, text: str | Problem, json_only: bool = False) -> tuple[list[PlaySource], list[Problem]]:
    """The plays of one file's text: YAML documents (or JSON), each a play or a list of plays."""
    if isinstance(text, Problem):
        return [], [text]
    try:
        documents = [json.loads(text)] if json_only else list(yaml.safe_load_all(text))
    except json.JSONDecodeError as error:
        return [], [Problem(file, "", "", f"line {error.lineno}, column {error.colno}: {error.msg}", "JSON_INVALID")]
    except yaml.YAMLError as error:
        return [], [Problem(file, "", "", _yaml_error(error), "YAML_INVALID")]
    plays: list[Any] = []
    problems: list[Problem] = []
    for number, document in enumerate(documents, start=1):
        if document is None:  # an empty document, e.g. after a trailing ---
            continue
        if isinstance(document, list):
            plays += document
        elif isinstance(document, dict):
            plays.append(document)
        else:
            problems.append(
                Problem(file, f"document {number}", "", "a play (a mapping) or a list of plays", "PLAY_INVALID")
            )
    return [PlaySource(file, index, data) for index, data in enumerate(plays)], problems


def _yaml_error(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark is not None else problem


# --- file form -> Play ---------------------------------------------------------------------


def role_name(key: str) -> str:
    return key if not key or key.startswith("roles/") else f"roles/{key}"


def owner_emails(sources: Iterable[PlaySource]) -> set[str]:
    """The owners given as email addresses, to resolve all at once before converting."""
    found = set()
    for source in sources:
        owner = source.data.get("owner") if isinstance(source.data, dict) else None
        if isinstance(owner, str) and "@" in owner and not owner.startswith("users/"):
            found.add(owner.strip())
    return found


def convert(
    source: PlaySource, resolve_email: ResolveEmail, environ: Mapping[str, str] | None = None
) -> tuple[plays_pb2.Play, list[Problem]]:
    play, issues = file_to_play(source.data, resolve_email, environ)
    return play, [source.problem(*issue) for issue in issues]


def file_to_play(
    data: Any, resolve_email: ResolveEmail, environ: Mapping[str, str] | None = None
) -> tuple[plays_pb2.Play, list[tuple[str, str, str]]]:
    """The Play a file form describes, and its problems as (key path, description, reason).
    The play is only meaningful when there are no problems. `environ` (default: os.environ)
    is where `webhook_secret_env` names the webhook secret."""
    reader = _Reader()
    play = plays_pb2.Play()
    body = reader.mapping(data, "", PLAY_KEYS)
    if body is None:
        return play, reader.issues
    play.display_name = reader.text(body, "name", "")
    if not play.display_name.strip():
        reader.add("name", "required: the play's display name, unique among plays", "REQUIRED")
    play.description = reader.text(body, "description", "")
    play.origin_team = reader.text(body, "origin_team", "").strip()
    owner = reader.text(body, "owner", "").strip()
    if owner.startswith("users/"):
        play.owner = owner
    elif "@" in owner:
        resolved = resolve_email(owner)
        if resolved is None:
            reader.add("owner", f"no user has the email {owner}", "USER_UNKNOWN")
        else:
            play.owner = resolved
    elif owner:
        reader.add("owner", "an email address or users/{uid}", "USER_INVALID")
    status = reader.text(body, "status", "")
    if status:
        if status.lower() in STATUSES:
            play.status = STATUSES[status.lower()]  # type: ignore[assignment]
        else:
            reader.add("status", f"unknown status {status!r}; use one of {', '.join(STATUSES)}", "ENUM_INVALID")
    play.priority = reader.whole_number(body, "priority", "", "levels")
    secret_env = reader.text(body, "webhook_secret_env", "").strip()
    if secret_env:
        # The value is never part of a problem's description: only the variable's name is.
        secret = (os.environ if environ is None else environ).get(secret_env, "")
        if secret:
            play.webhook_secret = secret
        else:
            reader.add(
                "webhook_secret_env",
                f"the environment variable {secret_env} is not set (or empty): it holds the webhook secret",
                "ENV_MISSING",
            )
    elif "webhook_secret_env" in body and isinstance(body["webhook_secret_env"], str | None):  # given, blank
        reader.add("webhook_secret_env", "the name of an environment variable", "REQUIRED")
    _trigger(reader, body, play.trigger)
    actions = body.get("actions")
    if actions is not None and not isinstance(actions, list):
        reader.add("actions", "a list of actions", "TYPE_INVALID")
    for index, raw in enumerate(actions if isinstance(actions, list) else []):
        _action(reader, raw, f"actions[{index}]", play.actions.add())
    return play, reader.issues


def _trigger(reader: _Reader, body: dict[str, Any], trigger: plays_pb2.Trigger) -> None:
    raw = reader.mapping(body.get("trigger"), "trigger", TRIGGER_KEYS)
    if raw is None:
        return
    kind = reader.text(raw, "kind", "trigger")
    if kind:
        if kind.lower() in KINDS:
            trigger.kind = KINDS[kind.lower()]  # type: ignore[assignment]
        else:
            reader.add("trigger.kind", f"unknown kind {kind!r}; use one of {', '.join(KINDS)}", "ENUM_INVALID")
    activation = reader.text(raw, "activation", "trigger")
    if activation:
        if activation.lower() in ACTIVATIONS:
            trigger.activation = ACTIVATIONS[activation.lower()]  # type: ignore[assignment]
        else:
            reader.add(
                "trigger.activation",
                f"unknown activation {activation!r}; use one of {', '.join(ACTIVATIONS)}",
                "ENUM_INVALID",
            )
    event_kind = trigger.kind in (plays_pb2.TRIGGER_KIND_UNSPECIFIED, plays_pb2.TRIGGER_KIND_EVENT)
    # Which keys go with which kind (event or custom only with kind event, criteria required by
    # segment kinds and refused by manual ones, activation for segment kinds) is the server's to
    # say: validate reports it at trigger.event, trigger.criteria or trigger.activation.
    if "event" in raw and "custom" in raw:
        reader.add("trigger", "either event or custom, not both", "ONE_OF")
    elif "custom" in raw:
        trigger.event_type = events_pb2.EVENT_TYPE_CUSTOM
        trigger.custom_event_type = reader.text(raw, "custom", "trigger").strip()
    elif "event" in raw:
        event = reader.text(raw, "event", "trigger")
        if event.lower() in EVENTS:
            trigger.event_type = EVENTS[event.lower()]  # type: ignore[assignment]
        else:
            reader.add(
                "trigger.event",
                f"unknown event {event!r}; use one of {', '.join(EVENTS)} (or `custom: <type>`)",
                "ENUM_INVALID",
            )
    elif event_kind and not (kind and kind.lower() not in KINDS):  # an unknown kind says enough
        reader.add("trigger.event", f"required: one of {', '.join(EVENTS)} (or `custom: <type>`)", "REQUIRED")
    criteria = raw.get("criteria")
    if criteria is not None:
        if not isinstance(criteria, dict):
            reader.add("trigger.criteria", "a mapping, e.g. {field: segment, op: equals, value: X}", "TYPE_INVALID")
        elif reader.json_like(criteria, "trigger.criteria"):
            trigger.criteria.update(criteria)


def _action(reader: _Reader, raw: Any, path: str, action: plays_pb2.Action) -> None:
    body = reader.mapping(raw, path, ACTION_KEYS)
    if body is None:
        return
    kind = reader.one_of(body, ACTION_KEYS, path)
    if kind is None:
        return
    where = f"{path}.{kind}"
    if kind == "update_value":
        update = reader.mapping(body["update_value"], where, UPDATE_VALUE_KEYS)
        if update is None:
            return
        action.update_value.role = role_name(reader.text(update, "role", where).strip())
        if not action.update_value.role:
            reader.add(f"{where}.role", "required: a role key such as success_manager", "REQUIRED")
        choice = reader.one_of(update, ("user", "round_robin", "holder_of_role"), where)
        if choice == "user":
            action.update_value.user = reader.text(update, "user", where).strip()
        elif choice == "holder_of_role":
            action.update_value.holder_of_role = role_name(reader.text(update, "holder_of_role", where).strip())
        elif choice == "round_robin":
            _round_robin(reader, update["round_robin"], f"{where}.round_robin", action.update_value.round_robin)
        return
    if kind == "call_webhook":
        hook = reader.mapping(body["call_webhook"], where, CALL_WEBHOOK_KEYS)
        if hook is None:
            return
        action.call_webhook.url = reader.text(hook, "url", where).strip()
        if not action.call_webhook.url:
            reader.add(f"{where}.url", "required: the http:// or https:// URL to POST to", "REQUIRED")
        action.call_webhook.timeout_seconds = reader.whole_number(hook, "timeout_seconds", where, "seconds")
        return
    task = reader.mapping(body["create_task"], where, CREATE_TASK_KEYS)
    if task is None:
        return
    action.create_task.title = reader.text(task, "title", where).strip()
    choice = reader.one_of(task, ("user", "holder_of_role"), where)
    if choice == "user":
        action.create_task.user = reader.text(task, "user", where).strip()
    elif choice == "holder_of_role":
        action.create_task.holder_of_role = role_name(reader.text(task, "holder_of_role", where).strip())
    action.create_task.due_in_days = reader.whole_number(task, "due_in_days", where, "days")
    action.create_task.on_parent_account = reader.flag(task, "on_parent_account", where)


def _round_robin(reader: _Reader, raw: Any, path: str, robin: plays_pb2.RoundRobin) -> None:
    body = reader.mapping(raw, path, ROUND_ROBIN_KEYS)
    if body is None:
        return
    choice = reader.one_of(body, ROUND_ROBIN_KEYS, path)
    if choice == "team":
        robin.team = reader.text(body, "team", path).strip()
    elif choice == "users":
        users = body["users"]
        if not isinstance(users, list) or not all(isinstance(u, str) for u in users):
            reader.add(f"{path}.users", "a list of emails or users/{uid}", "TYPE_INVALID")
        else:
            robin.users.extend(u.strip() for u in users)


@dataclass
class _Reader:
    """Walks a file form, collecting every problem with the key path where it is."""

    issues: list[tuple[str, str, str]] = field(default_factory=list)
    unknown_keys_at: set[str] = field(default_factory=set)  # paths whose mapping had a misspelt key

    def add(self, path: str, description: str, reason: str) -> None:
        self.issues.append((path, description, reason))

    def mapping(self, raw: Any, path: str, keys: tuple[str, ...]) -> dict[str, Any] | None:
        if raw is None and path:
            self.add(path, "required", "REQUIRED")
            return None
        if not isinstance(raw, dict):
            self.add(path, "a mapping of keys to values", "TYPE_INVALID")
            return None
        for key in raw:
            if key not in keys:
                self.unknown_keys_at.add(path)
                self.add(_join(path, str(key)), f"unknown key; expected {', '.join(keys)}", "UNKNOWN_KEY")
        return {k: v for k, v in raw.items() if k in keys}

    def text(self, body: Mapping[str, Any], key: str, path: str) -> str:
        value = body.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            self.add(_join(path, key), "must be text (quote it)", "TYPE_INVALID")
            return ""
        return value

    def whole_number(self, body: Mapping[str, Any], key: str, path: str, unit: str) -> int:
        """An int32 (ranges are the server's to check); 0 when absent or wrong."""
        value = body.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or not -(2**31) <= value < 2**31:
            self.add(_join(path, key), f"a whole number of {unit}", "TYPE_INVALID")
            return 0
        return value

    def flag(self, body: Mapping[str, Any], key: str, path: str) -> bool:
        value = body.get(key, False)
        if not isinstance(value, bool):
            self.add(_join(path, key), "true or false", "TYPE_INVALID")
            return False
        return value

    def one_of(self, body: Mapping[str, Any], keys: tuple[str, ...], path: str) -> str | None:
        given = [k for k in keys if k in body]
        if len(given) != 1:
            if given or path not in self.unknown_keys_at:  # none given: a misspelt key says enough
                self.add(path, f"exactly one of {', '.join(keys)}", "ONE_OF")
            return None
        return given[0]

    def json_like(self, value: Any, path: str) -> bool:
        """True when the value fits a google.protobuf.Struct (YAML dates, for instance, do not)."""
        if value is None or isinstance(value, str | bool | int | float):
            return True
        if isinstance(value, list):
            return all([self.json_like(item, f"{path}[{i}]") for i, item in enumerate(value)])
        if isinstance(value, dict):
            ok = True
            for key, item in value.items():
                if not isinstance(key, str):
                    self.add(_join(path, str(key)), "keys must be text (quote it)", "TYPE_INVALID")
                    ok = False
                ok = self.json_like(item, _join(path, str(key))) and ok
            return ok
        self.add(path, f"{type(value).__name__} is not allowed here: quote it to make it text", "TYPE_INVALID")
        return False


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# --- Play -> file form ---------------------------------------------------------------------


def play_to_file(play: plays_pb2.Play, user_label: UserLabel) -> dict[str, Any]:
    """The canonical file form of a play: keys in a stable order, defaults left out, roles
    without "roles/", users as emails. A play converted from a file form converts back to it.

    Never `webhook_secret_env`: the secret is write-only (the server answers has_webhook_secret,
    never the secret, let alone the variable's name), so diff and apply do not compare it;
    changing only the variable's value is not a difference (see plays_cmd for rotating it)."""

    def user(value: str) -> str:
        shown = user_label(value) if value.startswith("users/") else value
        return shown.lower() if "@" in shown else shown

    out: dict[str, Any] = {"name": play.display_name}
    if play.description:
        out["description"] = play.description
    if play.owner:
        out["owner"] = user(play.owner)
    if play.origin_team:
        out["origin_team"] = play.origin_team
    if play.status != plays_pb2.PLAY_STATUS_UNSPECIFIED:
        out["status"] = plays_pb2.PlayStatus.Name(play.status).removeprefix("PLAY_STATUS_").lower()
    if play.priority:
        out["priority"] = play.priority
    trigger: dict[str, Any] = {}
    kind = play.trigger.kind
    if kind not in (plays_pb2.TRIGGER_KIND_UNSPECIFIED, plays_pb2.TRIGGER_KIND_EVENT):
        trigger["kind"] = plays_pb2.TriggerKind.Name(kind).removeprefix("TRIGGER_KIND_").lower()
    if play.trigger.event_type == events_pb2.EVENT_TYPE_CUSTOM:
        trigger["custom"] = play.trigger.custom_event_type
    elif play.trigger.event_type != events_pb2.EVENT_TYPE_UNSPECIFIED:
        trigger["event"] = events_pb2.EventType.Name(play.trigger.event_type).removeprefix("EVENT_TYPE_").lower()
    activation = play.trigger.activation
    # new_only is what a segment play gets when its file says nothing (and what the server then
    # answers): left out like other defaults. On any other kind it is shown, being a mistake.
    if activation != plays_pb2.ACTIVATION_SCOPE_UNSPECIFIED and not (
        kind in SEGMENT_KINDS and activation == plays_pb2.ACTIVATION_SCOPE_NEW_ONLY
    ):
        trigger["activation"] = plays_pb2.ActivationScope.Name(activation).removeprefix("ACTIVATION_SCOPE_").lower()
    if play.trigger.HasField("criteria"):
        trigger["criteria"] = canonical_value(MessageToDict(play.trigger.criteria))
    if trigger:
        out["trigger"] = trigger
    actions = [_action_to_file(action, user) for action in play.actions]
    if actions:
        out["actions"] = actions
    return out


def _action_to_file(action: plays_pb2.Action, user: Callable[[str], str]) -> dict[str, Any]:
    if action.WhichOneof("action") == "update_value":
        update = action.update_value
        body: dict[str, Any] = {"role": update.role.removeprefix("roles/")}
        which = update.WhichOneof("value")
        if which == "user":
            body["user"] = user(update.user)
        elif which == "round_robin":
            robin = update.round_robin
            body["round_robin"] = {"team": robin.team} if robin.team else {"users": [user(u) for u in robin.users]}
        elif which == "holder_of_role":
            body["holder_of_role"] = update.holder_of_role.removeprefix("roles/")
        return {"update_value": body}
    if action.WhichOneof("action") == "create_task":
        task = action.create_task
        body = {"title": task.title}
        which = task.WhichOneof("assignee")
        if which == "user":
            body["user"] = user(task.user)
        elif which == "holder_of_role":
            body["holder_of_role"] = task.holder_of_role.removeprefix("roles/")
        if task.due_in_days:
            body["due_in_days"] = task.due_in_days
        if task.on_parent_account:
            body["on_parent_account"] = True
        return {"create_task": body}
    if action.WhichOneof("action") == "call_webhook":
        hook = action.call_webhook
        body = {"url": hook.url}
        if hook.timeout_seconds:
            body["timeout_seconds"] = hook.timeout_seconds
        return {"call_webhook": body}
    return {}


def canonical_value(value: Any) -> Any:
    """Struct values as an author writes them: whole numbers without ".0", keys in a stable order."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [canonical_value(v) for v in value]
    if isinstance(value, dict):
        known = [k for k in CRITERIA_ORDER if k in value]
        return {k: canonical_value(value[k]) for k in known + sorted(k for k in value if k not in CRITERIA_ORDER)}
    return value


def to_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False, width=120)


# --- comparing with what the server has ----------------------------------------------------


def fill_defaults(desired: plays_pb2.Play, current: plays_pb2.Play) -> None:
    """A file that leaves owner or status out keeps the saved play's, as it would get the
    server's defaults on create: so `apply` then `diff` shows nothing."""
    if not desired.owner:
        desired.owner = current.owner
    if desired.status == plays_pb2.PLAY_STATUS_UNSPECIFIED:
        desired.status = current.status


def file_path(server_field: str) -> str:
    """A server field path (play.trigger.event_type) in file terms (trigger.event)."""
    path = "" if server_field == "play" else server_field.removeprefix("play.")
    for server, mine in _SERVER_PATHS.items():
        if path == server or path.startswith((f"{server}.", f"{server}[")):
            return mine + path[len(server) :]
    return path


def duplicate_names(named: list[tuple[PlaySource, str]]) -> dict[int, Problem]:
    """Plays of the given files sharing a name (`apply` could not tell which one is meant): the
    problem of each but the first, by position in `named`."""
    first: dict[str, PlaySource] = {}
    problems = {}
    for position, (source, name) in enumerate(named):
        if name not in first:
            first[name] = source
            continue
        seen = first[name]
        where = seen.file + (f" (play #{seen.index + 1})" if seen.file == source.file else "")
        problems[position] = source.problem("name", f"another play has this name too, in {where}", "NAME_DUPLICATE")
    return problems
