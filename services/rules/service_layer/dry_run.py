"""TestPlay: what the given events would match and which actions would run; nothing is
recorded, no run stored, the users service is only read (to validate an unsaved play).

A segment play "matches" an event that moves the account across its boundary (into it for
ENTERS_SEGMENT, out of it for EXITS_SEGMENT), judged on the state before and after the event."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from services.rules.domain.actions import describe
from services.rules.domain.events import AccountEvent, evaluation_input
from services.rules.domain.model import SEGMENT_FACT, Play
from services.rules.domain.priority import overridden
from services.rules.domain.runs import ActionResult
from services.rules.domain.segments import TriggerKind, fires, flips
from services.rules.engine.evaluator import PlayEngine
from services.rules.service_layer.ingest import compiled
from services.rules.unit_of_work import RulesUnitOfWork


@dataclass(frozen=True)
class Planned:
    description: str
    skipped_reason: str = ""
    winner: str = ""  # "plays/{uid}" whose update_value wins this one's role


@dataclass(frozen=True)
class Match:
    play: Play
    actions: list[Planned]


def _match(play: Play, lost: dict[tuple[str, int], ActionResult]) -> Match:
    planned = []
    for index, action in enumerate(play.parsed_actions()):
        skipped = lost.get((play.id, index))
        if skipped is None:
            planned.append(Planned(describe(action)))
        else:
            planned.append(
                Planned(f"{describe(action)}: not applied, {skipped.description}", skipped.reason, skipped.target)
            )
    return Match(play, planned)


def dry_run(
    uow_factory: Callable[[], RulesUnitOfWork], plays: Sequence[Play], events: Sequence[AccountEvent]
) -> list[list[Match]]:
    """Events are applied in order to a copy of the accounts' state, as if published together."""
    engine = PlayEngine()  # its own engines: the live ones are never touched by a test
    engine.load([compiled(p) for p in plays if p.kind is TriggerKind.EVENT])
    segments = PlayEngine()
    segments.load([compiled(p) for p in plays if p.kind.is_segment])
    by_id = {p.id: p for p in plays}
    considered = frozenset(p.id for p in plays if p.kind.is_segment)
    with uow_factory() as uow:
        states = uow.accounts.states(e.account_id for e in events)
    try:
        results = []
        for index, event in enumerate(events):
            fact_id = event.event_id or f"test-{index}"
            known = states.get(event.account_id)
            seen = evaluation_input(event, known)
            states[event.account_id] = seen.new_state
            matched = engine.evaluate(fact_id, event.engine_type, seen.attributes, seen.previous)
            # A segment play matches when this event moves the account across its boundary.
            before = set(segments.evaluate(fact_id, SEGMENT_FACT, known.view(event.account_id))) if known else set()
            after = set(segments.evaluate(fact_id, SEGMENT_FACT, seen.new_state.view(event.account_id)))
            matched += [
                f.play_id for f in flips(event.account_id, before, after, considered) if fires(by_id[f.play_id].kind, f)
            ]
            lost = {
                (play_id, r.index): r
                for play_id, found in overridden([by_id[p] for p in matched]).items()
                for r in found
            }
            results.append([_match(by_id[p], lost) for p in matched])
    finally:
        engine.close()
        segments.close()
    return results
