"""cytokit's fitted gates against people's gates on real files (issue 15).

    python benchmarks/validate_real.py [--real-gated DIR] [--out OUT]

Runs ``cytokit.compare`` on the two manually gated sets of ``DIR`` (default
``$CYTOKIT_REAL_GATED`` or ``../shared/real_gated``) with the templates
``gating_templates/examples/activation.yaml`` and ``flowatlas.yaml``, each written once and
used unchanged for every file of its set; the activation tubes take CD69+ from their
unstimulated control (``activation/design.csv`` as ``--controls``). Prints, and writes to
``OUT`` (default ``validate_real_out/``):

- ``table.md`` / ``summary.csv``: per population, the files it was scored in, the median
  and worst F1 (end to end, cytokit's own ancestors), the median and worst F1 within the
  parent, the median and largest |difference in % of parent| (percentage points: the
  measure for CD69+), and which of issue 15's goals it meets (F1 median >= 0.95 and worst
  >= 0.90; for CD69+ |delta %| median <= 2 and worst <= 5);
- ``doubtful.md``: how often ``gate doubtful`` fires on gates that can raise it (density
  valleys, peak feet, valley quadrants; the population's own flag, not an ancestor's) that
  agree with the person (F1 within parent >= 0.9), and how often it misses gates that do not;
- ``<set>.csv``: compare's per-file table;
- ``simulated.md`` / ``simulated.csv``: the shipped ``cll_cd19_7aad.yaml`` on the demo cohorts
  (the stained tubes of ``sample_fcs/calibur`` and ``sample_fcs/modern``) against their per-event truth
  (``truth/*.labels.csv.gz``): Lymphocytes against every event that is not debris, Singlets
  against those that are not doublets either, Viable against live cells (``cd19neg`` and
  ``cll``), CD19+ against ``cll``; F1 per file, median and worst.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cytokit  # noqa: E402
from cytokit.gating.load import load_template  # noqa: E402

SETS = ("activation", "flowatlas")
WARNING_GATES = {"density_valley", "peak_foot", "quadrant"}
MARKER_POPULATIONS = ("CD69+",)  # judged by % of parent, not F1 (few positive events)


def default_root() -> Path:
    return Path(os.environ.get("CYTOKIT_REAL_GATED", ROOT.parent / "shared" / "real_gated"))


def run_set(root: Path, name: str, files: list[Path] | None = None) -> pd.DataFrame:
    """compare's per-file table for one set (all its files unless ``files``)."""
    base = root / name
    controls = base / "design.csv" if (base / "design.csv").exists() else None
    table = cytokit.compare(files or base / "fcs", ROOT / "gating_templates" / "examples" / f"{name}.yaml",
                            base / "manual", controls=controls, strict=True)
    table.insert(0, "set", name)
    return table


def gate_types(name: str) -> dict[str, str]:
    """population name → its gate type, ``pooled <type>`` for a ``pool: true`` population."""
    template = load_template(ROOT / "gating_templates" / "examples" / f"{name}.yaml")
    return {pop.name: ("pooled " if pop.pool else "") + pop.gate["type"] for pop in template.populations}


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (set, population): F1 and F1 within parent (median, worst), |delta %| and the goals."""
    paired = table[table.status == "paired"].copy()
    paired["abs_delta"] = paired.delta_pct_parent.abs()
    rows = []
    for (set_, pop), g in paired.groupby(["set", "population"], sort=False):
        short = pop.rsplit("/", 1)[-1]
        marker = short.startswith(MARKER_POPULATIONS)
        d = g.abs_delta.dropna()
        row = {"set": set_, "population": short, "files": len(g),
               "f1_median": g.f1.median(), "f1_worst": g.f1.min(),
               "f1_parent_median": g.f1_parent.median(), "f1_parent_worst": g.f1_parent.min(),
               "delta_pct_median": d.median() if len(d) else np.nan, "delta_pct_worst": d.max() if len(d) else np.nan}
        if marker:
            ok = row["delta_pct_median"] <= 2 and row["delta_pct_worst"] <= 5
            row["goal"] = row["goal_parent"] = "met" if ok else "not met"
        else:  # end to end, and within the parent (the reading where cytokit's parent differs)
            for key, f1 in (("goal", "f1"), ("goal_parent", "f1_parent")):
                med, worst = row[f"{f1}_median"] >= 0.95, row[f"{f1}_worst"] >= 0.90
                row[key] = "met" if med and worst else ("median only" if med else "not met")
        rows.append(row)
    return pd.DataFrame(rows)


def doubtful_rates(table: pd.DataFrame, types: dict[str, dict[str, str]], *,
                   pooled: bool = False) -> dict[str, tuple[int, int]]:
    """The flag's hits and misses over each file's own fits (``pooled``: over the pooled fits, one
    judgement of the whole set given to every file)."""
    paired = table[table.status == "paired"]
    kind = [types[s].get(p.rsplit("/", 1)[-1], "") for s, p in zip(paired.set, paired.population)]
    rows = paired[[k.startswith("pooled ") == pooled and k.removeprefix("pooled ") in WARNING_GATES for k in kind]]
    own = rows.flag.fillna("").str.startswith("gate doubtful")
    failed = rows.flag.fillna("").str.startswith("gate failed")
    good = rows.f1_parent >= 0.9
    return {"good_flagged": (int((own & good).sum()), int(good.sum())),
            "bad_missed": (int((~own & ~failed & ~good).sum()), int((~good).sum())),
            "bad_failed": (int((failed & ~good).sum()), int((~good).sum()))}


#: each population of the shipped template → the truth classes (simulate's ``cls``) it should hold
SIMULATED_TRUTH = {"Lymphocytes": ("dead", "doublet", "cd19neg", "cll"), "Singlets": ("dead", "cd19neg", "cll"),
                   "Viable": ("cd19neg", "cll"), "CD19+": ("cll",)}


def run_simulated(layouts=("calibur", "modern")) -> pd.DataFrame:
    """F1 of the shipped template's populations against the demo cohorts' per-event truth, per file."""
    from cytokit.fcs import read_fcs
    from cytokit.simulate import read_labels

    template = load_template(ROOT / "gating_templates" / "cll_cd19_7aad.yaml")
    rows = []
    for layout in layouts:
        for path in sorted((ROOT / "sample_fcs" / layout).glob("*_stained.fcs")):  # isotypes lack LAG3/TNFa
            result = template.apply(read_fcs(path), is_control=True)
            cls = read_labels(path)["cls"].astype(str).to_numpy()
            for member, mask in result.membership.items():
                name = member.rsplit("/", 1)[-1]
                if name not in SIMULATED_TRUTH or result.flags.get(member, "").startswith("skipped"):
                    continue
                truth = np.isin(cls, SIMULATED_TRUTH[name])
                both = int(np.count_nonzero(mask & truth))
                rows.append({"layout": layout, "file": path.name, "population": name,
                             "f1": 2 * both / (int(mask.sum()) + int(truth.sum()))})
    return pd.DataFrame(rows)


def simulated_markdown(table: pd.DataFrame) -> str:
    lines = ["| layout | population | files | F1 median / worst |", "|---|---|---|---|"]
    for (layout, pop), g in table.groupby(["layout", "population"], sort=False):
        lines.append(f"| {layout} | {pop} | {len(g)} | {g.f1.median():.3f} / {g.f1.min():.3f} |")
    return "\n".join(lines) + "\n"


def markdown(summary: pd.DataFrame) -> str:
    lines = ["| set | population | files | F1 median / worst | F1 within parent median / worst | "
             "Δ % of parent median / worst | goal: end to end / within parent |", "|---|---|---|---|---|---|---|"]
    for r in summary.itertuples():
        name = r.population.replace("|", "\\|")  # "CD4 | Memory" is one cell
        lines.append(f"| {r.set} | {name} | {r.files} | {r.f1_median:.3f} / {r.f1_worst:.3f} | "
                     f"{r.f1_parent_median:.3f} / {r.f1_parent_worst:.3f} | "
                     f"{r.delta_pct_median:.2f} / {r.delta_pct_worst:.2f} | {r.goal} / {r.goal_parent} |")
    return "\n".join(lines) + "\n"


def doubtful_markdown(rates: dict[str, tuple[int, int]]) -> str:
    (gf, g), (bm, b), (bf, _) = rates["good_flagged"], rates["bad_missed"], rates["bad_failed"]
    pct = lambda k, n: f"{100 * k / n:.0f} %" if n else "—"  # noqa: E731
    return (f"- gates that agree (F1 within parent ≥ 0.9) flagged `gate doubtful`: {gf} of {g} ({pct(gf, g)})\n"
            f"- gates that do not agree, not flagged (neither doubtful nor failed): {bm} of {b} ({pct(bm, b)}); "
            f"{bf} of them failed outright (flagged `gate failed`)\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--real-gated", type=Path, default=default_root())
    parser.add_argument("--out", type=Path, default=Path("validate_real_out"))
    args = parser.parse_args(argv)
    if not (args.real_gated / "README.md").exists():
        print(f"real gated files not found at {args.real_gated} (set CYTOKIT_REAL_GATED)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    tables = []
    for name in SETS:
        table = run_set(args.real_gated, name)
        table.to_csv(args.out / f"{name}.csv", index=False)
        tables.append(table)
    table = pd.concat(tables, ignore_index=True)
    summary = summarise(table)
    summary.to_csv(args.out / "summary.csv", index=False)
    text = markdown(summary)
    types = {name: gate_types(name) for name in SETS}
    rates = (doubtful_markdown(doubtful_rates(table, types)) + "\nPooled gates (one fit for all files of a set):\n"
             + doubtful_markdown(doubtful_rates(table, types, pooled=True)))
    (args.out / "table.md").write_text(text)
    (args.out / "doubtful.md").write_text(rates)
    simulated = run_simulated()
    simulated.to_csv(args.out / "simulated.csv", index=False)
    (args.out / "simulated.md").write_text(simulated_markdown(simulated))
    print(text + "\n" + rates + "\nSimulated cohorts (shipped template against the per-event truth):\n"
          + simulated_markdown(simulated))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
