"""What every page of the report shares: the jinja2 environment and the cells of its tables."""

from __future__ import annotations

import base64
from datetime import datetime, timezone

import numpy as np
import pandas as pd
from markupsafe import Markup, escape


def generated() -> str:
    """The page's "Generated ..." time: now, in UTC, to the minute."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def data_uri(png: bytes) -> Markup:
    """``png`` inlined as a ``data:`` URI (the page has no external resources); safe as it is (base64 has
    no character HTML escapes), so the templates do not scan its 40 kB again."""
    return Markup("data:image/png;base64," + base64.b64encode(png).decode("ascii"))


def cell(value) -> str:
    """A table cell's text: 4 significant digits, empty for None and NaN."""
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return ""
        return f"{value:.4g}"
    return str(value)


def table(frame: pd.DataFrame, columns: list[str] | None = None) -> dict:
    """A table for the templates' ``table`` macro: header and rows of strings (escaped by the template)."""
    columns = [c for c in (columns or list(frame.columns)) if c in frame.columns]
    return {"columns": columns,
            "rows": [[cell(v) for v in row] for row in frame[columns].itertuples(index=False, name=None)]}


def environment():
    """The templates' jinja2 environment: autoescaped, undefined names an error."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("cytokit.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2", "html.j2"], default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True,
    )
    env.globals["table_rows"] = table_rows
    return env


def table_rows(t: dict) -> Markup:
    """The ``<tr>`` rows of a :func:`table` (with its ``marks``: a CSS class per cell), every cell escaped:
    made here at once, not cell by cell in the template (80,000 cells of a 1,000-file report took a
    third of its time there)."""
    marks = t.get("marks") or []
    rows = []
    for i, row in enumerate(t["rows"]):
        classes = marks[i] if marks else [""] * len(row)
        rows.append("<tr>" + "".join(f'<td class="{escape(c)}">{escape(v)}</td>' if c else f"<td>{escape(v)}</td>"
                                     for v, c in zip(row, classes)) + "</tr>")
    if not rows:
        rows.append(f'<tr><td colspan="{len(t["columns"]) or 1}" class="muted">none</td></tr>')
    return Markup("\n    ".join(rows))
