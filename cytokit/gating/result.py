"""GatingResult: one sample gated by a template (memberships, fitted gates, flags, gating scale)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..sample import Sample


@dataclass(repr=False)
class GatingResult:
    """One sample gated by a template.

    ``membership`` maps each population path to a boolean mask over events;
    ``events`` holds the channels the gates read, compensated and transformed (the
    gating scale); ``scale`` all channels as compensated scale values (for MFIs);
    :meth:`transformed` gives any channel on the gating scale. ``gates`` holds each
    population's gate as fitted for this sample, ``flags`` why a population was
    skipped, or its gate failed or is doubtful. Events with NaN or ±inf in a role's
    channel are in no population (``finite``); ``nonfinite`` says how many, and
    :meth:`counts` adds it to the flag of the populations below the root.

    Gates address *dimensions*: a role's channel ``$PnN`` on the role's scale. Two roles on one
    channel with different transforms have two dimensions, the second named ``"<PnN> [<role>]"``
    (:meth:`dimension`, :meth:`channel_of`); ``transforms`` is keyed by dimension.
    """

    sample: Sample
    template: Any  # the Template that gated it
    channels: dict[str, str]
    scale: pd.DataFrame
    transforms: dict = field(default_factory=dict)  # dimension -> transform
    dims: dict[str, str] = field(default_factory=dict)  # role -> dimension (default: its channel)
    compensation: str = "none"
    spillover: pd.DataFrame | None = None
    membership: dict[str, np.ndarray] = field(default_factory=dict)
    parents: dict[str, str] = field(default_factory=dict)
    gates: dict[str, Any] = field(default_factory=dict)
    flags: dict[str, str] = field(default_factory=dict)
    finite: np.ndarray | None = None  # events finite in every role's channel (None: all of them)
    nonfinite: str = ""  # how many others were left out of every gate, and in which channels
    _gating: dict = field(default_factory=dict, repr=False)  # dimension -> (values, rows computed)

    def __repr__(self) -> str:
        """The file, its events and each population's count, % of parent and flag (not the arrays)."""
        name = Path(str(self.sample.path)).name if self.sample.path else "<sample>"
        table = self.counts()
        head = (f"GatingResult({name}: {len(self.scale)} events, compensation {self.compensation}, "
                f"{len(table)} populations)")
        width = max((len(p) for p in table["population"]), default=0)
        return "\n".join([head, *(f"  {r.population:<{width}}  {r.count:>8}  {r.pct_parent:5.1f} % of parent"
                                   + (f"  [{r.flag}]" if r.flag else "") for r in table.itertuples())])

    @property
    def events(self) -> pd.DataFrame:
        """The dimensions the gates read, for every event, on the gating scale (channels in the
        file's order, then the dimensions of their own of roles that share one)."""
        dims = dict.fromkeys(d for gate in self.gates.values() if not hasattr(gate, "operands") for d in gate.dims)
        order = [c for c in self.scale.columns if c in dims] + [d for d in self.derived if d in dims]
        return self._frame(order, None)

    def dimension(self, role: str) -> str:
        """The dimension ``role``'s gates read: its channel, or ``"<PnN> [<role>]"`` when another
        role on that channel has another transform."""
        return self.dims.get(role, self.channels[role])

    @property
    def derived(self) -> dict[str, str]:
        """``{dimension: $PnN}`` of the dimensions not named after their channel."""
        return {d: self.channels[r] for r, d in self.dims.items() if d != self.channels[r]}

    def channel_of(self, dim: str) -> str:
        """The ``$PnN`` a dimension's values come from (the dimension itself for a channel)."""
        return self.derived.get(dim, dim)

    def _frame(self, dims, rows) -> pd.DataFrame:
        index = self.scale.index if rows is None else self.scale.index[rows]
        return pd.DataFrame({d: self.transformed(d, rows) for d in dims}, index=index)

    def transformed(self, channel: str, mask=None) -> np.ndarray:
        """``channel`` (a ``$PnN`` or a :meth:`dimension`) on the gating scale (transformed as
        the template says), on the rows of ``mask`` (boolean or indices) when given.

        Values are computed on first request, only for the rows asked, and kept: a
        gate deep in the tree transforms its parent's events, not the whole file.
        """
        raw = self.scale[self.channel_of(channel)].to_numpy()
        transform = self.transforms.get(channel)
        if transform is None:
            values = np.asarray(raw, dtype=np.float64)
        elif mask is None and channel not in self._gating:
            values = transform.apply(raw)
            self._gating[channel] = (values, np.ones(len(raw), dtype=bool))
        elif channel not in self._gating:  # the first rows asked: transform them, keep them, return them
            rows = np.asarray(mask)
            rows = np.flatnonzero(rows) if rows.dtype == bool else rows
            part = np.asarray(transform.apply(raw[rows]), dtype=np.float64)
            values, done = np.full(len(raw), np.nan), np.zeros(len(raw), dtype=bool)
            values[rows] = part
            done[rows] = True
            self._gating[channel] = (values, done)
            return part
        else:
            values, done = self._gating[channel]
            if not done.all():  # else every row is already transformed: nothing to look up
                rows = np.arange(len(raw)) if mask is None else np.asarray(mask)
                if rows.dtype == bool:
                    rows = np.flatnonzero(rows)
                todo = rows[~done[rows]]
                if len(todo):
                    values[todo] = transform.apply(raw[todo])
                    done[todo] = True
        if mask is not None:
            return values[mask]
        view = values.view()
        view.flags.writeable = False  # the cached column (or the scale's own) is shared
        return view

    def counts(self) -> pd.DataFrame:
        """Per population: ``population, parent, count, pct_parent, pct_total, confidence, flag``
        (``confidence``: a registered gate's ``confidence_`` in this file, as a learned template's
        gates report it; NaN for other gates)."""
        total = len(self.scale)
        top = self.nonfinite  # the events left out of every gate: said on the populations below the root
        rows = []
        for path, mask in self.membership.items():
            parent = self.parents[path]
            count = int(np.count_nonzero(mask))
            parent_count = total if parent == "root" else int(np.count_nonzero(self.membership[parent]))
            rows.append({
                "population": path,
                "parent": parent,
                "count": count,
                "pct_parent": 100.0 * count / parent_count if parent_count else float("nan"),
                "pct_total": 100.0 * count / total if total else float("nan"),
                "confidence": float(getattr(self.gates.get(path), "confidence_", float("nan"))),
                "flag": "; ".join(f for f in (self.flags.get(path, ""), *self._upstream_failures(path),
                                              parent == "root" and top) if f),
            })
        return pd.DataFrame(rows, columns=["population", "parent", "count", "pct_parent", "pct_total", "confidence",
                                           "flag"])

    def _upstream_failures(self, path: str) -> list[str]:
        """``"<population>: gate failed: ..."`` (or ``skipped: ...``) for every failed or skipped gate
        this population's count depends on: its ancestors', and a boolean gate's operands' (a NOT of
        a failed, empty gate is its whole parent)."""
        by_name = {p.rsplit("/", 1)[-1]: p for p in self.membership}
        out, seen, todo = [], {path}, [path]
        while todo:
            here = todo.pop()
            above = [self.parents.get(here, "root")]
            gate = self.gates.get(here)
            if hasattr(gate, "operands"):
                above += [by_name[o] for o in gate.operands if o in by_name]
            for other in above:
                if other == "root" or other in seen:
                    continue
                seen.add(other)
                todo.append(other)
                flag = self.flags.get(other, "")
                if flag.startswith(("gate failed", "skipped")):
                    out.append(f"{other}: {flag}")
        return out

    def summary(self) -> dict:
        """A few keywords of the file and the channel of each role, as the report shows them."""
        pns = dict(zip(self.sample.channels.pnn, self.sample.channels.pns))
        return {"keywords": {k: self.sample.keywords.get(k, "") for k in ("$FIL", "$CYT", "$DATE")},
                "channels": [(role, pnn, pns.get(pnn, "")) for role, pnn in self.channels.items()]}

    def fitted(self) -> dict[str, dict]:
        """Each fitted gate's learned values (attributes ending in ``_``), by population path."""
        out = {}
        for path, gate in self.gates.items():
            learned = {k: _plain(v) for k, v in vars(gate).items() if k.endswith("_") and not k.startswith("_")}
            if learned:
                out[path] = learned
        return out


    def unexportable(self) -> list[str]:
        """Population paths with nothing to export: a gate that failed to fit, and every population
        below one or combining one (a boolean gate's operand)."""
        out: list[str] = []
        for path in self.membership:
            gate = self.gates.get(path)
            names = set(getattr(gate, "operands", ()) or ())
            if (getattr(gate, "failed_", None) or self.parents.get(path) in out
                    or any(p.rsplit("/", 1)[-1] in names for p in out)):
                out.append(path)
        return out

    def to_gateset(self, *, failed: str = "raise"):
        """The gates *as fitted for this sample* as a :class:`~cytokit.gating.gatingml.GateSet`
        (static gates, the transforms and the spillover used), ready for Gating-ML export.

        Skipped populations are left out (their children hang from their parent). A gate that failed
        to fit has nothing to export: ``failed="raise"`` refuses, ``"leave out"`` leaves it out with
        every population below it or combining it (:meth:`unexportable` lists them).

        Raises
        ------
        GateError
            A gate failed to fit (with ``failed="raise"``).
        """
        if failed not in ("raise", "leave out"):
            raise ValueError(f"failed must be 'raise' or 'leave out', not {failed!r}")
        left_out = set(self.unexportable())
        from ..errors import GateError
        from .gatingml import GateSet
        from .gatingml_nodes import gatingml_id

        populations, ids = [], {"root": None}
        for path in self.membership:
            if path in left_out and failed == "leave out":
                continue
            parent_id = ids[self.parents[path]]
            gate = self.gates.get(path)
            if gate is None:
                ids[path] = parent_id
                continue
            if path in left_out:
                if failed == "raise":
                    raise GateError(f"{self.sample.path}: population {path} cannot be exported: "
                                    f"{getattr(gate, 'failed_', None) or 'a population it rests on failed'}")
                continue
            ids[path] = gatingml_id(path.rsplit("/", 1)[-1])
            if (twice := next((p for p, i in ids.items() if i == ids[path] and p != path), None)) is not None:
                raise GateError(f"{self.sample.path}: populations {twice} and {path} both become the Gating-ML id "
                                f"{ids[path]!r} (ids must be unique: '+' is written pos, other signs '_'); rename one")
            if type(gate).__name__ == "BooleanGate":  # operands are population names: rename them too
                gate = type(gate)(gate.op, [gatingml_id(o) for o in gate.operands],
                                  complement=[gatingml_id(o) for o in gate.complement])
            populations.append((ids[path], gate, parent_id))
        return GateSet.build(populations, transforms=self.transforms, compensation=self.spillover,
                             channels=self.derived)


def _plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value
