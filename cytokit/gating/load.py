"""load_template: open a template of any format (cytokit YAML, Gating-ML 2.0, FlowJo, openCyto).

It sits above the importers, which build on the template model; the model never imports them.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import TemplateError
from ..panel import Panel, read_panel
from ._schema import _read_text
from .template import Template, parse_template


def load_template(path: str | Path, *, sample: str | None = None,
                  panel: str | Path | Panel | None = None) -> Template:
    """Read and validate a gating template.

    Accepts cytokit YAML templates, Gating-ML 2.0 XML files and FlowJo ``.wsp``
    workspaces (static gates, through FlowKit) and openCyto gatingTemplate CSVs.
    A workspace gives one sample's gate tree: the first sample's, or that of
    ``sample`` (FlowJo's sample name); FlowJo gates may differ per sample.

    ``panel`` is a panel sheet (a CSV ``channel,marker[,file]``, :func:`~cytokit.panel.read_panel`)
    whose markers stand for the files' ``$PnS``; it replaces the template's ``panel`` key.

    Raises
    ------
    TemplateError
        The file is missing or invalid; the message names the file, the line and the key.
    MetadataError
        The panel sheet is unreadable or invalid; the message names the sheet and the line.
    """
    template = _load(Path(path), sample)
    if panel is not None:
        template.panel = panel if isinstance(panel, Panel) else read_panel(panel)
    return template


def _load(path: Path, sample: str | None) -> Template:
    suffix = path.suffix.lower()
    if sample is not None and suffix != ".wsp":
        raise TemplateError(f"{path}: sample= picks a sample of a FlowJo workspace (.wsp), not of a {suffix} file")
    if suffix in (".csv", ".wsp", ".xml"):  # the importers read them (XML declares its own encoding)
        try:
            path.open("rb").close()
        except OSError as exc:
            raise TemplateError(f"{path}: cannot read template ({exc.strerror or exc})") from None
    if suffix == ".csv":
        from .opencyto import template_from_opencyto

        return template_from_opencyto(path)
    if suffix == ".wsp":
        from .flowjo import template_from_flowjo

        return template_from_flowjo(path, sample_id=sample)
    if suffix == ".xml":
        from .flowjo import template_from_gatingml

        return template_from_gatingml(path)
    return parse_template(_read_text(path), source=str(path))
