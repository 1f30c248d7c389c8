"""Issue 17: a planted non-responder shows no shift in any drift-protected paired metric.

On the simulated demo cohorts (sample_fcs/, see its README), CLL003 is the non-responder:
planted TNF-α 7.4 → 7.8 %, LAG3 14.1 → 13.7 %. Its sessions drifted (the C2D8 calibur
isotype's TNF-α median is log2 0.285 above C2D1's), which the raw distances read as a shift.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cytokit.cohort import PATIENT_ALPHA, cohort_summary

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", params=["calibur", "modern"])
def paired(request):
    from cytokit import Experiment, read_sample_sheet

    sheet = read_sample_sheet(REPO / "sample_fcs" / request.param / "samples.csv")
    return Experiment(sheet, REPO / "gating_templates" / "cll_cd19_7aad.yaml").run().paired


def _non_responder(paired, marker):
    return paired[(paired["patient"] == "CLL003") & (paired["marker"] == marker)].iloc[0]


def test_item1_drift_protected_distances_see_no_shift_in_the_non_responder(paired):
    """Fails before issue 17: TNFa pb_tx 33.7 and KS D 0.161 (calibur), LAG3 pb_tx 5.9 (modern)."""
    for marker in ("LAG3", "TNFa"):
        row = _non_responder(paired, marker)
        assert row.pb_tx < 4 and row.pb_p >= PATIENT_ALPHA, (marker, row.pb_tx)
        assert row.ks_p >= PATIENT_ALPHA, (marker, row.ks_d, row.ks_p)
        critical = 100 * np.sqrt(np.log(1 / PATIENT_ALPHA) / 2 * (row.n_baseline + row.n_followup)
                                 / (row.n_baseline * row.n_followup))
        assert row.cum_excess_pct <= critical
        assert abs(row.log2_rmfi_ratio) < 0.1 and abs(row.delta_pct_pos) < 1.5
        assert abs(row.delta_overton_pct_pos) < 2.5


def test_item1_raw_distances_keep_the_drift_under_names_that_say_so(paired):
    row = _non_responder(paired, "TNFa")
    assert row.ks_d_raw > row.ks_d and row.emd_raw > row.emd
    assert {"log2_mfi_ratio_raw", "ks_d_raw", "pb_tx_raw", "emd_raw", "cum_excess_pct_raw"} <= set(paired.columns)
    assert "log2_mfi_ratio" not in paired.columns and "overton_pct_pos" not in paired.columns


def test_item2_distances_count_only_patients_whose_own_test_rejects(paired):
    """Fails before issue 17: with tolerance 0 every distance was "up" (6/6, the non-responder too)."""
    summary = cohort_summary(paired)
    responders = paired["patient"] != "CLL003"
    for metric in ("ks_d", "pb_chi2_excess", "cum_excess_pct"):
        rows = summary[summary["metric"] == metric]
        assert (rows["n_up"] <= responders.groupby(paired["marker"]).sum().max()).all(), metric
    assert summary.loc[summary["metric"] == "emd", "n_up"].isna().all()
