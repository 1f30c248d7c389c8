"""Channel roles: how a template finds one channel in each file, by marker name or by ``$PnN``.

A :class:`Role` names a marker (``$PnS`` "CD19", "CD19 FITC", "FITC-CD19", not
"CD197": :func:`_matches_marker`), or lists ``$PnN`` candidates; :func:`resolve_roles`
(behind :meth:`Template.resolve_channels <cytokit.gating.template.Template.resolve_channels>`)
maps every role to a channel of a sample. A panel sheet (:mod:`cytokit.panel`) gives the
markers of channels whose ``$PnS`` is empty or wrong; its markers take precedence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import ChannelNotFoundError, TemplateError
from ..panel import Panel
from ..sample import Sample

#: Greek letters as marker names spell them: TNF-α, TNF-alpha and TNFa are one marker
GREEK = {"α": "a", "alpha": "a", "β": "b", "beta": "b", "γ": "g", "gamma": "g", "δ": "d", "delta": "d"}


@dataclass(frozen=True)
class Role:
    """A channel role: how to find one channel in each file."""

    name: str
    marker: str | None = None
    pnn: tuple[str, ...] = ()
    optional: bool = False
    aliases: tuple[str, ...] = ()  # other names of the marker: [TNFa, TNF] is marker TNFa, alias TNF

    @property
    def marker_names(self) -> tuple[str, ...]:
        """Every name of the marker, any of which a ``$PnS`` may use."""
        return (self.marker, *self.aliases) if self.marker else ()


def resolve_roles(roles: Iterable[Role], sample: Sample, *, reference: dict[str, str] | None,
                  source: str, panel: Panel | None = None) -> dict[str, str]:
    """Map every role to a ``$PnN`` of ``sample`` (see :meth:`Template.resolve_channels
    <cytokit.gating.template.Template.resolve_channels>`; ``source`` names the template).

    With a ``panel`` sheet, its markers stand for the ``$PnS`` of the channels it names."""
    if panel is not None:
        sample = panel.label(sample)
    names = list(sample.channels.pnn)
    roles = list(roles)
    by_marker = {role.name: _by_marker(role, sample) for role in roles}
    # a channel whose $PnS names one role's marker is not another role's by its pnn
    claimed = {pnn: name for name, pnn in by_marker.items() if pnn is not None}
    resolved: dict[str, str] = {}
    missing = []
    for role in roles:
        found = by_marker[role.name] or _by_pnn(role, sample, claimed)
        if found is None and reference and reference.get(role.name) in names:
            found = reference[role.name]
        if found is not None:
            resolved[role.name] = found
        elif not role.optional:
            where_marker = "the panel sheet or $PnS" if panel is not None else "$PnS"
            wanted = (f"marker {_quoted(role.marker_names)} in {where_marker}" if role.marker
                      else f"one of $PnN {list(role.pnn)}")
            taken = [f"{pnn} carries role {claimed[pnn]!r}'s marker" for pnn in _pnn_hits(role, sample)
                     if claimed.get(pnn, role.name) != role.name]
            missing.append(f"role {role.name!r} needs {wanted}" + (f" (its pnn {', '.join(taken)})" if taken else ""))
    if missing:
        where = sample.path or "the sample"
        whose = "roles'" if len(missing) > 1 else "role's"
        note = panel.note_for(sample) if panel is not None else ""
        raise ChannelNotFoundError(
            f"{where}: template {source} {'; '.join(missing)}; the file has "
            + ", ".join(f"{n} ({s})" if s else n for n, s in zip(sample.channels.pnn, sample.channels.pns))
            + (f"; {note}" if note else "")
            + f" (set the {whose} marker or pnn in the template"
            + (", or the channel's marker in the panel sheet)" if panel is not None else ")")
        )
    _check_one_channel_per_marker(roles, resolved, sample, source)
    return resolved


def _check_one_channel_per_marker(roles: Iterable[Role], resolved: dict[str, str], sample: Sample,
                                  source: str) -> None:
    """Two marker roles on one channel would report one marker under the other's name.

    Roles found by ``pnn`` may share a channel on purpose (``fsc`` and ``fsc_area`` are both
    FSC-A in a modern file), so only roles that name a marker are compared.
    """
    by_channel: dict[str, str] = {}
    for role in roles:
        if not role.marker or role.name not in resolved:
            continue
        pnn = resolved[role.name]
        if pnn in by_channel:
            pns = dict(zip(sample.channels.pnn, sample.channels.pns)).get(pnn) or ""
            raise TemplateError(
                f"{source}: roles {by_channel[pnn]!r} and {role.name!r} both resolve to channel {pnn}"
                + (f" ({pns})" if pns else "") + f" in {sample.path or 'the sample'}: one channel cannot be "
                "two markers; check the roles' marker names"
            )
        by_channel[pnn] = role.name


def _tokens(text: str) -> list[str]:
    """Case-folded runs of letters and digits, Greek letters spelled as in :data:`GREEK`."""
    text = text.casefold()
    for greek, latin in GREEK.items():
        text = text.replace(greek, latin)
    return re.findall(r"[^\W_]+", text)


def _normal(text: str) -> str:
    return "".join(_tokens(text))


def _quoted(markers: tuple[str, ...]) -> str:
    return " or ".join(map(repr, markers))


def _matches_marker(pns: str, marker: str) -> bool:
    """``$PnS`` names the marker as a whole run of its words.

    Case, separators and Greek spellings are ignored, and the marker is some run of
    consecutive words of ``$PnS`` joined: "TNF-alpha APC", "TNF-α-APC" and "APC-TNFa"
    name TNFa; "LAG-3-PE", "PE-LAG3" and "anti-LAG3" name LAG3. A word that only starts
    with the marker names another one: CD19 is not "CD197", CD3 is not "CD38" nor "CD3e".
    """
    want = _normal(marker)
    words = _tokens(pns or "")
    for start in range(len(words)):
        run = ""
        for word in words[start:]:
            run += word
            if run == want:
                return True
            if not want.startswith(run):
                break
    return False


def _one_of(hits: list[str], role: Role) -> list[str]:
    """The channel among several that name the role's marker: the first of the role's ``pnn`` among
    them, else the area of one detector recorded as area, height and width (Attune, MACSQuant and
    Accuri write the marker in the ``$PnS`` of each: ``VL1-A``, ``VL1-H``, ``VL1-W``), as FlowJo's
    default; else all of them (an error names them)."""
    named = {pnn.casefold(): pnn for pnn in hits}
    for candidate in role.pnn:
        if candidate.casefold() in named:
            return [named[candidate.casefold()]]
    detectors = {re.sub(r"[-_ ][AHW]$", "", pnn, flags=re.IGNORECASE) for pnn in hits}
    areas = [pnn for pnn in hits if re.search(r"[-_ ]A$", pnn, re.IGNORECASE)]
    return areas if len(detectors) == 1 and len(areas) == 1 else hits


def _by_marker(role: Role, sample: Sample) -> str | None:
    """The channel whose ``$PnS`` (else ``$PnN``) names the role's marker, or None."""
    if not role.marker:
        return None
    pairs = list(zip(sample.channels.pnn, sample.channels.pns))
    hits = [pnn for pnn, pns in pairs if any(_matches_marker(pns, m) for m in role.marker_names)]
    if not hits:
        wanted = {_normal(m) for m in role.marker_names}
        hits = [pnn for pnn, _ in pairs if _normal(pnn) in wanted]
    if len(hits) > 1:
        hits = _one_of(hits, role)
    if len(hits) > 1:
        raise ChannelNotFoundError(
            f"{sample.path}: marker {_quoted(role.marker_names)} (role {role.name!r}) "
            f"matches several channels: {hits}; name the one to use in the role's pnn "
            f"(e.g. {{marker: {role.marker_names[0]}, pnn: [{hits[0]}]}})"
        )
    return hits[0] if hits else None


def _pnn_hits(role: Role, sample: Sample) -> list[str]:
    """The file's channels among the role's ``pnn`` (case-insensitive), in the role's order."""
    names = {pnn.lower(): pnn for pnn in sample.channels.pnn}
    return [names[c.lower()] for c in role.pnn if c.lower() in names]


def _by_pnn(role: Role, sample: Sample, claimed: dict[str, str]) -> str | None:
    """The first of the role's ``pnn`` in the file that no other role's marker names (an isotype
    tube's "IgG1 PE" is the role's channel still; another role's "CCR6" is not)."""
    return next((pnn for pnn in _pnn_hits(role, sample) if claimed.get(pnn, role.name) == role.name), None)
