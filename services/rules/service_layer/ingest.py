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
from dataclasses import dataclass

from services.rules import metrics
from services.rules.domain.events import AccountEvent, evaluation_input
from services.rules.domain.model import EventType, Play
from services.rules.domain.runs import PlayRun, new_run_id
from services.rules.engine.evaluator import CompiledPlay, PlayEngine
from services.rules.unit_of_work import RulesUnitOfWork


@dataclass(frozen=True)
class Published:
    event_id: str
    duplicate: bool
    matched_plays: int


class PlayCatalog:
    """This replica's compiled active plays; recompiled when the catalog version in the
    database moves (a play changed here or on another replica)."""

    def __init__(self) -> None:
        self.engine = PlayEngine()
        self.version = -1
        self.plays: dict[str, Play] = {}
        self._lock = threading.Lock()

    def refresh(self, uow: RulesUnitOfWork) -> None:
        version = uow.plays.catalog_version()
        with self._lock:
            if version == self.version:
                return
            plays = uow.plays.active()
            self.engine.load([compiled(p) for p in plays])
            self.plays, self.version = {p.id: p for p in plays}, version


def compiled(play: Play) -> CompiledPlay:
    return CompiledPlay(play.id, play.trigger_key, play.parsed_criteria())


def _own_change(event: AccountEvent) -> str:
    """The play that made this assignment change, if a play did: it must not fire on it (loop)."""
    if event.type is EventType.ASSIGNMENT_CHANGED and event.attributes.get("source") == "PLAY":
        return str(event.attributes.get("source_ref", ""))
    return ""


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
    matches: list[list[str]] = []
    for event in fresh:
        seen = evaluation_input(event, states.get(event.account_id, {}))
        states[event.account_id] = seen.new_state
        matched = catalog.engine.evaluate(event.event_id, event.engine_type, seen.attributes, seen.previous)
        loop = _own_change(event)
        matches.append([p for p in matched if f"plays/{p}" != loop])
    seqs = uow.events.add_all(fresh, matches, now)
    runs = []
    for event, seq, matched in zip(fresh, seqs, matches, strict=True):
        for position, play_id in enumerate(matched):
            play = catalog.plays[play_id]
            run = PlayRun(
                new_run_id(),
                play_id,
                play.version,
                seq,
                event.event_id,
                event.account_id,
                play.plan(),
                now,
            )
            runs.append((run, position))
    uow.runs.add_all(runs)
    uow.accounts.save({e.account_id: states[e.account_id] for e in fresh}, existing, now)
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
