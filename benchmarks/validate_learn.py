"""``cytokit learn`` on real manually gated files (issue 18): trained on two files, scored on the rest.

    python benchmarks/validate_learn.py [--real-gated DIR] [--out OUT] [--seed N] [--third]

For each set of ``DIR`` (default ``$CYTOKIT_REAL_GATED`` or ``../shared/real_gated``), learns a
template from the manual gating of the two files in :data:`TRAIN` (timed, with the
leave-one-out agreement that ``cytokit learn`` prints), compares it with the manual gating of
every *other* file (``cytokit.compare``), and runs the hand-written template
(``gating_templates/examples/<set>.yaml``, as ``validate_real.py`` does) on the same files.
Writes ``OUT`` (default ``validate_learn_out/``): ``table.md`` and ``summary.csv`` (per
population: files, the learned template's F1 median / worst, within the parent, |Δ % of
parent|, the hand-written template's F1 median / worst, and where the set has a FlowJo
``workspace.wsp``, the F1 of the template learned from it instead: the person's own gates as
drawn are candidates there), ``<set>.csv`` (compare's rows) and ``<set>.yaml`` (the learned
template; ``<set>_workspace.*`` for the one learned from the workspace). ``--third`` adds the file of
:data:`THIRD` to each set's training files: with three, ``learn`` may choose pooled gates, and
cross-validation trains on two files, where the training files' gates differ.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cytokit

#: the two training files of each set: activation, one unstimulated and one stimulated tube (the
#: README's worked example); flowatlas, the two largest files of the panels gated T cells first
TRAIN = {"activation": ["Activation_1.fcs", "Activation_7.fcs"],
         "flowatlas": ["390C_BM_027.fcs", "403C_donor_Lung_026.fcs"]}


#: ``--third``: a third training file per set (activation a stimulated tube of another treatment;
#: flowatlas a lung of the first training file's donor and panel)
THIRD = {"activation": "Activation_13.fcs", "flowatlas": "390C_Lung_029.fcs"}


def _validate_real():
    spec = importlib.util.spec_from_file_location("validate_real", ROOT / "benchmarks" / "validate_real.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def learn_set(root: Path, name: str, seed: int = 0,
              manual: str = "manual") -> tuple[pd.DataFrame, object, float, list[Path]]:
    """``(compare's rows on the held-out files, the LearnedTemplate, seconds to learn, held-out files)``,
    learned from the set's ``manual`` gating (the ``.npz`` folder, or ``workspace.wsp``)."""
    from cytokit.manual import read_manual

    base = root / name
    train = [base / "fcs" / f for f in TRAIN[name]]
    start = time.perf_counter()
    learned = cytokit.learn_template(read_manual(base / manual, train), train, seed=seed)
    seconds = time.perf_counter() - start
    held = [p for p in sorted((base / "fcs").glob("*.fcs")) if p.name not in TRAIN[name]]
    table = cytokit.compare(held, learned.template, base / "manual", mapping=learned.mapping or None, strict=False)
    table.insert(0, "set", name)
    return table, learned, seconds, held


def per_population(table: pd.DataFrame) -> pd.DataFrame:
    paired = table[table.status == "paired"].assign(population=lambda t: t.population.str.rsplit("/", n=1).str[-1])
    return paired.groupby("population", sort=False).agg(
        files=("f1", "size"), f1_median=("f1", "median"), f1_worst=("f1", "min"),
        f1_parent_median=("f1_parent", "median"), f1_parent_worst=("f1_parent", "min"),
        delta_median=("delta_pct_parent", lambda d: d.abs().median()),
        delta_worst=("delta_pct_parent", lambda d: d.abs().max()),
        n_flagged=("flag", lambda f: int((f.fillna("") != "").sum())))


def run(root: Path, seed: int = 0) -> tuple[pd.DataFrame, dict[str, dict]]:
    """The summary (one row per set × population) and, per set, the learned template, time and rows."""
    validate = _validate_real()
    rows, extra = [], {}
    for name in TRAIN:
        table, learned, seconds, held = learn_set(root, name, seed)
        hand = per_population(validate.run_set(root, name, files=held))
        ours = per_population(table)
        wsp = None  # the same two files learned from the set's FlowJo workspace: the person's own gates
        if (root / name / "workspace.wsp").is_file():
            ws_table, ws_learned, ws_seconds, _ = learn_set(root, name, seed, manual="workspace.wsp")
            wsp = per_population(ws_table)
            extra[f"{name}_workspace"] = {"learned": ws_learned, "seconds": ws_seconds, "table": ws_table}
        for population, r in ours.iterrows():
            h = hand.loc[population] if population in hand.index else None
            w = wsp.loc[population] if wsp is not None and population in wsp.index else None
            rows.append({"set": name, "population": population, **r.to_dict(),
                         "hand_f1_median": np.nan if h is None else h.f1_median,
                         "hand_f1_worst": np.nan if h is None else h.f1_worst,
                         "hand_delta_median": np.nan if h is None else h.delta_median,
                         "wsp_f1_median": np.nan if w is None else w.f1_median,
                         "wsp_f1_worst": np.nan if w is None else w.f1_worst})
        extra[name] = {"learned": learned, "seconds": seconds, "table": table}
    return pd.DataFrame(rows), extra


def markdown(summary: pd.DataFrame) -> str:
    def pair(a, b, digits=3):
        return "—" if np.isnan(a) else f"{a:.{digits}f} / {b:.{digits}f}"

    lines = [("| set | population | files | learned F1 median / worst | within parent | Δ % of parent median / worst "
              "| hand-written F1 median / worst | learned from the FlowJo workspace |"), "|---|---|---|---|---|---|---|---|"]
    for r in summary.itertuples():
        name = r.population.replace("|", "\\|")
        lines.append(f"| {r.set} | {name} | {int(r.files)} | {pair(r.f1_median, r.f1_worst)} | "
                     f"{pair(r.f1_parent_median, r.f1_parent_worst)} | {pair(r.delta_median, r.delta_worst, 2)} | "
                     f"{pair(r.hand_f1_median, r.hand_f1_worst)} | {pair(r.wsp_f1_median, r.wsp_f1_worst)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--real-gated", type=Path, default=_validate_real().default_root())
    parser.add_argument("--out", type=Path, default=Path("validate_learn_out"))
    parser.add_argument("--seed", type=int, default=0,
                        help="learn's subsample seed (default 0; other seeds show how much the choice moves with the draw)")
    parser.add_argument("--third", action="store_true", help="train on a third file per set too (THIRD)")
    args = parser.parse_args(argv)
    if args.third:
        for name in TRAIN:
            TRAIN[name] = [*TRAIN[name], THIRD[name]]
    if not (args.real_gated / "README.md").exists():
        print(f"real gated files not found at {args.real_gated} (set CYTOKIT_REAL_GATED)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    summary, extra = run(args.real_gated, args.seed)
    summary.to_csv(args.out / "summary.csv", index=False)
    for name, e in extra.items():
        e["table"].to_csv(args.out / f"{name}.csv", index=False)
        (args.out / f"{name}.yaml").write_text(e["learned"].text)
    text = markdown(summary)
    (args.out / "table.md").write_text(text)
    print(text)
    for name, e in extra.items():
        print(f"{name}: learned from {', '.join(TRAIN[name.removesuffix('_workspace')])} in {e['seconds']:.1f} s "
              "(with leave-one-out)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
