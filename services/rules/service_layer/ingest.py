"""Recording account events: stored, evaluated against the active plays and their runs stored,
all in the one transaction that acknowledges them.

Evaluation happens before the commit, against the plays of the catalog version read in the
same transaction, so an acknowledged event has exactly the runs it will ever have: a crash
before the commit loses nothing the publisher was told about (it retries with the same
event_id), and a redelivered event_id is recognised and not evaluated again.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from services.rules import metrics
from services.rules.domain.criteria import TimeCondition, next_time_check, time_conditions
from services.rules.domain.events import AccountEvent, AccountState, evaluation_input
from services.rules.domain.model import SEGMENT_FACT, EventType, Play
from services.rules.domain.priority import overridden, writes
from services.rules.domain.runs import PlayRun, new_run_id
from services.rules.domain.segments import Flip, TriggerKind, fires, flips
from services.rules.engine.evaluator import CompiledPlay, PlayEngine
from services.rules.unit_of_work import RulesUnitOfWork


@dataclass(frozen=True)
class Published:
    event_id: str
    duplicate: bool
    matched_plays: int


class PlayCatalog:
    """This replica's compiled active plays; recompiled when the catalog version in the
    database moves (a play changed here or on another replica).

    Three engines: event plays (on events), segment plays (on an account's state), and the
    time-based ones among the segment plays (what the clock pass re-evaluates)."""

    def __init__(self) -> None:
        self.engine = PlayEngine()
        self.segments = PlayEngine()
        self.timed = PlayEngine()
        self.version = -1
        self.plays: dict[str, Play] = {}
        self.segment_ids: frozenset[str] = frozenset()
        self.timed_ids: frozenset[str] = frozenset()
        # The relative dates of the time-based plays: when each account is next due a check.
        self.time_conditions: frozenset[TimeCondition] = frozenset()
        # Attribute names known to be in the catalog table (saves a query per event).
        self.known_attributes: set[str] = set()
        # Each active play's update_value roles (priority.writes), for competing runs of one event.
        self.writes: dict[str, list[tuple[int, str]]] = {}
        self._lock = threading.Lock()

    def refresh(self, uow: RulesUnitOfWork) -> None:
        version = uow.plays.catalog_version()
        with self._lock:
            if version == self.version:
                return
            plays = uow.plays.active()
            segments = [p for p in plays if p.kind.is_segment]
            timed = [p for p in segments if p.is_time_based]
            self.engine.load([compiled(p) for p in plays if p.kind is TriggerKind.EVENT])
            self.segments.load([compiled(p) for p in segments])
            self.timed.load([compiled(p) for p in timed])
            self.plays, self.version = {p.id: p for p in plays}, version
            self.writes = {p.id: writes(p) for p in plays}
            self.segment_ids = frozenset(p.id for p in segments)
            self.timed_ids = frozenset(p.id for p in timed)
            self.time_conditions = frozenset().union(*(time_conditions(p.parsed_criteria()) for p in timed))

    def schedule(self, account_id: str, state: AccountState, now: dt.datetime) -> None:
        """Sets when time alone may next change the account's time-based segments."""
        state.next_time_check = next_time_check(self.time_conditions, state.view(account_id), now.timestamp())

    def writes_of(self, play: Play) -> list[tuple[int, str]]:
        return self.writes[play.id] if play.id in self.writes else writes(play)


def compiled(play: Play) -> CompiledPlay:
    return CompiledPlay(play.id, play.trigger_key, play.parsed_criteria())


def _own_change(event: AccountEvent) -> str:
    """The play that made this assignment change, if a play did: it must not fire on it (loop)."""
    if event.type is EventType.ASSIGNMENT_CHANGED and event.attributes.get("source") == "PLAY":
        return str(event.attributes.get("source_ref", ""))
    return ""


@dataclass
class Memberships:
    """Segment memberships of the accounts a transaction touches: read once, changed in
    memory event by event (runs fire on each flip), written once as the net change."""

    before: dict[str, set[str]]
    now: dict[str, set[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.now = {account: set(plays) for account, plays in self.before.items()}

    def update(self, account_id: str, members_now: set[str], considered: frozenset[str]) -> list[Flip]:
        current = self.now.setdefault(account_id, set())
        changed = flips(account_id, current, members_now, considered)
        self.now[account_id] = (current - considered) | (members_now & considered)
        return changed

    def save(self, uow: RulesUnitOfWork, now: dt.datetime) -> None:
        entered, left = [], []
        for account_id, plays in self.now.items():
            was = self.before.get(account_id, set())
            entered += [(p, account_id) for p in sorted(plays - was)]
            left += [(p, account_id) for p in sorted(was - plays)]
        uow.segments.apply(entered, left, now)


def segment_runs(
    catalog: PlayCatalog,
    engine: PlayEngine,
    considered: frozenset[str],
    memberships: Memberships,
    account_id: str,
    state: AccountState,
    now: dt.datetime,
    fact_id: str,
    own_change: str = "",
) -> list[str]:
    """Re-evaluates one account's segments; the plays that fire on its flips."""
    members_now = set(engine.evaluate(fact_id, SEGMENT_FACT, state.view(account_id), None, now.timestamp()))
    fired = []
    for flip in memberships.update(account_id, members_now, considered):
        play = catalog.plays[flip.play_id]
        if fires(play.kind, flip) and play.name != own_change:
            fired.append(flip.play_id)
    return fired


def record_runs(
    uow: RulesUnitOfWork, catalog: PlayCatalog, matched: Sequence[tuple[AccountEvent, list[str]]], now: dt.datetime
) -> None:
    """Stores events the service itself records (time passing, activation, manual runs) with
    the runs of the plays they fire: the executor then applies them in event order."""
    if not matched:
        return
    seqs = uow.events.add_all([e for e, _ in matched], [p for _, p in matched], now)
    _add_runs(uow, catalog, [(event, seq, plays) for (event, plays), seq in zip(matched, seqs, strict=True)], now)


def _add_runs(
    uow: RulesUnitOfWork, catalog: PlayCatalog, matched: Sequence[tuple[AccountEvent, int, list[str]]], now: dt.datetime
) -> None:
    runs = []
    for event, seq, plays in matched:
        # Competing update_values are settled here, in the event's transaction (domain/priority).
        lost = overridden([catalog.plays[p] for p in plays], catalog.writes_of)
        for position, play_id in enumerate(plays):
            play = catalog.plays[play_id]
            run = PlayRun(new_run_id(), play_id, play.version, seq, event.event_id, event.account_id, play.plan(), now)
            run.results = list(lost.get(play_id, ()))
            runs.append((run, position))
    uow.runs.add_all(runs)


def evaluate(
    catalog: PlayCatalog, memberships: Memberships, event: AccountEvent, state: AccountState | None, now: dt.datetime
) -> tuple[AccountState, list[str]]:
    """One event against the account's state: its new state, and the plays it runs (event
    plays that match, segment plays whose membership it flips)."""
    seen = evaluation_input(event, state)
    stamp = now.timestamp()
    matched = catalog.engine.evaluate(event.event_id, event.engine_type, seen.attributes, seen.previous, stamp)
    loop = _own_change(event)
    matched = [p for p in matched if f"plays/{p}" != loop]
    if catalog.segment_ids:
        matched += segment_runs(
            catalog,
            catalog.segments,
            catalog.segment_ids,
            memberships,
            event.account_id,
            seen.new_state,
            now,
            event.event_id,
            loop,
        )
    return seen.new_state, matched


def ingest(
    uow: RulesUnitOfWork, catalog: PlayCatalog, events: Sequence[AccountEvent], now: dt.datetime
) -> list[Published]:
    """Records the events not seen before, in order; the caller commits."""
    uow.events.lock_for_ingest()
    catalog.refresh(uow)
    first: dict[str, AccountEvent] = {}
    for event in events:
        first.setdefault(event.event_id, event)
    known = uow.events.known_ids(first)
    fresh = [e for e in first.values() if e.event_id not in known]
    states = uow.accounts.states(e.account_id for e in fresh)
    existing = set(states)
    memberships = Memberships(
        uow.segments.members_of({e.account_id for e in fresh}, catalog.segment_ids) if catalog.segment_ids else {}
    )
    matches: list[list[str]] = []
    names: set[str] = set()
    for event in fresh:
        new_state, matched = evaluate(catalog, memberships, event, states.get(event.account_id), now)
        states[event.account_id] = new_state
        names.update(new_state.attributes)
        matches.append(matched)
    for account_id in {e.account_id for e in fresh}:
        catalog.schedule(account_id, states[account_id], now)
    seqs = uow.events.add_all(fresh, matches, now)
    _add_runs(uow, catalog, list(zip(fresh, seqs, matches, strict=True)), now)
    uow.accounts.save({e.account_id: states[e.account_id] for e in fresh}, existing, now)
    memberships.save(uow, now)
    unseen = names - catalog.known_attributes
    if unseen:
        # Only committed names are cached: a name added by a transaction that rolls back is
        # looked up (and added) again next time.
        committed = uow.attributes.known(unseen)
        catalog.known_attributes |= committed
        uow.attributes.add(unseen - committed, now)
    counts = {e.event_id: len(m) for e, m in zip(fresh, matches, strict=True)}
    results, reported = [], set()
    for event in events:
        new = event.event_id in counts and event.event_id not in reported
        reported.add(event.event_id)
        results.append(Published(event.event_id, not new, counts[event.event_id] if new else 0))
    return results


def publish(
    uow_factory: Callable[[], RulesUnitOfWork],
    catalog: PlayCatalog,
    events: Sequence[AccountEvent],
    now: dt.datetime,
    on_recorded: Callable[[], None] = lambda: None,
) -> list[Published]:
    with uow_factory() as uow:
        results = ingest(uow, catalog, events, now)
        uow.commit()
    duplicates = sum(r.duplicate for r in results)
    metrics.EVENTS.labels("duplicate").inc(duplicates)
    metrics.EVENTS.labels("recorded").inc(len(results) - duplicates)
    metrics.RUNS_CREATED.inc(sum(r.matched_plays for r in results))
    if any(r.matched_plays for r in results):
        on_recorded()
    return results
