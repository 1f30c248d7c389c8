"""Spillover matrices and compensation.

A spillover matrix is a :class:`pandas.DataFrame` whose rows are the *sources*
(fluorochromes, or the channels they are named after) and whose columns are the
*detectors* (``$PnN``): ``spillover.loc[src, det]`` is the fraction of the signal of
``src`` seen in ``det``. Observed values are ``true @ S``, so compensation solves
``S.T x = observed`` for every event (flowutils does the solve; no explicit inverse).

When the row names are the column names (the ``$SPILLOVER`` case) rows are matched
to columns by name. When they differ (a Gating-ML ``spectrumMatrix`` with
fluorochrome names) row ``i`` is paired with detector column ``i``, as in FlowKit and
Gating-ML: the compensated value of fluorochrome ``i`` is stored in detector ``i``.

Examples
--------
>>> import pandas as pd
>>> spill = pd.DataFrame([[1.0, 0.1], [0.0, 1.0]], index=["FL1", "FL2"], columns=["FL1", "FL2"])
>>> events = pd.DataFrame({"FSC": [5.0], "FL1": [100.0], "FL2": [60.0]})
>>> compensate(events, spill).round(6).to_dict("records")
[{'FSC': 5.0, 'FL1': 100.0, 'FL2': 50.0}]
"""

from __future__ import annotations

from collections.abc import Sequence

from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ChannelNotFoundError, CytokitError, FCSError


def _aligned(spillover: pd.DataFrame) -> pd.DataFrame:
    """Rows reordered to the column order when both name the same channels."""
    rows = [str(r) for r in spillover.index]
    cols = [str(c) for c in spillover.columns]
    if rows != cols and sorted(rows) == sorted(cols):
        return spillover.loc[spillover.columns]
    return spillover


MAX_CONDITION = 1e6
"""A spillover matrix whose condition number is above this is refused as nearly singular: real
matrices (diagonal 1, spillovers below 1) are in the tens; at 1e6 the inverse multiplies the
events' rounding noise a million-fold."""


def validate_spillover(spillover: pd.DataFrame) -> pd.DataFrame:
    """Check a spillover matrix is square, numeric, finite and invertible.

    Returns the matrix with rows aligned to the columns (when they name the same channels).

    Raises
    ------
    ValueError
        When the matrix is not square, has non-finite entries or is singular.
    FCSError
        (a ValueError) The same, for a matrix :func:`~cytokit.read_fcs` read from a file: its
        ``attrs["source"]`` (``"<file>: $SPILLOVER"``) starts the message, as the file is at fault.
    """
    problem = _problem(spillover)
    if problem:
        source = spillover.attrs.get("source")
        raise FCSError(f"{source}: {problem}") if source else ValueError(problem)
    return _aligned(spillover).astype(np.float64)


def _problem(spillover: pd.DataFrame) -> str | None:
    if spillover.shape[0] != spillover.shape[1]:
        return (f"spillover matrix must be square, got {spillover.shape[0]} rows × {spillover.shape[1]} "
                "columns")
    values = spillover.to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(values)):
        return "spillover matrix has NaN or infinite entries"
    if np.linalg.matrix_rank(values) < len(values):
        return f"spillover matrix over {list(spillover.columns)} is singular; it cannot be inverted"
    condition = np.linalg.cond(values)
    if condition > MAX_CONDITION:  # 1 + 1e-7 beside 1: the inverse turns noise into values of 1e10
        return (f"spillover matrix over {list(spillover.columns)} is nearly singular (condition number "
                f"{condition:.3g}, above {MAX_CONDITION:g}): compensated values would be noise")
    return None


def compensate(events: pd.DataFrame, spillover: pd.DataFrame) -> pd.DataFrame:
    """Compensated copy of ``events``.

    Parameters
    ----------
    events
        Scale values, one column per ``$PnN``.
    spillover
        Rows sources, columns detectors (see the module docstring). Its columns must
        all be columns of ``events``; channels not in the matrix are left untouched.

    Returns
    -------
    pandas.DataFrame
        Same columns, index and order as ``events``; detector columns compensated.

    Raises
    ------
    ChannelNotFoundError
        When a detector of the matrix is not a column of ``events``.
    ValueError
        When the matrix is not square or singular; an :class:`~cytokit.FCSError` when
        it is a file's (see :func:`validate_spillover`).
    """
    spillover = validate_spillover(spillover)
    detectors = [str(c) for c in spillover.columns]
    missing = [d for d in detectors if d not in events.columns]
    if missing:
        raise ChannelNotFoundError(
            f"spillover matrix detector(s) {missing} are not channels of the events "
            f"(channels: {list(events.columns)}); check that the matrix belongs to this panel"
        )
    values = events.to_numpy(dtype=np.float64)  # one block: no per-column copies (nor a copy when float64)
    where = [events.columns.get_loc(d) for d in detectors]
    # observed = true @ S, so true = observed @ S^-1: one small inverse and one matrix
    # product (flowutils solves against every event, ~10x slower for 10**6 events).
    true = values[:, where] @ np.linalg.inv(spillover.to_numpy())
    compensated = dict(zip(where, true.T))
    out = np.empty(values.shape, dtype=np.float64, order="F")  # each channel one contiguous run,
    for j in range(values.shape[1]):  # written column by column (a fancy-indexed write took 2-3x as long)
        out[:, j] = compensated.get(j, values[:, j])
    return pd.DataFrame(out, columns=events.columns, index=events.index, copy=False)


def spillover_from_keyword(value: str, channels: Sequence[str] = ()) -> pd.DataFrame:
    """Parse a ``$SPILLOVER``/``$SPILL``/``SPILL``/``$COMP`` value (``n,ch1,...,chn,v11,...,vnn``).

    ``channels`` are the file's ``$PnN`` in order: an FCS 3.0 ``$COMP`` without names
    applies to the first ``n`` of them, and names given as parameter numbers map to them.

    Raises
    ------
    ValueError
        When the value is not ``n`` names followed by ``n*n`` numbers.
    """
    parts = [p.strip() for p in value.strip().split(",")]
    try:
        n = int(float(parts[0]))
    except (ValueError, OverflowError):  # OverflowError: a count of inf
        raise ValueError(f"spillover keyword must start with the channel count, got {value[:40]!r}") from None
    if n <= 0:
        raise ValueError(f"spillover keyword declares {n} channels")
    channels = list(channels)
    rest = parts[1:]
    if len(rest) == n * n and channels:  # FCS 3.0 $COMP without channel names
        labels, numbers = channels[:n], rest
    else:
        labels, numbers = rest[:n], rest[n : n + n * n]
    if len(numbers) != n * n or len(labels) != n:
        raise ValueError(f"spillover keyword declares {n} channels but has {len(rest)} fields, "
                         f"expected {n + n * n}")
    matrix = np.asarray([float(v) for v in numbers]).reshape(n, n)
    lookup = {name: name for name in channels} | {str(i + 1): name for i, name in enumerate(channels)}
    labels = [lookup.get(label, label) for label in labels]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:  # which row is whose? compensating would apply one detector's spillover to another's
        raise ValueError(f"spillover keyword names channel(s) {', '.join(twice)} more than once")
    return pd.DataFrame(matrix, index=labels, columns=labels)


def read_spillover_csv(path: str | Path) -> pd.DataFrame:
    """Read a spillover matrix CSV/TSV as exported by FlowJo, FlowKit or cytokit.

    Accepted layouts: a header row of detector names (FlowJo prefixes it with ``#``)
    followed by ``n`` numeric rows, with or without a leading column of row names
    (fluorochromes/sources). Comma, tab or semicolon separated. Without row names
    the rows take the detector names.

    Raises
    ------
    CytokitError
        When the file does not hold a square numeric matrix.
    """
    path = Path(path)
    lines = [line for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    if not lines:
        raise CytokitError(f"{path}: spillover matrix file is empty")
    header_line = lines[0].lstrip()
    if header_line.startswith("#"):
        header_line = header_line[1:]
    sep = "\t" if "\t" in header_line else (";" if header_line.count(";") > header_line.count(",") else ",")
    header = [h.strip().strip('"') for h in header_line.split(sep)]
    rows = [[f.strip().strip('"') for f in line.split(sep)] for line in lines[1:]]
    if not rows:
        raise CytokitError(f"{path}: spillover matrix has a header but no rows")
    if len(rows[0]) == len(header) + 1:  # row names under no header cell
        detectors, names, cells = header, [r[0] for r in rows], [r[1:] for r in rows]
    elif not _is_number(rows[0][0]):  # row names under a (possibly empty) header cell
        detectors, names, cells = header[1:], [r[0] for r in rows], [r[1:] for r in rows]
    else:
        detectors, names, cells = header, header[: len(rows)], rows
    try:
        values = np.array([[float(v) for v in r] for r in cells], dtype=np.float64)
    except ValueError:
        raise CytokitError(
            f"{path}: spillover matrix has non-numeric entries or rows of unequal length"
        ) from None
    if values.ndim != 2 or values.shape != (len(detectors), len(detectors)):
        raise CytokitError(
            f"{path}: spillover matrix must be square with one column per detector; "
            f"got {len(detectors)} detectors and a {values.shape} block of numbers"
        )
    return pd.DataFrame(values, index=names, columns=detectors)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


__all__ = ["compensate", "read_spillover_csv", "spillover_from_keyword", "validate_spillover"]
