"""The pipeline's gating figures and patient panels, drawn without matplotlib (``raster=True``)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from tests.test_plots import DEMO, TEMPLATE, demo_plotter, demo_results


@pytest.fixture(scope="module")
def results():
    if not DEMO.exists():
        pytest.skip("demo data sample_fcs/modern is absent")
    return demo_results()


def pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def alike(a: bytes, b: bytes) -> float:
    """The share of the pixels inked in either figure that are within 48 levels in both."""
    first, second = pixels(a), pixels(b)
    assert first.shape == second.shape
    ink = (first.min(axis=2) < 245) | (second.min(axis=2) < 245)
    return float((np.abs(first - second).max(axis=2)[ink] <= 48).mean())


def no_matplotlib_figures(monkeypatch):
    import matplotlib.figure

    def refuse(*args, **kwargs):
        raise AssertionError("a raster figure made a matplotlib figure")

    monkeypatch.setattr(matplotlib.figure.Figure, "__init__", refuse)


def test_raster_figures_are_the_matplotlib_figures_drawn_without_matplotlib(results, monkeypatch):
    """The gating figure and the patient panel the pipeline writes look like the notebook's matplotlib
    figures of the same file or patient (same size; most inked pixels alike, far more than those of
    another file's or patient's figure), and make no matplotlib figure."""
    from cytokit.plots import figure_png, plot_gates, plot_patient

    plotter = demo_plotter()
    stained, isotype = plotter.gating("CLL001_C2D1_stained.fcs"), plotter.gating("CLL002_C2D8_isotype.fcs")
    drawn = {"gates": figure_png(plot_gates(stained, title="t")), "other gates": figure_png(plot_gates(isotype, title="t")),
             "patient": figure_png(plot_patient(results, "CLL001")),
             "other patient": figure_png(plot_patient(results, "CLL002"))}
    with monkeypatch.context() as patched:
        no_matplotlib_figures(patched)
        gates = plot_gates(stained, title="t", raster=True).png()
        patient = plot_patient(results, "CLL001", raster=True).png()
    for kind, png in (("gates", gates), ("patient", patient)):
        same, other = alike(png, drawn[kind]), alike(png, drawn[f"other {kind}"])
        assert same >= 0.6 and same > other + 0.15, (kind, same, other)


def test_a_raster_gating_figure_draws_skipped_and_failed_gates_and_their_flags(tmp_path):
    """A file without FSC-H: the singlet gate is skipped and every gate below it says so, in red, on
    its panel; the figure is drawn (no panel raises)."""
    import cytokit
    from cytokit.gating.load import load_template
    from cytokit.plots import plot_gates

    if not DEMO.exists():
        pytest.skip("demo data sample_fcs/modern is absent")
    sample = cytokit.read_fcs(DEMO / "CLL001_C2D1_stained.fcs")
    markers = dict(zip(sample.channels.pnn, sample.channels.pns))
    path = cytokit.write_fcs(tmp_path / "no_height.fcs", sample.events.drop(columns=["FSC-H"]), markers=markers)
    result = load_template(TEMPLATE).apply(cytokit.read_fcs(path), is_control=True)
    assert any(result.flags.values())
    image = pixels(plot_gates(result, title="no FSC-H", raster=True).png())
    red = (image[..., 0] > 140) & (image[..., 1] < 60) & (image[..., 2] < 60)
    panel = image.shape[1] // 4
    assert red[:, panel:2 * panel].sum() > 50  # the singlet panel's "skipped" message


def test_dollar_signs_are_drawn_as_dollar_signs():
    """``_literal`` escapes ``$`` for matplotlib's mathtext; the raster canvas draws the text as it was."""
    from cytokit.plots._canvas import Canvas
    from cytokit.plots._draw import plain
    from cytokit.plots._style import _literal

    assert plain(_literal("7AAD $x_{$")) == "7AAD $x_{$"
    assert plain(_literal(r"a \$ b")) == r"a \$ b"
    canvas = Canvas(3.0, 2.0, 1, 1)
    canvas.suptitle(_literal("7AAD $x_{$"))
    canvas.axes[0, 0].set_title(_literal("$PnS $"))
    assert pixels(canvas.png()).min() < 100


def test_dashes_follow_matplotlibs_pattern():
    """``--`` is 3.7 line widths on, 1.6 off, along the whole polyline (around its corners too)."""
    from cytokit.plots._draw import DASHES, dashed

    pieces = dashed(np.array([[0.0, 0.0], [45.0, 0.0], [45.0, 55.0]]), DASHES["--"], 2.0)
    lengths = [float(np.hypot(*np.diff(p, axis=0).T).sum()) for p in pieces]
    np.testing.assert_allclose(lengths[:-1], 7.4)
    assert len(pieces) == int(np.ceil(100.0 / 10.6))
    assert np.allclose(pieces[0][0], [0.0, 0.0]) and np.allclose(pieces[1][0], [10.6, 0.0])
    assert any(len(p) == 3 for p in pieces)  # a dash around the corner keeps the corner
    assert dashed(np.zeros((2, 2)), None, 1.0)[0].shape == (2, 2)  # solid: the line itself



@pytest.mark.parametrize("style", [":", "--", "-."])
@pytest.mark.parametrize("width", [1, 2, 3, 5])
def test_a_dashed_threshold_pasted_as_one_mask_is_the_dashes_drawn_one_by_one(style, width):
    """A horizontal or vertical dashed segment (a threshold) is pasted through one cached mask: the same
    pixels as its dashes drawn by ``line`` one at a time, at fractional positions, in either direction."""
    from PIL import Image, ImageDraw

    from cytokit.plots._draw import DASHES, dashed, rule

    pattern, scaled = DASHES[style], width * 0.9
    segments = [[[40.3, 200.0], [40.3, 10.0]], [[17.0, 3.6], [17.0, 181.2]], [[5.0, 61.7], [233.0, 61.7]],
                [[190.5, 0.0], [12.25, 0.0]]]
    for segment in segments:
        points = np.asarray(segment)
        one_by_one, pasted = Image.new("RGB", (260, 230), "white"), Image.new("RGB", (260, 230), "white")
        draw = ImageDraw.Draw(one_by_one)
        for piece in dashed(points, pattern, scaled):
            draw.line(piece.ravel().tolist(), fill=(200, 0, 0), width=width, joint="curve")
        assert rule(pasted, points, pattern, scaled, width, (200, 0, 0))
        assert np.asarray(one_by_one).min() < 255
        np.testing.assert_array_equal(np.asarray(pasted), np.asarray(one_by_one))
    image = Image.new("RGB", (50, 50), "white")
    assert not rule(image, np.array([[0.0, 0.0], [30.0, 20.0]]), pattern, scaled, width, (0, 0, 0))  # diagonal
    assert not rule(image, np.array([[-3.0, 5.0], [30.0, 5.0]]), pattern, scaled, width, (0, 0, 0))  # off the edge
    assert np.asarray(image).min() == 255

def test_raster_panels_place_ticks_and_events_where_the_limits_say():
    """An image filling the panel and a major tick: the tick's mark is under its value, the image
    fills the frame, and nothing is drawn outside but ticks and texts."""
    from cytokit.plots._canvas import Canvas

    canvas = Canvas(4.0, 3.0, 1, 1, left=1.0, right=1.0, top=1.0, bottom=1.0)
    ax = canvas.axes[0, 0]
    ax.set_xlim(0.0, 10.0)
    ax.set_ylim(0.0, 1.0)
    ax.image(np.zeros((4, 4, 3)))  # black
    ax.ticks("x", [5.0], [""])
    ax.ticks("y", [], [])
    image = pixels(canvas.png())
    # the panel: 1 inch from each side, at 90 dpi
    assert image[100:170, 95:265].max() == 0 and image[85, 95:265].min() > 240
    below = image[181:185, 90:270].min(axis=(0, 2))
    assert below.argmin() + 90 in (179, 180) and (below < 100).sum() == 1


def test_a_drawn_figure_is_freed_once_dropped():
    """A canvas's panels sit in a NumPy object array, which the garbage collector does not look into:
    a panel pointing back at its canvas kept every figure of a run alive (a worker grew by 1.4 MB a
    patient)."""
    import gc
    import weakref

    from cytokit.plots._canvas import Canvas

    canvas = Canvas(3.0, 2.0, 1, 2)
    canvas.axes[0, 1].image(np.zeros((3, 3, 3)))
    canvas.png()
    dropped = weakref.ref(canvas)
    del canvas
    gc.collect()
    assert dropped() is None


@pytest.mark.parametrize("size, bold", [(7, False), (8, True), (11, False)])
def test_a_line_put_together_from_its_words_is_freetypes_own_rendering(size, bold):
    """Lines new in every figure (titles, counts) are put together from their words' kept masks where
    that gives FreeType's pixels, offsets and advance; elsewhere (a word of fractional width, a
    leading space) the line is rendered whole."""
    from PIL import Image

    from cytokit.plots import _draw

    def drawn(rendered):
        mask, dx, dy, *metrics = rendered
        image = Image.new("L", (700, 60), 0)
        image.paste(mask, (20 + dx, 40 + dy))
        return np.asarray(image), metrics

    lines = ["79,019 events (79% of parent)", "CLL001_C2D1_stained.fcs  (100,000 events)", "18.2% pos",
             "Patient P-7: CD19 × marker on Viable; histograms on CD19+", "$FIL [FL2-H, LAG3]"]
    kerned = ["r. y, f) T. Wa", "Te Ty AV", "L' To"]  # put together only where the kerning allows it
    for line in lines + kerned:
        composed = _draw._words(line, size, bold)
        if line in kerned and composed is None:
            continue
        assert composed is not None, line
        (a, metrics_a), (b, metrics_b) = drawn(composed), drawn(_draw._render(line, size, bold))
        assert a.max() > 0
        np.testing.assert_array_equal(a, b)
        assert metrics_a == metrics_b
    assert _draw._words("To AV", size, bold) is None  # "To" kerns by a fraction of a pixel
    assert _draw._words(" leading", size, bold) is None and _draw._words("single", size, bold) is None


def test_panels_drawn_over_their_own_pixels_give_the_whole_canvas_figure(results, monkeypatch):
    """Each panel's shapes are drawn at 2× over the pixels it inks only, where no two panels ink the
    same pixels: the same PNG bytes as one 2× canvas of the whole figure, for the gating figure (a
    gate's strip above its panel, unclipped) and the patient panel (hatched, dashed, legend)."""
    from cytokit.plots import _canvas, plot_gates, plot_patient

    plotter = demo_plotter()
    figures = [lambda: plot_gates(plotter.gating("CLL001_C2D1_stained.fcs"), title="t", raster=True),
               lambda: plot_patient(results, "CLL001", raster=True)]
    apart = []
    real = _canvas._apart
    monkeypatch.setattr(_canvas, "_apart", lambda regions: apart.append(real(regions)) or apart[-1])
    by_panel = [make().png() for make in figures]
    assert apart == [True, True]  # the panels' own pixels were used
    monkeypatch.setattr(_canvas, "_apart", lambda regions: False)
    whole = [make().png() for make in figures]
    assert by_panel == whole
    assert not real([(0, 0, 10, 10), (8, 8, 20, 20)]) and real([(0, 0, 10, 10), (10, 0, 20, 10)])
