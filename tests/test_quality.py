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


def test_a_file_with_further_data_sets_says_only_the_first_was_analysed(tmp_path):
    """A Guava file holds four acquisitions, a Beckman .lmd an FCS 3.0 copy after its FCS 2.0 one:
    run and gate analysed data set 0 and said nothing of the rest."""
    from cytokit.fcs import read_fcs

    from .fcsbuilder import build_fcs, chain

    values = np.random.default_rng(0).uniform(1, 1000, (60, 2))
    path = tmp_path / "two.fcs"
    path.write_bytes(chain(build_fcs(values, nextdata="00000000"), build_fcs(values[:40])))
    assert ("the file holds 2 data sets (60, 40 events); only data set 0 was analysed (cytokit inspect FILE "
            "--dataset N shows each, cytokit gate FILE --dataset N gates it)") in quality_flags(read_fcs(path))
    assert "only data set 1 was analysed" in " ".join(quality_flags(read_fcs(path, dataset=1)))
    single = tmp_path / "one.fcs"
    single.write_bytes(build_fcs(values))
    assert quality_flags(read_fcs(single)) == []


def test_saturation_names_its_channels_and_counts_only_those_the_template_uses(tmp_path):
    """'37.3% of events saturated' named no channel, and came from a dead channel no gate used."""
    from types import SimpleNamespace

    from cytokit.fcs import read_fcs, write_fcs

    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"FSC-A": rng.uniform(0, 1000, 1000), "FSCA": np.full(1000, 1023.0),
                          "HDR-T": np.linspace(0, 1023, 1000)})
    frame.loc[:49, "FSC-A"] = 1023.0
    sample = read_fcs(write_fcs(tmp_path / "s.fcs", frame, ranges=dict.fromkeys(frame, 1024)))
    assert quality_flags(sample) == ["100.0% of events saturated at the top of the range (FSCA 100.0%, FSC-A 5.0%)"]
    used = SimpleNamespace(channels={"fsc": "FSC-A"}, flags={}, membership={})
    assert quality_flags(sample, used) == ["5.0% of events saturated at the top of the range (FSC-A 5.0%)"]


def test_a_log_amplified_channel_on_a_linear_scale_is_a_flag():
    """A FACSCalibur HTS's FSC-H is log-amplified: under a template written for a linear FSC the
    cells crowd the bottom of the axis and the scatter gate finds nothing a person would."""
    from cytokit.gating.template import parse_template

    rng = np.random.default_rng(2)
    sample = Sample.from_dataframe(pd.DataFrame({"FSC-H": 10 ** rng.uniform(0, 4, 500), "SSC-H": rng.uniform(0, 1000, 500)}))
    template = """
channels: {fsc: {pnn: [FSC-H]}, ssc: {pnn: [SSC-H]}}
compensation: none
transforms: {fsc: {kind: %s, t: 10000}, ssc: {kind: linear, t: 1024}}
populations: [{name: Cells, parent: root, gate: {type: range, dim: fsc, min: 0.1}}]
"""
    assert quality_flags(sample, parse_template(template % "linear").apply(sample)) == []
    sample.channels.loc[sample.channels["pnn"] == "FSC-H", "decades"] = 4.0
    flags = quality_flags(sample, parse_template(template % "linear").apply(sample))
    assert flags == ["FSC-H is log-amplified ($PnE 4 decades) but the template puts it on a linear scale, where its "
                     "events crowd the bottom of the axis; give its role kind: log (or logicle) in the template's "
                     "transforms"]
    assert quality_flags(sample, parse_template(template % "log").apply(sample)) == []
