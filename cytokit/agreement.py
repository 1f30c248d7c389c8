"""cytokit's populations against a manual gating of the same files: :func:`compare`.

Per file and paired population, with A cytokit's events and M the manual ones:

- ``precision`` = \\|A∩M\\| / \\|A\\|, ``recall`` = \\|A∩M\\| / \\|M\\|, ``f1`` = 2·\\|A∩M\\| / (\\|A\\| + \\|M\\|);
- ``f1_parent``: the same on the events that *both* put in the parent population (cytokit's
  parent ∩ the manual parent; every event for a top population): the gate's own error,
  not its ancestors';
- ``pct_parent_cytokit`` / ``pct_parent_manual``: 100 · count / own parent's count;
  ``delta_pct_parent`` = cytokit − manual, in percentage points;
- ``count_rel_error`` = (\\|A\\| − \\|M\\|) / \\|M\\|.

Edge cases, chosen so that agreeing on "nothing here" scores as agreement: both empty →
precision = recall = F1 = 1 and ``count_rel_error`` = 0; A empty, M not → precision NaN,
recall 0, F1 0; M empty, A not → precision 0, recall NaN, F1 0, ``count_rel_error`` inf; an
empty parent → its % of parent is NaN.

Populations pair as :mod:`cytokit.pairing` says: by name, a template population's ``manual:``
or a ``mapping``; a name several manual populations share pairs with the one whose parent pairs
with cytokit's parent, else it is left unpaired as ambiguous. Rows have ``status`` ``paired``, ``unpaired`` (one
side only, the reason in ``note``) or ``error`` (the file failed; the message in ``note``);
``flag`` carries cytokit's gate flag (a failed, skipped or doubtful gate, or an ancestor's).

Examples
--------
>>> import numpy as np
>>> from cytokit.manual import Gating
>>> auto = Gating({"Cells": np.array([1, 1, 1, 0], bool)}, n_events=4)
>>> hand = Gating({"cells": np.array([1, 1, 0, 0], bool)}, n_events=4)
>>> row = score_file("f.fcs", auto, hand)[0]
>>> row["manual"], row["precision"], row["recall"], round(row["f1"], 3)
('cells', 0.6666666666666666, 1.0, 0.8)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import ChannelNotFoundError, CytokitError, MetadataError
from .manual import Gating, ManualSource, read_manual
from .pairing import check_mapping, normalise, pair_populations, read_controls, read_mapping
from .panel import Panel, read_panel

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

    from .gating.result import GatingResult
    from .gating.template import Template

COLUMNS = ["file", "population", "manual", "status", "n_cytokit", "n_manual", "precision", "recall", "f1",
           "f1_parent", "pct_parent_cytokit", "pct_parent_manual", "delta_pct_parent", "count_rel_error",
           "flag", "note"]
NAN = float("nan")


def agreement(a: np.ndarray, m: np.ndarray) -> tuple[float, float, float]:
    """``(precision, recall, f1)`` of membership ``a`` against ``m`` (edge cases: module docstring)."""
    n_a, n_m, both = int(a.sum()), int(m.sum()), int(np.count_nonzero(a & m))
    if n_a == 0 and n_m == 0:
        return 1.0, 1.0, 1.0
    precision = both / n_a if n_a else NAN
    recall = both / n_m if n_m else NAN
    return precision, recall, 2.0 * both / (n_a + n_m)


def _pct(mask: np.ndarray, parent: np.ndarray) -> float:
    n_parent = int(parent.sum())
    return 100.0 * int(mask.sum()) / n_parent if n_parent else NAN


def score_file(file: str, auto: Gating, manual: Gating, mapping: Mapping[str, str] | None = None) -> list[dict]:
    """The comparison rows (:data:`COLUMNS`) of one file: paired populations, then the unpaired."""
    if auto.n_events != manual.n_events:
        raise MetadataError(f"{file}: cytokit gated {auto.n_events} events but the manual gating has "
                            f"{manual.n_events}")
    pairs, unpaired_auto, unpaired_manual = pair_populations(auto, manual, mapping)
    rows = []
    empty = dict.fromkeys(COLUMNS[4:14], NAN)
    for path, manual_path in pairs:
        a, m = auto.membership[path], manual.membership[manual_path]
        if auto.flags.get(path, "").startswith("skipped"):  # it holds its parent's events: no gate to score
            rows.append({**empty, "file": file, "population": path, "manual": manual_path, "status": "skipped",
                         "n_cytokit": int(a.sum()), "n_manual": int(m.sum()), "flag": auto.flag(path),
                         "note": "its gate was skipped in this file (it holds its parent's events): not scored"})
            continue
        parent_a, parent_m = auto.parent_mask(path), manual.parent_mask(manual_path)
        precision, recall, f1 = agreement(a, m)
        within = parent_a & parent_m
        n_a, n_m = int(a.sum()), int(m.sum())
        pct_a, pct_m = _pct(a, parent_a), _pct(m, parent_m)
        rows.append({
            "file": file, "population": path, "manual": manual_path, "status": "paired",
            "n_cytokit": n_a, "n_manual": n_m, "precision": precision, "recall": recall, "f1": f1,
            "f1_parent": agreement(a & within, m & within)[2],
            "pct_parent_cytokit": pct_a, "pct_parent_manual": pct_m, "delta_pct_parent": pct_a - pct_m,
            "count_rel_error": (n_a - n_m) / n_m if n_m else (0.0 if n_a == 0 else math.inf),
            "flag": auto.flag(path), "note": "",
        })
    for path, why in unpaired_auto.items():
        rows.append({**empty, "file": file, "population": path, "manual": "", "status": "unpaired",
                     "n_cytokit": int(auto.membership[path].sum()), "flag": auto.flag(path), "note": why})
    for path, why in unpaired_manual.items():
        rows.append({**empty, "file": file, "population": "", "manual": path, "status": "unpaired",
                     "n_manual": int(manual.membership[path].sum()), "flag": "", "note": why})
    return rows


def _file_list(files: str | Path | Sequence[str | Path]) -> list[Path]:
    from .metadata import list_fcs

    if isinstance(files, (str, Path)):
        files = list_fcs(files) if Path(files).is_dir() else [Path(files)]
    out = [Path(f) for f in files]
    if not out:
        raise MetadataError("no FCS files to compare")
    names = [p.name for p in out]
    if len(set(names)) < len(names):
        raise MetadataError(f"the files to compare must have different names (each is matched to its manual gating "
                            f"by its name): {', '.join(sorted({n for n in names if names.count(n) > 1}))} more than once")
    return out


def compare(files: str | Path | Sequence[str | Path], template: str | Path | Template,
            manual: str | Path | ManualSource, *, mapping: Mapping[str, str] | str | Path | None = None,
            controls: Mapping[str, str] | str | Path | None = None, strict: bool = True,
            panel: str | Path | Panel | None = None) -> pd.DataFrame:
    """Compare cytokit's populations with a manual gating of the same FCS files.

    Parameters
    ----------
    files
        FCS files, or a folder of them.
    template
        A gating template (any format :func:`~cytokit.load_template` reads) or a loaded one.
    manual
        A folder of ``<file stem>.npz`` membership files, a FlowJo ``.wsp`` or a Gating-ML
        ``.xml`` (:func:`cytokit.manual.read_manual`).
    mapping
        ``{cytokit population name or path: manual population path}``, or a CSV
        ``cytokit,manual``; populations not in it pair by name.
    controls
        ``{file: control file}`` (names or paths; a control named by file name is looked for among
        ``files``, else beside the file, then as given), or a CSV with columns ``file, control_file``.
        Each control is gated first (its ``control_threshold`` gates fitted on itself) and its result
        given to the files it controls; a file named as a control is compared with the gates fitted
        on itself (a file its own control, or a control with one of its own, is refused).
    strict
        Raise the first file's error (default); else give the file one ``error`` row and go on.
    panel
        A panel sheet (CSV ``channel,marker[,file]``, :func:`~cytokit.panel.read_panel`) whose
        markers stand for the files' ``$PnS``; it replaces the template's ``panel`` key.

    Returns
    -------
    pandas.DataFrame
        One row per file × population, columns :data:`COLUMNS` (see the module docstring).

    Raises
    ------
    CytokitError
        The template, manual gating, mapping or controls are unusable; with ``strict``, a
        file cannot be read, gated or matched to its manual gating (its event count differs, ...).
    """
    from .controls import check_controls
    from .fcs import read_fcs
    from .gating.load import load_template
    from .gating.pooling import fit_pooled

    paths = _file_list(files)
    if not hasattr(template, "apply"):
        template = load_template(template, panel=panel)
    elif panel is not None:
        template = dataclasses.replace(template, panel=panel if isinstance(panel, Panel) else read_panel(panel))
    mapping = check_mapping(mapping, template)
    if isinstance(controls, (str, Path)):
        controls = read_controls(controls)
    controls = check_controls(controls or {}, paths)
    by_name = {p.name: p for p in paths}
    source = read_manual(manual, paths)
    is_control = {Path(c).name for c in controls.values()}
    gated: dict[Path, object] = {}  # control file -> its GatingResult

    def control_for(path: Path, channels: dict[str, str]):
        if not (name := controls.get(path.name)):
            return None
        ctrl = by_name.get(Path(name).name) if Path(name).name == name else None
        ctrl = ctrl or next((c for c in (path.parent / name, Path(name)) if c.exists()), path.parent / name)
        if ctrl not in gated:
            try:
                sample = read_fcs(ctrl)
                gated[ctrl] = template.apply(sample, is_control=True, pooled=pooled,
                                             channels=template.resolve_channels(sample, reference=channels))
            except CytokitError as exc:
                raise type(exc)(f"{path}: its control {ctrl} cannot be gated: {exc}") from exc
        return gated[ctrl]

    def stained_channels(ctrl: Path) -> dict[str, str] | None:
        """The detectors of the first readable file ``ctrl`` controls: an isotype tube's $PnS lacks the markers."""
        for name, control in controls.items():
            if Path(control).name == ctrl.name and name in by_name:
                try:
                    return template.resolve_channels(read_fcs(by_name[name]))
                except CytokitError:  # that file fails on its own turn, with its own message
                    continue
        return None

    rows: list[dict] = []
    failed: dict[Path, CytokitError] = {}
    pooled: dict = {}  # pool: true gates, fitted on every file first; the controls are gated again with them
    pooled = fit_pooled(template, paths, controls=lambda s, ch: control_for(Path(s.path), ch),
                        on_error=None if strict else lambda p, exc: failed.setdefault(Path(p), exc))
    gated.clear()
    for path in paths:
        try:
            if path in failed:
                raise failed[path]
            sample = read_fcs(path)
            if path.name in is_control:  # gated once, as itself and as the others' control
                if path not in gated:
                    channels = template.resolve_channels(sample, reference=stained_channels(path))
                    gated[path] = template.apply(sample, is_control=True, channels=channels, pooled=pooled)
                result = gated[path]
            else:
                try:
                    channels = template.resolve_channels(sample)
                except ChannelNotFoundError as exc:  # a lone isotype tube's $PnS names the isotype (IgG1)
                    raise ChannelNotFoundError(f"{exc}. If it is a control tube, name it as its stained tube's "
                                               "control_file in --controls (a cytokit run's samples.csv has "
                                               "that column), or give --panel") from None
                result = template.apply(sample, control=control_for(path, channels), channels=channels,
                                        pooled=pooled)
            rows += score_file(path.name, Gating.from_result(result), source.gating(path, sample), mapping)
        except CytokitError as exc:
            if strict:
                raise
            rows.append(_error_row(path.name, str(exc)))
    return _frame(rows)


def compare_gated(files: Sequence[str], gate: Callable[[str], GatingResult], manual: ManualSource, *,
                  mapping: Mapping[str, str] | None = None, failed: Mapping[str, str] | None = None
                  ) -> pd.DataFrame:
    """Compare files already gated elsewhere (a run's) with a manual gating: :func:`compare`'s table.

    Parameters
    ----------
    files
        The files' names, in the table's order.
    gate
        File name → its :class:`~cytokit.GatingResult` (``Results.plot.gating``: the run's
        template and control pairing); the result's sample is the one the manual gating is read on.
    manual
        An opened manual gating (:func:`cytokit.manual.read_manual`).
    mapping
        ``{cytokit population name or path: manual population path}``.
    failed
        File name → why it was not analysed: an ``error`` row each, not gated.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`; a file that cannot be gated or has no manual gating gets one
        ``error`` row with the reason in ``note``.
    """
    failed = dict(failed or {})
    rows: list[dict] = []
    for file in files:
        if file in failed:
            rows.append(_error_row(file, f"not analysed: {failed[file]}"))
            continue
        try:
            result = gate(file)
            sample = result.sample
            rows += score_file(file, Gating.from_result(result), manual.gating(sample.path or file, sample), mapping)
        except CytokitError as exc:
            rows.append(_error_row(file, str(exc)))
    return _frame(rows)


def _error_row(file: str, note: str) -> dict:
    return {**dict.fromkeys(COLUMNS, NAN), "file": file, "population": "", "manual": "", "status": "error",
            "flag": "", "note": note}


def _frame(rows: list[dict]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(rows, columns=COLUMNS).astype({"n_cytokit": "Int64", "n_manual": "Int64"})


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Per cytokit population over the files it was paired in: median and worst F1 and F1
    within the parent, the worst file, the median % of parent difference, flagged files.

    Columns: ``population, manual`` (every manual path it paired with, ``;``-joined),
    ``n_files, f1_median, f1_worst, worst_file, f1_parent_median, f1_parent_worst,
    delta_pct_parent_median, n_flagged, n_unpaired``.
    """
    import pandas as pd

    paired = table[table["status"] == "paired"]
    unpaired = table[(table["status"] == "unpaired") & (table["population"] != "")]
    rows = []
    for population in dict.fromkeys([*paired["population"], *unpaired["population"]]):
        group = paired[paired["population"] == population]
        f1 = group["f1"].astype(float)
        rows.append({
            "population": population, "manual": "; ".join(dict.fromkeys(group["manual"])),
            "n_files": len(group), "f1_median": f1.median(), "f1_worst": f1.min(),
            "worst_file": group["file"].iloc[int(np.argmin(f1.to_numpy()))] if len(group) else "",
            "f1_parent_median": group["f1_parent"].astype(float).median(),
            "f1_parent_worst": group["f1_parent"].astype(float).min(),
            "delta_pct_parent_median": group["delta_pct_parent"].astype(float).median(),
            "n_flagged": int((group["flag"] != "").sum()),
            "n_unpaired": int((unpaired["population"] == population).sum()),
        })
    return pd.DataFrame(rows, columns=["population", "manual", "n_files", "f1_median", "f1_worst", "worst_file",
                                       "f1_parent_median", "f1_parent_worst", "delta_pct_parent_median",
                                       "n_flagged", "n_unpaired"])


def plot_f1(table: pd.DataFrame, value: str = "f1") -> Figure:
    """Heat map of ``value`` (``f1`` or ``f1_parent``): paired populations × files, annotated."""
    from matplotlib.figure import Figure

    paired = table[table["status"] == "paired"]
    grid = paired.pivot_table(index="population", columns="file", values=value, aggfunc="first")
    grid = grid.reindex(index=list(dict.fromkeys(paired["population"])), columns=list(dict.fromkeys(paired["file"])))
    wide = 0.06 * max(map(len, map(str, grid.index)), default=10) + 0.7 * max(len(grid.columns), 1)  # labels
    tall = 0.05 * max(map(len, map(str, grid.columns)), default=10) + 0.4 * max(len(grid.index), 1)  # at 7 pt
    fig = Figure(figsize=(min(1.5 + wide, 40), min(1.0 + tall, 30)), layout="constrained")
    ax = fig.subplots()
    data = np.ma.masked_invalid(grid.to_numpy(dtype=float)) if grid.size else np.ma.masked_all((1, 1))
    image = ax.imshow(data, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_facecolor("0.85")  # NaN cells
    for (i, j), v in np.ndenumerate(grid.to_numpy(dtype=float)):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="black" if v > 0.6 else "white")
    ax.set_xticks(range(len(grid.columns)), list(grid.columns), rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(grid.index)), list(grid.index), fontsize=7)
    ax.set_title(f"{'F1 within the parent' if value == 'f1_parent' else 'F1'}: cytokit against the manual gating",
                 fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.8)
    return fig


__all__ = [
    "COLUMNS",
    "agreement",
    "compare",
    "compare_gated",
    "normalise",
    "pair_populations",
    "plot_f1",
    "read_controls",
    "read_mapping",
    "score_file",
    "summarise",
]
