"""`steward plays ...`: SuccessPlays kept in files and applied like `kubectl apply`.

    steward plays validate -f plays/     every problem of every play; exit 1 if any (warnings: 0)
    steward plays diff -f plays/         unified diff server -> file; exit 1 if anything differs
    steward plays apply -f plays/        all valid: create or update each play; else change nothing
    steward plays run PLAY --account ID  run a manual play for one account now
    steward plays test FILE --event JSON a dry run of the file's play against a sample event

Files are matched to saved plays by name (Play.display_name); see play_files for the form.
A play's webhook secret comes from the environment variable its file names and is never
compared (the server does not show it): a play whose file changed nothing else is "unchanged"
and keeps its secret. To rotate one, change the play in the same apply (e.g. its description).
"""

from __future__ import annotations

import difflib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
import typer
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.json_format import MessageToDict
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from rich.table import Table
from rich.text import Text

from services.cli.client import all_pages, as_dict, call, console, emit, error_details, errors, print_error
from services.cli.play_files import (
    PlaySource,
    Problem,
    canonical_value,
    convert,
    duplicate_names,
    file_path,
    fill_defaults,
    load_path,
    owner_emails,
    play_to_file,
    to_yaml,
)
from services.cli.sample_events import event_from_json
from steward.rules.v1 import events_pb2, events_pb2_grpc, plays_pb2, plays_pb2_grpc
from steward.users.v1 import users_pb2, users_pb2_grpc

plays_app = typer.Typer(no_args_is_help=True, help="SuccessPlays as files: validate, diff and apply them.")
FILES = typer.Option(..., "--filename", "-f", help="A play file, or a directory of *.yaml, *.yml and *.json files.")
JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")
EVERYTHING = FieldMask(paths=["*"])
# Failures that concern the play sent, reported as its problems; any other failure stops the command.
PLAY_FAILURES = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.PERMISSION_DENIED,
}
T = TypeVar("T")


@dataclass
class Entry:
    """One play of the files: what it asks for, what the server has under its name, what is wrong."""

    source: PlaySource
    play: plays_pb2.Play
    current: plays_pb2.Play | None = None
    problems: list[Problem] = field(default_factory=list)
    # What the server's validation found suspicious but allowed (Play.warnings), in file terms.
    warnings: list[Problem] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.play.display_name or self.source.label


class Session:
    """The calls a plays command makes, over one channel to rules and one to users."""

    def __init__(self, plays: Any, users: Any, metadata: list[tuple[str, str]]) -> None:
        self.plays, self.users, self.md = plays, users, metadata
        self._emails: dict[str, str] = {}  # "users/{uid}" -> email

    def resolve_emails(self, emails: set[str]) -> dict[str, str]:
        """lower-cased email -> "users/{uid}", for those that belong to a user."""
        wanted = {e.lower() for e in emails}
        found: dict[str, str] = {}
        ordered = sorted(wanted)
        for start in range(0, len(ordered), 1000):
            request = users_pb2.ListUsersRequest(page_size=1000, emails=ordered[start : start + 1000])
            for user in all_pages(request, "users", lambda r: self.users.ListUsers(r, metadata=self.md)):
                self._emails[user.name] = user.email
                if user.email.lower() in wanted:  # also right against a server without the filter
                    found[user.email.lower()] = user.name
        return found

    def user_label(self, name: str) -> str:
        if name not in self._emails:
            try:
                self._emails[name] = self.users.GetUser(users_pb2.GetUserRequest(name=name), metadata=self.md).email
            except grpc.RpcError as error:
                if error.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED):
                    raise
                self._emails[name] = name
        return self._emails[name]

    def find(self, display_name: str) -> plays_pb2.Play | None:
        request = plays_pb2.ListPlaysRequest(page_size=1000, display_name=display_name)
        found = all_pages(request, "plays", lambda r: self.plays.ListPlays(r, metadata=self.md))
        return next((p for p in found if p.display_name == display_name), None)

    def canonical(self, play: plays_pb2.Play) -> dict[str, Any]:
        return play_to_file(play, self.user_label)

    def validate(self, entry: Entry) -> list[Problem]:
        """The server's verdict on the play, changing nothing: its problems are returned, its
        warnings (allowed, but probably not meant) kept in entry.warnings."""
        try:
            if entry.current is None:
                request = plays_pb2.CreatePlayRequest(play=entry.play, validate_only=True)
                checked = self.plays.CreatePlay(request, metadata=self.md)
            else:
                checked = self.plays.UpdatePlay(self._update(entry, validate_only=True), metadata=self.md)
        except grpc.RpcError as error:
            if error.code() not in PLAY_FAILURES:
                raise
            reason, violations = error_details(error)
            if not violations:
                return [entry.source.problem("", error.details() or "", reason or error.code().name)]
            return [entry.source.problem(file_path(v.field), v.description, v.reason) for v in violations]
        entry.warnings = [entry.source.problem(file_path(w.field), w.description, w.reason) for w in checked.warnings]
        return []

    def create(self, entry: Entry) -> plays_pb2.Play:
        request = plays_pb2.CreatePlayRequest(play=entry.play, request_id=str(uuid.uuid4()))
        return self.plays.CreatePlay(request, metadata=self.md)

    def update(self, entry: Entry) -> plays_pb2.Play:
        return self.plays.UpdatePlay(self._update(entry, validate_only=False), metadata=self.md)

    def _update(self, entry: Entry, *, validate_only: bool) -> plays_pb2.UpdatePlayRequest:
        assert entry.current is not None
        play = plays_pb2.Play()
        play.CopyFrom(entry.play)
        play.name, play.etag = entry.current.name, entry.current.etag
        return plays_pb2.UpdatePlayRequest(
            play=play,
            update_mask=EVERYTHING,
            validate_only=validate_only,
            request_id="" if validate_only else str(uuid.uuid4()),
        )


def _session(work: Callable[[Session], T], failure_exit: int = 1) -> T:
    return call(
        "users",
        users_pb2_grpc.UserServiceStub,
        lambda users, md: call(
            "rules",
            plays_pb2_grpc.PlayServiceStub,
            lambda plays, _: work(Session(plays, users, md)),
            failure_exit,
        ),
        failure_exit,
    )


def _read(session: Session, path: Path) -> tuple[list[Entry], list[Problem]]:
    """Every play of the files, converted and paired with the saved play of its name; problems
    of files that are not plays at all come back on their own."""
    sources, file_problems = load_path(path)
    owners = session.resolve_emails(owner_emails(sources))
    entries = []
    for source in sources:
        play, problems = convert(source, lambda email: owners.get(email.lower()))
        entry = Entry(source, play, problems=problems)
        if not problems:
            entry.current = session.find(play.display_name)
            if entry.current is not None:
                fill_defaults(entry.play, entry.current)
        entries.append(entry)
    return entries, file_problems


def _check(session: Session, path: Path) -> tuple[list[Entry], list[Problem]]:
    """_read, then the server's validation of every play and the names used twice."""
    entries, problems = _read(session, path)
    for entry in entries:
        if not entry.problems:
            entry.problems += session.validate(entry)
    _mark_duplicates(entries)
    return entries, problems + [p for e in entries for p in e.problems]


def _mark_duplicates(entries: list[Entry]) -> None:
    named = [e for e in entries if e.play.display_name]
    for position, problem in duplicate_names([(e.source, e.play.display_name) for e in named]).items():
        named[position].problems.append(problem)


def _print_problems(problems: list[Problem]) -> None:
    for problem in problems:
        errors.print(Text(str(problem), style="red"), soft_wrap=True)


def _print_warnings(entries: list[Entry]) -> int:
    """The server's warnings of every play, as "warning: file: play: path: ..." lines; how many."""
    warnings = [w for e in entries for w in e.warnings]
    for warning in warnings:
        errors.print(Text(f"warning: {warning}", style="yellow"), soft_wrap=True)
    return len(warnings)


@plays_app.command("validate")
def validate(path: Path = FILES) -> None:
    """Check every play of the files with the server (nothing is saved); exit 1 on any problem."""

    def work(session: Session) -> None:
        entries, problems = _check(session, path)
        warned = _print_warnings(entries)
        _print_problems(problems)
        if problems:
            errors.print(Text(f"{len(problems)} problem(s) in {len(entries)} play(s)"), soft_wrap=True)
            raise typer.Exit(1)
        also = f" ({warned} warning(s))" if warned else ""
        console.print(Text(f"{len(entries)} play(s) valid{also}"), soft_wrap=True)

    _session(work)


@plays_app.command("apply")
def apply(path: Path = FILES) -> None:
    """Create or update every play of the files, or, if any of them has a problem, none."""

    def work(session: Session) -> None:
        entries, problems = _check(session, path)
        _print_warnings(entries)
        if problems:
            _print_problems(problems)
            errors.print(Text(f"{len(problems)} problem(s) in {len(entries)} play(s); nothing applied"), soft_wrap=True)
            raise typer.Exit(1)
        if not entries:
            errors.print(Text(f"no plays in {path}"), soft_wrap=True)
            raise typer.Exit(1)
        for entry in entries:
            if entry.current is None:
                created = session.create(entry)
                console.print(Text(f"{entry.name}: created ({created.name}, version {created.version})"))
            elif session.canonical(entry.current) == session.canonical(entry.play):
                console.print(Text(f"{entry.name}: unchanged (version {entry.current.version})"))
            else:
                updated = session.update(entry)
                console.print(Text(f"{entry.name}: updated (version {updated.version})"))

    _session(work)


@plays_app.command("diff")
def diff(path: Path = FILES) -> None:
    """Show how the files differ from the saved plays: exit 0 if not at all, 1 if they do, 2 on errors."""

    def work(session: Session) -> None:
        entries, problems = _read(session, path)
        _mark_duplicates(entries)
        problems += [p for e in entries for p in e.problems]
        differs = False
        for entry in entries:
            if entry.problems:
                continue
            mine = to_yaml(session.canonical(entry.play)).splitlines(keepends=True)
            theirs = to_yaml(session.canonical(entry.current)).splitlines(keepends=True) if entry.current else []
            before = f"{entry.current.name} (version {entry.current.version})" if entry.current else "(new)"
            lines = list(difflib.unified_diff(theirs, mine, before, f"{entry.source.file}: {entry.name}"))
            differs = differs or bool(lines)
            for line in lines:
                colour = {"+": "green", "-": "red", "@": "cyan"}.get(line[:1], "")
                console.print(Text(line.rstrip("\n"), style=colour), soft_wrap=True)
        _print_problems(problems)
        if problems:
            raise typer.Exit(2)
        if differs:
            raise typer.Exit(1)

    _session(work, failure_exit=2)


def _trigger(play: plays_pb2.Play) -> str:
    if play.trigger.kind not in (plays_pb2.TRIGGER_KIND_UNSPECIFIED, plays_pb2.TRIGGER_KIND_EVENT):
        return plays_pb2.TriggerKind.Name(play.trigger.kind).removeprefix("TRIGGER_KIND_").lower()
    if play.trigger.event_type == events_pb2.EVENT_TYPE_CUSTOM:
        return f"custom: {play.trigger.custom_event_type}"
    return events_pb2.EventType.Name(play.trigger.event_type).removeprefix("EVENT_TYPE_").lower()


PLAY_COLUMNS = [
    ("name", lambda p: p.display_name),
    ("status", lambda p: plays_pb2.PlayStatus.Name(p.status).removeprefix("PLAY_STATUS_").lower()),
    ("trigger", _trigger),
    ("version", lambda p: p.version),
    ("matched", lambda p: p.stats.matched),
    ("applied", lambda p: p.stats.applied),
    ("skipped", lambda p: p.stats.skipped),
    ("failed", lambda p: p.stats.failed),
]


@plays_app.command("list")
def list_plays(as_json: bool = JSON) -> None:
    """Every saved play, by name, with its run counts."""

    def work(session: Session) -> list[plays_pb2.Play]:
        request = plays_pb2.ListPlaysRequest(page_size=1000)
        return all_pages(request, "plays", lambda r: session.plays.ListPlays(r, metadata=session.md))

    emit(_session(work), PLAY_COLUMNS, as_json)


@plays_app.command("get")
def get(name: str = typer.Argument(..., help="The play's name, or plays/<id>.")) -> None:
    """One saved play, in the file form (what `apply` takes)."""

    def work(session: Session) -> str:
        if name.startswith("plays/"):
            play = session.plays.GetPlay(plays_pb2.GetPlayRequest(name=name), metadata=session.md)
        else:
            play = session.find(name)
            if play is None:
                errors.print(Text(f"no play is named {name!r}"))
                raise typer.Exit(1)
        text = to_yaml(session.canonical(play))
        if play.has_webhook_secret:  # write-only: the file to apply names where it comes from
            text += "# has a webhook secret: add `webhook_secret_env: <VARIABLE>` to apply this file\n"
        return text

    typer.echo(_session(work), nl=False)


RUN_COLUMNS = (
    ("created", lambda r: r.create_time.ToJsonString() if r.HasField("create_time") else ""),
    ("play", lambda r: r.play),
    ("account", lambda r: r.account_id),
    ("outcome", lambda r: _outcome(r.outcome)),
    ("reason", lambda r: r.reason),
    ("targets", lambda r: ", ".join(a.target for a in r.actions if a.target)),
)


@plays_app.command("runs")
def runs(
    play: str = typer.Option("", "--play", help="A play's name, or plays/<id>."),
    account: str = typer.Option("", "--account", help="Only runs for this account id."),
    outcome: str = typer.Option("", "--outcome", help="pending, applied, skipped or failed."),
    limit: int = typer.Option(50, "--limit", min=1, max=1000, help="Newest runs first, at most this many."),
    as_json: bool = JSON,
) -> None:
    """Recent play runs: which events matched which plays, and what came of their actions."""
    wanted: Any = 0
    if outcome:
        try:
            wanted = plays_pb2.RunOutcome.Value(f"RUN_OUTCOME_{outcome.upper()}")
        except ValueError:
            errors.print(Text(f"unknown outcome {outcome!r}: use pending, applied, skipped or failed"))
            raise typer.Exit(2) from None

    def work(session: Session) -> list[plays_pb2.PlayRun]:
        name = _play_name(session, play) if play else ""
        request = plays_pb2.ListPlayRunsRequest(page_size=limit, play=name, account_id=account, outcome=wanted)
        return list(session.plays.ListPlayRuns(request, metadata=session.md).runs)

    emit(_session(work), RUN_COLUMNS, as_json)


def _play_name(session: Session, play: str) -> str:
    """plays/{uid} as given, or the name of the play with this display name (exit 1: none)."""
    if play.startswith("plays/"):
        return play
    found = session.find(play)
    if found is None:
        errors.print(Text(f"no play is named {play!r}"))
        raise typer.Exit(1)
    return found.name


def _outcome(outcome: int) -> str:
    return plays_pb2.RunOutcome.Name(outcome).removeprefix("RUN_OUTCOME_").lower()


def retry_delay(error: grpc.RpcError) -> float | None:
    """Seconds the server asks to wait before retrying (google.rpc.RetryInfo), if it says."""
    status = rpc_status.from_call(error)
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info.retry_delay.ToNanoseconds() / 1e9
    return None


@plays_app.command("run")
def run(
    play: str = typer.Argument(..., help="An active manual play: its name, or plays/<id>."),
    account: str = typer.Option(..., "--account", help="The account to run it for."),
    request_id: str = typer.Option(
        "", "--request-id", help="Retry a run: the same id returns the run it started (default: a new one)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the run as JSON."),
) -> None:
    """Run a manual play for one account now; its actions then execute in the background."""
    if not request_id:
        request_id = str(uuid.uuid4())
        errors.print(Text(f"request id: {request_id} (to retry this run: --request-id {request_id})"), soft_wrap=True)

    def work(session: Session) -> plays_pb2.PlayRun:
        request = plays_pb2.RunPlayRequest(name=_play_name(session, play), account_id=account, request_id=request_id)
        try:
            return session.plays.RunPlay(request, metadata=session.md)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise  # printed by `call`, like any failure
            print_error(error)
            delay = retry_delay(error)
            wait = f"in {delay:.0f} s" if delay is not None else "later"
            errors.print(Text(f"  retry {wait} with --request-id {request_id}"), soft_wrap=True)
            raise typer.Exit(1) from None

    started = _session(work)
    if as_json:
        print(json.dumps(as_dict(started), indent=2))
        return
    line = f"{started.name}: {_outcome(started.outcome)}"
    console.print(Text(line + (f" ({started.reason})" if started.reason else "")), soft_wrap=True)


@plays_app.command("test")
def test(
    path: Path = typer.Argument(..., help="A file holding one play (the form `apply` reads)."),
    event: str = typer.Option(
        ...,
        "--event",
        help='The sample event as JSON, e.g. \'{"account_id": "acct-1", "type": "account_created", '
        '"attributes": {"segment": "Enterprise"}}\', or @FILE to read it from a file.',
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the TestPlayResponse as JSON."),
) -> None:
    """Dry run (TestPlay): would the file's play match the event, and which actions would run?
    Nothing is recorded and nothing changes. Exit 0 either way; 1 on a problem."""
    text = event
    if event.startswith("@"):
        try:
            text = Path(event[1:]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            errors.print(Text(f"--event: cannot read {event[1:]}: {error}"), soft_wrap=True)
            raise typer.Exit(1) from None
    sample, issues = event_from_json(text)
    problems = [Problem("--event", "", where, description, reason) for where, description, reason in issues]

    def work(session: Session) -> plays_pb2.TestPlayResponse:
        entries, trouble = _read(session, path)
        found = trouble + [p for e in entries for p in e.problems]
        if not found and len(entries) != 1:
            found.append(Problem(str(path), "", "", f"a file with one play (this one has {len(entries)})", "PLAYS"))
        if found or problems:
            _print_problems(found + problems)
            raise typer.Exit(1)
        entry = entries[0]
        play = plays_pb2.Play()
        play.CopyFrom(entry.play)
        if entry.current is not None:  # the saved play's identity: competing plays are judged as for it
            play.uid = entry.current.uid
        try:
            reply: plays_pb2.TestPlayResponse = session.plays.TestPlay(
                plays_pb2.TestPlayRequest(play=play, events=[sample]), metadata=session.md
            )
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.INVALID_ARGUMENT:
                raise
            reason, violations = error_details(error)
            _print_problems(
                [_test_problem(entry, v.field, v.description, v.reason) for v in violations]
                or [entry.source.problem("", error.details() or "", reason or error.code().name)]
            )
            raise typer.Exit(1) from None
        return reply

    reply = _session(work)
    if as_json:
        print(json.dumps(as_dict(reply), indent=2))
        return
    matches = [m for result in reply.results for m in result.matches]
    if not matches:
        console.print(Text("not matched: the play would not run for this event"), soft_wrap=True)
        return
    for match in matches:
        console.print(Text(f"matched: {match.display_name or match.play}"), soft_wrap=True)
        for action in match.actions:
            line = f"  {action.index + 1}. {action.description}"
            if action.skipped_reason:
                line += f" (skipped: {action.skipped_reason}, {action.winner} wins)"
            console.print(Text(line), soft_wrap=True)


def _test_problem(entry: Entry, field: str, description: str, reason: str) -> Problem:
    """A violation of the TestPlay request: of the play (file terms) or of the event (--event)."""
    if field.startswith("events"):
        where = field.split(".", 1)[1] if "." in field else ""
        return Problem("--event", "", where, description, reason)
    return entry.source.problem(file_path(field), description, reason)


# --- steward accounts ----------------------------------------------------------------------

accounts_app = typer.Typer(no_args_is_help=True, help="Accounts as the rules service knows them.")


def _shown(value: Any) -> str:
    """An attribute's value as written: text as is, anything else as JSON (3, not 3.0)."""
    if isinstance(value, str):
        return value
    return json.dumps(canonical_value(value), ensure_ascii=False)


@accounts_app.command("state")
def state(
    account: str = typer.Argument(..., help="The account id."),
    as_json: bool = typer.Option(False, "--json", help="Print the AccountState as JSON."),
) -> None:
    """What plays see of an account: its attributes (from account events, its team as
    <role>___tid), its parent, and the segments of active plays it is in now."""

    def work(stubs: tuple[Any, Any], md: list[tuple[str, str]]) -> tuple[events_pb2.AccountState, dict[str, str]]:
        plays, events = stubs
        found = events.GetAccountState(events_pb2.GetAccountStateRequest(account_id=account), metadata=md)
        names = {}
        for segment in found.segments:  # a few plays: their display names, one call each
            try:
                names[segment] = plays.GetPlay(plays_pb2.GetPlayRequest(name=segment), metadata=md).display_name
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.NOT_FOUND:  # deleted since: shown by name only
                    raise
        return found, names

    def stubs(channel: grpc.Channel) -> tuple[Any, Any]:
        return plays_pb2_grpc.PlayServiceStub(channel), events_pb2_grpc.AccountEventServiceStub(channel)

    found, names = call("rules", stubs, work)
    if as_json:
        print(json.dumps(as_dict(found), indent=2))
        return
    console.print(Text(f"account: {found.account_id}"), soft_wrap=True)
    console.print(Text(f"parent: {found.parent_account_id or '(none)'}"), soft_wrap=True)
    if found.HasField("update_time"):
        console.print(Text(f"updated: {found.update_time.ToJsonString()}"), soft_wrap=True)
    if found.HasField("next_time_check"):  # when the clock will next look at its time-based segments
        console.print(Text(f"next time check: {found.next_time_check.ToJsonString()}"), soft_wrap=True)
    attributes = MessageToDict(found.attributes)
    table = Table("attribute", "value", title="attributes")
    for key in sorted(attributes):
        table.add_row(Text(key), Text(_shown(attributes[key])))
    console.print(table)
    if not found.segments:
        console.print(Text("segments: (none)"))
        return
    segments = Table("segment", "play", title="segments")
    for segment in found.segments:
        segments.add_row(Text(names.get(segment, "")), Text(segment))
    console.print(segments)
