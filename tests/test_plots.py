"""Figures of the demo results (2 patients of sample_fcs/modern, to be fast)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "sample_fcs" / "modern"
TEMPLATE = ROOT / "gating_templates" / "cll_cd19_7aad.yaml"
PATIENTS = ("CLL001", "CLL002")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@functools.lru_cache(maxsize=1)
def demo_results():
    """Results of two demo patients (cached: test_report reuses them)."""
    from cytokit.experiment import Experiment
    from cytokit.metadata import read_sample_sheet

    table = read_sample_sheet(DEMO / "samples.csv", folder=DEMO)
    return Experiment(table[table["patient"].isin(PATIENTS)], TEMPLATE).run()


@functools.lru_cache(maxsize=1)
def demo_plotter():
    """One plotter for the demo results, keeping every gated file (test_report reuses it)."""
    from cytokit.plots import ResultsPlotter

    return ResultsPlotter(demo_results(), cache_size=64)


def colliding_results():
    """The demo results with patients renamed "A.1" and "A 1" (the same file-name slug), and a plotter
    that reuses the demo plotter's gated files."""
    import dataclasses

    from cytokit.plots import ResultsPlotter

    res = demo_results()
    names = {"CLL001": "A.1", "CLL002": "A 1"}
    renamed = dataclasses.replace(res, **{t: getattr(res, t).replace({"patient": names})
                                          for t in ("samples", "markers", "paired")})
    plotter = ResultsPlotter(renamed, cache_size=64)
    plotter._gated.update(demo_plotter()._gated)
    return renamed, plotter


@pytest.fixture(scope="module")
def results():
    if not DEMO.exists():
        pytest.skip("demo data sample_fcs/modern is absent")
    return demo_results()


def test_import_cytokit_does_not_import_matplotlib():
    import subprocess
    import sys

    code = "import sys, cytokit, cytokit.plots, cytokit.report; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("metric", ["pct_pos", "mfi", "rmfi"])
def test_paired_figure_has_cohort_statistics(results, metric):
    fig = results.plot.paired("LAG3", metric=metric)
    title = fig.axes[0].get_title()
    assert "n=2" in title and "Wilcoxon p=" in title
    # the MFI's change is judged as the drift-corrected log2 ratio of rMFI, not in the axis's MFI units
    assert ("median log2 rMFI ratio=" if metric == "mfi" else "median Δ=") in title
    assert len(_drawn_pairs(fig.axes[0])) == 2  # one segment per patient (the median line apart)
    assert fig.axes[0].lines[-1].get_label() == "median of each timepoint"


def _drawn_pairs(ax, by_line=False):
    """The (baseline, follow-up) segments of a paired plot's patient lines: each line is one kind of
    patient (style, colour, marker), its segments from 0 to 1 separated by NaN."""
    out = []
    for line in ax.lines:
        if line.get_label() == "median of each timepoint":
            continue
        y = np.asarray(line.get_ydata(), float).reshape(-1, 3)
        assert np.isnan(y[:, 2]).all() and (np.asarray(line.get_xdata(), float).reshape(-1, 3)[:, :2] == [0, 1]).all()
        out.append((line, [tuple(map(float, pair)) for pair in y[:, :2]]))
    return out if by_line else [pair for _, pairs in out for pair in pairs]


def test_paired_rejects_unknown_metric(results):
    with pytest.raises(ValueError, match="metric must be one of"):
        results.plot.paired("LAG3", metric="nope")


def test_paired_takes_only_a_comparison_of_the_results(results):
    """With one comparison the argument only relabelled it: other timepoints, or the pair reversed, drew
    C2D1 -> C2D8 under the names given."""
    for comparison in (("C1D1", "C1D8"), ("C2D8", "C2D1"), "C2D8:C2D1"):
        with pytest.raises(KeyError, match=r"is not a comparison of these results; comparisons: C2D1:C2D8"):
            results.plot.paired("LAG3", comparison=comparison)
    labels = [t.get_text() for t in results.plot.paired("LAG3", comparison="C2D1:C2D8").axes[0].get_xticklabels()]
    assert labels == ["C2D1", "C2D8"]


def test_paired_rejects_unknown_marker(results):
    with pytest.raises(KeyError, match=r"'nonexistent' is not in the results; markers: \['LAG3', 'TNFa'\]"):
        results.plot.paired("nonexistent")


def test_paired_without_finite_values_does_not_warn():
    import warnings

    import pandas as pd

    from cytokit.plots import plot_paired

    nan = float("nan")
    paired = pd.DataFrame({"patient": ["P1", "P2"], "marker": ["LAG3"] * 2, "pct_pos_baseline": [nan, nan],
                           "pct_pos_followup": [nan, nan]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plot_paired(paired, "LAG3")
    assert len(_drawn_pairs(fig.axes[0])) == 2  # the patients' (empty) segments
    assert "median of each timepoint" not in [line.get_label() for line in fig.axes[0].lines]  # none of NaN


def test_a_flagged_pair_is_dashed_in_the_paired_plot():
    """A pair with a doubtful gate counts in the statistics (n_flagged) but looked like any other."""
    import pandas as pd

    from cytokit.plots import plot_paired

    paired = pd.DataFrame({"patient": ["P1", "P2", "P3"], "marker": "LAG3", "pct_pos_baseline": [10.0, 12.0, 11.0],
                           "pct_pos_followup": [20.0, 15.0, 70.0], "flag": ["", "", "C2D8: gate doubtful: weak"]})
    ax = plot_paired(paired, "LAG3").axes[0]
    dashed = [pair for line, pairs in _drawn_pairs(ax, by_line=True) if line.get_linestyle() == "--"
              for pair in pairs]
    assert dashed == [(11.0, 70.0)]
    assert sorted(_drawn_pairs(ax)) == [(10.0, 20.0), (11.0, 70.0), (12.0, 15.0)]
    assert "flagged pair (paired.csv)" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_unique_slugs():
    from cytokit.plots import unique_slugs

    names = unique_slugs(["A.1", "A 1", "A-1", "B.2", "C"])
    assert names["B.2"] == "B-2" and names["C"] == "C"
    assert len(set(names.values())) == 5 and all(names[n].startswith("A-1-") for n in ("A.1", "A 1", "A-1"))
    assert unique_slugs(["A 1", "A.1"]) == {k: names[k] for k in ("A 1", "A.1")}  # stable
    assert unique_slugs(["x.fcs", "x.lmd"], label=lambda f: Path(f).stem)["x.fcs"].startswith("x-")


def test_patient_panel(results):
    from cytokit.plots import figure_png

    fig = results.plot.patient("CLL001")
    assert len(fig.axes) == 2 * 4  # LAG3, TNFa × isotype, C2D1, C2D8, histograms
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert sum("% pos" in t for t in texts) == 6
    assert figure_png(fig).startswith(PNG_MAGIC)
    with pytest.raises(KeyError, match="CLL999"):
        results.plot.patient("CLL999")


def test_patient_panel_follows_the_templates_population_and_its_axis(tmp_path):
    """A template quantifying on a population that is not called CD19+, gated on a role not called
    cd19: the panel draws that role on x (it drew "not analysed" in every dot plot) and names the
    population, its parent and the marker's channel."""
    from cytokit import Experiment

    text = TEMPLATE.read_text().replace("cd19:", "bmark:").replace("dim: cd19", "dim: bmark")
    text = text.replace("CD19+", "B cells").replace("name: Viable", "name: Live").replace("parent: Viable", "parent: Live")
    template = tmp_path / "b_cells.yaml"
    template.write_text(text)
    names = [f"CLL001_{tp}_{stain}.fcs" for tp in ("C2D1", "C2D8") for stain in ("isotype", "stained")]
    res = Experiment.from_folder(DEMO, template=template, samples=_table(names)).run(figures=False)
    fig = res.plot.patient("CLL001")
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert not any("not analysed" in t for t in texts), texts
    assert sum("% pos\nof B cells" in t for t in texts) == 6
    assert fig._suptitle.get_text().endswith("CD19 × marker on Live; histograms on B cells")
    assert fig.axes[0].get_xlabel().startswith("CD19 [")
    assert fig.axes[3].get_title().startswith("LAG3 on B cells")
    assert fig.axes[0].collections or fig.axes[0].images  # the events are drawn


def test_each_marker_row_draws_its_own_population(tmp_path):
    """Markers on two populations (LAG3 on CD19+, TNFa on Viable): each row colours its own population
    on its own gate dimension (the rows of the second population showed the first's cells), names it,
    and a marker without positivity (method none) draws no threshold."""
    from cytokit import Experiment

    head, tnfa = TEMPLATE.read_text().rsplit("  - name: TNFa", 1)
    text = head + "  - name: TNFa" + tnfa.replace("population: CD19+", "population: Viable").replace(
        "{method: control_quantile, quantile: 0.99}", "{method: none}")
    template = tmp_path / "two.yaml"
    template.write_text(text)
    names = [f"CLL001_{tp}_{stain}.fcs" for tp in ("C2D1", "C2D8") for stain in ("isotype", "stained")]
    res = Experiment.from_folder(DEMO, template=template, samples=_table(names)).run(figures=False)
    assert res._quantified_population() == "Lymphocytes/Singlets/Viable"  # the AnnData default holds both
    fig = res.plot.patient("CLL001")
    lag3, tnfa = fig.axes[0:4], fig.axes[4:8]
    assert lag3[1].get_xlabel().startswith("CD19 [") and tnfa[1].get_xlabel().startswith("7AAD [")
    assert tnfa[3].get_title().startswith("TNFa on Viable") and lag3[3].get_title().startswith("LAG3 on CD19+")
    assert "each against its population's gate dimension" in fig._suptitle.get_text()
    frame = res.plot_events["CLL001_C2D1_stained.fcs"]
    viable = "Lymphocytes/Singlets/Viable"
    assert frame[f"in:{viable}/CD19+"].sum() < frame[f"in:{viable}"].sum() == frame[f"of:{viable}/CD19+"].sum()
    dashed = [line for line in tnfa[1].get_lines() if line.get_linestyle() == "--"]
    assert not dashed and [line for line in lag3[1].get_lines() if line.get_linestyle() == "--"]


def _table(names):
    import pandas as pd

    return pd.DataFrame({"file": names, "patient": "CLL001", "timepoint": [n.split("_")[1] for n in names],
                         "stain": [n.split("_")[2][:-4] for n in names]})


def test_a_numeric_patient_id_finds_its_panel():
    """A notebook's DataFrame with patients 1, 2 ...: IDs are text in the results, and 1 is "1"."""
    import pandas as pd

    from cytokit import Experiment

    names = [f"CLL001_{tp}_{stain}.fcs" for tp in ("C2D1", "C2D8") for stain in ("isotype", "stained")]
    table = pd.DataFrame({"file": names, "patient": 1, "timepoint": [n.split("_")[1] for n in names],
                          "stain": [n.split("_")[2][:-4] for n in names]})
    res = Experiment.from_folder(DEMO, template=TEMPLATE, samples=table).run(figures=False)
    assert res.plot.patient(1).axes and res.plot.patient("1").axes


def test_gates_figure_draws_every_population(results):
    fig = demo_plotter().gates("CLL001_C2D1_stained.fcs")
    titles = [ax.get_title() for ax in fig.axes if ax.axison]
    assert [t.split(" ⊂")[0] for t in titles] == ["Lymphocytes", "Singlets", "Viable", "CD19+"]
    assert all("% of parent" in t for t in titles)


def test_plot_gates_without_results_shows_flags(results):
    """A file without FSC-H: the Singlets gate is skipped, and the figure says so."""
    import cytokit
    from cytokit.gating.load import load_template
    from cytokit.plots import plot_gates

    sample = cytokit.read_fcs(DEMO / "CLL001_C2D1_stained.fcs")
    template = load_template(TEMPLATE)
    no_height = sample.events.drop(columns=["FSC-H"])
    markers = dict(zip(sample.channels.pnn, sample.channels.pns))
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = cytokit.write_fcs(Path(tmp) / "no_height.fcs", no_height, markers=markers)
        stripped = cytokit.read_fcs(path)
    result = template.apply(stripped, is_control=True)
    fig = plot_gates(result)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any(t.startswith("skipped") for t in texts)


def test_save_figures(results, tmp_path):
    from cytokit.plots import save_figures

    written = save_figures(results, tmp_path, plotter=demo_plotter())
    names = {p.name for p in written}
    assert {"paired_LAG3.png", "paired_LAG3.svg", "paired_TNFa.png", "paired_TNFa.svg"} <= names
    assert {"patient_CLL001.png", "patient_CLL002.png"} <= names
    assert sum(n.startswith("gates_") for n in names) == 8
    assert all(p.parent == tmp_path / "plots" and p.stat().st_size > 0 for p in written)
    assert not list((tmp_path / "plots").glob("*.tmp"))
    assert len(demo_plotter()._gated) == 8  # each file gated once, isotypes first
    assert all(p.read_bytes().startswith(PNG_MAGIC) for p in written if p.suffix == ".png")


def test_save_figures_keeps_colliding_names_apart(results, tmp_path):
    from cytokit.plots import save_figures, unique_slugs

    renamed, plotter = colliding_results()
    written = save_figures(renamed, tmp_path, plotter=plotter)
    panels = sorted(p.name for p in written if p.name.startswith("patient_"))
    expected = unique_slugs(["A 1", "A.1"])
    assert panels == sorted(f"patient_{expected[p]}.png" for p in ("A 1", "A.1"))
    assert len(set(panels)) == 2 and len({(tmp_path / "plots" / p).read_bytes() for p in panels}) == 2


def test_figures_drawn_in_the_analysis_equal_those_drawn_afterwards():
    """Experiment.run(figures=True) draws each gating figure and patient panel where the events are;
    they must be the very figures the results would give, and a panel of a patient whose files the
    group did not all see (a sheet row without its file) is drawn again from the whole results."""
    from cytokit.experiment import Experiment
    from cytokit.plots import ResultsPlotter, plot_gates, plot_patient

    res = Experiment.from_folder(ROOT / "sample_fcs" / "edge_cases", template=TEMPLATE).run(figures=True)
    assert res.figures[("patient", "CLL001")] == plot_patient(res, "CLL001", raster=True).png()
    gated = res.plot.gating("CLL001_C2D1_stained.fcs")
    assert res.figures[("gates", "CLL001_C2D1_stained.fcs")] == plot_gates(
        gated, title=f"CLL001_C2D1_stained.fcs  ({len(gated.scale):,} events)", raster=True).png()
    assert "CLL003_C2D8_stained.fcs" in set(res.samples["file"])  # listed, not found: not in CLL003's group
    assert ("patient", "CLL003") not in res.figures
    assert ResultsPlotter(res).png("patient", "CLL003") == plot_patient(res, "CLL003", raster=True).png()


def renamed_results(names: dict):
    """The demo results with patients, files, timepoints or markers renamed (``names``: old → new) in
    every table and lookup, and a plotter reusing the demo plotter's gated files under their new names."""
    import dataclasses

    from cytokit.plots import ResultsPlotter

    res = demo_results()

    def key(k):
        return tuple(names.get(p, p) for p in k) if isinstance(k, tuple) else names.get(k, k)

    tables = {t: getattr(res, t).replace(names) for t in ("samples", "markers", "paired", "cohort")}
    lookups = {d: {key(k): v for k, v in getattr(res, d).items()}
               for d in ("values", "plot_events", "fitted", "gating", "figures", "paths")}
    renamed = dataclasses.replace(res, **tables, **lookups, baseline=names.get(res.baseline, res.baseline),
                                  followup=names.get(res.followup, res.followup))
    plotter = ResultsPlotter(renamed, cache_size=64)
    plotter._gated.update({key(f): r for f, r in demo_plotter()._gated.items()})
    return renamed, plotter


def drawn_texts(fig) -> list[str]:
    """Every text of ``fig`` as the renderer shows it; fails on any text it would parse as mathtext."""
    from matplotlib.text import Text

    from cytokit.plots import figure_png

    assert figure_png(fig).startswith(PNG_MAGIC)  # drawn: ticks made, mathtext would have raised here
    shown = []
    for text in fig.findobj(Text):
        string, math = text._preprocess_math(text.get_text())  # what Text.draw does with it
        assert not math, text.get_text()
        shown.append(string)
    return shown


WEIRD_PNS = r"7AAD $\mathrm{v}$ $x_{$"
WEIRD_ID = "P$^{$"


def test_dollar_signs_in_names_are_drawn_literally(results):
    """Issue 16.12: $PnS, patient ids, file names, timepoints and markers with `$` are drawn as they are
    (mathtext used to raise in the worker, and an even number of `$` was drawn as maths)."""
    import copy

    from cytokit.plots import plot_gates, plot_paired

    result = copy.copy(demo_plotter().gating("CLL001_C2D1_stained.fcs"))
    result.sample = copy.copy(result.sample)
    channels = result.sample.channels.copy()
    channels.loc[channels["pnn"] == result.channels["viability"], "pns"] = WEIRD_PNS
    result.sample.channels = channels
    title = f"{WEIRD_ID}_C2D1 $x$.fcs"
    shown = drawn_texts(plot_gates(result, title=title))
    assert title in shown and any(WEIRD_PNS in s for s in shown)

    renamed, plotter = renamed_results({"CLL001": WEIRD_ID, "C2D1": "C$2$D1", "TNFa": "TNF$\\alpha$"})
    shown = drawn_texts(plotter.patient(WEIRD_ID))
    assert f"Patient {WEIRD_ID}: CD19 × marker on Viable; histograms on CD19+" in shown
    assert "C$2$D1 stained" in shown  # legend of the histograms
    shown = drawn_texts(plot_paired(renamed.paired, "TNF$\\alpha$", cohort=renamed.cohort, baseline="C$2$D1"))
    assert {WEIRD_ID, "C$2$D1"} <= set(shown) and any(s.startswith("TNF$\\alpha$: ") for s in shown)


def test_long_names_give_figure_files_under_the_file_system_limit(results, tmp_path):
    """Issue 16.13: patient ids of 300 characters and file names of 240 gave ENAMETOOLONG in plots/.
    Figure file names stay under 255 bytes (with the prefix, the suffix and write_atomic's temporary
    name), unique (two long names sharing their first 299 characters) and stable."""
    from cytokit.plots import save_figures, unique_slugs

    names = {"CLL001": "P" * 300, "CLL002": "P" * 299 + "Q",
             "CLL001_C2D1_stained.fcs": "x" * 240 + "_C2D1_stained.fcs",
             "CLL001_C2D8_stained.fcs": "x" * 240 + "_C2D8_stained.fcs"}
    renamed, plotter = renamed_results(names)
    written = save_figures(renamed, tmp_path, plotter=plotter)
    assert len(written) == len(set(written)) == 4 + 2 + 8
    assert all(len(f".{p.name}.{'0' * 12}.tmp".encode()) <= 255 for p in written)
    again = unique_slugs(reversed([names["CLL002"], names["CLL001"]]))
    assert {p.name for p in written} >= {f"patient_{again[names[p]]}.png" for p in ("CLL001", "CLL002")}
    files = ["é" * 240 + ".fcs", "ü" * 240 + ".fcs", "y" * 254 + ".fcs"]
    slugs = unique_slugs(files, label=lambda f: Path(f).stem)
    assert len(set(slugs.values())) == 3 and all(len(f"gates_{s}.png") + 18 <= 255 for s in slugs.values())


def test_axes_are_labelled_in_scale_values(results):
    """Issue 19.7: gating figures and patient panels read in decades of scale values (ticks where the
    transform puts 10², 10³ …), a 1-D gate is drawn on a density against SSC, and one patient's
    isotype, baseline and follow-up panels of a marker share their axes."""
    from cytokit.transforms import make_transform

    result = demo_plotter().gating("CLL001_C2D1_stained.fcs")
    fig = demo_plotter().gates("CLL001_C2D1_stained.fcs")
    viable = next(ax for ax in fig.axes if ax.get_title().startswith("Viable"))
    assert viable.get_xlabel().startswith("viability") and viable.get_ylabel().startswith("ssc")
    assert viable.images  # the density, not a histogram
    ticks = dict(zip([t.get_text() for t in viable.get_xticklabels()], viable.get_xticks()))
    logicle = result.transforms[result.channels["viability"]]
    assert {"10²", "10³", "10⁴"} <= set(ticks)
    assert ticks["10³"] == pytest.approx(logicle.apply([1000.0])[0])
    fsc = next(ax for ax in fig.axes if ax.get_title().startswith("Lymphocytes"))
    assert "100K" in [t.get_text() for t in fsc.get_xticklabels()]  # linear FSC in scale values

    panel = results.plot.patient("CLL001")
    lag3 = panel.axes[:4]
    assert len({ax.get_xlim() for ax in lag3[:3]}) == 1 and len({ax.get_ylim() for ax in lag3[:3]}) == 1
    assert lag3[3].get_xlim() == lag3[0].get_ylim()  # the histograms on the dot plots' marker axis
    spec = dict(results.gating["CLL001_C2D1_stained.fcs"]["scales"]["lag3"])  # the pipeline keeps each scale
    scale = make_transform(spec.pop("kind"), **spec)
    ticks = dict(zip([t.get_text() for t in lag3[1].get_yticklabels()], lag3[1].get_yticks()))
    assert "10³" in ticks and ticks["10³"] == pytest.approx(scale.apply([1000.0])[0])


def test_narrow_and_wide_axes_are_labelled_in_scale_values():
    """An axis narrower than one 1, 2 or 5 × a decade to the next (a Guava's HLog channel) read in raw
    logicle units; a linear axis to 10⁷ (an Accuri's) read 10000K."""
    import numpy as np

    from cytokit.plots._scale import _decade_ticks, _linear_ticks
    from cytokit.transforms import make_transform

    logicle = make_transform("logicle", t=262144.0, w=0.5, m=4.5, a=0)
    low, high = (float(v) for v in logicle.apply(np.array([212.0, 258.0])))
    majors, labels, _ = _decade_ticks(logicle, low, high)
    assert labels == ["220", "230", "240", "250"]
    np.testing.assert_allclose(majors, logicle.apply(np.array([220.0, 230.0, 240.0, 250.0])))
    assert _linear_ticks(make_transform("linear", t=1.6e7), 0.0, 1.0)[1] == ["0", "5M", "10M", "15M"]


def decoded(png: bytes):
    """A PNG's pixels as an RGB array."""
    import io

    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


@pytest.mark.parametrize("position", [(0.1, 0.2, 0.5, 0.6), (0.123, 0.0712, 0.4731, 0.5911)])
def test_event_images_draw_the_pixels_imshow_draws(position):
    """The density and dot images (_raster) are drawn by indexing their cells at the axes' pixel
    centres, not through imshow's resampler: on grids whose cell edges miss the pixel centres,
    the same pixels; in ``ax.images``; on a vector canvas an image of the cells."""
    import io

    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from cytokit.plots._raster import _show

    rgb = np.random.default_rng(1).random((37, 53, 3))

    def pixels(fast: bool):
        fig = Figure(figsize=(4.0, 3.0), dpi=90)
        ax = fig.add_axes(position)
        if fast:
            _show(ax, rgb, (0.0, 2.0), (-1.0, 1.0))
        else:
            ax.imshow(rgb, extent=(0.0, 2.0, -1.0, 1.0), origin="upper", interpolation="nearest", aspect="auto")
            ax.set_xlim(0.0, 2.0)
            ax.set_ylim(-1.0, 1.0)
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        return fig, ax, np.asarray(canvas.buffer_rgba()).copy()

    fig, ax, fast = pixels(True)
    assert len(ax.images) == 1
    assert np.array_equal(fast, pixels(False)[2])
    svg = io.BytesIO()
    fig.savefig(svg, format="svg")
    assert b"<image" in svg.getvalue()


