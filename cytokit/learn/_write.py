"""The learned template as readable YAML: one commented block per population."""

from __future__ import annotations

import json

from ._fitted import describe_gate
from ._search import Learned


def _num(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return f"{float(value):.6g}"


def _flow(value) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    return _num(value)


def _describe_fitted(learned: Learned) -> str:
    if learned.kind == "control_threshold":
        return (f"{describe_gate(learned.gate)}; fitted on the matched control's population (compare --controls, "
                "a sample sheet's control_file; a control tube on itself); where a file has none, at the training "
                f"files' median cut {_num(learned.gate['fallback']['at'])}, flagged")
    where = ("fitted once on the parent's events of every file gated together (pool: true)" if learned.pool
             else "fitted on each file's own parent events")
    fallback = learned.gate.get("fallback")
    if fallback:  # written by _fitted.with_fallback
        where += (f"; where the files gated together have no valley, at the training files' pooled cut "
                  f"{_num(fallback['at'])}" if learned.pool else
                  f"; where a file has no valley, at the training files' median cut {_num(fallback['at'])}")
    return f"{describe_gate(learned.gate)}, {where}"


def describe(learned: Learned) -> str:
    """What was learned, in one sentence."""
    if learned.fitted:
        return _describe_fitted(learned)
    gate = learned.gate
    on = " x ".join(learned.dims)
    if learned.kind == "range":
        lo, hi = gate["limits"]
        what = (f"{on} >= {_num(lo)}" if hi is None else f"{on} <= {_num(hi)}" if lo is None
                else f"{_num(lo)} <= {on} <= {_num(hi)}")
    else:
        what = f"a polygon of {len(gate['vertices'])} vertices on {on}"
    moved = (f"moved onto each file by aligning its density (up to {gate['max_shift']:g} of the span)"
             if learned.registered else "not moved (aligning densities did not help)")
    if learned.registered and gate.get("still_on"):  # learned from one file: _search.build(still=True)
        moved += ("; learned from one file, it is not moved where a file carries its channels on the same "
                  "detectors, only on others (another panel)")
    return f"{what}, {moved}"


def population_block(name: str, parent: str, manual: str, learned: Learned) -> str:
    """The population's template lines: comments on what was learned, then name, parent, the manual
    name it pairs with where it was renamed (``compare`` reads it), pool and gate."""
    if learned.kind == "boolean":
        return "\n".join(_boolean_block(name, parent, manual, learned))
    if learned.kind == "control_threshold":
        cv = "(mean) on each training file, with the quantile of the others, cut on its own control"
        doubt = None
    elif learned.fitted:
        cv = ("(mean) on each training file, fitted on the other training files pooled" if learned.pool
              else "(mean) on each training file, fitted on its own events")
        doubt = ("  # per file: no confidence figure as registered gates have; " + (
            "a cut among dense events of the file flags the population 'gate doubtful'." if learned.pool else
            "a fit that is weak or finds no valley flags the population 'gate doubtful', one that fails 'gate failed'."))
    else:
        cv = ("cross-validated over the training files" if learned.n_files > 1 else "on the one training file")
        doubt = None
    lines = [
        f"  # {manual}: {describe(learned)}.",
        (f"  # training agreement: F1 {learned.cv_f1:.3f} {cv}, {learned.train_f1:.3f} (median) on the "
         f"{learned.n_files} training file(s) themselves; best of {learned.candidates} candidate gates."),
        *([doubt] if doubt else []),
        *[f"  # {note}" for note in learned.notes],
        f"  - name: {_flow(name)}",
        f"    parent: {_flow(parent)}",
        *([f"    manual: {_flow(manual.rsplit('/', 1)[-1])}"] if name != manual.rsplit("/", 1)[-1] else []),
        *(["    pool: true"] if learned.pool else []),
        "    optional: true",
        "    gate:",
    ]
    for key, value in learned.gate.items():
        if key in ("inside", "outside"):
            lines.append(f"      {key}:{' ' * (8 - len(key))}# the training files' density of the parent's events "
                         f"{key} the gate, per dimension")
            lines += [f"        - {_flow(v)}" for v in value]
        else:
            lines.append(f"      {key}: {_flow(value)}")
    return "\n".join(lines)


def _boolean_block(name: str, parent: str, manual: str, learned: Learned) -> list[str]:
    gate = learned.gate
    negated = set(gate.get("complement", ()))
    terms = ([f"not {gate['operands'][0]}"] if gate["op"] == "not" else
             [f"not {o}" if o in negated else o for o in gate["operands"]])
    what = (f"the events of {terms[0]} (the same gate)" if gate["op"] == "and" and len(terms) == 1 and not negated
            else f" {gate['op'] if gate['op'] != 'not' else 'and'} ".join(terms))
    return [
        f"  # {manual}: {what}, of the populations above: the person's members are exactly that, within its",
        f"  # parent, in the {learned.n_files} training file(s) that have it; on a file it follows their gates (and flags).",
        f"  - name: {_flow(name)}",
        f"    parent: {_flow(parent)}",
        *([f"    manual: {_flow(manual.rsplit('/', 1)[-1])}"] if name != manual.rsplit("/", 1)[-1] else []),
        "    gate:",
        *(f"      {key}: {_flow(value)}" for key, value in gate.items()),
    ]


def template_text(header: list[str], channels: dict, compensation: str | dict, transforms: dict,
                  blocks: list[str]) -> str:
    """The whole template: header comments, channels, compensation, transforms, populations."""
    out = [f"# {line}" if line else "#" for line in header]
    out.append("name: learned")
    out.append("channels:")
    for role, spec in channels.items():
        out.append(f"  {role}: {{{', '.join(f'{k}: {_flow(v)}' for k, v in spec.items())}}}")
    if isinstance(compensation, dict):  # the manual gating's own matrix (rows: fluorochromes)
        out.append("compensation:  # the matrix the person's gates were drawn on")
        out.append(f"  detectors: {_flow(compensation['detectors'])}")
        out.append(f"  fluorochromes: {_flow(compensation['fluorochromes'])}")
        out.append("  matrix:")
        out += [f"    - {_flow(row)}" for row in compensation["matrix"]]
    else:
        out.append(f"compensation: {compensation}")
    out.append("transforms:")
    for role, spec in transforms.items():
        out.append(f"  {role}: {{{', '.join(f'{k}: {_flow(v) if not isinstance(v, str) else v}' for k, v in spec.items())}}}")
    out.append("populations:")
    out += blocks
    return "\n".join(out) + "\n"


__all__ = ["describe", "population_block", "template_text"]
