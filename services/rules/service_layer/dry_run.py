"""TestPlay: what the given events would match and which actions would run; nothing is
recorded, no run stored, the users service is only read (to validate an unsaved play)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from services.rules.domain.actions import describe
from services.rules.domain.events import AccountEvent, evaluation_input
from services.rules.domain.model import Play
from services.rules.engine.evaluator import PlayEngine
from services.rules.service_layer.ingest import compiled
from services.rules.unit_of_work import RulesUnitOfWork


@dataclass(frozen=True)
class Match:
    play: Play
    actions: list[str]


def dry_run(
    uow_factory: Callable[[], RulesUnitOfWork], plays: Sequence[Play], events: Sequence[AccountEvent]
) -> list[list[Match]]:
    """Events are applied in order to a copy of the accounts' state, as if published together."""
    engine = PlayEngine()  # its own engine: the live one is never touched by a test
    engine.load([compiled(p) for p in plays])
    by_id = {p.id: p for p in plays}
    with uow_factory() as uow:
        states = uow.accounts.states(e.account_id for e in events)
    results = []
    for index, event in enumerate(events):
        seen = evaluation_input(event, states.get(event.account_id))
        states[event.account_id] = seen.new_state
        matched = engine.evaluate(event.event_id or f"test-{index}", event.engine_type, seen.attributes, seen.previous)
        results.append([Match(by_id[p], [describe(a) for a in by_id[p].parsed_actions()]) for p in matched])
    return results
