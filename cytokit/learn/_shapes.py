"""The shapes of learned regions: the members' convex hull as a readable polygon
(:func:`covering`), the members' bounding box (:func:`members_box`) and the person's drawn gate as a
registered gate's limits or vertices (:func:`region`)."""

from __future__ import annotations

import numpy as np

HULL_MARGIN = 0.001  # a learned polygon is its members' convex hull, this much larger (from its centre)
MAX_VERTICES = 64  # ... with at most this many vertices (the smallest corners cut: a readable template)
DRAWN_VERTICES = 256  # a person's drawn polygon, its edges bent by the change of scale, keeps this many
#: a vertex closer than this share of the polygon's diagonal to the line through its neighbours is on a
#: straight edge and dropped whatever the limit: it moves no event a pixel (ten times the template's rounding)
STRAIGHT = 1e-5


def covering(hull: np.ndarray) -> np.ndarray:
    """The hull's vertices, at most :data:`MAX_VERTICES` of them (:func:`fewer_vertices`), moved
    out from their centre until every vertex of ``hull`` is inside, and :data:`HULL_MARGIN`
    further (members on the edges stay inside)."""
    corners = fewer_vertices(hull, MAX_VERTICES)
    centre = corners.mean(axis=0)
    edge = np.roll(corners, -1, axis=0) - corners
    normal = np.column_stack([edge[:, 1], -edge[:, 0]])  # perpendicular to each edge
    reach = np.einsum("ij,ij->i", normal, corners - centre)  # the edge's distance from the centre (x |normal|)
    normal, reach = normal * np.sign(reach)[:, None], np.abs(reach)
    scale = max(float(((hull - centre) @ normal.T / reach).max()), 1.0)
    return centre + (corners - centre) * scale * (1 + HULL_MARGIN)


def fewer_vertices(corners: np.ndarray, limit: int) -> np.ndarray:
    """A polygon's vertices, the one cutting off the smallest triangle dropped until ``limit`` are
    left (Visvalingam-Whyatt), and any vertex on a straight edge (:data:`STRAIGHT`) dropped whatever
    the limit: a hull of members lying on a curve, as a logicle scale bends a drawn gate's straight
    edges, has a vertex per member, and a drawn gate's edges come split in points (straight on a
    linear scale: a 7-sided gate came out with 256 vertices)."""
    keep = np.asarray(corners, dtype=float)
    diagonal = float(np.hypot(*np.ptp(keep, axis=0))) if len(keep) else 0.0
    while len(keep) > 3:
        before, after = np.roll(keep, 1, axis=0), np.roll(keep, -1, axis=0)
        area = np.abs((keep[:, 0] - before[:, 0]) * (after[:, 1] - before[:, 1])
                      - (after[:, 0] - before[:, 0]) * (keep[:, 1] - before[:, 1]))
        smallest = int(np.argmin(area))
        if len(keep) <= limit:
            height = area / np.maximum(np.hypot(*(after - before).T), np.finfo(float).tiny)
            smallest = int(np.argmin(height))
            if height[smallest] > STRAIGHT * diagonal:
                break
        keep = np.delete(keep, smallest, axis=0)
    return keep


def region(drawn: dict, grid: list[tuple[float, float]]) -> dict:
    """The person's drawn gate (``limits`` per dimension or ``vertices``, on the learned scale) as a
    registered gate's ``limits`` (one dimension) or ``vertices`` (two: a rectangle's open sides at
    ten grid spans out)."""
    if "vertices" in drawn:  # its straight edges first (collinear points), then the finest of its curves
        return {"vertices": [[float(x), float(y)] for x, y in fewer_vertices(drawn["vertices"], DRAWN_VERTICES)]}
    limits = drawn["limits"]
    if len(limits) == 1:
        return {"limits": list(limits[0])}
    (x0, x1), (y0, y1) = [[lo - 10 * (hi - lo) if a is None else a, hi + 10 * (hi - lo) if b is None else b]
                          for (a, b), (lo, hi) in zip(limits, grid)]
    return {"vertices": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]}


def members_box(values: np.ndarray, member: np.ndarray) -> list[list[float | None]]:
    """The members' bounding box on two dimensions, each side moved halfway to the nearest
    non-member level with the box (open where there is none: the person's rectangle ran on)."""
    inner, out = values[member], values[~member]
    lo, hi = inner.min(axis=0), inner.max(axis=0)
    limits = []
    for k in (0, 1):
        level = out[(out[:, 1 - k] >= lo[1 - k]) & (out[:, 1 - k] <= hi[1 - k]), k]
        below, above = level[level < lo[k]], level[level > hi[k]]
        limits.append([float((lo[k] + below.max()) / 2) if len(below) else None,
                       float((hi[k] + above.min()) / 2) if len(above) else None])
    return limits


__all__ = ["members_box", "covering", "fewer_vertices", "region"]
