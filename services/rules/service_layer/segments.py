"""Segment plays beyond events: activation, the clock, and manual runs.

- Activation (a segment play becoming ACTIVE, or its criteria changing while active) learns
  which accounts are in the segment now: a survey evaluates every account before the change's
  transaction, without holding up events; the transaction (under the ingest lock) then
  re-evaluates only the accounts that had events since the survey began, and stores the
  memberships with the change. With scope EXISTING_AND_NEW an ENTERS_SEGMENT play also runs
  for each member. Leaving ACTIVE forgets the memberships, so a later activation starts from
  what is true then.
- The clock pass re-evaluates time-based segment plays (relative dates) for the accounts whose
  next time check has come, a page per transaction, and fires the flips that time alone
  caused. Each account's next check is the earliest instant at which one of its dates reaches
  a boundary of an active play's window (set whenever the account is evaluated; activating a
  time-based play makes every account due once), so a pass costs what time changed, not the
  number of accounts.
  It runs in the replica holding the workers' lease, under the ingest lock, and compares with
  stored memberships: a pass after downtime fires each transition once, and a repeated pass
  fires nothing.
- RunPlay records a "manual run" event for the account and the run of the one play it names.

Events the service records itself are CUSTOM events of types "steward.*": they keep runs in
event order with everything else and show, in GetAccountEvent, why a run happened.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from services.rules import metrics
from services.rules.domain.events import AccountEvent, AccountState, moment
from services.rules.domain.model import SEGMENT_FACT, EventType, Play, PlayStatus, Trigger, play_not_found
from services.rules.domain.runs import PlayRun
from services.rules.domain.segments import ActivationScope, TriggerKind
from services.rules.engine.evaluator import PlayEngine
from services.rules.service_layer.ingest import Memberships, PlayCatalog, compiled, record_runs, segment_runs
from services.rules.unit_of_work import RulesUnitOfWork
from services.runtime.errors import FailedPrecondition, ResourceExhausted
from services.runtime.leases import WorkerLease
from services.runtime.logging import get_logger

log = get_logger("steward.rules.segments")
PAGE = 1000
MANUAL_IDS = uuid.UUID("5b0e8f6a-2c4d-4e1f-9a7b-3d6c8e2f1a90")


def _just(play: Play) -> PlayCatalog:
    """A catalog of one play, for recording its runs (the replica's may not have it yet)."""
    catalog = PlayCatalog()
    catalog.plays = {play.id: play}
    return catalog


def _own_event(kind: str, account_id: str, event_id: str, now: dt.datetime, **attributes: str) -> AccountEvent:
    return AccountEvent(event_id, account_id, EventType.CUSTOM, f"steward.{kind}", now, dict(attributes))


# --- activation ---


def segment_changed(before: Play | None, after: Play | None) -> bool:
    """Does this change of a play (None: absent) start or restart its segment?"""
    if after is None or after.status is not PlayStatus.ACTIVE or not after.kind.is_segment:
        return False
    return before is None or before.status is not PlayStatus.ACTIVE or before.trigger != after.trigger


@dataclass(frozen=True)
class Survey:
    """A segment learned before the play change's transaction, so that events are not held up
    while every account is evaluated: the accounts in it as of event `through_seq`. The
    change's transaction re-evaluates only the accounts with events after that one."""

    trigger: Trigger
    through_seq: int
    members: frozenset[str]


def survey(
    uow_factory: Callable[..., RulesUnitOfWork], before: Play | None, after: Play, now: dt.datetime
) -> Survey | None:
    """Evaluates every account for a change that starts a segment (None for any other), in a
    read-only transaction, without the ingest lock."""
    if not segment_changed(before, after):
        return None
    with uow_factory(write=False) as uow:
        # Events are recorded one transaction at a time (the ingest lock), so every change of
        # an account's state after this read comes with an event numbered above it.
        through = uow.events.last_seq()
        members = _members(uow, after, now)
    return Survey(after.trigger, through, frozenset(members))


def _members(uow: RulesUnitOfWork, play: Play, now: dt.datetime, only: Iterable[str] | None = None) -> set[str]:
    """The accounts in the play's segment now: every account, or those in `only`."""
    engine = PlayEngine()  # this play alone: the replica's catalog does not have it yet
    engine.load([compiled(play)])
    members: set[str] = set()
    try:
        pages = [uow.accounts.states(only)] if only is not None else _pages(uow)
        for page in pages:
            for account_id, state in page.items():
                if engine.evaluate(account_id, SEGMENT_FACT, state.view(account_id), None, now.timestamp()):
                    members.add(account_id)
    finally:
        engine.close()
    return members


def _pages(uow: RulesUnitOfWork) -> Iterator[dict[str, AccountState]]:
    after = ""
    while page := uow.accounts.page(after, PAGE):
        yield page
        after = max(page)


def on_play_change(
    uow: RulesUnitOfWork, before: Play | None, after: Play | None, now: dt.datetime, learned: Survey | None = None
) -> int:
    """Keeps memberships in step with a play change (in its transaction); returns the runs
    started for accounts already in the segment."""
    touches = (before is not None and before.kind.is_segment) or (after is not None and after.kind.is_segment)
    if touches:
        uow.events.lock_for_ingest()  # no event is evaluated between the memberships and the change
    if before is not None and before.kind.is_segment and (after is None or after.status is not PlayStatus.ACTIVE):
        uow.segments.clear(before.id)
    if not segment_changed(before, after):
        return 0
    assert after is not None
    return activate(uow, after, now, first=before is None or before.status is not PlayStatus.ACTIVE, learned=learned)


def activate(uow: RulesUnitOfWork, play: Play, now: dt.datetime, *, first: bool, learned: Survey | None = None) -> int:
    if learned is not None and learned.trigger == play.trigger:
        since = uow.events.accounts_after(learned.through_seq)
        members = set(learned.members - since) | _members(uow, play, now, since)
    else:  # no survey (or of other criteria): every account, holding up events meanwhile
        members = _members(uow, play, now)
    uow.segments.clear(play.id)
    if play.is_time_based:
        # Each account's next time check was set without this play: the next pass looks at
        # every account once (a page per transaction, events in between) and sets it anew.
        uow.accounts.check_all_by(now.timestamp())
    uow.segments.apply([(play.id, a) for a in sorted(members)], [], now)
    existing = first and play.trigger.activation is ActivationScope.EXISTING_AND_NEW
    if not (existing and play.kind is TriggerKind.ENTERS_SEGMENT):
        log.info("segment_activated", play=play.name, members=len(members), runs=0)
        return 0
    prefix = f"activation/{play.id}/{play.version}"
    record_runs(
        uow,
        _just(play),
        [(_own_event("play_activated", a, f"{prefix}/{a}", now, play=play.name), [play.id]) for a in sorted(members)],
        now,
    )
    log.info("segment_activated", play=play.name, members=len(members), runs=len(members))
    return len(members)


# --- the clock ---


@dataclass(frozen=True)
class PassResult:
    accounts: int
    entered: int
    left: int
    runs: int


def time_pass(
    uow_factory: Callable[[], RulesUnitOfWork],
    catalog: PlayCatalog,
    now: dt.datetime,
    lease: WorkerLease | None = None,
    page_size: int = 500,
) -> PassResult:
    """Re-evaluates the time-based segment plays for the accounts due a check, a page per
    transaction, and schedules each one's next check."""
    accounts = entered = left = runs = 0
    after = ""
    stamp = moment(now)
    while True:
        with uow_factory() as uow:
            if lease is not None:
                lease.fence(uow.session)
            uow.events.lock_for_ingest()
            catalog.refresh(uow)
            if not catalog.timed_ids:
                break
            page = uow.accounts.due(after, now.timestamp(), page_size)
            if not page:
                break
            memberships = Memberships(uow.segments.members_of(page, catalog.timed_ids))
            fired = []
            for account_id, state in page.items():
                plays = segment_runs(
                    catalog, catalog.timed, catalog.timed_ids, memberships, account_id, state, now, account_id
                )
                if plays:
                    fired.append((_own_event("time_passed", account_id, f"clock/{stamp}/{account_id}", now), plays))
                catalog.schedule(account_id, state, now)
            uow.accounts.schedule({account_id: state.next_time_check for account_id, state in page.items()})
            for account_id, plays_now in memberships.now.items():
                was = memberships.before.get(account_id, set())
                entered += len(plays_now - was)
                left += len(was - plays_now)
            memberships.save(uow, now)
            record_runs(uow, catalog, fired, now)
            uow.commit()
        accounts += len(page)
        runs += sum(len(p) for _, p in fired)
        after = max(page)
    metrics.TIME_PASS_ACCOUNTS.inc(accounts)
    metrics.SEGMENT_FLIPS.labels("entered").inc(entered)
    metrics.SEGMENT_FLIPS.labels("left").inc(left)
    return PassResult(accounts, entered, left, runs)


# --- manual runs ---


def window_start(now: dt.datetime) -> dt.datetime:
    return now.replace(second=0, microsecond=0)


def run_manually(
    uow: RulesUnitOfWork,
    catalog: PlayCatalog,
    play_id: str,
    account_id: str,
    request_id: str,
    caller: str,
    now: dt.datetime,
    per_minute: int,
) -> tuple[PlayRun, bool]:
    """The run, and whether this call started it (False: the request_id's earlier run)."""
    event_id = f"manual/{play_id}/{uuid.uuid5(MANUAL_IDS, request_id)}"
    earlier = uow.runs.for_event(event_id)
    if earlier:
        metrics.MANUAL_RUNS.labels("repeated").inc()
        return earlier[0], False
    play = uow.plays.get(play_id)
    if play is None:
        raise play_not_found(play_id)
    if play.kind is not TriggerKind.MANUAL:
        raise FailedPrecondition(
            "PLAY_NOT_MANUAL", f"{play.name} is a {play.kind.value} play; only MANUAL plays run on demand"
        )
    if play.status is not PlayStatus.ACTIVE:
        raise FailedPrecondition("PLAY_NOT_ACTIVE", f"{play.name} is {play.status.value}; activate it first")
    window = window_start(now)
    if not uow.rate_windows.take(caller, window, per_minute):
        wait = window + dt.timedelta(minutes=1) - now
        metrics.MANUAL_RUNS.labels("limited").inc()
        raise ResourceExhausted(
            "RATE_LIMITED",
            f"at most {per_minute} manual runs a minute per caller; retry in {wait.total_seconds():.0f} s",
            retry_after_seconds=wait.total_seconds(),
            metadata={"limit_per_minute": str(per_minute)},
        )
    uow.events.lock_for_ingest()
    record_runs(
        uow, _just(play), [(_own_event("manual_run", account_id, event_id, now, caller=caller), [play.id])], now
    )
    metrics.MANUAL_RUNS.labels("started").inc()
    return uow.runs.for_event(event_id)[0], True
