"""Display transforms (logicle, asinh, log, linear, hyperlog) as thin wrappers over flowutils.

Each transform is a small immutable object with ``apply(values)``, ``inverse(values)``
and ``to_flowkit()`` (the matching ``flowkit.transforms`` object, used for Gating-ML
export). The maths is flowutils', parameterised exactly as in Gating-ML 2.0, so a
value transformed here lands where FlowKit, FlowJo and any Gating-ML reader put it.

Defaults are the usual ones for modern 18-bit float data (``T = 262144``). For
FACSCalibur-range data (log channels decoded to 1..10**4) pass ``t=10_000``, e.g.
``make_transform("logicle", t=10_000)``; the gating template chooses.

Examples
--------
>>> import numpy as np
>>> xf = make_transform("logicle", t=10_000, w=0.5, m=4.5, a=0)
>>> y = xf.apply(np.array([0.0, 10.0, 10_000.0]))
>>> round(float(y[-1]), 6)
1.0
>>> bool(np.allclose(xf.inverse(y), [0.0, 10.0, 10_000.0]))
True
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
import pandas as pd

from . import _biex
from .errors import ChannelNotFoundError

#: Top of scale of old FACSCalibur files: log channels decode to 1..10**4.
FACSCALIBUR_TOP = 10_000.0
#: Top of scale of modern 18-bit cytometers.
MODERN_TOP = 262_144.0


def _as_float_array(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def _nan_if_not_finite(values, out: np.ndarray) -> np.ndarray:
    """``out`` with NaN wherever ``values`` is NaN or ±inf (flowutils' logicle puts them at -1)."""
    bad = ~np.isfinite(_as_float_array(values))
    return np.where(bad, np.nan, out) if bad.any() else out


def _format_number(value: float) -> str:
    return f"{value:g}"


class Transform(ABC):
    """A one-channel scale transform.

    Subclasses list their Gating-ML parameters in ``_params`` (lower-case ``t, w, m, a``)
    and wrap the flowutils function of the same name.
    """

    #: Name used by :func:`make_transform` and in default Gating-ML ids.
    kind: ClassVar[str]
    _params: ClassVar[tuple[str, ...]]

    @property
    def params(self) -> dict[str, float]:
        """The Gating-ML parameters, e.g. ``{"t": 262144.0, "w": 0.5, "m": 4.5, "a": 0.0}``."""
        return {name: getattr(self, name) for name in self._params}

    @property
    def default_id(self) -> str:
        """An id for Gating-ML export naming the kind and parameters, e.g. ``logicle_10000_0.5_4.5_0``."""
        return "_".join([self.kind, *(_format_number(v) for v in self.params.values())])

    @abstractmethod
    def apply(self, values) -> np.ndarray:
        """Transform scale values (any array shape); returns a new float64 array."""

    @abstractmethod
    def inverse(self, values) -> np.ndarray:
        """Map transformed values back to scale values."""

    @abstractmethod
    def to_flowkit(self):
        """The equivalent ``flowkit.transforms`` object."""

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.params == self.params  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(self.params.items())))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={_format_number(v)}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"


def _require(transform: Transform, valid: bool, rule: str) -> None:
    if not valid:  # NaN parameters fail every comparison, so they land here too
        args = ", ".join(f"{k.upper()}={getattr(transform, k):g}" for k in transform._params)
        raise ValueError(f"{transform.kind} transform parameters {args} are invalid: Gating-ML 2.0 needs {rule}")


class LinearTransform(Transform):
    """Gating-ML ``flin``: ``(x + a) / (t + a)``, maps ``[-a, t]`` onto ``[0, 1]``."""

    kind = "linear"
    _params = ("t", "a")

    def __init__(self, t: float = MODERN_TOP, a: float = 0.0) -> None:
        self.t, self.a = float(t), float(a)
        _require(self, self.t > 0 and self.t + self.a > 0, "T > 0 and T + A > 0")

    # The same expression as FlowKit's LinearTransform, written here because importing
    # FlowKit (bokeh, scipy.interpolate, ...) costs seconds in every worker process.
    def apply(self, values) -> np.ndarray:
        return _nan_if_not_finite(values, (_as_float_array(values) + self.a) / (self.t + self.a))

    def inverse(self, values) -> np.ndarray:
        return _nan_if_not_finite(values, _as_float_array(values) * (self.t + self.a) - self.a)

    def to_flowkit(self):
        from flowkit import transforms

        return transforms.LinearTransform(param_t=self.t, param_a=self.a)


class LogTransform(Transform):
    """Gating-ML ``flog``: ``log10(x / t) / m + 1``; ``t`` maps to 1, ``m`` decades span ``[0, 1]``.

    Values ``<= 0`` give ``-inf``/NaN (that is the definition); prefer logicle for
    compensated data.
    """

    kind = "log"
    _params = ("t", "m")

    def __init__(self, t: float = MODERN_TOP, m: float = 4.5) -> None:
        self.t, self.m = float(t), float(m)
        _require(self, self.t > 0 and self.m > 0, "T > 0 and M > 0")

    def apply(self, values) -> np.ndarray:
        from flowutils import transforms

        with np.errstate(divide="ignore", invalid="ignore"):
            x = _as_float_array(values)
            return _nan_if_not_finite(x, transforms.log(x, None, t=self.t, m=self.m))

    def inverse(self, values) -> np.ndarray:
        from flowutils import transforms

        x = _as_float_array(values)
        return _nan_if_not_finite(x, transforms.log_inverse(x, None, t=self.t, m=self.m))

    def to_flowkit(self):
        from flowkit import transforms

        return transforms.LogTransform(param_t=self.t, param_m=self.m)


class AsinhTransform(Transform):
    """Gating-ML ``fasinh``: ``(asinh(x sinh(m ln10) / t) + a ln10) / ((m + a) ln10)``."""

    kind = "asinh"
    _params = ("t", "m", "a")

    def __init__(self, t: float = MODERN_TOP, m: float = 4.5, a: float = 0.0) -> None:
        self.t, self.m, self.a = float(t), float(m), float(a)
        _require(self, self.t > 0 and self.m > 0 and self.m + self.a > 0, "T > 0, M > 0 and M + A > 0")

    def apply(self, values) -> np.ndarray:
        from flowutils import transforms

        x = _as_float_array(values)
        return _nan_if_not_finite(x, transforms.asinh(x, None, t=self.t, m=self.m, a=self.a))

    def inverse(self, values) -> np.ndarray:
        from flowutils import transforms

        out = transforms.asinh_inverse(_as_float_array(values), None, t=self.t, m=self.m, a=self.a)
        return _nan_if_not_finite(values, out)

    def to_flowkit(self):
        from flowkit import transforms

        return transforms.AsinhTransform(param_t=self.t, param_m=self.m, param_a=self.a)


class _BiexponentialTransform(Transform):
    """Shared shape of logicle and hyperlog: parameters ``t, w, m, a``."""

    _params = ("t", "w", "m", "a")
    _forward: ClassVar[str]
    _backward: ClassVar[str]
    _flowkit_name: ClassVar[str]

    def __init__(self, t: float = MODERN_TOP, w: float = 0.5, m: float = 4.5, a: float = 0.0) -> None:
        self.t, self.w, self.m, self.a = float(t), float(w), float(m), float(a)
        # Gating-ML 2.0 (logicle and hyperlog): T > 0, M > 0, 0 <= W <= M/2, -W <= A <= M - 2W
        valid = self.t > 0 and self.m > 0 and 0 <= self.w <= self.m / 2 and -self.w <= self.a <= self.m - 2 * self.w
        _require(self, valid, "T > 0, M > 0, 0 <= W <= M/2 and -W <= A <= M - 2W")

    def _call(self, function_name: str, values) -> np.ndarray:
        from flowutils import transforms

        array = _as_float_array(values)
        flat = np.ascontiguousarray(array.reshape(-1))  # the C code wants one 1-D double array
        out = getattr(transforms, function_name)(flat, None, t=self.t, m=self.m, w=self.w, a=self.a)
        return _nan_if_not_finite(array, np.asarray(out, dtype=np.float64).reshape(array.shape))

    def apply(self, values) -> np.ndarray:
        return self._call(self._forward, values)

    def inverse(self, values) -> np.ndarray:
        return self._call(self._backward, values)

    def to_flowkit(self):
        from flowkit import transforms

        cls = getattr(transforms, self._flowkit_name)
        return cls(param_t=self.t, param_w=self.w, param_m=self.m, param_a=self.a)


class LogicleTransform(_BiexponentialTransform):
    """Gating-ML ``logicle`` (Moore & Parks 2012): linear near 0, log above, negatives on scale.

    ``t`` top of scale, ``w`` linearisation width in decades, ``m`` total decades,
    ``a`` extra negative decades. Defaults ``T=262144, W=0.5, M=4.5, A=0``.
    """

    kind = "logicle"
    _forward, _backward, _flowkit_name = "logicle", "logicle_inverse", "LogicleTransform"

    def apply(self, values) -> np.ndarray:
        # flowutils' algorithm on whole arrays (cytokit._logicle): same values, ~2x faster for W <= 1.
        from ._logicle import logicle

        return _nan_if_not_finite(values, logicle(values, self.t, self.w, self.m, self.a))


class HyperlogTransform(_BiexponentialTransform):
    """Gating-ML ``hyperlog`` (Bagwell 2005); same parameters as :class:`LogicleTransform`."""

    kind = "hyperlog"
    _forward, _backward, _flowkit_name = "hyperlog", "hyperlog_inverse", "HyperlogTransform"


class BiexTransform(Transform):
    """FlowJo 10's ``biex`` (FlowKit's ``WSPBiexTransform``, through :mod:`cytokit._biex`): data
    onto 0..4096. ``t`` top of scale, ``width`` FlowJo's width basis (negative: -10, -100, ...),
    ``positive`` decades, ``negative`` extra negative decades. Not in Gating-ML, so not exportable there.
    """

    kind = "biex"
    _params = ("t", "width", "positive", "negative")

    def __init__(self, t: float = 262144.0, width: float = -10.0, positive: float = 4.41854,
                 negative: float = 0.0) -> None:
        self.t, self.width, self.positive, self.negative = float(t), float(width), float(positive), float(negative)
        _biex.check(self.t, self.width, self.positive, self.negative)

    def apply(self, values) -> np.ndarray:
        return _biex.biex(values, self.t, self.width, self.positive, self.negative)

    def inverse(self, values) -> np.ndarray:
        return _biex.biex_inverse(values, self.t, self.width, self.positive, self.negative)

    def to_flowkit(self):
        return _biex.to_flowkit(self.t, self.width, self.positive, self.negative)

class RatioTransform:
    """Gating-ML ``fratio``: a new dimension ``a * (x - b) / (y - c)`` from two channels.

    Unlike the one-channel transforms it reads a DataFrame:
    ``RatioTransform("FL2-H", "FL2-A").apply(events)``. Division by zero gives ``±inf``/NaN.
    """

    kind = "ratio"

    def __init__(
        self, numerator: str, denominator: str, *, a: float = 1.0, b: float = 0.0, c: float = 0.0
    ) -> None:
        self.numerator, self.denominator = str(numerator), str(denominator)
        self.a, self.b, self.c = float(a), float(b), float(c)

    @property
    def params(self) -> dict[str, float]:
        return {"a": self.a, "b": self.b, "c": self.c}

    @property
    def channels(self) -> tuple[str, str]:
        """The numerator and denominator channels."""
        return (self.numerator, self.denominator)

    @property
    def default_id(self) -> str:
        return f"ratio_{self.numerator}_{self.denominator}"

    def apply(self, events: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.channels if c not in events.columns]
        if missing:
            raise ChannelNotFoundError(
                f"ratio transform needs channel(s) {missing}; events have {list(events.columns)}"
            )
        x = events[self.numerator].to_numpy(dtype=np.float64)
        y = events[self.denominator].to_numpy(dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.a * (x - self.b) / (y - self.c)

    def to_flowkit(self):
        from flowkit import transforms

        return transforms.RatioTransform(list(self.channels), param_a=self.a, param_b=self.b, param_c=self.c)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, RatioTransform)
            and other.channels == self.channels
            and other.params == self.params
        )

    def __hash__(self) -> int:
        return hash((self.channels, tuple(self.params.items())))

    def __repr__(self) -> str:
        return (
            f"RatioTransform({self.numerator!r}, {self.denominator!r}, "
            f"a={self.a:g}, b={self.b:g}, c={self.c:g})"
        )


_KINDS: dict[str, type[Transform]] = {
    cls.kind: cls
    for cls in (LinearTransform, LogTransform, AsinhTransform, LogicleTransform, HyperlogTransform, BiexTransform)
}


def make_transform(kind: str, **params: float) -> Transform:
    """Build a one-channel transform by name.

    Parameters
    ----------
    kind
        ``"logicle"``, ``"asinh"``, ``"log"``, ``"linear"``, ``"hyperlog"`` or ``"biex"`` (case-insensitive).
    **params
        Gating-ML parameters in lower or upper case (``t``, ``w``, ``m``, ``a``);
        unspecified ones take the class defaults.

    Raises
    ------
    ValueError
        Unknown kind, or a parameter the kind does not have.

    Examples
    --------
    >>> make_transform("asinh", T=10000, M=4, A=1)
    AsinhTransform(t=10000, m=4, a=1)
    """
    cls = _KINDS.get(kind.strip().lower())
    if cls is None:
        raise ValueError(f"unknown transform {kind!r}; choose one of {sorted(_KINDS)}")
    lowered = {name.lower(): value for name, value in params.items()}
    if len(lowered) < len(params):  # T and t: which one was meant?
        twice = sorted(n for n in params if sum(m.lower() == n.lower() for m in params) > 1)
        raise ValueError(f"{kind} transform: parameters {twice} are one parameter (names ignore case); give it once")
    unknown = sorted(set(lowered) - set(cls._params))
    if unknown:
        raise ValueError(f"{kind} transform has parameters {list(cls._params)}, not {unknown}")
    return cls(**{name: float(value) for name, value in lowered.items()})


def from_flowkit(transform) -> Transform | RatioTransform:
    """The cytokit transform equivalent to a ``flowkit.transforms`` object (Gating-ML import)."""
    from flowkit import transforms as fk

    if isinstance(transform, fk.RatioTransform):
        numerator, denominator = transform.dimensions
        return RatioTransform(
            numerator, denominator, a=transform.param_a, b=transform.param_b, c=transform.param_c
        )
    by_class: dict[type, tuple[type[Transform], tuple[str, ...]]] = {
        fk.LinearTransform: (LinearTransform, ("t", "a")),
        fk.LogTransform: (LogTransform, ("t", "m")),
        fk.AsinhTransform: (AsinhTransform, ("t", "m", "a")),
        fk.LogicleTransform: (LogicleTransform, ("t", "w", "m", "a")),
        fk.HyperlogTransform: (HyperlogTransform, ("t", "w", "m", "a")),
    }
    if type(transform) is fk.WSPBiexTransform:  # FlowJo workspaces' biex
        return BiexTransform(t=transform.max_value, width=transform.width, positive=transform.positive,
                             negative=transform.negative)
    if type(transform) is fk.WSPLogTransform:  # FlowJo's (log10 x - log10 offset) / decades: log10(x / t) / m + 1
        # with t = offset * 10**decades; FlowJo puts values below the offset at 0, cytokit's log below 0
        return LogTransform(t=float(transform.offset) * 10.0 ** float(transform.decades), m=float(transform.decades))
    for fk_cls, (cls, names) in by_class.items():
        if type(transform) is fk_cls:
            return cls(**{n: float(getattr(transform, f"param_{n}")) for n in names})
    raise ValueError(f"no cytokit equivalent for FlowKit transform {transform!r}")


def transform_events(events: pd.DataFrame, transforms: dict[str, Transform]) -> pd.DataFrame:
    """A copy of ``events`` with ``transforms[channel]`` applied to each named channel.

    Raises
    ------
    ChannelNotFoundError
        When a channel of ``transforms`` is not a column of ``events``.
    """
    missing = [c for c in transforms if c not in events.columns]
    if missing:
        raise ChannelNotFoundError(
            f"cannot transform channel(s) {missing}: not in the events ({list(events.columns)})"
        )
    out = events.copy()
    for channel, transform in transforms.items():
        out[channel] = transform.apply(events[channel].to_numpy())
    return out


__all__ = [
    "FACSCALIBUR_TOP",
    "MODERN_TOP",
    "Transform",
    "LinearTransform",
    "LogTransform",
    "AsinhTransform",
    "LogicleTransform",
    "HyperlogTransform",
    "BiexTransform",
    "RatioTransform",
    "make_transform",
    "from_flowkit",
    "transform_events",
]
