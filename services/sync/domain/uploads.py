"""File uploads: what a CSV file says, checked before anything is written.

file          UTF-8 (a BOM is allowed), comma-separated, at most MAX_FILE_BYTES; the first
              non-blank line is the header; blank lines are ignored; bad quoting refuses the file
assignments   account_id (or "Account Id") and role columns "<role key>___tid" (user emails) or
              "<role key>___name" ("First Last"); every (line, role column) cell is one
              assignment row, an empty cell one without a user (the role's empty_value decides)
users         email (required), first_name, last_name, license, status, teams ("a;b": display
              names or "teams/{uid}", resolved here against the listed teams to "teams/{uid}",
              which the users service adds the user to along with the row)

A header problem refuses the whole file (INVALID_ARGUMENT, every problem at once); a row problem
skips that row, with its reason, and the rest goes on. Whether a user exists, may hold a role or
has a seat is the users service's to say, not this module's.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field

from services.runtime.errors import FieldViolation, InvalidArgument
from services.sync.domain.runs import RunError

MAX_FILE_BYTES = 50 * 1024 * 1024
BOM = "\ufeff"
EMAIL_SHAPE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ROLE_KEY = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
BY_EMAIL, BY_NAME = "___tid", "___name"
LICENSES = ("PRACTITIONER", "CONTRIBUTOR", "VIEWER")
# What a users file may say; the users service decides what applies (status: new users only,
# CREATED or CREATED_DISABLED).
STATUSES = ("CREATED", "CREATED_DISABLED", "ACTIVE", "DISABLED")
USER_COLUMNS = ("email", "first_name", "last_name", "license", "status", "teams")

Problem = tuple[str, str]  # (reason, description)


def _file_refused(reason: str, message: str, violations: list[FieldViolation] | None = None) -> InvalidArgument:
    return InvalidArgument(reason, message, field_violations=violations or [FieldViolation("data", message, reason)])


def _key(header: str) -> str:
    """A fixed column's name, compared without case, spaces or underscores."""
    return re.sub(r"[\s_]+", "", header.strip().lower())


def _clean(text: str) -> str:
    return " ".join(text.split())


def looks_like_email(text: str) -> bool:
    return bool(EMAIL_SHAPE.match(text))


# --- the file ---


@dataclass(frozen=True)
class Record:
    """One CSV record; line is where it starts in the file (the header is usually line 1)."""

    line: int
    cells: tuple[str, ...]


@dataclass(frozen=True)
class CsvFile:
    text: str
    header: tuple[str, ...]
    header_line: int

    def records(self) -> Iterator[Record]:
        """The records after the header, blank lines left out."""
        reader = csv.reader(io.StringIO(self.text, newline=""), strict=True)
        start = 1
        for cells in reader:
            line, start = start, reader.line_num + 1
            if line <= self.header_line or not any(c.strip() for c in cells):
                continue
            yield Record(line, tuple(cells))


def decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _file_refused("FILE_ENCODING_INVALID", f"the file is not UTF-8 text (byte {error.start})") from None
    return text.removeprefix(BOM)


def read_csv(data: bytes) -> CsvFile:
    """The whole file is read once here, so that malformed CSV is refused before anything is written."""
    if len(data) > MAX_FILE_BYTES:
        raise _file_refused("FILE_TOO_LARGE", f"at most {MAX_FILE_BYTES} bytes; got {len(data)}")
    text = decode(data)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: tuple[str, ...] | None = None
    header_line, start = 0, 1
    try:
        for cells in reader:
            line, start = start, reader.line_num + 1
            if header is None and any(c.strip() for c in cells):
                header, header_line = tuple(cells), line
    except csv.Error as error:
        raise _file_refused("FILE_MALFORMED", f"line {start}: {error}") from None
    if header is None:
        raise _file_refused("HEADER_MISSING", "the file is empty: a header row is required")
    return CsvFile(text, header, header_line)


class _HeaderProblems:
    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, index: int | None, text: str, description: str, reason: str) -> None:
        where = "header" if index is None else f"header[{index}]"
        shown = f"column {index + 1} {text!r}: " if index is not None else ""
        self.items.append(FieldViolation(where, shown + description, reason))

    def raise_if_any(self) -> None:
        if self.items:
            raise _file_refused(
                "HEADER_INVALID",
                "the file's header is invalid: " + "; ".join(v.description for v in self.items),
                self.items,
            )


# --- assignments ---


@dataclass(frozen=True)
class RoleColumn:
    index: int
    header: str
    key: str
    by_name: bool

    @property
    def role(self) -> str:
        return f"roles/{self.key}"


@dataclass(frozen=True)
class AssignmentsLayout:
    width: int
    account_column: int
    roles: tuple[RoleColumn, ...]


def assignments_layout(header: Sequence[str], roles: Collection[str]) -> AssignmentsLayout:
    """roles: the "roles/{key}" names that exist. Every header problem at once, or the layout."""
    problems = _HeaderProblems()
    account: int | None = None
    columns: list[RoleColumn] = []
    by_role: dict[str, int] = {}
    for index, raw in enumerate(header):
        text = raw.strip()
        lowered = text.lower()
        if _key(text) == "accountid":
            if account is not None:
                problems.add(index, text, f"the account id is already column {account + 1}", "COLUMN_REPEATED")
            account = index
            continue
        suffix = next((s for s in (BY_EMAIL, BY_NAME) if lowered.endswith(s)), None)
        if suffix is None:
            problems.add(index, text, "not account_id, <role key>___tid or <role key>___name", "COLUMN_UNKNOWN")
            continue
        key = lowered[: -len(suffix)]
        if not ROLE_KEY.match(key) or f"roles/{key}" not in roles:
            problems.add(index, text, f"no account role roles/{key}", "ROLE_UNKNOWN")
            continue
        if key in by_role:
            problems.add(index, text, f"roles/{key} is already column {by_role[key] + 1}", "COLUMN_REPEATED")
            continue
        by_role[key] = index
        columns.append(RoleColumn(index, text, key, suffix == BY_NAME))
    if account is None:
        problems.add(None, "", "an account_id column is required", "ACCOUNT_ID_COLUMN_MISSING")
    if not columns and not problems.items:
        problems.add(None, "", "at least one <role key>___tid or <role key>___name column", "ROLE_COLUMNS_MISSING")
    problems.raise_if_any()
    assert account is not None
    return AssignmentsLayout(len(header), account, tuple(columns))


@dataclass(frozen=True)
class AssignmentCell:
    """One (line, role column) cell: one assignment row. value "" means no user."""

    line: int
    account_id: str
    column: RoleColumn
    value: str
    problem: Problem | None = None

    @property
    def user_email(self) -> str:
        return "" if self.column.by_name else self.value

    @property
    def user_name(self) -> str:
        return self.value if self.column.by_name else ""


def _width_problem(record: Record, width: int) -> Problem | None:
    if len(record.cells) == width:
        return None
    return "COLUMN_COUNT_MISMATCH", f"the line has {len(record.cells)} cells; the header has {width}"


def _cell(record: Record, index: int) -> str:
    return _clean(record.cells[index]) if index < len(record.cells) else ""


def assignment_cells(layout: AssignmentsLayout, record: Record) -> list[AssignmentCell]:
    """The line's cells, one per role column, each with its problem if any."""
    account = _cell(record, layout.account_column)
    line_problem = _width_problem(record, layout.width)
    if line_problem is None and not account:
        line_problem = ("ACCOUNT_ID_MISSING", "the account_id cell is empty")
    cells = []
    for column in layout.roles:
        value = _cell(record, column.index)
        problem = line_problem
        if problem is None and value and not column.by_name and not looks_like_email(value):
            problem = ("EMAIL_INVALID", f"{value!r} is not an email address")
        cells.append(AssignmentCell(record.line, account, column, value, problem))
    return cells


def cell_error(cell: AssignmentCell, reason: str, description: str) -> RunError:
    return RunError(
        cell.line,
        cell.account_id,
        cell.user_email,
        cell.user_name,
        cell.column.header,
        cell.column.role,
        reason,
        description,
    )


def one_per_line(errors: Sequence[RunError]) -> list[RunError]:
    """A run keeps one error per row (line): the first, with the others in its description."""
    first: dict[int, RunError] = {}
    more: dict[int, list[str]] = {}
    for error in errors:
        if error.row not in first:
            first[error.row] = error
        else:
            more.setdefault(error.row, []).append(f"{error.role_value}: {error.reason} ({error.description})")
    merged = []
    for row, error in first.items():
        if row in more:
            error = RunError(
                error.row,
                error.account_id,
                error.user_email,
                error.user_name,
                error.role_value,
                error.role,
                error.reason,
                f"{error.description}; also {'; '.join(more[row])}",
            )
        merged.append(error)
    return merged


# --- users ---


@dataclass(frozen=True)
class UsersLayout:
    width: int
    columns: dict[str, int]


def users_layout(header: Sequence[str]) -> UsersLayout:
    problems = _HeaderProblems()
    known = {_key(name): name for name in USER_COLUMNS}
    columns: dict[str, int] = {}
    for index, raw in enumerate(header):
        text = raw.strip()
        name = known.get(_key(text))
        if name is None:
            problems.add(index, text, f"not one of {', '.join(USER_COLUMNS)}", "COLUMN_UNKNOWN")
        elif name in columns:
            problems.add(index, text, f"{name} is already column {columns[name] + 1}", "COLUMN_REPEATED")
        else:
            columns[name] = index
    if "email" not in columns:
        problems.add(None, "", "an email column is required", "EMAIL_COLUMN_MISSING")
    problems.raise_if_any()
    return UsersLayout(len(header), columns)


@dataclass(frozen=True)
class TeamDirectory:
    """Teams as the users service lists them: display name (any case) or "teams/{uid}"."""

    by_name: dict[str, str] = field(default_factory=dict)  # lower-cased display name -> teams/{uid}
    names: frozenset[str] = frozenset()

    @classmethod
    def of(cls, teams: Collection[tuple[str, str]]) -> TeamDirectory:
        """teams: ("teams/{uid}", display name) pairs."""
        return cls({_clean(display).lower(): name for name, display in teams}, frozenset(n for n, _ in teams))

    def resolve(self, ref: str) -> str | None:
        ref = _clean(ref)
        if ref.lower().startswith("teams/"):
            name = "teams/" + ref[len("teams/") :].lower()
            return name if name in self.names else None
        return self.by_name.get(ref.lower())


@dataclass(frozen=True)
class UserLine:
    line: int
    email: str
    first_name: str = ""
    last_name: str = ""
    license: str = ""  # one of LICENSES, or "" (unchanged; required for new users)
    status: str = ""  # one of STATUSES, or "" (CREATED for new users)
    teams: tuple[str, ...] = ()  # "teams/{uid}"
    problems: tuple[Problem, ...] = ()

    @property
    def full_name(self) -> str:
        return _clean(f"{self.first_name} {self.last_name}")


def _choice(text: str, prefix: str, allowed: Sequence[str]) -> str | None:
    value = re.sub(r"[\s-]+", "_", text.strip().upper()).removeprefix(prefix)
    return value if value in allowed else None


def user_lines(layout: UsersLayout, records: Iterator[Record], teams: TeamDirectory) -> Iterator[UserLine]:
    """One UserLine per record; a repeated email (any case) is a problem of the later lines."""
    seen: dict[str, int] = {}
    for record in records:

        def cell(name: str, record: Record = record) -> str:
            index = layout.columns.get(name)
            return "" if index is None else _cell(record, index)

        email = cell("email")
        problems: list[Problem] = []
        width = _width_problem(record, layout.width)
        if width:
            problems.append(width)
        if not email:
            problems.append(("EMAIL_MISSING", "the email cell is empty"))
        elif not looks_like_email(email):
            problems.append(("EMAIL_INVALID", f"{email!r} is not an email address"))
        elif email.lower() in seen:
            problems.append(("DUPLICATE_IN_FILE", f"{email} is already on line {seen[email.lower()]}"))
        else:
            seen[email.lower()] = record.line
        license = cell("license")
        license_value = _choice(license, "LICENSE_", LICENSES) if license else ""
        if license_value is None:
            problems.append(("LICENSE_INVALID", f"{license!r}: one of {', '.join(LICENSES).lower()}"))
        status = cell("status")
        status_value = _choice(status, "USER_STATUS_", STATUSES) if status else ""
        if status_value is None:
            problems.append(("STATUS_INVALID", f"{status!r}: one of {', '.join(STATUSES)}"))
        resolved: list[str] = []
        for ref in (r for r in cell("teams").split(";") if r.strip()):
            team = teams.resolve(ref)
            if team is None:
                problems.append(("TEAM_NOT_FOUND", f"no team {_clean(ref)!r}"))
            elif team not in resolved:
                resolved.append(team)
        yield UserLine(
            record.line,
            email,
            cell("first_name"),
            cell("last_name"),
            license_value or "",
            status_value or "",
            tuple(resolved),
            tuple(problems),
        )


def user_error(line: UserLine, reason: str, description: str) -> RunError:
    return RunError(line.line, "", line.email, line.full_name, "", "", reason, description)


def line_error(line: UserLine) -> RunError:
    """A line with problems: the first, with the others in the description."""
    (reason, description), *others = line.problems
    if others:
        description += "; also " + "; ".join(f"{r} ({d})" for r, d in others)
    return user_error(line, reason, description)
