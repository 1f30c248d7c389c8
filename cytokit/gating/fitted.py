"""The base of data-driven gates: :class:`FittedGate`, scikit-learn style estimators that
learn a static gate from events (the gates themselves: :mod:`cytokit.gating.thresholds`,
one-dimensional thresholds, and :mod:`cytokit.gating.regions`, regions in two or more
dimensions).

Contract (tested once for every class in ``tests/test_gates.py``):

- parameters only in ``__init__`` and stored unchanged under the same names;
- ``fit(events) -> self`` learns from a DataFrame of events (this sample's parent
  population, or the matched isotype control's, as the caller decides);
- learned values live in attributes ending in ``_`` (``threshold_``, ``mean_``,
  ``vertices_`` ...), plus ``failed_`` (``None`` or the reason), ``warning_`` (``None``,
  or why a gate that did fit deserves a look) and ``n_fit_events_``;
- ``check_params()`` raises ``ValueError`` naming a bad parameter (``fit`` calls it; a
  template calls it when it is loaded, so a typo fails before any file is read);
- ``contains(events)`` after fitting; ``to_static()`` returns the equivalent static
  gate (so the result can be exported to Gating-ML and audited elsewhere).

**Soft failure.** When a gate cannot be fitted (fewer than ``min_events`` events, no
density valley, ...) ``fit`` does not raise: it sets ``failed_`` to a reason string
and ``contains`` returns all-False, so downstream counts are 0 and percentages NaN
with that reason as a flag. Pass ``strict=True`` to raise :class:`~cytokit.GateError`
instead. Using a gate before ``fit`` always raises :class:`~cytokit.GateError`.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod

import numpy as np
import pandas as pd

from ..errors import GateError
from .gates import Gate, event_columns, finite_rows


class _FitFailure(Exception):
    """Raised inside ``_fit`` to fail softly with a reason."""


def _need(valid: bool, name: str, value, what: str) -> None:
    if not valid:
        raise ValueError(f"{name} must be {what}, got {value!r}")


def _is_number(value) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    return bool(np.isfinite(value))


class FittedGate(ABC):
    """Base class of data-driven gates (see the module docstring for the contract)."""

    min_events: int
    strict: bool

    # ---- scikit-learn estimator plumbing -------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [
            p.name
            for p in signature.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def get_params(self, deep: bool = True) -> dict[str, object]:
        """Constructor parameters, as in scikit-learn."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> FittedGate:
        """Set constructor parameters (clears nothing: call :meth:`fit` again)."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"{type(self).__name__} has no parameter {name!r}; parameters are {valid}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()}
        shown = [
            f"{k}={v!r}"
            for k, v in self.get_params().items()
            if defaults.get(k, inspect.Parameter.empty) is inspect.Parameter.empty or defaults[k] != v
        ]
        return f"{type(self).__name__}({', '.join(shown)})"

    def check_params(self) -> None:
        """Raise ``ValueError`` naming the first parameter out of its range."""
        _need(isinstance(self.min_events, int) and self.min_events >= 1, "min_events", self.min_events,
              "a whole number >= 1")
        self._check_params()

    def _check_params(self) -> None:
        """Each class's own parameter checks (see :func:`_need`)."""

    # ---- the gate -------------------------------------------------------------------------
    @property
    @abstractmethod
    def dims(self) -> tuple[str, ...]:
        """The event columns this gate reads."""

    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` has run (successfully or not)."""
        return "failed_" in self.__dict__

    def fit(self, events: pd.DataFrame, **fit_params) -> FittedGate:
        """Learn the gate from ``events``; returns ``self``.

        Rows with a non-finite value in any of :attr:`dims` are ignored. On failure
        ``failed_`` holds the reason (or :class:`GateError` is raised when ``strict``).

        Raises
        ------
        ChannelNotFoundError
            When a dimension is not a column of ``events`` (always, even when not strict).
        GateError
            When ``strict`` and the gate cannot be fitted.
        """
        self.check_params()
        for name in [k for k in self.__dict__ if k.endswith("_") and not k.startswith("_")]:
            delattr(self, name)
        values = event_columns(events, self.dims, what=type(self).__name__)
        finite = finite_rows(values)
        if not finite.all():
            values = values[finite]
        self.n_fit_events_ = len(values)
        self.failed_: str | None = None
        self.warning_: str | None = None
        try:
            if len(values) < self.min_events:
                raise _FitFailure(
                    f"too few events to fit: {len(values)} finite events in "
                    f"{', '.join(self.dims)}, min_events={self.min_events}"
                )
            self._fit(values, **fit_params)
            self._static()  # a region that cannot be built (a singular ellipse) is a failed fit too
        except _FitFailure as failure:
            self.failed_ = str(failure)
            if self.strict:
                raise GateError(f"{self!r} could not be fitted: {failure}") from None
        except (ValueError, ArithmeticError) as exc:  # degenerate events (a channel scaled to 1e-30): NumPy's
            self.failed_ = f"the events allow no fit ({type(exc).__name__}: {exc})"
            if self.strict:
                raise GateError(f"{self!r} could not be fitted: {self.failed_}") from None
        return self

    @abstractmethod
    def _fit(self, values: np.ndarray, **fit_params) -> None:
        """Set learned attributes from finite ``values`` (events × dims) or raise ``_FitFailure``."""

    @abstractmethod
    def _static(self) -> Gate:
        """The static gate from the learned attributes (fit succeeded)."""

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise GateError(f"{type(self).__name__} is not fitted yet; call fit(events) before using it")

    def to_static(self) -> Gate:
        """The equivalent static gate.

        Raises
        ------
        GateError
            When not fitted, or when fitting failed (the message gives the reason).
        """
        self._check_fitted()
        if self.failed_ is not None:
            raise GateError(f"{self!r} has no static equivalent because fitting failed: {self.failed_}")
        return self._static()

    def contains(self, events: pd.DataFrame) -> np.ndarray:
        """Membership of each event; all-False when fitting failed."""
        self._check_fitted()
        if self.failed_ is not None:
            event_columns(events, self.dims, what=type(self).__name__)
            return np.zeros(len(events), dtype=bool)
        return self._static().contains(events)

    def predict(self, events: pd.DataFrame) -> np.ndarray:
        """Alias of :meth:`contains`."""
        return self.contains(events)

    def file_warning(self, events: pd.DataFrame) -> str | None:
        """Why this gate, fitted on other events (several files pooled), deserves a look on one
        file whose parent population's events are ``events``. The fit's own ``warning_`` here;
        gate types that can judge a file by its own events say so instead (a quadrant: how many of
        the file's events sit on its cuts), so that the flag points at the files to review."""
        return self.warning_

    def _file_values(self, events: pd.DataFrame) -> np.ndarray | None:
        """:meth:`file_warning`'s finite ``events`` in :attr:`dims`; None when the fit failed or
        they are fewer than ``min_events`` (too few to judge: the fit's own warning stands)."""
        values = event_columns(events, self.dims, what=type(self).__name__)
        values = values[finite_rows(values)]
        return None if self.failed_ is not None or len(values) < self.min_events else values

    def _on_this_file(self, note: str | None) -> str | None:
        pooled = getattr(self, "n_pooled_files_", None)
        return note and note + (f" on this file (fitted on {pooled} files pooled)" if pooled else " on this file")


#: the 1-D gate types that may stand in for a valley (a quadrant's ``thresholds``, a valley's ``fallback``)
CUT_TYPES = ("density_valley", "tail", "shoulder", "quantile", "mixture_threshold", "peak_foot", "threshold")


def cut_gate(spec: dict, dim: str, what: str, **fixed) -> FittedGate:
    """The 1-D fitted gate a ``{type: ..., params}`` mapping (no ``dim``) names, on ``dim``, with
    the ``fixed`` parameters; ``ValueError`` naming ``what`` when the mapping or a parameter is wrong."""
    from importlib import import_module

    from ._schema import GATE_TYPES

    kind = spec.get("type") if isinstance(spec, dict) else None
    _need(kind in CUT_TYPES and "dim" not in spec, what, spec,
          f"a mapping with 'type' one of {', '.join(CUT_TYPES)} and no 'dim'")
    module, name = GATE_TYPES[kind]
    try:
        params = {k: v for k, v in spec.items() if k != "type"} | fixed
        gate = getattr(import_module(f"cytokit.gating.{module}"), name)(dim, **params)
        gate.check_params()
    except (TypeError, ValueError) as error:
        raise ValueError(f"{what} ({kind}): {error}") from None
    return gate


__all__ = ["FittedGate"]
