"""How the executor applies many runs at once without changing what any of them does.

A batch's pending actions ("steps") are applied in *stages*: every step of a stage goes out in
one call per kind (BatchSetAssignments, BatchCreateTasks) or concurrently (webhooks), and a
stage starts only when the one before it has answered. Steps are given stages so that, for
each account, the order of the runs and of each run's actions is kept:

- an account's steps take the stage of the step before them while they are of the same kind
  (assignments in one call apply in row order, tasks in item order);
- a step of another kind, of a kind not sent in one call (webhooks: deliveries run
  concurrently; see actions.in_one_call), or one that copies the holder of a role an earlier step
  of the stage writes, starts the account's next stage.

Different accounts are independent: their steps share stages whatever their kinds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from services.rules.domain.actions import Action, UserChoice, choice_of, in_one_call, role_set_by


class Step(NamedTuple):
    run: int  # the run's position in the batch
    action_index: int  # the action's position in its run
    action: Action
    account_id: str  # the run's account: what orders the steps

    @property
    def kind(self) -> type[Action]:
        return type(self.action)

    @property
    def choice(self) -> UserChoice | None:
        return choice_of(self.action)

    @property
    def reads(self) -> str:
        """The role whose holder on the account this step needs, if it copies one."""
        choice = self.choice
        return choice.holder_of_role if choice is not None else ""


class _Account:
    __slots__ = ("kind", "stage", "written")

    def __init__(self) -> None:
        self.stage = -1
        self.kind: type[Action] | None = None
        self.written: set[str] = set()


def stages(steps: Sequence[Step]) -> list[list[Step]]:
    """The steps (given in run order, then action order) grouped into stages, in order."""
    accounts: dict[str, _Account] = {}
    grouped: list[list[Step]] = []
    for step in steps:
        account = accounts.get(step.account_id)
        if account is None:
            account = accounts[step.account_id] = _Account()
        kind = step.kind
        if account.kind is not kind or not in_one_call(step.action) or step.reads in account.written:
            account.stage += 1
            account.kind, account.written = kind, set()
        role = role_set_by(step.action)
        if role:
            account.written.add(role)
        if account.stage == len(grouped):
            grouped.append([])
        grouped[account.stage].append(step)
    return grouped


class Turns:
    """Round robin for a whole batch: who holds how many accounts of a role, read once before the
    batch and counted up in memory as the batch chooses, so that the batch spreads its accounts
    as one call per run would have."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], int] = {}

    def known(self, role: str, user: str) -> bool:
        return (role, user) in self._counts

    def load(self, role: str, counts: dict[str, int], candidates: Sequence[str]) -> None:
        for user in candidates:
            self._counts.setdefault((role, user), counts.get(user, 0))

    def choose(self, role: str, candidates: Sequence[str]) -> str:
        """The candidate holding the fewest (first listed on a tie); counted as holding one more."""
        chosen = min(candidates, key=lambda user: (self._counts.get((role, user), 0), candidates.index(user)))
        self._counts[(role, chosen)] = self._counts.get((role, chosen), 0) + 1
        return chosen
