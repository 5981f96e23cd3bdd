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

An action is written as the JSON form of steward.rules.v1.Action, with the proto's field names:
the file form is read and written by walking that message, so a new kind of action needs nothing
here. Two conventions make it the authors' form: a field named `role` or `*_role` takes a role's
key ("roles/" may be left out, and is when written back), and a field named `user` or `users` is
written back as emails. Only what cannot be put into the message is a problem here (a wrong
type, an unknown key, two fields of one oneof); whether the values make sense is the server's to
say, through CreatePlay/UpdatePlay with validate_only.

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
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

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
# Action fields that hold users (written back as emails); those named role or *_role hold roles.
USER_FIELDS = ("user", "users")
# Numbers are int32s in a file (a wider one would need its own range check).
WHOLE_NUMBERS = frozenset({FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32})
# What an action's fields may be in a file (test_unit_play_files checks every field of Action).
FILE_TYPES = WHOLE_NUMBERS | {FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BOOL, FieldDescriptor.TYPE_MESSAGE}
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
        _message(reader, raw, f"actions[{index}]", play.actions.add())
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


def _message(reader: _Reader, raw: Any, path: str, message: Message) -> None:
    """Fills the message from its file form, field by field."""
    descriptor = message.DESCRIPTOR
    body = reader.mapping(raw, path, tuple(f.name for f in descriptor.fields))
    if body is None:
        return
    message.SetInParent()  # an empty mapping still says which field of a oneof is meant
    for oneof in descriptor.oneofs:
        members = tuple(f.name for f in oneof.fields)
        given = [name for name in members if name in body]
        if len(given) > 1:  # the message can hold only one of them
            reader.add(path, f"exactly one of {', '.join(members)}", "ONE_OF")
            body = {k: v for k, v in body.items() if k not in given}
    for name in body:
        _field(reader, body, path, message, descriptor.fields_by_name[name])


def _field(reader: _Reader, body: dict[str, Any], path: str, message: Message, field: Any) -> None:
    """`field`: a FieldDescriptor (typed Any: the stubs and the upb runtime name two classes)."""
    name, where = field.name, _join(path, field.name)
    if field.type not in FILE_TYPES:
        reader.add(where, "this field cannot be written in a play file yet", "TYPE_UNSUPPORTED")
    elif field.is_repeated:
        items = body[name]
        if not isinstance(items, list):
            reader.add(where, f"a list{' of emails or users/{uid}' if name in USER_FIELDS else ''}", "TYPE_INVALID")
            return
        for index, item in enumerate(items):
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                _message(reader, item, f"{where}[{index}]", getattr(message, name).add())
            else:
                value = _scalar(reader, item, f"{where}[{index}]", field)
                if value is not None:
                    getattr(message, name).append(value)
    elif field.type == FieldDescriptor.TYPE_MESSAGE:
        _message(reader, body[name], where, getattr(message, name))
    else:
        value = _scalar(reader, body[name], where, field)
        if value is not None:
            setattr(message, name, value)


def _scalar(reader: _Reader, value: Any, where: str, field: Any) -> Any:
    """The value of a text, number or flag field; None when it was reported."""
    if field.type == FieldDescriptor.TYPE_BOOL:
        return reader.flag(value, where)
    if field.type in WHOLE_NUMBERS:
        return reader.number(value, where, field.name.rsplit("_", 1)[-1] if "_" in field.name else "units")
    text = reader.string(value, where)
    if text is None:
        return None
    return role_name(text.strip()) if _holds_role(field.name) else text.strip()


def _holds_role(name: str) -> bool:
    return name == "role" or name.endswith("_role")


@dataclass
class _Reader:
    """Walks a file form, collecting every problem with the key path where it is."""

    issues: list[tuple[str, str, str]] = field(default_factory=list)

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
                self.add(_join(path, str(key)), f"unknown key; expected {', '.join(keys)}", "UNKNOWN_KEY")
        return {k: v for k, v in raw.items() if k in keys}

    def text(self, body: Mapping[str, Any], key: str, path: str) -> str:
        return self.string(body.get(key), _join(path, key)) or ""

    def string(self, value: Any, where: str) -> str | None:
        """None (absent) reads as ""; anything else that is not text is reported (None back)."""
        if value is None:
            return ""
        if not isinstance(value, str):
            self.add(where, "must be text (quote it)", "TYPE_INVALID")
            return None
        return value

    def whole_number(self, body: Mapping[str, Any], key: str, path: str, unit: str) -> int:
        """An int32 (ranges are the server's to check); 0 when absent or wrong."""
        return self.number(body.get(key, 0), _join(path, key), unit) or 0

    def number(self, value: Any, where: str, unit: str) -> int | None:
        if not isinstance(value, int) or isinstance(value, bool) or not -(2**31) <= value < 2**31:
            self.add(where, f"a whole number of {unit}", "TYPE_INVALID")
            return None
        return value

    def flag(self, value: Any, where: str) -> bool | None:
        if not isinstance(value, bool):
            self.add(where, "true or false", "TYPE_INVALID")
            return None
        return value

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
    actions = [_message_to_file(action, user) for action in play.actions]
    if actions:
        out["actions"] = actions
    return out


def _message_to_file(message: Message, user: Callable[[str], str]) -> dict[str, Any]:
    """The fields set, in the proto's order (the canonical order of a file's keys)."""
    out: dict[str, Any] = {}
    for described, value in message.ListFields():
        if described.type == FieldDescriptor.TYPE_MESSAGE:
            shown = (
                [_message_to_file(v, user) for v in value] if described.is_repeated else _message_to_file(value, user)
            )
        elif described.is_repeated:
            shown = [_value_to_file(described, v, user) for v in value]
        else:
            shown = _value_to_file(described, value, user)
        out[described.name] = shown
    return out


def _value_to_file(field: Any, value: Any, user: Callable[[str], str]) -> Any:
    if _holds_role(field.name):
        return value.removeprefix("roles/")
    if field.name in USER_FIELDS:
        return user(value)
    return value


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
