"""What every page of the report shares: the jinja2 environment and the cells of its tables."""

from __future__ import annotations

import base64
from datetime import datetime, timezone

import numpy as np
import pandas as pd


def generated() -> str:
    """The page's "Generated ..." time: now, in UTC, to the minute."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def data_uri(png: bytes) -> str:
    """``png`` inlined as a ``data:`` URI (the page has no external resources)."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


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

    return jinja2.Environment(
        loader=jinja2.PackageLoader("cytokit.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2", "html.j2"], default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True,
    )
