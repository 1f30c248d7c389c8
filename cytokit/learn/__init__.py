"""Learn a gating template from a few manually gated files: :func:`learn_template`.

For every manual population, from its parent's events in the training files (the person's
parent), :mod:`cytokit.learn._search` chooses the dimensions and the gate: one of cytokit's
fitted gates (:mod:`cytokit.learn._fitted`: a density valley, a shoulder or a quadrant of two
valleys, fitted on each file's own events or pooled), when one reproduces the person about
as well as the best candidate and passes the robustness checks; otherwise the person's
region (an interval on one dimension, the members' convex hull on two) as a ``registered``
gate (:class:`~cytokit.gating.registered.RegisteredGate`), moved onto each file by aligning
its density where cross-validation across the training files says that helps. The result is
an ordinary template, commented per population with what was learned and its training
agreement. Applied to a file, a registered gate reports its confidence (how like the
training files' the file's density is) and is flagged ``gate doubtful`` when it is low; a
fitted gate is flagged as any fitted gate is (a weak or missing valley, a failed fit).
``leave_one_out`` learns on all but one training file and compares (:func:`cytokit.compare`)
on the one left out.
"""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import MetadataError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ..gating.template import Template
    from ..manual import ManualSource

POPULATION_COLUMNS = ["population", "manual", "parent", "gate", "dims", "registered", "pool", "cv_f1",
                      "train_f1", "n_files", "note"]
GOOD_F1 = 0.9
"""A learned gate agreeing with the person below this on the training files (cross-validated where
two or more files have the population) is said so in its note; one that could not use a dimension
the person drew on is then not learned at all."""


@dataclass
class LearnedTemplate:
    """What :func:`learn_template` learned.

    Attributes
    ----------
    text
        The template as YAML (what ``out`` holds).
    template
        It, parsed (ready for :meth:`~cytokit.gating.template.Template.apply` or :func:`cytokit.compare`).
    populations
        One row per manual population: columns :data:`POPULATION_COLUMNS` (``note`` says why
        one was not learned).
    mapping
        ``{template population: manual name}`` for the populations renamed to keep names unique.
    leave_one_out
        :func:`cytokit.compare`'s rows for each training file gated by the template learned
        on the others (None when not asked for or with one training file).
    notes
        What applies to the whole template (with ``controls``: whether a cut on the control tube
        could be learned), as its header says.
    """

    text: str
    template: Template
    populations: pd.DataFrame
    mapping: dict[str, str] = field(default_factory=dict)
    leave_one_out: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        learned = int((self.populations["gate"] != "").sum())
        return (f"LearnedTemplate({learned} of {len(self.populations)} manual populations learned"
                f"{'' if self.leave_one_out is None else ', with leave-one-out agreement'})")


def _control_of(name: str, controls: dict[str, str]) -> str | None:
    """The control of file ``name``: itself where it is one, else the one ``controls`` names (or None)."""
    return name if name in controls.values() else controls.get(name)


def _control_events(train, controls: dict[str, str], path: str, max_events: int) -> dict:
    """Training file name → ``(its control's name, the control's parent events of path)`` (an even
    stride of at most ``max_events``): :func:`_control_of`; only controls among the training files,
    gated by the person."""
    by_name = {tf.name: tf for tf in train}
    out = {}
    for tf in train:
        control = by_name.get(_control_of(tf.name, controls) or "")
        if control is None or path not in control.gating.membership:
            continue
        rows = control.rows(path)
        out[tf.name] = control.name, control.values[rows[::max(-(-len(rows) // max_events), 1)]]
    return out


def _controls_note(names, controls: dict[str, str]) -> str:
    """What the controls sheet gave: which training files' (``names``) controls are among them, and
    whether a control-derived cut could be learned at all (two controls or more)."""
    names = set(names)
    own = {n: _control_of(n, controls) for n in names}
    found = sorted({c for c in own.values() if c in names})
    lacking = sorted(n for n, c in own.items() if c not in names)
    text = (f"Controls: {len(found)} control tube(s) among the training files ({', '.join(found) or 'none'})"
            + (f"; without its control among them: {', '.join(lacking)}" if lacking else ""))
    if len(found) < 2 or lacking:
        return text + ("; no population was learned as a cut on the control tube (that needs every training file's "
                       "control among the training files, and two controls or more).")
    return text + ("; a population may be learned as a cut at a quantile of its control tube (control_threshold), "
                   "applied with the same controls (compare --controls, a sample sheet's control_file).")


def _compensation(source, files: list[Path], samples, otherwise: str):
    """The learned template's compensation: the matrix the person's gates are drawn on, where the
    manual gating has one of its own (a matrix edited in FlowJo, a Gating-ML ``spectrumMatrix``) that
    every training file shares, as the template's inline matrix; else ``otherwise`` (``file``, ``none``).
    Learned on other values, the person's gates could not be carried over as drawn."""
    from ..manual_base import _same_matrix

    matrices = [source.matrix(f, s) for f, s in zip(files, samples)]
    first = matrices[0] if matrices else None
    if first is None or not all(_same_matrix(first, m) for m in matrices[1:]):
        return otherwise
    return {"detectors": [str(c) for c in first.columns], "fluorochromes": [str(i) for i in first.index],
            "matrix": [[float(v) for v in row] for row in first.to_numpy(float)]}


def _learn(files: list[Path], samples, source, *, max_events: int, seed: int,
           controls: dict[str, str] | None = None):
    import numpy as np

    from ..gating.template import parse_template
    from ._boolean import boolean_of
    from ._data import common_channels, dropped_note, hierarchy, training_files, unshared_note
    from ._dims import drawn_dims
    from ._search import learn_population, parts
    from ._write import population_block, template_text

    channels = common_channels(samples)
    channels.compensation = _compensation(source, files, samples, channels.compensation)
    train = training_files(files, samples, source, channels)
    names = list(channels.roles)
    rng = np.random.default_rng(seed)
    rows, blocks, used, mapping = [], [], [], {}
    learned_name: dict[str, str] = {}  # manual path -> template name
    taken = {"root"}
    for path, parent in hierarchy(train):
        short = path.rsplit("/", 1)[-1]
        row = {"population": "", "manual": path, "parent": parent or "root", "gate": "", "dims": "", "registered": False,
               "pool": False, "cv_f1": np.nan, "train_f1": np.nan, "n_files": 0, "note": ""}
        if parent and parent not in learned_name:
            rows.append({**row, "note": f"its parent {parent!r} was not learned"})
            continue
        # not drawn (a boolean gate of the source, or .npz memberships): an and/or/not of populations learned above?
        drawn_gate = any(path in tf.gating.dims for tf in train)
        combination = None if drawn_gate else boolean_of(train, path, list(learned_name))
        if combination is not None:
            rows_b, name = _boolean_row(row, combination, learned_name, train, path, parent, taken, mapping)
            blocks.append(population_block(name, learned_name.get(parent, "root"), path, rows_b[1]))
            learned_name[path] = name
            rows.append(rows_b[0])
            continue
        unshared, advice = unshared_note(train, path)  # drawn on Time, or a channel not every training file has
        data = parts(train, path, max_events, rng)
        # the person's gate's dimensions where the manual gating says: those of every training file's gate
        # (a bone marrow's T cells drawn on CD3 x CD45 and a lung's on CD8 x CD3: CD3)
        drawn_on = [tf.gate_roles(path) for tf in train if path in tf.gating.membership]
        on = () if not drawn_on or None in drawn_on else tuple(
            dict.fromkeys(r for r in drawn_on[0] if r and all(r in other for other in drawn_on[1:])))
        person = [names.index(r) for r in on] if 1 <= len(on) <= 2 else None
        drawn = {tf.name: tf.drawn(path, on, channels.compensation != "none") for tf in train
                 if person and path in tf.gating.membership}
        if person is None and data:  # .npz memberships: the dimensions on which the members fill a region
            person = drawn_dims(data)
        by_control = _control_events(train, controls, path, max_events) if controls else None
        learned = learn_population(data, names, person, {f: d for f, d in drawn.items() if d}, by_control,
                                   frozenset(i for i, r in enumerate(names) if r in channels.linear)) if data else None
        if learned is None:
            rows.append({**row, "n_files": len(data), "note": "too few events in the training files to learn"})
            continue
        agreement = learned.cv_f1 if np.isfinite(learned.cv_f1) else learned.train_f1
        if advice and not agreement >= GOOD_F1:  # the other dimensions alone are another gate (Time aside:
            # a Time x FSC-A gate atop a tree is learned on FSC-A, its children below it)
            rows.append({**row, "n_files": learned.n_files, "note": f"not learned: drawn on {unshared}, and on the "
                         f"other dimensions it agrees with the person at F1 {agreement:.3f}; {advice}"})
            continue
        note = (f"learned without {unshared}" if unshared else "") + (
            f"{'; ' if unshared else ''}training agreement F1 {agreement:.3f} "
            f"({'cross-validated' if np.isfinite(learned.cv_f1) else 'on the training files'}), below {GOOD_F1}: "
            "check this gate"
            if not agreement >= GOOD_F1 else "")
        untried = dropped_note(channels, train, path) if not agreement >= GOOD_F1 and not unshared else ""
        if untried:
            note += f"; {untried}"
        name = _unique(short, parent, taken, mapping)
        learned_name[path] = name
        used += [d for d in learned.dims if d not in used]
        if note:  # said in the template too, beside what was learned
            learned = dataclasses.replace(learned, notes=[*learned.notes, note])
        blocks.append(population_block(name, learned_name.get(parent, "root"), path, learned))
        rows.append({**row, "population": name, "gate": learned.kind, "dims": " x ".join(learned.dims),
                     "registered": learned.registered, "pool": learned.pool, "cv_f1": learned.cv_f1,
                     "train_f1": learned.train_f1,
                     "n_files": learned.n_files, "note": note})
    if not blocks:
        raise MetadataError("no manual population could be learned: the training files' manual gatings have "
                            "no population with enough events")
    spec_channels, transforms = channels.spec(used)
    for spec in spec_channels.values():  # a file of another panel, without a marker: its populations skipped
        spec["optional"] = True
    header = [(f"Learned by cytokit learn from {len(files)} manually gated file(s): "
               f"{', '.join(f.name for f in files)}."),
              "Each population's gate is one of cytokit's fitted gates (a density valley, a shoulder, a",
              "quadrant of two valleys), fitted on each file's own events or, with pool: true, on the files",
              "gated together, where one reproduces the person on the training files; else the person's",
              "own range or polygon on the dimensions that reproduce it best, as a 'registered' gate that",
              "moves it onto each file by aligning the file's density with the training files' (max_shift 0:",
              "not moved). Fitted gates are flagged 'gate doubtful' when their fit is weak, registered ones",
              "when the file's density is unlike the training files' (confidence below min_confidence).",
              "Every role and population is optional: in a file without a role's marker, the populations",
              "gated on it are skipped (flagged, not scored by compare) and the others gated.",
              "It gates only: for cytokit run to quantify markers (% positive, MFI) and compare timepoints,",
              "add a markers: section (gating_templates/README.md).",
              *(line for note in channels.notes for line in textwrap.wrap(note, 96)),
              *(line for line in textwrap.wrap(_controls_note([tf.name for tf in train], controls), 96) if controls), ""]
    text = template_text(header, spec_channels, channels.compensation, transforms, blocks)
    import pandas as pd

    return text, parse_template(text, source="<learned template>"), pd.DataFrame(rows, columns=POPULATION_COLUMNS), mapping


def _unique(short: str, parent: str, taken: set[str], mapping: dict[str, str]) -> str:
    """The template name of a manual population named ``short``: itself, or with its parent's name (or more)
    where another population took it (``mapping`` records the manual name)."""
    # with its parent's name, else its top ancestor's too (three training files' trees: T cells/…/CD4 | Th1,
    # T cells/…/non-Tfh/CD4 | Th1 and non-B/T cells/…/CD4 | Th1), else numbered
    steps = parent.split("/") if parent else []
    tried = [short, *([f"{short} ({steps[-1]})"] if steps else []),
             *([f"{short} ({steps[0]} … {steps[-1]})"] if len(steps) > 1 else [])]
    name = next((n for n in tried if n not in taken), None)
    number = 2
    while name is None or name in taken:
        name, number = f"{short} ({number})", number + 1
    if name != short:
        mapping[name] = short
    taken.add(name)
    return name


def _boolean_row(row: dict, combination: dict, learned_name: dict[str, str], train, path: str, parent: str,
                 taken: set[str], mapping: dict[str, str]):
    """((the populations table's row, the Learned), template name) of a population learned as the boolean
    gate of learned populations (:mod:`cytokit.learn._boolean`)."""
    from ._boolean import expression
    from ._search import Learned

    operands = [learned_name[p] for p in combination["operands"]]
    gate = {"type": "boolean", "op": combination["op"], "operands": operands}
    if combination["complement"]:
        gate["complement"] = [learned_name[p] for p in combination["complement"]]
    n_files = sum(path in tf.gating.membership for tf in train)
    learned = Learned(gate, [], "boolean", False, float("nan"), 1.0, n_files, 1)
    name = _unique(path.rsplit("/", 1)[-1], parent, taken, mapping)
    return ({**row, "population": name, "gate": "boolean", "dims": expression(combination, learned_name),
             "train_f1": 1.0, "n_files": n_files}, learned), name


def learn_template(manual: str | Path | ManualSource, files: Sequence[str | Path], *,
                   out: str | Path | None = None, leave_one_out: bool = True, max_events: int = 20000,
                   seed: int = 0, panel: str | Path | None = None,
                   controls: Mapping[str, str] | str | Path | None = None) -> LearnedTemplate:
    """Learn a template of fitted gates that reproduces a manual gating of a few files.

    Parameters
    ----------
    manual
        The manual gating of ``files``: a folder of ``<file stem>.npz`` membership files, a
        FlowJo ``.wsp`` or a Gating-ML ``.xml`` (:func:`cytokit.manual.read_manual`).
    files
        The manually gated FCS files to learn from (two or three are enough; one path is one file, a
        folder its FCS files).
    out
        Where to write the template (atomically); default: not written.
    leave_one_out
        Also learn on all but each file and compare on the one left out (two files or more).
    max_events
        Parent events per file used for learning (a random subset when there are more).
    seed
        Seed of that subset.
    panel
        A panel sheet (CSV ``channel,marker[,file]``, :mod:`cytokit.panel`) whose markers stand for
        the files' ``$PnS``: roles are learned by those markers, and the template written names
        the sheet in its ``panel`` key (relative to ``out``'s folder when beside it, below it or in a
        sibling folder; else absolute).
    controls
        Which tube is whose control: ``{file name: control file name}`` or a CSV ``file,control_file``
        (as :func:`cytokit.compare`'s). Where every training file has its control among ``files``
        (or is one), a population may be learned as a ``control_threshold`` gate: the cut at the
        quantile of the control tube where the person cut (:mod:`cytokit.learn._control`). The
        template is then applied with the same controls (``compare --controls``, a sample sheet's
        ``control_file``).

    Returns
    -------
    LearnedTemplate

    Raises
    ------
    MetadataError
        No files, files that share no channel, a file without manual gating, nothing to learn, or
        an unusable panel sheet.
    FCSError
        A file cannot be read.
    """
    from .._files import write_atomic
    from ..controls import check_controls
    from ..fcs import read_fcs
    from ..manual import read_manual
    from ..panel import read_panel

    paths = [Path(files)] if isinstance(files, (str, Path)) else [Path(f) for f in files]
    folder = paths[0] if len(paths) == 1 and paths[0].is_dir() else None
    if folder is not None:  # a folder: its FCS files, as compare takes it
        from ..metadata import list_fcs

        paths = list_fcs(folder)
    if not paths:
        raise MetadataError("cytokit learn needs at least one manually gated FCS file" + (
            f" (no FCS file directly in {folder}; subfolders are not searched: give the files, {folder}/*/*.fcs)"
            if folder is not None else ""))
    if len({p.name for p in paths}) != len(paths):
        raise MetadataError("the training files must have different names (they are matched to the manual "
                            "gating by name)")
    if not (isinstance(max_events, int) and max_events >= 100):
        raise MetadataError(f"max_events must be a whole number >= 100, got {max_events!r}")
    source = read_manual(manual, paths)
    if isinstance(controls, (str, Path)):
        from ..agreement import read_controls

        controls = read_controls(controls)
    controls = {k: Path(v).name for k, v in check_controls(controls or {}, paths).items()}
    sheet = read_panel(panel) if panel is not None else None
    samples = [read_fcs(p) for p in paths]
    if sheet is not None:
        samples = [sheet.label(s) for s in samples]
    text, template, populations, mapping = _learn(paths, samples, source, max_events=max_events, seed=seed,
                                                  controls=controls)
    if sheet is not None:
        template.panel = sheet
        text = _with_panel_key(text, Path(panel), out)
    loo = None
    if leave_one_out and len(paths) > 1:
        loo = _leave_one_out(paths, samples, source, max_events=max_events, seed=seed, panel=sheet,
                             controls=controls)
    if out is not None:
        write_atomic(out, text)
    notes = [_controls_note([p.name for p in paths], controls)] if controls else []
    return LearnedTemplate(text, template, populations, mapping, loo, notes)


def _with_panel_key(text: str, panel: Path, out: str | Path | None) -> str:
    """``text`` with a ``panel`` key naming the sheet: relative to the template's folder when written
    beside it, below it or in a sibling folder (``../panel.csv``: a project's folders move together),
    else its absolute path (a '../../work/...' broke when the template was copied elsewhere)."""
    import json
    import os

    where = str(panel.resolve())
    if out is not None:
        relative = os.path.relpath(panel.resolve(), Path(out).resolve().parent)
        where = where if relative.split(os.sep).count(os.pardir) > 1 else relative
    lines = text.splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    return "".join([*lines[:first], f"panel: {json.dumps(where)}  # channel -> marker of files without $PnS\n",
                    *lines[first:]])


def _leave_one_out(paths: list[Path], samples, source, *, max_events: int, seed: int,
                   panel=None, controls: dict[str, str] | None = None) -> pd.DataFrame:
    import pandas as pd

    from ..agreement import compare

    tables = []
    for k, held in enumerate(paths):
        rest = [i for i in range(len(paths)) if i != k]
        _, template, _, mapping = _learn([paths[i] for i in rest], [samples[i] for i in rest], source,
                                         max_events=max_events, seed=seed, controls=controls)
        table = compare([held], template, source, mapping=mapping or None, strict=False, panel=panel,
                        controls=controls)
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


__all__ = ["POPULATION_COLUMNS", "LearnedTemplate", "learn_template"]
