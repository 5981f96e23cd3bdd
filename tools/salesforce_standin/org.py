"""The emulated org: an in-memory SQLite database of accounts, users and territory associations.

AccountUserTerritory2View is a SQL view over the associations, so it can never disagree with them:

* one row per ObjectTerritory2Association x UserTerritory2Association on the same territory,
* only for territories of the Active Territory2Model (Planning and Archived models never show),
* only for user associations with IsActive = true. Salesforce documents the view as "the users assigned
  to the territories assigned to an account" (the Users in Assigned Territories related list) and does not
  expose IsActive on it; the emulator takes an inactive association as "not assigned", so a connector that
  rebuilds the view from UserTerritory2Association must filter on `IsActive = true` too. Users whose
  User.IsActive is false keep their rows: deactivating a user is not an ETM change.
* Id: a deterministic 18-character id derived from the two association ids (key prefix 0Xv, chosen by the
  emulator), so it is stable while both associations exist and new when either is replaced.
* LastModifiedDate: the later of the two associations' LastModifiedDate. Renaming a user or changing an
  email (User.LastModifiedDate) does not touch it, nor does activating a model, exactly the cases where an
  incremental `LastModifiedDate >` sync misses changes in a real org.

Dates are stored as Salesforce renders them, UTC text `2025-01-01T00:00:00.000+0000`, so they sort and
compare as text. Text columns use COLLATE NOCASE: SOQL `=` on text is case-insensitive.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tools.salesforce_standin.ids import make_id, pair_id
from tools.salesforce_standin.query import format_datetime

DEFAULT_ROLES: tuple[str | None, ...] = ("CSM", "Account Executive", "Sales Manager", None)
# Salesforce's standard TeamMemberRole values, and no role.
DEFAULT_TEAM_ROLES: tuple[str | None, ...] = (
    "Account Manager",
    "Sales Rep",
    "Executive Sponsor",
    "Lead Qualifier",
    None,
)
MODEL_STATES = ("Active", "Planning", "Archived")

_SCHEMA = """
CREATE TABLE "Account" (
    "Id" TEXT PRIMARY KEY COLLATE NOCASE, "Name" TEXT NOT NULL COLLATE NOCASE, "LastModifiedDate" TEXT NOT NULL
);
CREATE TABLE "User" (
    "Id" TEXT PRIMARY KEY COLLATE NOCASE, "Username" TEXT NOT NULL UNIQUE COLLATE NOCASE,
    "FirstName" TEXT COLLATE NOCASE, "LastName" TEXT NOT NULL COLLATE NOCASE, "Name" TEXT NOT NULL COLLATE NOCASE,
    "Email" TEXT NOT NULL COLLATE NOCASE, "IsActive" INTEGER NOT NULL, "LastModifiedDate" TEXT NOT NULL
);
CREATE INDEX "User_Email" ON "User" ("Email");
CREATE TABLE "Territory2Model" (
    "Id" TEXT PRIMARY KEY COLLATE NOCASE, "Name" TEXT NOT NULL COLLATE NOCASE,
    "DeveloperName" TEXT NOT NULL COLLATE NOCASE, "State" TEXT NOT NULL COLLATE NOCASE,
    "LastModifiedDate" TEXT NOT NULL
);
CREATE TABLE "Territory2" (
    "Id" TEXT PRIMARY KEY COLLATE NOCASE, "Name" TEXT NOT NULL COLLATE NOCASE,
    "DeveloperName" TEXT NOT NULL COLLATE NOCASE,
    "Territory2ModelId" TEXT NOT NULL COLLATE NOCASE REFERENCES "Territory2Model" ("Id"),
    "LastModifiedDate" TEXT NOT NULL
);
CREATE INDEX "Territory2_Model" ON "Territory2" ("Territory2ModelId");
CREATE TABLE "ObjectTerritory2Association" (
    "Id" TEXT PRIMARY KEY COLLATE NOCASE,
    "ObjectId" TEXT NOT NULL COLLATE NOCASE REFERENCES "Account" ("Id"),
    "Territory2Id" TEXT NOT NULL COLLATE NOCASE REFERENCES "Territory2" ("Id"),
    "AssociationCause" TEXT NOT NULL COLLATE NOCASE, "LastModifiedDate" TEXT NOT NULL,
    UNIQUE ("ObjectId", "Territory2Id")
);
CREATE INDEX "ObjectTerritory2Association_Territory" ON "ObjectTerritory2Association" ("Territory2Id");
CREATE INDEX "ObjectTerritory2Association_Object" ON "ObjectTerritory2Association" ("ObjectId", "Id");
CREATE TABLE "UserTerritory2Association" (
    "Id" TEXT PRIMARY KEY COLLATE NOCASE,
    "UserId" TEXT NOT NULL COLLATE NOCASE REFERENCES "User" ("Id"),
    "Territory2Id" TEXT NOT NULL COLLATE NOCASE REFERENCES "Territory2" ("Id"),
    "RoleInTerritory2" TEXT COLLATE NOCASE, "IsActive" INTEGER NOT NULL, "LastModifiedDate" TEXT NOT NULL,
    UNIQUE ("UserId", "Territory2Id")
);
CREATE INDEX "UserTerritory2Association_Territory" ON "UserTerritory2Association" ("Territory2Id");
CREATE TABLE "AccountTeamMember" (
    "Id" TEXT PRIMARY KEY COLLATE NOCASE,
    "AccountId" TEXT NOT NULL COLLATE NOCASE REFERENCES "Account" ("Id"),
    "UserId" TEXT NOT NULL COLLATE NOCASE REFERENCES "User" ("Id"),
    "TeamMemberRole" TEXT COLLATE NOCASE, "AccountAccessLevel" TEXT NOT NULL COLLATE NOCASE,
    "LastModifiedDate" TEXT NOT NULL,
    UNIQUE ("AccountId", "UserId")
);
CREATE INDEX "AccountTeamMember_Account" ON "AccountTeamMember" ("AccountId", "Id");
CREATE VIEW "AccountUserTerritory2View" AS
SELECT sf_pair_id(o."Id", u."Id") AS "Id", o."ObjectId" AS "AccountId", u."UserId" AS "UserId",
       u."RoleInTerritory2" AS "RoleInTerritory2", o."Territory2Id" AS "Territory2Id",
       max(o."LastModifiedDate", u."LastModifiedDate") AS "LastModifiedDate"
FROM "ObjectTerritory2Association" o
JOIN "UserTerritory2Association" u ON u."Territory2Id" = o."Territory2Id" AND u."IsActive" = 1
JOIN "Territory2" t ON t."Id" = o."Territory2Id"
JOIN "Territory2Model" m ON m."Id" = t."Territory2ModelId" AND m."State" = 'Active';
"""

_FIRST = (  # noqa: SIM905
    "Ava Ben Chloe Daniel Elena Farid Grace Hugo Iris Jonas Keiko Liam Maya Noah Olga Priya Quinn Rafael Sofia "
    "Tariq Uma Victor Wen Ximena Yusuf Zoe Amara Bruno Carmen Dmitri"
).split()
_LAST = (  # noqa: SIM905
    "Adams Becker Chen Dubois Evans Fischer Garcia Hansen Ito Jensen Kowalski Lopez Martin Nakamura Okafor Petrov "
    "Quispe Rossi Silva Tanaka Urban Vargas Weber Xu Yilmaz Zimmermann"
).split()
_REGIONS = ("AMER", "EMEA", "APAC", "LATAM")
_SEGMENTS = ("Enterprise", "Commercial", "Strategic", "Mid-Market", "Public Sector")
_COMPANY = ("Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Tyrell", "Cyberdyne", "Soylent", "Hooli")
_SUFFIX = ("Inc.", "GmbH", "Ltd", "LLC", "S.A.", "AG", "Corp.", "KK", "BV", "Pty Ltd")

# Each object's ids start at a different, realistic-looking sequence number.
_SEQUENCE_START = {"001": 9_000_000_000, "005": 7_000_000_000, "0MA": 4_000_000_000, "0MI": 5_000_000_000}


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Summary:
    """What `generate` built."""

    accounts: int
    users: int
    territories: int
    object_associations: int
    user_associations: int
    view_rows: int
    active_model_id: str
    planning_model_id: str
    archived_model_id: str


class Org:
    """One Salesforce org's territory data. Thread-safe: every read and write holds `lock`."""

    def __init__(self, *, clock: Callable[[], dt.datetime] | None = None) -> None:
        self.connection = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        self.connection.create_function("sf_pair_id", 2, _view_id, deterministic=True)
        self.connection.executescript(_SCHEMA)
        self.lock = threading.RLock()
        self.clock: Callable[[], dt.datetime] = clock or _utc_now
        self.org_id = make_id("00D", 3_000_000_000)
        self._sequences: dict[str, int] = {}
        self.role_values: list[str] = []  # RoleInTerritory2 picklist values, in the order first seen
        self.team_roles: list[str] = []  # TeamMemberRole picklist values, likewise

    # ---- plumbing ----

    def next_id(self, key_prefix: str) -> str:
        number = self._sequences.get(key_prefix, _SEQUENCE_START.get(key_prefix, 6_000_000_000)) + 1
        self._sequences[key_prefix] = number
        return make_id(key_prefix, number)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self.connection.execute("BEGIN")
            try:
                yield self.connection
            except BaseException:
                self.connection.execute("ROLLBACK")
                raise
            self.connection.execute("COMMIT")

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Runs a read-only SQL statement on the org (for tests and tools); rows as dicts."""
        with self.lock:
            cursor = self.connection.execute(sql, params)
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def _stamp(self, at: dt.datetime | None) -> str:
        return format_datetime(at or self.clock())

    def _remember_role(self, role: str | None) -> None:
        if role is not None and role not in self.role_values:
            self.role_values.append(role)

    # ---- reads ----

    def count(self, sobject: str) -> int:
        with self.lock:
            return int(self.connection.execute(f'SELECT COUNT(*) FROM "{sobject}"').fetchone()[0])

    def model_id(self, state: str = "Active") -> str | None:
        with self.lock:
            row = self.connection.execute(
                'SELECT "Id" FROM "Territory2Model" WHERE "State" = ? ORDER BY "Id" LIMIT 1', (state,)
            ).fetchone()
        return None if row is None else str(row[0])

    def territory_ids(self, model_id: str | None = None) -> list[str]:
        model_id = model_id or self.model_id("Active")
        with self.lock:
            rows = self.connection.execute(
                'SELECT "Id" FROM "Territory2" WHERE "Territory2ModelId" = ? ORDER BY "Id"', (model_id,)
            ).fetchall()
        return [str(row[0]) for row in rows]

    def account_ids(self) -> list[str]:
        return [row["Id"] for row in self.rows('SELECT "Id" FROM "Account" ORDER BY "Id"')]

    def user_ids(self) -> list[str]:
        return [row["Id"] for row in self.rows('SELECT "Id" FROM "User" ORDER BY "Id"')]

    def view_rows(self, account_id: str | None = None) -> list[dict[str, Any]]:
        """AccountUserTerritory2View rows (all accounts unless one is given) with the user's Email and Name."""
        sql = (
            'SELECT v."Id", v."AccountId", v."UserId", v."RoleInTerritory2", v."Territory2Id", v."LastModifiedDate", '
            'u."Email", u."Name" FROM "AccountUserTerritory2View" v JOIN "User" u ON u."Id" = v."UserId"'
        )
        if account_id is not None:
            return self.rows(sql + ' WHERE v."AccountId" = ? ORDER BY v."Id"', (account_id,))
        return self.rows(sql + ' ORDER BY v."AccountId", v."Id"')

    def assignments(self) -> set[tuple[str, str, str | None]]:
        """The view as a set of (AccountId, UserId, RoleInTerritory2)."""
        with self.lock:
            rows = self.connection.execute(
                'SELECT "AccountId", "UserId", "RoleInTerritory2" FROM "AccountUserTerritory2View"'
            ).fetchall()
        return {(row[0], row[1], row[2]) for row in rows}

    def accounts_with_rows(self) -> list[tuple[str, int]]:
        """(AccountId, number of view rows), largest first: handy to pick an account with many rows."""
        rows = self.rows(
            'SELECT "AccountId", COUNT(*) AS n FROM "AccountUserTerritory2View" GROUP BY "AccountId" '
            'ORDER BY n DESC, "AccountId"'
        )
        return [(row["AccountId"], row["n"]) for row in rows]

    def team_members(self) -> set[tuple[str, str, str | None]]:
        """AccountTeamMember as a set of (AccountId, UserId, TeamMemberRole)."""
        rows = self.rows('SELECT "AccountId", "UserId", "TeamMemberRole" FROM "AccountTeamMember"')
        return {(row["AccountId"], row["UserId"], row["TeamMemberRole"]) for row in rows}

    # ---- writes (each bumps LastModifiedDate of what it changes; `at` overrides the clock) ----

    def add_team_member(
        self, account_id: str, user_id: str, role: str | None, *, access: str = "Edit", at: dt.datetime | None = None
    ) -> str:
        """A user on an account's team (one membership per account and user, as in Salesforce)."""
        member_id = self.next_id("01M")
        if role is not None and role not in self.team_roles:
            self.team_roles.append(role)
        with self.transaction() as db:
            db.execute(
                'INSERT INTO "AccountTeamMember" VALUES (?, ?, ?, ?, ?, ?)',
                (member_id, account_id, user_id, role, access, self._stamp(at)),
            )
        return member_id

    def set_team_role(self, member_id: str, role: str | None, *, at: dt.datetime | None = None) -> None:
        if role is not None and role not in self.team_roles:
            self.team_roles.append(role)
        self._update("AccountTeamMember", member_id, {"TeamMemberRole": role}, at)

    def remove_team_member(self, member_id: str) -> bool:
        """Salesforce deletes a member taken off a team: the row is gone, not flagged."""
        with self.transaction() as db:
            return db.execute('DELETE FROM "AccountTeamMember" WHERE "Id" = ?', (member_id,)).rowcount == 1

    def add_account(self, name: str, *, at: dt.datetime | None = None) -> str:
        account_id = self.next_id("001")
        with self.transaction() as db:
            db.execute('INSERT INTO "Account" VALUES (?, ?, ?)', (account_id, name, self._stamp(at)))
        return account_id

    def add_user(
        self,
        email: str,
        name: str | None = None,
        *,
        is_active: bool = True,
        username: str | None = None,
        at: dt.datetime | None = None,
    ) -> str:
        user_id = self.next_id("005")
        name = name or email.split("@")[0].replace(".", " ").title()
        first, _, last = name.rpartition(" ")
        with self.transaction() as db:
            db.execute(
                'INSERT INTO "User" VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
                (user_id, username or email, first or None, last, name, email, int(is_active), self._stamp(at)),
            )
        return user_id

    def update_user(
        self,
        user_id: str,
        *,
        email: str | None = None,
        name: str | None = None,
        is_active: bool | None = None,
        at: dt.datetime | None = None,
    ) -> None:
        """Changes a user's Email, Name or IsActive (bumps User.LastModifiedDate only, not the view's)."""
        changes: dict[str, Any] = {}
        if email is not None:
            changes["Email"] = email
        if name is not None:
            first, _, last = name.rpartition(" ")
            changes.update(Name=name, FirstName=first or None, LastName=last)
        if is_active is not None:
            changes["IsActive"] = int(is_active)
        self._update("User", user_id, changes, at)

    def add_model(self, name: str, state: str = "Planning", *, at: dt.datetime | None = None) -> str:
        if state not in MODEL_STATES:
            raise ValueError(f"state must be one of {MODEL_STATES}")
        model_id = self.next_id("0MA")
        with self.transaction() as db:
            if state == "Active":
                db.execute(
                    'UPDATE "Territory2Model" SET "State" = \'Archived\', "LastModifiedDate" = ? WHERE "State" = ?',
                    (self._stamp(at), "Active"),
                )
            db.execute(
                'INSERT INTO "Territory2Model" VALUES (?, ?, ?, ?, ?)',
                (model_id, name, _developer_name(name), state, self._stamp(at)),
            )
        return model_id

    def set_model_state(self, model_id: str, state: str, *, at: dt.datetime | None = None) -> None:
        """Activating a model archives the one that was Active, as Salesforce allows one Active model."""
        if state not in MODEL_STATES:
            raise ValueError(f"state must be one of {MODEL_STATES}")
        with self.transaction() as db:
            if state == "Active":
                db.execute(
                    'UPDATE "Territory2Model" SET "State" = \'Archived\', "LastModifiedDate" = ? '
                    'WHERE "State" = \'Active\' AND "Id" != ?',
                    (self._stamp(at), model_id),
                )
            self._update_in(db, "Territory2Model", model_id, {"State": state}, at)

    def add_territory(self, name: str, model_id: str | None = None, *, at: dt.datetime | None = None) -> str:
        model_id = model_id or self.model_id("Active")
        if model_id is None:
            raise ValueError("no Active territory model: pass model_id")
        territory_id = self.next_id("0MI")
        with self.transaction() as db:
            db.execute(
                'INSERT INTO "Territory2" VALUES (?, ?, ?, ?, ?)',
                (territory_id, name, _developer_name(name), model_id, self._stamp(at)),
            )
        return territory_id

    def assign_account(
        self, account_id: str, territory_id: str, *, cause: str = "Territory2Manual", at: dt.datetime | None = None
    ) -> str:
        """Creates the ObjectTerritory2Association of an account with a territory; returns its id."""
        association_id = self.next_id("0R0")
        with self.transaction() as db:
            db.execute(
                'INSERT INTO "ObjectTerritory2Association" VALUES (?, ?, ?, ?, ?)',
                (association_id, account_id, territory_id, cause, self._stamp(at)),
            )
        return association_id

    def unassign_account(self, account_id: str, territory_id: str) -> bool:
        with self.transaction() as db:
            cursor = db.execute(
                'DELETE FROM "ObjectTerritory2Association" WHERE "ObjectId" = ? AND "Territory2Id" = ?',
                (account_id, territory_id),
            )
        return cursor.rowcount > 0

    def add_user_to_territory(
        self,
        user_id: str,
        territory_id: str,
        role: str | None = None,
        *,
        is_active: bool = True,
        at: dt.datetime | None = None,
    ) -> str:
        """Creates the UserTerritory2Association of a user with a territory; returns its id."""
        association_id = self.next_id("0R1")
        self._remember_role(role)
        with self.transaction() as db:
            db.execute(
                'INSERT INTO "UserTerritory2Association" VALUES (?, ?, ?, ?, ?, ?)',
                (association_id, user_id, territory_id, role, int(is_active), self._stamp(at)),
            )
        return association_id

    def remove_user_from_territory(self, user_id: str, territory_id: str) -> bool:
        with self.transaction() as db:
            cursor = db.execute(
                'DELETE FROM "UserTerritory2Association" WHERE "UserId" = ? AND "Territory2Id" = ?',
                (user_id, territory_id),
            )
        return cursor.rowcount > 0

    def set_role(self, user_id: str, territory_id: str, role: str | None, *, at: dt.datetime | None = None) -> None:
        """Changes RoleInTerritory2 of a user in a territory (bumps the association's LastModifiedDate)."""
        self._remember_role(role)
        self._update_association(user_id, territory_id, {"RoleInTerritory2": role}, at)

    def set_user_association_active(
        self, user_id: str, territory_id: str, active: bool, *, at: dt.datetime | None = None
    ) -> None:
        self._update_association(user_id, territory_id, {"IsActive": int(active)}, at)

    def touch_user_association(self, user_id: str, territory_id: str, *, at: dt.datetime | None = None) -> None:
        self._update_association(user_id, territory_id, {}, at)

    def _update_association(
        self, user_id: str, territory_id: str, changes: dict[str, Any], at: dt.datetime | None
    ) -> None:
        with self.lock:
            row = self.connection.execute(
                'SELECT "Id" FROM "UserTerritory2Association" WHERE "UserId" = ? AND "Territory2Id" = ?',
                (user_id, territory_id),
            ).fetchone()
        if row is None:
            raise KeyError(f"user {user_id} is not in territory {territory_id}")
        self._update("UserTerritory2Association", row[0], changes, at)

    def _update(self, table: str, record_id: str, changes: dict[str, Any], at: dt.datetime | None) -> None:
        with self.transaction() as db:
            self._update_in(db, table, record_id, changes, at)

    def _update_in(
        self, db: sqlite3.Connection, table: str, record_id: str, changes: dict[str, Any], at: dt.datetime | None
    ) -> None:
        changes = {**changes, "LastModifiedDate": self._stamp(at)}
        assignments = ", ".join(f'"{column}" = ?' for column in changes)
        cursor = db.execute(f'UPDATE "{table}" SET {assignments} WHERE "Id" = ?', (*changes.values(), record_id))
        if cursor.rowcount == 0:
            raise KeyError(f"no {table} {record_id}")


def _developer_name(name: str) -> str:
    return "".join(char if char.isalnum() else "_" for char in name).strip("_") or "X"


def _view_id(object_association: str, user_association: str) -> str:
    return pair_id("0Xv", object_association, user_association)


# ---- a realistic org ------------------------------------------------------------------------------


def generate(
    org: Org,
    *,
    accounts: int = 200,
    users: int = 60,
    territories: int = 12,
    roles: Sequence[str | None] = DEFAULT_ROLES,
    seed: int = 0,
    users_per_territory: tuple[int, int] = (2, 8),
    second_territory_share: float = 0.2,
    planning_share: float = 0.3,
    inactive_association_share: float = 0.03,
    inactive_user_share: float = 0.02,
    unassigned_share: float = 0.02,
    start: dt.datetime = dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    end: dt.datetime = dt.datetime(2025, 6, 30, tzinfo=dt.UTC),
) -> Summary:
    """Fills `org` with a deterministic org for `seed`.

    Three territory models: Active (`territories` territories), Planning (half as many) and Archived (a
    quarter). Every territory has a few users (`users_per_territory`, drawn from the active users) with a
    RoleInTerritory2 drawn from `roles` (None: no role) and IsActive false for a small share. Accounts sit in
    one Active territory, a fifth of them in a second one, some in Planning/Archived territories too, and a
    few in none. LastModifiedDates are spread between `start` and `end`.
    """
    rng = random.Random(seed)
    start = start.astimezone(dt.UTC)
    span = max(1, int((end - start).total_seconds()))
    days = [(start + dt.timedelta(days=day)).strftime("%Y-%m-%d") for day in range(span // 86400 + 2)]
    first_second = start.hour * 3600 + start.minute * 60 + start.second

    def stamp() -> str:  # format_datetime(start + random offset), without datetime objects: it runs per row
        day, second = divmod(first_second + rng.randrange(span), 86400)
        hour, rest = divmod(second, 3600)
        return f"{days[day]}T{hour:02d}:{rest // 60:02d}:{rest % 60:02d}.000+0000"

    for role in roles:
        org._remember_role(role)
    model_rows = [
        (org.next_id("0MA"), "FY25 Territories", "FY25_Territories", "Active", stamp()),
        (org.next_id("0MA"), "FY26 Plan", "FY26_Plan", "Planning", stamp()),
        (org.next_id("0MA"), "FY24 Territories", "FY24_Territories", "Archived", stamp()),
    ]
    active_model, planning_model, archived_model = (row[0] for row in model_rows)
    territory_rows: list[tuple[Any, ...]] = []
    by_model: dict[str, list[str]] = {active_model: [], planning_model: [], archived_model: []}
    for model_id, count, tag in (
        (active_model, territories, "FY25"),
        (planning_model, max(1, territories // 2), "FY26"),
        (archived_model, max(1, territories // 4), "FY24"),
    ):
        for index in range(count):
            name = f"{_REGIONS[index % len(_REGIONS)]} {_SEGMENTS[(index // len(_REGIONS)) % len(_SEGMENTS)]} "
            name += f"{index + 1:03d} {tag}"
            territory_id = org.next_id("0MI")
            by_model[model_id].append(territory_id)
            territory_rows.append((territory_id, name, _developer_name(name), model_id, stamp()))

    user_rows: list[tuple[Any, ...]] = []
    active_users: list[str] = []
    for index in range(users):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        email = f"{first.lower()}.{last.lower()}{index + 1}@example.com"
        is_active = rng.random() >= inactive_user_share
        user_id = org.next_id("005")
        if is_active:
            active_users.append(user_id)
        user_rows.append((user_id, email, first, last, f"{first} {last}", email, int(is_active), stamp()))
    if not active_users and user_rows:
        active_users.append(user_rows[0][0])

    user_association_rows: list[tuple[Any, ...]] = []
    low, high = users_per_territory
    for ids in by_model.values():
        for territory_id in ids:
            size = min(len(active_users), rng.randint(low, high))
            for user_id in rng.sample(active_users, size):
                is_active = rng.random() >= inactive_association_share
                user_association_rows.append(
                    (org.next_id("0R1"), user_id, territory_id, rng.choice(roles), int(is_active), stamp())
                )

    account_rows: list[tuple[Any, ...]] = []
    object_association_rows: list[tuple[Any, ...]] = []
    active, planning, archived = by_model[active_model], by_model[planning_model], by_model[archived_model]
    for index in range(accounts):
        account_id = org.next_id("001")
        name = f"{rng.choice(_COMPANY)} {_SEGMENTS[index % len(_SEGMENTS)]} {index + 1} {rng.choice(_SUFFIX)}"
        account_rows.append((account_id, name, stamp()))
        if not active or rng.random() < unassigned_share:
            continue
        chosen = [rng.choice(active)]
        if len(active) > 1 and rng.random() < second_territory_share:
            other = rng.randrange(len(active) - 1)
            chosen.append(active[other + 1] if active[other] == chosen[0] else active[other])
        if planning and rng.random() < planning_share:
            chosen.append(rng.choice(planning))
        if archived and rng.random() < planning_share / 2:
            chosen.append(rng.choice(archived))
        for territory_id in chosen:
            cause = "Territory2AssignmentRule" if rng.random() < 0.7 else "Territory2Manual"
            object_association_rows.append((org.next_id("0R0"), account_id, territory_id, cause, stamp()))

    with org.transaction() as db:
        db.executemany('INSERT INTO "Territory2Model" VALUES (?, ?, ?, ?, ?)', model_rows)
        db.executemany('INSERT INTO "Territory2" VALUES (?, ?, ?, ?, ?)', territory_rows)
        db.executemany('INSERT INTO "User" VALUES (?, ?, ?, ?, ?, ?, ?, ?)', user_rows)
        db.executemany('INSERT INTO "UserTerritory2Association" VALUES (?, ?, ?, ?, ?, ?)', user_association_rows)
        db.executemany('INSERT INTO "Account" VALUES (?, ?, ?)', account_rows)
        db.executemany('INSERT INTO "ObjectTerritory2Association" VALUES (?, ?, ?, ?, ?)', object_association_rows)
    return Summary(
        accounts=len(account_rows),
        users=len(user_rows),
        territories=len(territory_rows),
        object_associations=len(object_association_rows),
        user_associations=len(user_association_rows),
        view_rows=org.count("AccountUserTerritory2View"),
        active_model_id=active_model,
        planning_model_id=planning_model,
        archived_model_id=archived_model,
    )


def generate_rows(org: Org, rows: int, *, seed: int = 0, roles: Sequence[str | None] = DEFAULT_ROLES) -> Summary:
    """An org whose AccountUserTerritory2View has about `rows` rows (±10%): sizes accounts, territories, users.

    With the defaults an account has ~5.7 view rows (4.85 active users per territory, 1.18 territories),
    so 1,000,000 rows are ~175,000 accounts in ~440 territories: a benchmark-sized org built in seconds.
    """
    accounts = max(1, round(rows / 5.7))
    territories = max(4, accounts // 400)
    users = max(12, territories * 5 // 2)
    return generate(org, accounts=accounts, users=users, territories=territories, roles=roles, seed=seed)


def generate_account_teams(
    org: Org,
    *,
    members: tuple[int, int] = (1, 4),
    roles: Sequence[str | None] = DEFAULT_TEAM_ROLES,
    seed: int = 0,
    start: dt.datetime = dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    end: dt.datetime = dt.datetime(2025, 6, 30, tzinfo=dt.UTC),
) -> int:
    """Gives every account of `org` (generate() first) a team of `members` active users with a
    TeamMemberRole drawn from `roles` (None: no role), dated between `start` and `end`. An account
    may have two members in one role (two account managers), as real orgs do. Returns the rows."""
    rng = random.Random(seed)
    users = [row["Id"] for row in org.rows('SELECT "Id" FROM "User" WHERE "IsActive" = 1 ORDER BY "Id"')]
    span = max(1, int((end - start).total_seconds()))
    rows = []
    for account_id in org.account_ids():
        for user_id in rng.sample(users, min(len(users), rng.randint(*members))):
            role = rng.choice(roles)
            if role is not None and role not in org.team_roles:
                org.team_roles.append(role)
            at = start + dt.timedelta(seconds=rng.randrange(span))
            rows.append((org.next_id("01M"), account_id, user_id, role, "Edit", format_datetime(at)))
    with org.transaction() as db:
        db.executemany('INSERT INTO "AccountTeamMember" VALUES (?, ?, ?, ?, ?, ?)', rows)
    return len(rows)
