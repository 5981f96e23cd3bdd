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

import durable_rules_engine  # type: ignore[import-not-found]
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


class SynchronousHost(Host):
    """A Host without its dispatch loop. Host() starts two timer chains that start a new thread
    every 0.2 s, forever, to deliver queued messages and timers; this engine only asserts and
    retracts facts synchronously, so it needs neither, and a Host per generation (or per dry
    run, or per activation) would leak those threads with every play change."""

    def _run(self) -> None:
        pass


_HOST: Host | None = None
_HOST_LOCK = threading.Lock()


def _shared_host() -> Host:
    """One Host per process; each generation of plays is one of its rulesets, deleted from it
    when the next generation replaces it."""
    global _HOST
    with _HOST_LOCK:
        if _HOST is None:
            _HOST = SynchronousHost()
        return _HOST


def _delete_ruleset(host: Host, name: str) -> None:
    # Host has no public way to forget a ruleset; these are the two places it keeps them.
    with _HOST_LOCK:
        ruleset = host._ruleset_directory.pop(name, None)
        if ruleset is None:
            return
        host._ruleset_list.remove(ruleset)
    durable_rules_engine.delete_ruleset(ruleset._handle)


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
            generation.host = _shared_host()
            with _HOST_LOCK:
                generation.host.register_rulesets({generation.ruleset: rules})
        with self._lock:
            previous, self._generation = self._generation, generation
            if previous.host is not None:
                _delete_ruleset(previous.host, previous.ruleset)

    def close(self) -> None:
        """Forget the loaded plays (an engine used once, for a dry run or an activation)."""
        self.load([])

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
