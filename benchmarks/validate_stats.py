"""Null simulation and power of cytokit's paired statistics (the numbers of docs/validation.md).

Marker values are simulated directly with numpy, per tube: CLL cells whose negatives (and the
isotype tube's cells) are log-normal autofluorescence plus non-specific binding, a share
``pi`` of stained cells positive (log-normal, one decade brighter), Gaussian electronic noise,
then cytokit's logicle transform (T 262144, W 0.5, M 4.5). Each acquisition session
(patient × timepoint) multiplies the stained and the isotype tube alike by a gain
``exp(N(0, 0.10))``: session drift. Under the null the follow-up has the baseline's ``pi``;
responders gain ``N(5, 2)`` points of positives.

    python benchmarks/validate_stats.py [--pairs 1000] [--events 6000] [--cohorts 1000] [--seed 17]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from cytokit.cohort import PATIENT_ALPHA, cohort_summary
from cytokit.shift import shift_metrics
from cytokit.transforms import LogicleTransform

LOGICLE = LogicleTransform(t=262144, w=0.5, m=4.5, a=0)
GAIN_SD = 0.10
SIGNED = ["delta_pct_pos", "delta_rmfi", "log2_rmfi_ratio", "delta_overton_pct_pos"]
TESTS = {  # per-pair call of each distance's own test at PATIENT_ALPHA
    "ks_d": lambda m: m["ks_p"] < PATIENT_ALPHA,
    "pb (pb_p)": lambda m: m["pb_p"] < PATIENT_ALPHA,
    "pb_tx >= 4": lambda m: m["pb_tx"] >= 4,
    "cum_excess_pct": lambda m: m["cum_excess_p"] < PATIENT_ALPHA,
    "ks_d_raw (ks_2samp p)": lambda m: m["ks_p_raw"] < PATIENT_ALPHA,
    "pb_tx_raw >= 4": lambda m: m["pb_tx_raw"] >= 4,
    "cum_excess_pct_raw": lambda m: m["cum_excess_pct_raw"] > m["cum_crit"],
}


def tube(rng, n, pi, gain):
    """Linear intensities of one tube: autofluorescence + non-specific binding, pi positive."""
    values = 10 ** rng.normal(2.3, 0.35, n)
    positive = rng.random(n) < pi
    values[positive] = 10 ** rng.normal(3.4, 0.3, positive.sum())
    return LOGICLE.apply(gain * values + rng.normal(0, 30, n))


def pair(rng, n, pi_base, pi_follow):
    """One patient's four tubes and the paired-row metrics cytokit computes from them."""
    g_b, g_f = np.exp(rng.normal(0, GAIN_SD, 2))
    iso_b, iso_f = tube(rng, n, 0.0, g_b), tube(rng, n, 0.0, g_f)
    st_b, st_f = tube(rng, n, pi_base, g_b), tube(rng, n, pi_follow, g_f)
    m = shift_metrics(st_b, st_f, baseline_isotype=iso_b, followup_isotype=iso_f)
    thr_b, thr_f = np.quantile(iso_b, 0.99), np.quantile(iso_f, 0.99)
    m["delta_pct_pos"] = 100 * (np.mean(st_f > thr_f) - np.mean(st_b > thr_b))
    inv = LOGICLE.inverse
    rmfi_b = np.median(inv(st_b)) / np.median(inv(iso_b))
    rmfi_f = np.median(inv(st_f)) / np.median(inv(iso_f))
    m["delta_rmfi"], m["log2_rmfi_ratio"] = rmfi_f - rmfi_b, np.log2(rmfi_f / rmfi_b)
    from scipy import stats
    m["ks_p_raw"] = float(stats.kstwo.sf(m["ks_d_raw"], round(n / 2)))
    m["cum_crit"] = 100 * np.sqrt(np.log(1 / PATIENT_ALPHA) / 2 * 2 / n)
    m["n_baseline"] = m["n_followup"] = n
    return m


def simulate(rng, n_pairs, n, responders):
    rows = []
    for _ in range(n_pairs):
        pi = rng.uniform(0.05, 0.20)
        gain = max(0.0, rng.normal(0.05, 0.02)) if responders else 0.0
        rows.append(pair(rng, n, pi, pi + gain))
    return pd.DataFrame(rows)


def cohort_rates(rng, null, resp, n, cohorts, share):
    """Share of cohorts of n patients (each a responder with probability ``share``) whose primary
    cohort test of each metric gives p < 0.05 (unadjusted) and q < 0.05 (BH over the family)."""
    metrics = [*SIGNED, "cum_excess_pct", "ks_d", "pb_chi2_excess"]
    hits_p, hits_q = dict.fromkeys(metrics, 0), dict.fromkeys(metrics, 0)
    for _ in range(cohorts):
        is_resp = rng.random(n) < share
        rows = pd.concat([resp.sample(int(is_resp.sum()), random_state=rng.integers(2**31)),
                          null.sample(int((~is_resp).sum()), random_state=rng.integers(2**31))])
        rows = rows.assign(marker="M", population="P", patient=np.arange(n))
        table = cohort_summary(rows, metrics=metrics, n_boot=1).set_index("metric")
        for metric in metrics:
            hits_p[metric] += table.loc[metric, "p_value"] < 0.05
            hits_q[metric] += table.loc[metric, "q_bh"] < 0.05
    return {m: (hits_p[m] / cohorts, hits_q[m] / cohorts) for m in metrics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--events", type=int, default=6000)
    parser.add_argument("--cohorts", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    null = simulate(rng, args.pairs, args.events, responders=False)
    resp = simulate(rng, args.pairs, args.events, responders=True)
    print(f"# {args.pairs} null and {args.pairs} responder pairs, {args.events} events per tube, "
          f"gain drift exp(N(0, {GAIN_SD})), seed {args.seed}\n")
    print(f"## Per-pair false-positive rate under the null (alpha {PATIENT_ALPHA:g}) and per-pair power\n")
    print("| call | null: false-positive rate | responders (+5 ± 2 points): power |\n|---|---|---|")
    for name, call in TESTS.items():
        print(f"| {name} | {call(null).mean():.3f} | {call(resp).mean():.3f} |")
    print("\n## Null medians (identical distributions, session drift)\n")
    print("| column | median | 95th percentile |\n|---|---|---|")
    for column in ["isotype_shift", *SIGNED, "cum_excess_pct", "cum_excess_pct_raw", "ks_d", "ks_d_raw",
                   "pb_chi2_excess", "pb_tx", "pb_tx_raw", "emd", "emd_raw"]:
        values = null[column].abs() if column in SIGNED or column == "isotype_shift" else null[column]
        label = f"\\|{column}\\|" if column in SIGNED or column == "isotype_shift" else column
        print(f"| {label} | {values.median():.4g} | {values.quantile(0.95):.4g} |")
    for share, title in [(0.0, "Cohort false-positive rate (no responder)"),
                         (5 / 6, "Cohort power (each patient a responder with probability 5/6)")]:
        print(f"\n## {title}: p < 0.05 / q_bh < 0.05, {args.cohorts} cohorts per n\n")
        results = {n: cohort_rates(rng, null, resp, n, args.cohorts, share) for n in (6, 12, 25)}
        print("| metric | n = 6 | n = 12 | n = 25 |\n|---|---|---|---|")
        for metric in results[6]:
            cells = " | ".join(f"{results[n][metric][0]:.3f} / {results[n][metric][1]:.3f}" for n in (6, 12, 25))
            print(f"| {metric} | {cells} |")
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
