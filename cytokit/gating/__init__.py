"""Gates and gating interop.

- :mod:`cytokit.gating.gates`: static gates (:class:`RectangleGate`, :class:`RangeGate`,
  :class:`PolygonGate`, :class:`EllipseGate`, :class:`QuadrantGate`), and
  :mod:`cytokit.gating.boolean`: :class:`BooleanGate` over populations' memberships;
- data-driven gates, scikit-learn style estimators: :mod:`cytokit.gating.fitted` (the base,
  :class:`FittedGate`), :mod:`cytokit.gating.thresholds` (:class:`DensityValleyGate`,
  :class:`QuantileGate`, :class:`FixedThresholdGate`, :class:`TailGate`,
  :class:`ControlThresholdGate`), :mod:`cytokit.gating.mixture` (:class:`MixtureThresholdGate`),
  :mod:`cytokit.gating.regions` (:class:`ClusterGate`, :class:`SingletGate`),
  :mod:`cytokit.gating.boundary` (:class:`BoundaryGate`, :class:`RatioSingletGate`) and
  :mod:`cytokit.gating.peaks` (:class:`PeakFootGate`, :class:`ShoulderGate`,
  :class:`ValleyQuadrantGate`);
- :mod:`cytokit.gating.gatingml`: Gating-ML 2.0 import, evaluation and export
  (:class:`GateSet`, :func:`read_gatingml`, :func:`apply_gatingml`, :func:`write_gatingml`;
  :class:`GateDimension`, :class:`GateNode` and :func:`gatingml_id` in
  :mod:`cytokit.gating.gatingml_nodes`).
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
    "BooleanGate": "boolean",
    "FittedGate": "fitted",
    "DensityValleyGate": "thresholds",
    "QuantileGate": "thresholds",
    "TailGate": "thresholds",
    "MixtureThresholdGate": "mixture",
    "FixedThresholdGate": "thresholds",
    "ClusterGate": "regions",
    "SingletGate": "regions",
    "ContourGate": "regions",
    "ControlThresholdGate": "thresholds",
    "BoundaryGate": "boundary",
    "RatioSingletGate": "boundary",
    "PeakFootGate": "peaks",
    "ShoulderGate": "peaks",
    "ValleyQuadrantGate": "peaks",
    "GateDimension": "gatingml_nodes",
    "GateNode": "gatingml_nodes",
    "GateSet": "gatingml",
    "gatingml_id": "gatingml_nodes",
    "read_gatingml": "gatingml",
    "write_gatingml": "gatingml",
    "apply_gatingml": "gatingml",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = attach(__name__, _EXPORTS)
