"""The agreement with a manual gating as a section of the report, and as a page of its own.

``cytokit compare --out OUT`` writes the page (``OUT/report.html``), ``cytokit run --manual``
adds the section to the run's report. Both show one :class:`AgreementSection`: what was
compared, the per-population summary (``compare_summary.csv``), the F1 heat map
(``compare_f1.png``), the rows below F1 0.9 and the files that failed.

Example::

    table = cytokit.compare("fcs/", "template.yaml", "manual/")
    section = AgreementSection(table, template="template.yaml", manual="manual/")
    section.write("out")                      # compare.csv, compare_summary.csv, compare_f1.png
    write_agreement_report(section, "out/report.html")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from ._html import data_uri, environment, generated, table

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["AgreementSection", "render_agreement_report", "write_agreement_report"]

#: the columns of compare_summary.csv the section shows, in order
SUMMARY_COLUMNS = ["population", "manual", "n_files", "f1_median", "f1_worst", "worst_file", "f1_parent_median",
                   "f1_parent_worst", "delta_pct_parent_median", "n_flagged", "n_unpaired"]
#: the columns of compare.csv shown for the rows below the threshold
LOW_COLUMNS = ["file", "population", "manual", "f1", "f1_parent", "delta_pct_parent", "flag"]
#: F1 columns marked when below the threshold
_F1_COLUMNS = ("f1", "f1_parent", "f1_median", "f1_worst", "f1_parent_median", "f1_parent_worst")


@dataclass(repr=False)
class AgreementSection:
    """One comparison with a manual gating, as the report shows it.

    Parameters
    ----------
    table
        :func:`cytokit.compare`'s table (``compare.csv``).
    template
        The gating template cytokit gated with.
    manual
        The manual gating (a folder of ``.npz``, a ``.wsp`` or a Gating-ML ``.xml``).
    mapping
        ``{cytokit population: manual path}`` given explicitly (empty: paired by name).
    controls
        How control tubes were found (``"design.csv"``, ``"the run's"``, ``"none"``).
    threshold
        Rows whose F1 or F1 within parent is below it are listed as the ones to look at.
    """

    table: pd.DataFrame
    template: str
    manual: str
    mapping: dict[str, str] = field(default_factory=dict)
    controls: str = "none"
    threshold: float = 0.9

    def __repr__(self) -> str:
        status = self.table["status"].value_counts().to_dict()
        return (f"AgreementSection({self.table['file'].nunique()} files, {len(self.summary)} populations, "
                f"rows {status}, manual {self.manual})")

    @cached_property
    def summary(self) -> pd.DataFrame:
        """The per-population summary (``compare_summary.csv``, :func:`cytokit.agreement.summarise`)."""
        from ..agreement import summarise

        return summarise(self.table)

    @cached_property
    def f1_png(self) -> bytes:
        """The F1 heat map, populations × files, as PNG (``compare_f1.png``)."""
        from ..agreement import plot_f1
        from ..plots.encode import figure_png

        return figure_png(plot_f1(self.table), dpi=120, palette=False)

    @property
    def low(self) -> pd.DataFrame:
        """The paired rows with F1 or F1 within parent below :attr:`threshold`, worst F1 first."""
        paired = self.table[self.table["status"] == "paired"]
        below = (paired["f1"].astype(float) < self.threshold) | (paired["f1_parent"].astype(float) < self.threshold)
        return paired[below].sort_values(["f1", "file"], kind="stable")

    def write(self, folder: str | Path) -> list[str]:
        """Write ``compare.csv``, ``compare_summary.csv`` and ``compare_f1.png`` into ``folder``
        (atomically each); returns their names."""
        from .._files import write_atomic

        folder = Path(folder)
        write_atomic(folder / "compare.csv", self.table.to_csv(index=False))
        write_atomic(folder / "compare_summary.csv", self.summary.to_csv(index=False))
        write_atomic(folder / "compare_f1.png", self.f1_png)
        return ["compare.csv", "compare_summary.csv", "compare_f1.png"]

    def context(self) -> dict:
        """What ``_agreement.html.j2`` shows, as ``agreement``."""
        rows = self.table
        paired = rows[rows["status"] == "paired"]
        return {
            "template": self.template, "manual": self.manual, "manual_kind": _kind(self.manual),
            "mapping": sorted(self.mapping.items()), "controls": self.controls,
            "threshold": f"{self.threshold:g}", "n_files": int(rows["file"].nunique()),
            "n_paired": len(paired), "n_unpaired": int((rows["status"] == "unpaired").sum()),
            "summary": self._marked(self.summary, SUMMARY_COLUMNS),
            "f1_src": data_uri(self.f1_png) if len(paired) else None,
            "low": self._marked(self.low, LOW_COLUMNS),
            "failed": rows.loc[rows["status"] == "error", ["file", "note"]].to_dict("records"),
            "unpaired": table(rows[rows["status"] == "unpaired"], ["file", "population", "manual", "note"]),
        }

    def _marked(self, frame: pd.DataFrame, columns: list[str]) -> dict:
        """``table(frame, columns)`` with F1 cells below the threshold marked ``low``."""
        out = table(frame, columns)
        out["marks"] = [["low" if c in _F1_COLUMNS and _below(v, self.threshold) else "" for c, v in
                         zip(out["columns"], row)] for row in frame[out["columns"]].itertuples(index=False)]
        return out


def _below(value, threshold: float) -> bool:
    try:
        return float(value) < threshold
    except (TypeError, ValueError):
        return False


def _kind(manual: str) -> str:
    path = Path(manual)
    if path.is_dir():
        return "a folder of .npz memberships"
    return {".wsp": "a FlowJo workspace", ".xml": "a Gating-ML file"}.get(path.suffix.lower(), "")


def render_agreement_report(section: AgreementSection, *, title: str = "cytokit compare") -> str:
    """The HTML text of a page holding only the agreement section (see :func:`write_agreement_report`)."""
    return environment().get_template("compare.html.j2").render(
        title=title, generated=generated(),
        agreement=section.context())


def write_agreement_report(section: AgreementSection, out_path: str | Path, *,
                           title: str = "cytokit compare") -> Path:
    """Write the self-contained page of ``section`` (styled as the run's report) to ``out_path``, atomically.

    Returns
    -------
    Path
        ``out_path``.
    """
    from .._files import write_atomic

    return write_atomic(out_path, render_agreement_report(section, title=title))
