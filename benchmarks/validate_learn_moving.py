"""``cytokit learn`` from a gating whose gates move from file to file (issue 18's generality check).

    python benchmarks/validate_learn_moving.py [--real-gated DIR] [--out OUT]

The people who gated ``real_gated`` drew nearly the same gate in every file (activation: one
drawn gate per population for all tubes). A lab that adjusts its gates per file, or sets a
positive gate on each run's control, is another test. This script makes such a gating from the
same files: ``cytokit run --flowjo`` with the hand-written template of each set
(``gating_templates/examples/<set>.yaml``: valleys, quadrants, a mixture cut, CD69+ at q 0.995 of
each tube's unstimulated control) writes every file's own gates as a FlowJo workspace; then
``cytokit learn`` learns from that workspace on a few files (:data:`TRAIN`, with the controls
sheet where given) and ``cytokit compare`` scores the learned template against the workspace on
every other file (activation with the controls, as the gating was made). The hand-written
template is its own truth here, so the learned template is scored on how well it finds gates
that move. Writes ``OUT/table.md`` and ``OUT/summary.csv`` (one row per training set ×
population: files, F1 median / worst) and each learned template (``<set>_<k>.yaml``, the k-th of
:data:`TRAIN`).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import cytokit  # noqa: E402
from cytokit.cli import main as cli  # noqa: E402
from validate_real import default_root  # noqa: E402

#: (set, training files, with the set's controls sheet)
TRAIN = [("activation", ["Activation_1.fcs", "Activation_7.fcs"], False),
         ("activation", ["Activation_1.fcs", "Activation_7.fcs", "Activation_9.fcs", "Activation_15.fcs"], True),
         ("flowatlas", ["390C_BM_027.fcs", "403C_donor_Lung_026.fcs"], False),
         ("flowatlas", ["412C_Blood_025.fcs", "423_Donor_Lung_032.fcs"], False)]


def _sheet(base: Path, out: Path) -> Path:
    """A sample sheet for ``cytokit run``: activation's design (stimulated tubes named by dose, each
    with its control_file); elsewhere every file a stained tube of its own."""
    rows = []
    design = base / "design.csv"
    if design.is_file():
        for r in csv.DictReader(design.open()):
            stain = r["role"] if r["role"] in ("unstimulated", "unstained") else f"ova{r['ova_conc']}"
            rows.append([r["file"], r["treatment"] or "none", "C2D1", stain, r["control_file"]])
    else:
        rows = [[p.name, p.stem, "C2D1", "stained", ""] for p in sorted((base / "fcs").glob("*.fcs"))]
    with out.open("w", newline="") as handle:
        csv.writer(handle).writerows([["file", "patient", "timepoint", "stain", "control_file"], *rows])
    return out


def gating(root: Path, name: str, out: Path) -> Path:
    """The set gated by its hand-written template, as a FlowJo workspace (``OUT/<set>_run/gates.wsp``)."""
    run = out / f"{name}_run"
    sheet = _sheet(root / name, out / f"{name}_sheet.csv")
    cli(["run", str(root / name / "fcs"), "--template", str(ROOT / "gating_templates" / "examples" / f"{name}.yaml"),
         "--samples", str(sheet), "--out", str(run), "--flowjo", "--no-plots", "--quiet"])
    return run / "gates.wsp"


def run(root: Path, out: Path) -> pd.DataFrame:
    rows, workspaces = [], {}
    for k, (name, files, with_controls) in enumerate(TRAIN):
        if name not in workspaces:
            workspaces[name] = gating(root, name, out)
        wsp, fcs = workspaces[name], root / name / "fcs"
        controls = root / name / "design.csv" if (root / name / "design.csv").is_file() else None
        train = [fcs / f for f in files]
        learned = cytokit.learn_template(wsp, train, controls=controls if with_controls else None,
                                         leave_one_out=False)
        label = f"{name}: {' + '.join(f.removesuffix('.fcs') for f in files)}{' (controls)' if with_controls else ''}"
        (out / f"{name}_{k}.yaml").write_text(learned.text)
        held = [p for p in sorted(fcs.glob("*.fcs")) if p.name not in files]
        table = cytokit.compare(held, learned.template, wsp, mapping=learned.mapping or None, strict=False,
                                controls=controls)
        paired = table[table.status == "paired"].assign(population=lambda t: t.population.str.rsplit("/", n=1).str[-1])
        gates = dict(zip(learned.populations["population"], learned.populations["gate"]))
        for population, g in paired.groupby("population", sort=False):
            rows.append({"training": label, "population": population, "gate": gates.get(population, ""),
                         "files": len(g), "f1_median": g.f1.median(), "f1_worst": g.f1.min()})
    return pd.DataFrame(rows)


def markdown(summary: pd.DataFrame) -> str:
    lines = ["| trained on | population | learned gate | files | F1 median / worst |", "|---|---|---|---|---|"]
    for r in summary.itertuples():
        lines.append(f"| {r.training} | {r.population.replace('|', chr(92) + '|')} | {r.gate} | {r.files} | "
                     f"{r.f1_median:.3f} / {r.f1_worst:.3f} |")
    sums = summary.groupby("training", sort=False)[["f1_median", "f1_worst"]].sum()
    lines += ["", "| trained on | populations | sum of medians | sum of worst files |", "|---|---|---|---|"]
    lines += [f"| {t} | {int((summary.training == t).sum())} | {r.f1_median:.3f} | {r.f1_worst:.3f} |"
              for t, r in sums.iterrows()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--real-gated", type=Path, default=default_root())
    parser.add_argument("--out", type=Path, default=Path("validate_learn_moving_out"))
    args = parser.parse_args(argv)
    if not (args.real_gated / "README.md").exists():
        print(f"real gated files not found at {args.real_gated} (set CYTOKIT_REAL_GATED)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    summary = run(args.real_gated, args.out)
    summary.to_csv(args.out / "summary.csv", index=False)
    text = markdown(summary)
    (args.out / "table.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
