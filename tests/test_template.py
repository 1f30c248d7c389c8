"""Templates: validation with file/line/key errors, channel roles, applying, soft failure, skipping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cytokit import ChannelNotFoundError, Sample, TemplateError, load_template, read_fcs
from cytokit.gating.channels import _matches_marker
from cytokit.gating.template import parse_template

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "gating_templates" / "cll_cd19_7aad.yaml"
BASE = """\
channels:
  x: {pnn: [X]}
  y: {marker: CD19}
populations:
  - name: A
    parent: root
    gate: {type: range, dim: x, min: 0.5}
"""


@pytest.mark.parametrize(
    "text,match",
    [
        (BASE.replace("type: range", "type: blob"), r"line 7, key populations/0/gate/type: 'blob' is not allowed"),
        (BASE.replace("parent: root", "parent: B"), r"line 5, population 'A': parent 'B' is not defined"),
        (BASE.replace("dim: x", "dim: z"), r"gate uses role 'z', not defined"),
        (BASE + "colour: red\n", r"key \(top level\).*colour"),
        (BASE.replace("min: 0.5", "lo: 0.5"), r"line 5: gate of population 'A' \(range\): unknown parameter\(s\) 'lo'; "
                                             r"it takes dim, min, max"),
        (BASE.replace("min: 0.5", "side: abov").replace("type: range", "type: density_valley"),
         r"line 5: gate of population 'A' \(density_valley\): side must be 'above' or 'below', got 'abov'"),
        (BASE.replace("type: range, dim: x, min: 0.5", "type: cluster, dims: [x, y], confidence: 99"),
         r"confidence must be between 0 and 1 \(exclusive\), e.g. 0.95, got 99"),
        (BASE.replace("type: range, dim: x, min: 0.5", "type: cluster, dims: [x, y], n_components: 0"),
         r"n_components must be a whole number from 1 to 50, got 0"),
        (BASE.replace("type: range, dim: x, min: 0.5", "type: cluster, dims: [x, y], select: biggest"),
         r"select must be 'largest', 'nearest', 'lowest' or 'highest', got 'biggest'"),
        (BASE.replace("min: 0.5", "min_valley_depth: 2").replace("type: range", "type: density_valley"),
         r"min_valley_depth must be between 0 and 1, got 2"),
        (BASE.replace("min: 0.5", "fallback: {type: shoulder, tol: 3}").replace("type: range", "type: density_valley"),
         r"line 5: gate of population 'A' \(density_valley\): fallback \(shoulder\): tol must be between 0 and 1"),
        (BASE + "transforms:\n  default: {kind: logicle, t: auto, w: 3, m: 1}\n",
         r"line 9, transform of 'default': logicle transform parameters .* are invalid: Gating-ML 2.0 needs"),
        (BASE + "compensation: nonee\n", r"line 8, key compensation: 'nonee' is neither 'file'"),
        ("channels: [\n", r"not valid YAML"),
        (BASE + "markers:\n  - {name: M, channel: q, population: A}\n", r"line 9, marker 'M': channel role 'q'"),
    ],
)
def test_invalid_templates_name_line_and_key(text, match):
    with pytest.raises(TemplateError, match=match):
        parse_template(text, source="t.yaml")


def test_missing_template_file():
    with pytest.raises(TemplateError, match="cannot read template"):
        load_template(REPO / "nope.yaml")


@pytest.mark.parametrize(
    "pns,marker,matches",
    [
        # case, separators, fluorochromes before or after, 'anti-', area/height suffixes
        ("CD19", "CD19", True), ("cd19", "CD19", True), ("CD19 FITC", "CD19", True),
        ("CD19-FITC", "CD19", True), ("CD19_PE-Cy7", "CD19", True), ("CD19 (FITC)", "CD19", True),
        ("CD19 APC", "CD19", True), ("FITC-CD19", "CD19", True),
        ("LAG-3", "LAG3", True), ("Lag3 PE", "LAG3", True), ("PE-LAG3", "LAG3", True),
        ("LAG-3-PE", "LAG3", True), ("anti-LAG3", "LAG3", True), ("LAG3", "LAG-3", True),
        ("7-AAD", "7AAD", True), ("7-AAD-A", "7AAD", True), ("7AAD PerCP", "7AAD", True),
        # Greek letters: α = alpha = a, β = beta = b, γ = gamma = g
        ("TNF-α", "TNFa", True), ("TNF-α APC", "TNFa", True), ("TNF-α-APC", "TNFa", True),
        ("TNF-alpha", "TNFa", True), ("TNF alpha", "TNFa", True), ("TNFalpha", "TNFa", True),
        ("TNF-alpha APC", "TNFa", True), ("APC-TNFa", "TNFa", True), ("TNFa", "TNF-α", True),
        ("IFN-gamma PE", "IFNγ", True), ("TGF-β1", "TGFbeta1", True),
        # a word that only starts with the marker names another marker
        ("CD197", "CD19", False), ("CD19b", "CD19", False), ("CD194", "CD19", False),
        ("CD1", "CD19", False), ("CD20 FITC", "CD19", False), ("IgG1 PE", "CD19", False),
        ("", "CD19", False), ("LAG35", "LAG3", False), ("TNFR2", "TNFa", False),
        ("TNF-R2 PE", "TNFa", False), ("TNF APC", "TNFa", False), ("CD38", "CD3", False),
        ("CD3e", "CD3", False), ("CD3ε FITC", "CD3", False), ("7AAD", "7", False),
    ],
)
def test_marker_matching(pns, marker, matches):
    assert _matches_marker(pns, marker) is matches


def test_marker_aliases_match_any_name():
    template = parse_template(BASE.replace("{marker: CD19}", "{marker: [TNFa, TNF]}"))
    assert template.roles["y"].marker_names == ("TNFa", "TNF")
    sample = Sample.from_dataframe(pd.DataFrame({"X": [1.0], "FL4-A": [2.0]}), markers={"FL4-A": "TNF APC"})
    assert template.resolve_channels(sample) == {"x": "X", "y": "FL4-A"}


@pytest.mark.parametrize("value", ["[]", '""', "[TNFa, '']", "[TNFa, 3]", "{a: b}", "'--'"])
def test_invalid_marker_names_the_file_and_role(value):
    with pytest.raises(TemplateError, match=r"t\.yaml, line 3, role 'y': marker must be a marker name or a"):
        parse_template(BASE.replace("{marker: CD19}", f"{{marker: {value}}}"), source="t.yaml")


def test_marker_in_several_channels_is_an_error():
    template = parse_template(BASE.replace("{marker: CD19}", "{marker: [CD19, B220]}"))
    sample = Sample.from_dataframe(pd.DataFrame({"X": [1.0], "A": [1.0], "B": [1.0]}),
                                   markers={"A": "FITC-CD19", "B": "B220 PE"})
    with pytest.raises(ChannelNotFoundError, match=r"'CD19' or 'B220' \(role 'y'\) matches several channels"):
        template.resolve_channels(sample)


def test_a_marker_on_area_height_and_width_takes_the_area_or_the_roles_pnn():
    # Attune, MACSQuant and Accuri write the marker into the $PnS of each of a detector's channels
    events = pd.DataFrame({"X": [1.0], "VL1-A": [1.0], "VL1-H": [1.0], "VL1-W": [1.0]})
    sample = Sample.from_dataframe(events, markers={c: "CD19 BV421" for c in ("VL1-A", "VL1-H", "VL1-W")})
    assert parse_template(BASE).resolve_channels(sample)["y"] == "VL1-A"
    pinned = parse_template(BASE.replace("{marker: CD19}", "{marker: CD19, pnn: [VL1-H]}"))
    assert pinned.resolve_channels(sample)["y"] == "VL1-H"
    two = Sample.from_dataframe(events.assign(BL1=1.0), markers={"VL1-A": "CD19", "BL1": "CD19"})
    with pytest.raises(ChannelNotFoundError, match=r"several channels: \['VL1-A', 'BL1'\]; name the one to use "
                                                   r"in the role's pnn \(e.g. \{marker: CD19, pnn: \[VL1-A\]\}\)"):
        parse_template(BASE).resolve_channels(two)


def test_missing_role_is_reported_with_the_channels():
    template = parse_template(BASE)
    sample = Sample.from_dataframe(pd.DataFrame({"X": [1.0]}), markers={"X": "CD3"})
    with pytest.raises(ChannelNotFoundError, match=r"needs marker 'CD19'.*X \(CD3\) \(set the role's marker"):
        template.resolve_channels(sample)
    two = parse_template(BASE.replace("x: {pnn: [X]}", "x: {pnn: [Z]}"))
    with pytest.raises(ChannelNotFoundError, match=r"role 'x' needs one of \$PnN \['Z'\]; role 'y' needs marker "
                                                   r"'CD19' in \$PnS; the file has X \(CD3\) \(set the roles' marker"):
        two.resolve_channels(sample)


def test_a_roles_pnn_passes_over_a_channel_another_roles_marker_names():
    """A learned role's detector list holds every panel's detector for the marker; in a file of another
    panel one of them carries another role's marker (CD4 on 670/30 in one panel, CCR6 in the next)."""
    template = parse_template(BASE.replace("y: {marker: CD19}", "y: {marker: CD4, pnn: [B, A]}\n  z: {marker: CCR6}"))
    events = pd.DataFrame({"X": [1.0], "A": [1.0], "B": [1.0]})
    other_panel = Sample.from_dataframe(events, markers={"A": "CCR6"})
    assert template.resolve_channels(other_panel) == {"x": "X", "y": "B", "z": "A"}
    isotype = Sample.from_dataframe(events, markers={"B": "IgG1 PE", "A": "CCR6"})  # not a role's marker: taken
    assert template.resolve_channels(isotype)["y"] == "B"
    only = parse_template(BASE.replace("y: {marker: CD19}", "y: {marker: CD4, pnn: [A]}\n  z: {marker: CCR6}"))
    with pytest.raises(ChannelNotFoundError, match=r"role 'y' needs marker 'CD4' in \$PnS \(its pnn A carries "
                                                   r"role 'z'\'s marker\)"):
        only.resolve_channels(other_panel)


def test_soft_failure_gives_empty_population_and_flag():
    text = BASE + """\
  - name: B
    parent: A
    gate: {type: density_valley, dim: y}
"""
    events = pd.DataFrame({"X": np.ones(300), "Y": np.random.default_rng(0).normal(5, 1, 300)})
    sample = Sample.from_dataframe(events, markers={"Y": "CD19"})
    result = parse_template(text).apply(sample)
    counts = result.counts().set_index("population")
    assert counts.loc["A/B", "count"] == 0
    assert "no density valley" in counts.loc["A/B", "flag"]


def test_shipped_template_on_both_layouts_and_singlets_skipped_on_calibur():
    template = load_template(SHIPPED)
    assert template.paths[-1].endswith("CD19+")
    assert [m.name for m in template.markers] == ["LAG3", "TNFa"]
    for layout, skipped in [("calibur", True), ("modern", False)]:
        stained = read_fcs(REPO / "sample_fcs" / layout / "CLL001_C2D1_stained.fcs")
        result = template.apply(stained, is_control=True)
        flag = result.flags.get("Lymphocytes/Singlets", "")
        assert flag.startswith("skipped") == skipped
        assert result.counts()["count"].iloc[-1] > 4000
        fitted = result.fitted()
        assert "threshold_" in fitted["Lymphocytes/Singlets/Viable/CD19+"]


@pytest.mark.parametrize("layout", ["calibur", "modern"])
def test_a_failed_viability_stain_is_flagged_not_silently_split(layout):
    """Every event 7AAD-bright (the simulated dead cells' values): one broad peak, no real valley."""
    from cytokit.quality import quality_flags
    from cytokit.simulate import read_labels

    path = REPO / "sample_fcs" / layout / "CLL001_C2D1_stained.fcs"
    sample, template = read_fcs(path), load_template(SHIPPED)
    viable = "Lymphocytes/Singlets/Viable"
    healthy = template.apply(sample, is_control=True)
    assert viable not in healthy.flags or not healthy.flags[viable].startswith("gate")
    column = healthy.channels["viability"]
    dead = (read_labels(path)["cls"] == "dead").to_numpy()
    events = sample.events.copy()
    events[column] = np.random.default_rng(0).choice(events[column].to_numpy()[dead], len(events))
    failed = Sample(events, sample.channels, sample.keywords, path=path, spillover=sample.spillover)
    result = template.apply(failed, is_control=True)
    assert result.flags[viable].startswith("gate doubtful: weak separation in ")
    assert result.gates[viable].valley_depth_ < 0.5 < healthy.gates[viable].valley_depth_
    assert any("gate doubtful" in flag for flag in quality_flags(failed, result))
    assert "weak separation" in result.counts().set_index("population").loc[viable, "flag"]
    from cytokit.stats import quantify

    row = quantify(result, None, meta={"file": path.name}, is_control=True)[0]
    assert row["flag"].startswith(f"{viable}: gate doubtful: weak separation")  # inherited by CD19+ rows
    assert quantify(healthy, None, meta={"file": path.name}, is_control=True)[0]["flag"] == ""
    # a stained tube whose isotype has the doubtful gate says whose it is
    row = quantify(healthy, result, meta={"file": "st.fcs"}, isotype_meta={"file": "iso.fcs"})[0]
    assert row["flag"].startswith(f"isotype iso.fcs: {viable}: gate doubtful")


def test_a_transform_valid_at_load_but_not_for_a_files_top_of_scale_names_the_file():
    text = SHIPPED.read_text().replace("fsc:        {kind: linear, t: auto}",
                                       "fsc:        {kind: linear, t: auto, a: -2000}")
    template = parse_template(text, source="t.yaml")  # t: 262144 at load: T + A > 0
    sample = read_fcs(REPO / "sample_fcs" / "calibur" / "CLL001_C2D1_stained.fcs")  # FSC-H: $P1R 1024
    with pytest.raises(TemplateError, match=r"t.yaml: transform of role 'fsc' on FSC-H of .*CLL001_C2D1_stained.fcs: "
                                            r"linear transform parameters T=1024, A=-2000 are invalid"):
        template.apply(sample)


def test_control_threshold_gate_is_fitted_on_the_control():
    text = BASE + """\
  - name: B
    parent: A
    gate: {type: control_threshold, dim: y, quantile: 0.9}
"""
    template = parse_template(text)
    rng = np.random.default_rng(1)
    control = Sample.from_dataframe(pd.DataFrame({"X": np.ones(1000), "Y": rng.normal(0, 1, 1000)}),
                                    markers={"Y": "CD19"})
    stained = Sample.from_dataframe(pd.DataFrame({"X": np.ones(1000), "Y": rng.normal(1, 1, 1000)}),
                                    markers={"Y": "CD19"})
    ctrl = template.apply(control, is_control=True)
    result = template.apply(stained, control=ctrl)
    threshold = result.gates["A/B"].threshold_
    assert threshold == pytest.approx(np.quantile(control.events["Y"], 0.9))
    alone = template.apply(stained)
    assert "needs the matched control" in alone.flags["A/B"]


def test_non_finite_events_are_in_no_population_and_flagged():
    """NaN in 10 % of PE-A made Viable exactly the NaN events (785 of 7,430): logicle put them at -1,
    below the 7AAD valley (issue 16 item 2). They are left out of every gate and counted in a flag."""
    from cytokit.quality import quality_flags

    path = REPO / "sample_fcs" / "modern" / "CLL001_C2D1_stained.fcs"
    sample, template = read_fcs(path), load_template(SHIPPED)
    clean = template.apply(sample, is_control=True).counts().set_index("population")["count"]
    events = sample.events.copy()
    bad = np.random.default_rng(0).random(len(events)) < 0.1
    events.loc[bad, "PE-A"] = np.where(np.arange(bad.sum()) % 3, np.nan, np.inf)  # NaN and +inf
    broken = Sample(events, sample.channels, sample.keywords, path=path, spillover=sample.spillover)
    result = template.apply(broken, is_control=True)
    for population, mask in result.membership.items():
        assert not (mask & bad).any(), population
    counts = result.counts().set_index("population")
    viable = "Lymphocytes/Singlets/Viable"
    assert counts.loc[viable, "count"] == pytest.approx(0.9 * clean[viable], rel=0.03)
    note = f"{bad.sum()} events with non-finite values (NaN or ±inf) in PE-A left out of every gate"
    assert counts.loc["Lymphocytes", "flag"] == note
    assert counts.loc[viable, "flag"] == ""
    assert note in quality_flags(broken, result)
    assert result.nonfinite == note and not result.finite[bad].any()


def test_non_finite_events_are_not_used_to_fit_a_gate_on_the_root():
    text = BASE.replace("type: range, dim: x, min: 0.5", "type: quantile, dim: x, q: 0.5, side: above")
    template = parse_template(text)
    x = np.concatenate([np.linspace(1, 100, 100), np.full(100, np.nan)])
    sample = Sample.from_dataframe(pd.DataFrame({"X": x, "Y": np.ones(200)}), markers={"Y": "CD19"})
    result = template.apply(sample)
    assert result.gates["A"].threshold_ == pytest.approx(50.5)
    assert result.membership["A"].sum() == 50 and not result.membership["A"][100:].any()
    assert result.counts()["flag"].iloc[0] == ("100 events with non-finite values (NaN or ±inf) in X left out "
                                               "of every gate")


def test_two_roles_of_one_marker_are_a_template_error():
    """``lag3: {marker: TNFa}`` beside ``tnfa: {marker: TNFa}``: the LAG3 rows reported the TNF-α
    channel (issue 16 item 3)."""
    text = SHIPPED.read_text().replace("lag3:       {marker: LAG3}", "lag3:       {marker: TNFa}")
    with pytest.raises(TemplateError, match=r"t\.yaml, line 19, role 'tnfa': marker 'TNFa' is also the marker "
                                            r"of role 'lag3'; two roles would take one channel"):
        parse_template(text, source="t.yaml")
    aliases = SHIPPED.read_text().replace("lag3:       {marker: LAG3}", "lag3:       {marker: [LAG3, TNF-α]}")
    with pytest.raises(TemplateError, match=r"role 'tnfa': marker 'TNFa' is also the marker of role 'lag3'"):
        parse_template(aliases, source="t.yaml")


def test_two_marker_roles_resolving_to_one_channel_name_both_the_channel_and_the_file():
    template = parse_template(BASE.replace("y: {marker: CD19}", "y: {marker: CD19}\n  z: {marker: LAG3}"),
                              source="t.yaml")
    sample = Sample.from_dataframe(pd.DataFrame({"X": [1.0], "A": [1.0]}), markers={"A": "CD19 LAG3"})
    sample.path = "tube.fcs"
    with pytest.raises(TemplateError, match=r"t\.yaml: roles 'y' and 'z' both resolve to channel A \(CD19 LAG3\) "
                                            r"in tube\.fcs: one channel cannot be two markers"):
        template.resolve_channels(sample)
    # roles found by $PnN may share a channel on purpose (fsc and fsc_area are both FSC-A)
    shared = parse_template(BASE.replace("x: {pnn: [X]}", "x: {pnn: [X]}\n  x2: {pnn: [X]}"))
    assert shared.resolve_channels(sample) == {"x": "X", "x2": "X", "y": "A"}


def test_a_template_saved_in_windows_1252_is_read(tmp_path):
    """Notepad's or Excel's default on Windows: a UnicodeDecodeError traceback before (issue 16 item 19)."""
    text = "# Étude CLL – café\n" + SHIPPED.read_text().replace("α", "a")
    path = tmp_path / "cp1252.yaml"
    path.write_bytes(text.encode("cp1252"))
    assert load_template(path).paths == load_template(SHIPPED).paths
    opencyto = tmp_path / "t.csv"
    opencyto.write_bytes("alias,pop,parent,dims,gating_method,gating_args\n"
                         "Cellules B é,+,root,CD19,mindensity,\"gate_range=c(0.2,0.7)\"\n".encode("cp1252"))
    assert load_template(opencyto).paths == ["Cellules B é"]
    neither = tmp_path / "bad.yaml"
    neither.write_bytes(b"channels: {x: {pnn: [X]}}  # \x81\x8d\n")  # bytes neither UTF-8 nor cp1252 define
    with pytest.raises(TemplateError, match=r"bad\.yaml: cannot read template: neither UTF-8 nor Windows-1252 "
                                            r"text \(byte 0x81 at offset 29\); save it as UTF-8"):
        load_template(neither)


def test_a_marker_on_the_root_is_a_template_error():
    text = BASE + "markers:\n  - {name: M, channel: y, population: root}\n"
    with pytest.raises(TemplateError, match=r"t\.yaml, line 9, marker 'M': population 'root' is not a gated "
                                            r"population"):
        parse_template(text, source="t.yaml")


def test_two_markers_with_one_name_are_a_template_error():
    text = BASE + "markers:\n  - {name: M, channel: y, population: A}\n  - {name: M, channel: x, population: A}\n"
    with pytest.raises(TemplateError, match=r"t\.yaml, line 10, marker 'M': the name is used twice"):
        parse_template(text, source="t.yaml")


def test_a_huge_n_components_is_refused_at_load():
    text = BASE.replace("type: range, dim: x, min: 0.5", "type: cluster, dims: [x, y], n_components: 1000000000")
    with pytest.raises(TemplateError, match=r"t\.yaml, line 5: gate of population 'A' \(cluster\): n_components "
                                            r"must be a whole number from 1 to 50, got 1000000000"):
        parse_template(text, source="t.yaml")


def test_gating_result_repr_is_a_short_summary():
    """print(GatingResult) dumped the events, memberships and gates (issue 16, smaller items)."""
    sample = read_fcs(REPO / "sample_fcs" / "calibur" / "CLL001_C2D1_stained.fcs")
    result = load_template(SHIPPED).apply(sample, is_control=True)
    text = repr(result)
    lines = text.splitlines()
    assert lines[0] == ("GatingResult(CLL001_C2D1_stained.fcs: 10000 events, compensation none (the file has "
                        "no spillover matrix), 4 populations)")
    counts = result.counts()
    assert len(lines) == 5 and all(str(n) in line for n, line in zip(counts["count"], lines[1:]))
    assert lines[2].endswith("[skipped: the file has no channel for role(s) fsc_area]")
    assert "array" not in text and "DataFrame" not in text and len(text) < 600
    assert str(result) == text


def test_a_failed_gate_is_named_in_the_flag_of_every_population_that_depends_on_it():
    """Children of a failed gate, and a NOT of it, say which gate failed (issue 15)."""
    import numpy as np
    import pandas as pd

    from cytokit import Sample

    text = """
channels:
  a: {pnn: [A]}
  b: {pnn: [B]}
compensation: none
populations:
  - {name: Apos, parent: root, gate: {type: density_valley, dim: a, side: above}}
  - {name: Bhigh, parent: Apos, gate: {type: range, dim: b, min: 0.5}}
  - {name: Blow, parent: root, gate: {type: range, dim: b, max: 0.5}}
  - {name: notA, parent: Blow, gate: {type: boolean, op: not, operands: [Apos]}}
  - {name: Bany, parent: root, gate: {type: range, dim: b, min: 0.0}}
"""
    rng = np.random.default_rng(0)
    sample = Sample.from_dataframe(pd.DataFrame({"A": rng.normal(0.5, 0.05, 2_000), "B": rng.uniform(0, 1, 2_000)}))
    flags = parse_template(text).apply(sample).counts().set_index("population")["flag"]
    assert flags["Apos"].startswith("gate failed")  # one peak: no valley
    assert flags["Apos/Bhigh"].startswith("Apos: gate failed")
    assert "Apos: gate failed" in flags["Blow/notA"]  # the NOT of an empty gate is all of its parent
    assert flags["Blow"] == "" and flags["Bany"] == ""


def test_a_boolean_of_a_skipped_population_is_skipped_too():
    """A skipped gate passes its parent's events on; a NOT of it was then empty, with only the
    operand's flag to say why. Now the boolean is skipped as well: its parent's events, flagged."""
    import numpy as np
    import pandas as pd

    from cytokit import Sample

    text = """
channels:
  a: {pnn: [A]}
  c: {pnn: [C], optional: true}
compensation: none
populations:
  - {name: Cpos, parent: root, optional: true, gate: {type: range, dim: c, min: 0.5}}
  - {name: nonC, parent: root, gate: {type: boolean, op: not, operands: [Cpos]}}
  - {name: Apos, parent: nonC, gate: {type: range, dim: a, min: 0.5}}
"""
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 1, 1_000)
    without = parse_template(text).apply(Sample.from_dataframe(pd.DataFrame({"A": a}))).counts().set_index("population")
    assert without.loc["nonC", "count"] == 1_000 and without.loc["nonC", "flag"].startswith(
        "skipped: operand(s) Cpos skipped")
    assert without.loc["nonC/Apos", "count"] == int((a >= 0.5).sum())
    c = rng.uniform(0, 1, 1_000)
    with_c = parse_template(text).apply(Sample.from_dataframe(pd.DataFrame({"A": a, "C": c}))).counts()
    with_c = with_c.set_index("population")
    assert with_c.loc["nonC", "count"] == int((c < 0.5).sum()) and with_c.loc["nonC", "flag"] == ""
    assert with_c.loc["nonC/Apos", "count"] == int(((c < 0.5) & (a >= 0.5)).sum())


def test_a_required_population_on_a_missing_optional_role_says_how_to_skip_it():
    import numpy as np
    import pandas as pd

    from cytokit import ChannelNotFoundError, Sample

    text = "channels:\n  a: {pnn: [A]}\n  c: {pnn: [C], optional: true}\ncompensation: none\npopulations:\n" \
           "  - {name: Cpos, parent: root, gate: {type: range, dim: c, min: 0.5}}\n"
    sample = Sample.from_dataframe(pd.DataFrame({"A": np.linspace(0, 1, 100)}))
    with pytest.raises(ChannelNotFoundError, match="population 'Cpos' needs role\\(s\\) c, optional and not found in "
                       "this file: give the population optional: true to skip it"):
        parse_template(text).apply(sample)


HEAD = "channels: {fsc: {pnn: [FSC-A]}, ssc: {pnn: [SSC-A]}}\npopulations:\n"


@pytest.mark.parametrize("populations, problem", [
    # PyYAML keeps the last of two keys: the gate was on SSC-A, silently
    ("  - name: A\n    parent: root\n    gate:\n      type: range\n      dim: fsc\n      min: 0.1\n      dim: ssc\n",
     r"'dim' is given twice \(also line 7\)"),
    ("  - {name: A, parent: root, gate: {type: range, min: 0.1}}\n", r"gate of population 'A' \(range\): needs 'dim'"),
    ("  - {name: A, parent: root, gate: {type: range, dim: [fsc, ssc], min: 0.1}}\n", r"dim is one role, got \['fsc'"),
    ("  - {name: A, parent: root, gate: {type: cluster, dims: fsc}}\n", r"dims is a list of roles, got 'fsc'"),
    ("  - {name: A, parent: root, gate: {type: cluster, dims: [fsc]}}\n", r"dims must be two or more channels"),
    ("  - {name: A, parent: root, gate: {type: cluster, dims: [fsc, ssc], random_state: -1}}\n",
     r"random_state must be a whole number from 0"),
    ("  - {name: A, parent: root, gate: {type: density_valley, dim: fsc, n_bins: 10000000}}\n",
     r"n_bins must be a whole number from 16 to 65536"),
    ("  - {name: A, parent: root, gate: {type: range, dim: fsc, min: 0.1}}\n"
     "  - {name: B, parent: A, fit_on: root, gate: {type: density_valley, dim: ssc}}\n", r"fit_on 'root' is not supported"),
])
def test_template_mistakes_are_named_at_load(tmp_path, populations, problem):
    path = tmp_path / "t.yaml"
    path.write_text(HEAD + populations)
    with pytest.raises(TemplateError, match=r"t\.yaml, line \d+.*" + problem):
        load_template(path)


def test_a_number_in_e_notation_is_a_number():
    """YAML 1.1 reads 1e9 as a string (it wants 1.0e+9): 'adjust must be a number > 0, got '1e9''."""
    template = parse_template(HEAD + "  - {name: A, parent: root, gate: {type: density_valley, dim: fsc, adjust: 2e0}}\n",
                              source="t.yaml")
    assert template.populations[0].gate["adjust"] == 2.0


def test_t_auto_is_the_top_of_scale_of_the_values_as_read():
    """A linear channel's values are divided by $PnG (data1.fcs: FSC-H, $PnR 1024, data up to 279), so
    its top of scale is $PnR / $PnG; a log-amplified channel's is 10**decades."""
    template = parse_template(BASE + "transforms:\n  default: {kind: linear, t: auto}\n")
    sample = Sample.from_dataframe(pd.DataFrame({"X": [1.0, 200.0], "FL1": [1.0, 2.0]}), markers={"FL1": "CD19"})
    sample.channels["range"] = 1024.0
    sample.channels.loc[sample.channels["pnn"] == "X", "gain"] = 3.67
    sample.channels.loc[sample.channels["pnn"] == "FL1", "decades"] = 4.0
    transforms = template.apply(sample).transforms
    assert transforms["X"].t == pytest.approx(1024 / 3.67) and transforms["FL1"].t == 10_000
