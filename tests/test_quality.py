"""Quality flags never stop a file: odd Time channels are flagged, not raised."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cytokit.quality import flow_rate_anomaly, quality_flags
from cytokit.sample import Sample


def _sample(time: np.ndarray) -> Sample:
    rng = np.random.default_rng(0)
    return Sample.from_dataframe(pd.DataFrame({"FSC-A": rng.uniform(0, 1000, len(time)), "Time": time}))


def test_an_even_acquisition_has_no_flag():
    assert flow_rate_anomaly(_sample(np.linspace(0, 100, 5000))) == ""


def test_a_clog_is_flagged():
    time = np.concatenate([np.linspace(0, 50, 4000), np.linspace(50, 100, 1000)])
    assert "time slices" in flow_rate_anomaly(_sample(time))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_time_values_are_a_flag(bad):
    time = np.linspace(0, 100, 5000)
    time[::10] = bad
    assert flow_rate_anomaly(_sample(time)) == "flow rate: 500 events have a non-finite Time value"


def test_huge_time_steps_are_read_without_overflow():
    """$TIMESTEP 1e308 gives Time values near the float64 maximum: the histogram's range overflowed."""
    time = np.linspace(0, 1.7, 5000) * 1e308
    assert flow_rate_anomaly(_sample(time)) == ""
    assert quality_flags(_sample(time)) == []


def test_a_constant_time_channel_is_a_flag():
    assert "the same Time value" in flow_rate_anomaly(_sample(np.full(5000, 3.0)))


def test_saturated_fraction_counts_events_at_the_top_of_any_channel(tmp_path):
    """Events at a channel's top count once however many channels they top; a channel holding
    NaN is still compared (its maximum is NaN); Time is never a saturation."""
    from cytokit.fcs import read_fcs, write_fcs
    from cytokit.quality import saturated_fraction

    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"FSC-A": rng.uniform(0, 1000, 1000), "SSC-A": rng.uniform(0, 1000, 1000),
                          "Time": np.linspace(0, 1024, 1000)})
    frame.loc[:9, "FSC-A"] = 1023.0  # 10 events at FSC-A's top
    frame.loc[5:19, "SSC-A"] = 1024.0  # 15 at SSC-A's, 5 of them at FSC-A's too
    sample = read_fcs(write_fcs(tmp_path / "s.fcs", frame,
                                ranges={"FSC-A": 1024, "SSC-A": 1024, "Time": 1024}))
    assert saturated_fraction(sample) == pytest.approx(20 / 1000)
    sample.events.loc[500, "SSC-A"] = np.nan
    assert saturated_fraction(sample) == pytest.approx(20 / 1000)
