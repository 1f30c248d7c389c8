"""Gates and gating interop.

- :mod:`cytokit.gating.gates`: static gates (:class:`RectangleGate`, :class:`RangeGate`,
  :class:`PolygonGate`, :class:`EllipseGate`, :class:`QuadrantGate`, :class:`BooleanGate`);
- :mod:`cytokit.gating.fitted`: data-driven gates, scikit-learn style estimators
  (:class:`DensityValleyGate`, :class:`QuantileGate`, :class:`TailGate`,
  :class:`ClusterGate`, :class:`SingletGate`, :class:`ControlThresholdGate`);
- :mod:`cytokit.gating.gatingml`: Gating-ML 2.0 import, evaluation and export
  (:class:`GateSet`, :func:`read_gatingml`, :func:`apply_gatingml`, :func:`write_gatingml`).
"""

from __future__ import annotations

from .._lazy import attach

_EXPORTS = {
    "Gate": "gates",
    "RectangleGate": "gates",
    "RangeGate": "gates",
    "PolygonGate": "gates",
    "EllipseGate": "gates",
    "QuadrantGate": "gates",
    "BooleanGate": "gates",
    "FittedGate": "fitted",
    "DensityValleyGate": "fitted",
    "QuantileGate": "fitted",
    "TailGate": "fitted",
    "ClusterGate": "fitted",
    "SingletGate": "fitted",
    "ControlThresholdGate": "fitted",
    "GateDimension": "gatingml",
    "GateNode": "gatingml",
    "GateSet": "gatingml",
    "gatingml_id": "gatingml",
    "read_gatingml": "gatingml",
    "write_gatingml": "gatingml",
    "apply_gatingml": "gatingml",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = attach(__name__, _EXPORTS)
