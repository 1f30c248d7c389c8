"""The boolean gate: and/or/not over other populations' memberships, not over event values.

A :class:`BooleanGate` reads a frame of boolean membership columns, one per operand
population (Gating-ML 2.0 ``BooleanGate``, with ``use-as-complement``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from ..errors import ChannelNotFoundError
from .gates import Gate


class BooleanGate(Gate):
    """And/or/not over other populations' memberships.

    Parameters
    ----------
    op
        ``"and"``, ``"or"`` or ``"not"`` (``"not"`` takes exactly one operand).
    operands
        Names of populations; ``contains`` reads them as boolean columns.
    complement
        Operands to negate before combining (Gating-ML ``use-as-complement``).

    Examples
    --------
    >>> import pandas as pd
    >>> pops = pd.DataFrame({"Lymphocytes": [True, True, False], "Dead": [False, True, False]})
    >>> BooleanGate("and", ["Lymphocytes", "Dead"], complement=["Dead"]).contains(pops)
    array([ True, False, False])
    """

    def __init__(self, op: str, operands: Sequence[str], *, complement: Iterable[str] = ()) -> None:
        op = op.strip().lower()
        if op not in ("and", "or", "not"):
            raise ValueError(f"boolean gate op must be 'and', 'or' or 'not', got {op!r}")
        operands = [operands] if isinstance(operands, str) else [str(o) for o in operands]
        if not operands:
            raise ValueError("a boolean gate needs at least one operand")
        if op == "not" and len(operands) != 1:
            raise ValueError(f"a 'not' gate takes exactly one operand, got {operands}")
        complement = frozenset(complement)
        unknown = sorted(complement - set(operands))
        if unknown:
            raise ValueError(f"complemented operand(s) {unknown} are not operands {operands}")
        self.op = op
        self.operands = tuple(operands)
        self.complement = complement

    @property
    def dims(self) -> tuple[str, ...]:
        return self.operands

    def contains(self, events: pd.DataFrame) -> np.ndarray:
        """Combine the operand columns of ``events`` (a frame of boolean memberships)."""
        missing = [o for o in self.operands if o not in events.columns]
        if missing:
            raise ChannelNotFoundError(
                f"{self!r} needs the membership of population(s) {missing}; "
                f"have {list(map(str, events.columns))}"
            )
        masks = []
        for name in self.operands:
            mask = events[name].to_numpy(dtype=bool)
            masks.append(~mask if name in self.complement else mask)
        if self.op == "not":
            return ~masks[0]
        return (np.logical_and if self.op == "and" else np.logical_or).reduce(masks)

    def _state(self) -> tuple:
        return (self.op, self.operands, tuple(sorted(self.complement)))

    def __repr__(self) -> str:
        extra = f", complement={sorted(self.complement)!r}" if self.complement else ""
        return f"BooleanGate({self.op!r}, {list(self.operands)!r}{extra})"


__all__ = ["BooleanGate"]
