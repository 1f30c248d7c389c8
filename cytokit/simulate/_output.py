"""Writing a cohort, :func:`simulate_cohort` (FCS files, sheet, truth); :func:`read_labels`."""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ._layouts import LAYOUTS, _calibur, _clock, _date, _modern
from ._model import CLASSES, STAINS, TIMEPOINTS, CohortDesign, _draw_patients, _drift, _tube


def _gzip_csv(frame: pd.DataFrame, path: Path) -> None:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    # mtime=0 and no file name in the gzip header: same seed, same bytes.
    path.write_bytes(gzip.compress(buffer.getvalue().encode(), compresslevel=9, mtime=0))


def read_labels(path: str | os.PathLike) -> pd.DataFrame:
    """Read the per-event truth of one simulated FCS file.

    Parameters
    ----------
    path
        The FCS file (its labels are looked up in ``truth/`` next to it) or the
        ``.labels.csv.gz`` file itself.

    Returns
    -------
    pandas.DataFrame
        One row per event in file order: ``cls`` (categorical over
        :data:`CLASSES`), ``lag3_pos`` and ``tnfa_pos`` (bool).
    """
    path = Path(path)
    if path.suffix.lower() == ".fcs":
        path = path.parent / "truth" / f"{path.stem}.labels.csv.gz"
    labels = pd.read_csv(path, dtype={"cls": str, "lag3_pos": np.uint8, "tnfa_pos": np.uint8})
    labels["cls"] = pd.Categorical(labels["cls"], categories=CLASSES)
    return labels.astype({"lag3_pos": bool, "tnfa_pos": bool})


def simulate_cohort(
    out_dir: str | os.PathLike,
    *,
    patients: int = 6,
    events: int = 10_000,
    layout: str = "calibur",
    seed: int = 0,
    design: CohortDesign | None = None,
    timepoints: tuple[str, ...] = TIMEPOINTS,
    response: bool = False,
) -> Path:
    """Write a synthetic CLL cohort: FCS files, a sample sheet and the truth.

    Parameters
    ----------
    out_dir
        Folder to write into (created if needed; files of the same names are replaced).
    patients
        Number of patients (``CLL001`` ...); each gets an isotype and a stained tube per timepoint.
    events
        Events per FCS file.
    layout
        ``"calibur"`` (FCS 2.0, 1024-channel log data) or ``"modern"`` (FCS 3.1
        float, uncompensated, with doublets); see the module docstring.
    seed
        Seed of everything; the patients' planted fractions depend only on
        ``seed`` (and ``patients``), so both layouts share them.
    design
        Parameter ranges; default :class:`CohortDesign`.
    timepoints
        The timepoint labels in time order (default ``C2D1``, ``C2D8``); each later one changes from
        the one before it (responders rise, see :class:`CohortDesign`).
    response
        Add a ``response`` column (``responder`` / ``non-responder``) to the sample sheet, for
        ``cytokit run --group-by response``.

    Returns
    -------
    pathlib.Path
        The sample sheet, ``out_dir/samples.csv``.

    Examples
    --------
    >>> import tempfile
    >>> sheet = simulate_cohort(tempfile.mkdtemp(), patients=1, events=500)
    >>> pd.read_csv(sheet).columns.tolist()
    ['file', 'patient', 'timepoint', 'stain']
    """
    from ..fcs import write_fcs

    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    if not 1 <= patients <= 999:
        raise ValueError(f"patients must be between 1 and 999, not {patients}")
    if events < 1:
        raise ValueError(f"events must be positive, not {events}")
    timepoints = tuple(str(tp).strip() for tp in timepoints)
    if len(timepoints) < 2 or len({tp.casefold() for tp in timepoints}) != len(timepoints) or not all(timepoints) \
            or any(c in tp for tp in timepoints for c in "_/\\,"):
        raise ValueError(f"timepoints must be at least two different labels without _ , / or \\, "
                         f"not {list(timepoints)}")
    design = design or CohortDesign()
    if not 0.0 <= design.nonresponder_share <= 1.0:
        raise ValueError(f"the non-responders' share must be between 0 and 1, not {design.nonresponder_share}")
    out = Path(out_dir)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    layout_code = LAYOUTS.index(layout)
    sheet_rows, truth_rows = [], []
    for i, p in enumerate(_draw_patients(patients, seed, design, timepoints)):
        for t, tp in enumerate(timepoints):
            drift = _drift(np.random.default_rng([seed, layout_code, i, t, 0xD1]))
            start = 9 * 3600 + 1800 * (i % 12)
            for s, stain in enumerate(STAINS):
                rng = np.random.default_rng([seed, layout_code, i, t, s])
                stained = stain == "stained"
                values, labels = _tube(rng, p, tp, stained, layout, events, design)
                for key, factor in drift.items():
                    values[key] = values[key] * factor
                name = f"{p.patient}_{tp}_{stain}.fcs"
                meta = {
                    "file": name,
                    "source": f"{p.patient} {tp} {stain}",
                    "sample_number": f"{i + 1}-{t + 1}-{s + 1}",
                    "date": _date(p.day + 7 * t),
                    "btim": _clock(start + 300 * s),
                    "etim": _clock(start + 300 * s + 60),
                    "start": start + 300 * s,
                    "rate": 1500.0,
                    "comment": f"synthetic data: cytokit.simulate layout={layout} seed={seed}",
                }
                spec = _calibur(values, stained, meta) if layout == "calibur" else _modern(rng, values, stained, meta)
                write_fcs(out / name, spec.pop("data"), **spec)
                _gzip_csv(labels, out / "truth" / f"{Path(name).stem}.labels.csv.gz")
                sheet_rows.append({"file": name, "patient": p.patient, "timepoint": tp, "stain": stain,
                                   **({"response": "responder" if p.responder else "non-responder"}
                                      if response else {})})
                cll = labels["cls"] == "cll"
                for marker, planted, column in (
                    ("LAG3", p.lag3_pct[tp], "lag3_pos"),
                    ("TNFa", p.tnfa_pct[tp], "tnfa_pos"),
                ):
                    labelled = 100 * labels.loc[cll, column].mean() if cll.any() else float("nan")
                    truth_rows.append(
                        {
                            "file": name,
                            "patient": p.patient,
                            "timepoint": tp,
                            "stain": stain,
                            "marker": marker,
                            "population": "viable CD19+",
                            "planted_pct_pos": round(planted if stained else 0.0, 3),
                            "labelled_pct_pos": round(labelled, 3),
                            "responder": p.responder,
                        }
                    )
    pd.DataFrame(truth_rows).to_csv(out / "truth.csv", index=False, lineterminator="\n")
    sheet = out / "samples.csv"
    pd.DataFrame(sheet_rows).to_csv(sheet, index=False, lineterminator="\n")
    return sheet
