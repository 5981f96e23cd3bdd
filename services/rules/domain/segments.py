"""Segment plays: plays that fire when an account starts or stops meeting their criteria.

A segment is a play's criteria over an account's state. The service remembers, per segment play,
which accounts are in it; each change of an account (an event, or time passing for criteria on
relative dates) re-evaluates that account only, and a play runs when the membership flips:

    ENTERS_SEGMENT  fires on out -> in      staying in does not fire again
    EXITS_SEGMENT   fires on in -> out      leaving and coming back fires again

A flip caused by the play's own action (its assignment coming back through the users stream) is
recorded but does not fire that play: a play whose action moves the account across its own
segment boundary would otherwise run again on every round trip. Authors are warned of such
plays when they validate them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from services.rules.domain import actions as play_actions
from services.rules.domain import criteria as play_criteria


class TriggerKind(StrEnum):
    EVENT = "EVENT"
    ENTERS_SEGMENT = "ENTERS_SEGMENT"
    EXITS_SEGMENT = "EXITS_SEGMENT"
    MANUAL = "MANUAL"

    @property
    def is_segment(self) -> bool:
        return self in (TriggerKind.ENTERS_SEGMENT, TriggerKind.EXITS_SEGMENT)


class ActivationScope(StrEnum):
    NEW_ONLY = "NEW_ONLY"
    EXISTING_AND_NEW = "EXISTING_AND_NEW"


# Attributes every account has without any event carrying them.
BUILT_IN_ATTRIBUTES = frozenset({"account_id", "parent_account_id"})


@dataclass(frozen=True)
class Flip:
    play_id: str
    account_id: str
    entered: bool


def flips(
    account_id: str, members_before: Iterable[str], members_now: Iterable[str], considered: Iterable[str]
) -> list[Flip]:
    """Which of the considered plays' memberships of this account changed."""
    before, now = set(members_before), set(members_now)
    changed = []
    for play_id in sorted(set(considered)):
        was, is_ = play_id in before, play_id in now
        if was != is_:
            changed.append(Flip(play_id, account_id, is_))
    return changed


def fires(kind: TriggerKind, flip: Flip) -> bool:
    return (kind is TriggerKind.ENTERS_SEGMENT and flip.entered) or (
        kind is TriggerKind.EXITS_SEGMENT and not flip.entered
    )


@dataclass(frozen=True)
class Warning_:
    field: str
    reason: str
    description: str


def loop_warnings(
    criteria: play_criteria.Criterion | None, actions: Mapping[int, play_actions.Action], path: str = "play"
) -> list[Warning_]:
    """An update_value action on a role the criteria look at: the play may move accounts across
    its own segment (or re-trigger itself). Allowed, with a warning: it runs at most once per
    triggering change, but the author probably did not mean it."""
    if criteria is None:
        return []
    fields = play_criteria.fields_of(criteria)
    warnings = []
    for index, action in sorted(actions.items()):
        role = play_actions.role_set_by(action)
        if role:
            key = role.removeprefix("roles/")
            if f"{key}{play_criteria.ROLE_SUFFIX}" in fields:
                warnings.append(
                    Warning_(
                        f"{path}.actions[{index}]",
                        "PLAY_MAY_LOOP",
                        f"this action sets {role}, which the criteria read ({key}{play_criteria.ROLE_SUFFIX}): "
                        "the change it makes can move the account across the play's own segment. "
                        "It runs at most once per triggering change.",
                    )
                )
    return warnings
