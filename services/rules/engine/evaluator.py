"""Evaluates events against the active plays, on durable-rules.

All plays of one generation are rules of one ruleset. Each event is asserted as a *fact* (facts
reach every matching rule; events would be consumed by the first one), the rules' actions only
record which plays matched, and the fact is retracted before the call returns: every (event,
play) pair is seen exactly once and synchronously. Loading new plays builds a new generation and
swaps it in between two evaluations.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from durable.engine import Host, MessageNotHandledException

from services.rules.domain.criteria import Criterion
from services.rules.engine.compiler import NOW_KEY, Compiler, Derived, key, previous_key

SID = "plays"


@dataclass(frozen=True)
class CompiledPlay:
    play_id: str
    event_type: str
    criteria: Criterion | None


@dataclass
class _Generation:
    host: Host | None
    ruleset: str
    derived: dict[str, Derived]
    matches: list[str] = field(default_factory=list)


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


class PlayEngine:
    def __init__(self) -> None:
        self._lock = threading.Lock()  # the engine is not thread-safe; evaluations take turns
        self._generation = _Generation(None, "", {})

    def load(self, plays: Sequence[CompiledPlay]) -> None:
        compiler = Compiler()
        generation = _Generation(None, f"plays_{uuid.uuid4().hex}", compiler.derived)
        rules: dict[str, Any] = {}
        for index, play in enumerate(plays):
            condition: dict[str, Any] = {"type": play.event_type}
            if play.criteria is not None:
                condition = {"$and": [condition, compiler.compile(play.criteria)]}
            rules[f"r{index}"] = {"all": [{"m": condition}], "run": self._recorder(generation, play.play_id)}
        if rules:
            generation.host = Host()
            generation.host.register_rulesets({generation.ruleset: rules})
        with self._lock:
            self._generation = generation

    @staticmethod
    def _recorder(generation: _Generation, play_id: str) -> Callable[[Any], None]:
        def record(_context: Any) -> None:
            generation.matches.append(play_id)

        return record

    def evaluate(
        self,
        event_id: str,
        event_type: str,
        attributes: Mapping[str, Any],
        previous: Mapping[str, Any] | None = None,
        now: float | None = None,
    ) -> list[str]:
        """Ids of the plays this event matches (each once), in play order; `now` (epoch
        seconds, default the wall clock) judges relative dates."""
        with self._lock:
            generation = self._generation
            if generation.host is None:
                return []
            fact: dict[str, Any] = {"sid": SID, "id": event_id, "type": event_type}
            fact |= {key(k): v for k, v in attributes.items() if _scalar(v)}
            fact |= {previous_key(k): v for k, v in (previous or {}).items() if _scalar(v)}
            fact[NOW_KEY] = time.time() if now is None else now
            fact |= {name: predicate(fact) for name, predicate in generation.derived.items()}
            generation.matches = []
            try:
                generation.host.assert_fact(generation.ruleset, fact)
            except MessageNotHandledException:
                pass  # no play matches this event: normal
            finally:
                generation.host.retract_fact(generation.ruleset, fact)
            return list(generation.matches)
