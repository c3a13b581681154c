"""The state machine shared by the case workflow (geo/cases) and the remediation workflow
(geo/programme): a table of moves and the one guard every move passes, so both answer the same
way (400 unknown action, 403 role, 409 naming the moves allowed now, 400 missing note).

It sits beside geo/errors.py, outside both rooms, because geo/programme may import geo/cases but
not the reverse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from geo.errors import Conflict, Forbidden, InvalidInput


@dataclass(frozen=True)
class Move:
    """One action: from which states, to which, who may, whether it needs a note."""

    sources: tuple[str, ...]
    target: str | None  # None: the state does not change (the case's re-routing moves)
    roles: tuple[str, ...]
    note_required: bool = False


@dataclass(frozen=True)
class StateMachine:
    """A workflow's moves, its state labels, and what it calls the thing that moves (for messages)."""

    moves: Mapping[str, Move]
    labels: Mapping[str, str]  # state → the Chinese label named in a 409
    noun: str  # "a case", "a remediation task"

    def move(self, action: str) -> Move:
        """The move called ``action``; 400 naming the known actions otherwise."""
        found = self.moves.get(action)
        if found is None:
            raise InvalidInput(f"action '{action}' is unknown; allowed: {', '.join(self.moves)}", field="action")
        return found

    def allowed(self, state: str) -> list[str]:
        """The actions legal from ``state``, in table order."""
        return [a for a, m in self.moves.items() if state in m.sources]

    def check(self, action: str, *, role: str, state: str, note: str | None) -> Move:
        """The guard: the role may, the state allows (409 naming what is allowed now), a note when one is needed."""
        move = self.move(action)
        if role not in move.roles:
            raise Forbidden(f"role '{role}' may not '{action}' {self.noun}; needs one of: {', '.join(move.roles)}")
        if state not in move.sources:
            label = self.labels.get(state, state)
            raise Conflict(
                f"cannot '{action}' {self.noun} that is {state} ({label}); "
                f"allowed now: {', '.join(self.allowed(state)) or 'nothing'}",
                field="action",
                reason_zh=f"当前状态为「{label}」，不能执行此操作（可能已被他人办理，请刷新后再试）",
                state=state,
            )
        if move.note_required and not note:
            raise InvalidInput(
                f"'{action}' needs a note saying why", field="note", reason_zh="此操作须填写说明（原因）"
            )
        return move

    def target(self, move: Move, state: str) -> str:
        """The state after ``move`` from ``state`` (unchanged for moves without a target)."""
        return move.target or state
