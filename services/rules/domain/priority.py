"""Competing plays: when the runs of one event would set the same role on one account, one play
wins, decided when the event is evaluated (in its transaction), so the order in which runs
execute never matters and a losing play never writes.

The winner of a role is the play with the highest priority; on a tie, the play created first
(then the lower id, so that the rule is total). The losers' update_value actions on that role
are settled before execution as SKIPPED / OVERRIDDEN_BY_PLAY, naming the winner; their other
actions (tasks, webhooks, other roles) run as usual.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from services.rules.domain.actions import role_set_by
from services.rules.domain.model import Play, PlayStatus
from services.rules.domain.runs import ActionResult, RunOutcome
from services.rules.domain.segments import Warning_

OVERRIDDEN = "OVERRIDDEN_BY_PLAY"


def rank(play: Play) -> tuple[int, float, str]:
    """Sorts winners first."""
    return (-play.priority, play.create_time.timestamp(), play.id)


def writes(play: Play) -> list[tuple[int, str]]:
    """(action index, role) of the play's actions that set a role."""
    return [(i, role) for i, a in enumerate(play.parsed_actions()) if (role := role_set_by(a))]


def overridden(
    plays: Sequence[Play], writes_of: Callable[[Play], list[tuple[int, str]]] = writes
) -> dict[str, list[ActionResult]]:
    """For the plays one event runs (in any order): play id -> its update_value actions that
    another play's win, as their final results. Plays that lose nothing are absent.
    `writes_of`: `writes`, or a cached form of it (the catalog keeps one per active play)."""
    if len(plays) < 2:
        return {}
    winners: dict[str, Play] = {}
    for play in sorted(plays, key=rank):
        for _, role in writes_of(play):
            winners.setdefault(role, play)
    lost: dict[str, list[ActionResult]] = {}
    for play in plays:
        for index, role in writes_of(play):
            winner = winners[role]
            if winner.id != play.id:
                lost.setdefault(play.id, []).append(
                    ActionResult(
                        index,
                        RunOutcome.SKIPPED,
                        OVERRIDDEN,
                        f"{winner.name} ({winner.display_name!r}, priority {winner.priority}) sets {role} "
                        f"for this event; this play has priority {play.priority}",
                        winner.name,
                    )
                )
    return lost


class Rivals:
    """The active plays, by what they could compete on (trigger and priority), each with the
    roles it sets read once: a page of plays is checked against them without parsing every
    active play's actions again for every play of the page."""

    def __init__(self, active: Iterable[Play]) -> None:
        self._groups: dict[tuple[object, str, int], list[tuple[Play, frozenset[str]]]] = {}
        for play in sorted(active, key=rank):
            roles = frozenset(role for _, role in writes(play))
            if roles and play.status is PlayStatus.ACTIVE:
                self._groups.setdefault(_ground(play), []).append((play, roles))

    def competing(self, play: Play, path: str = "play") -> list[Warning_]:
        """PLAYS_COMPETE: another active play can set a role this one sets, on the same trigger,
        with the same priority. The rule still decides (created first wins), but the author
        should."""
        if play.status is not PlayStatus.ACTIVE:
            return []
        roles = {role for _, role in writes(play)}
        found = []
        for other, theirs in self._groups.get(_ground(play), ()):
            shared = sorted(roles & theirs)
            if other.id == play.id or not shared:
                continue
            first = min(play, other, key=rank)
            found.append(
                Warning_(
                    f"{path}.priority",
                    "PLAYS_COMPETE",
                    f"{other.name} ({other.display_name!r}) also sets {', '.join(shared)} on this trigger with "
                    f"priority {play.priority}: when both match, {first.name} wins (created first); "
                    "give one a higher priority to decide",
                )
            )
        return found


def _ground(play: Play) -> tuple[object, str, int]:
    """What two plays must share to compete: trigger kind, trigger and priority."""
    return (play.kind, play.trigger_key, play.priority)
