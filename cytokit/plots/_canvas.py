"""The pipeline's gating figures and patient panels drawn without matplotlib, straight to a PNG.

A ``cytokit run`` draws a gating figure per file and a panel per patient, and matplotlib's
per-artist and per-text work made them cost more than the analysis (58 and 128 ms against 72 ms per
file: see ``docs/benchmarks.md``). These figures have fixed layouts, so the layout code of
:mod:`.gates` and :mod:`.patient` draws them here on request (``raster=True``): :class:`Canvas`
hands out panels that take the calls those modules make of a matplotlib ``Axes`` (limits, titles,
labels, texts) and the few drawing calls of :mod:`._style`, :mod:`._raster` and :mod:`._scale`
(lines, spans, steps, images, ticks). Notebook figures stay matplotlib figures.

Shapes are drawn with Pillow at twice the PNG's resolution and halved (antialiased edges), texts at
the PNG's own resolution with FreeType, in matplotlib's DejaVu Sans, at matplotlib's sizes and
spacings (points at :data:`~.encode.PNG_DPI`), each rendered text kept for the next figure.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from . import _draw
from ._draw import DASHES, PT, SCALE
from .encode import PNG_DPI


@dataclass(frozen=True)
class _Box:
    """An axes' place, as matplotlib's ``Axes.get_position()``: figure fractions from the bottom left."""

    x0: float
    y0: float
    width: float
    height: float


@dataclass(frozen=True)
class _Size:
    """A canvas's size in inches, as its panels read it (``ax.figure``): not the canvas itself, whose
    panels are held in a NumPy object array, which the garbage collector does not look into (a
    panel pointing back at its canvas kept every figure of a run alive)."""

    width: float
    height: float

    def get_size_inches(self) -> np.ndarray:
        return np.array([self.width, self.height])

    def get_figheight(self) -> float:
        return self.height

    def get_figwidth(self) -> float:
        return self.width

    def pixels(self) -> tuple[int, int]:
        """The PNG's (width, height): the size at :data:`~.encode.PNG_DPI`, truncated (as matplotlib's
        canvas)."""
        return int(self.width * PNG_DPI), int(self.height * PNG_DPI)


def _apart(regions: list[tuple]) -> bool:
    """Whether no two of the (left, top, right, bottom) ``regions`` share a pixel."""
    return all(a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
               for i, a in enumerate(regions) for b in regions[i + 1:])


class Canvas:
    """A figure of ``n_rows`` × ``n_cols`` panels with matplotlib's ``subplots_adjust`` margins (inches)
    and spacing; :meth:`png` draws it."""

    def __init__(self, width: float, height: float, n_rows: int, n_cols: int, *, labelsize: float | None = None,
                 left: float = 0.6, right: float = 0.15, top: float = 0.6, bottom: float = 0.5,
                 wspace: float = 0.3, hspace: float = 0.5) -> None:
        self.size = _Size(width, height)
        x0, x1, y0, y1 = left / width, 1 - right / width, bottom / height, 1 - top / height
        cell_w = (x1 - x0) / (n_cols + wspace * (n_cols - 1))  # as matplotlib's GridSpec
        cell_h = (y1 - y0) / (n_rows + hspace * (n_rows - 1))
        self.axes = np.empty((n_rows, n_cols), dtype=object)
        for i in range(n_rows):
            for j in range(n_cols):
                box = _Box(x0 + j * cell_w * (1 + wspace), y1 - cell_h - i * cell_h * (1 + hspace), cell_w, cell_h)
                self.axes[i, j] = Panel(self.size, box, labelsize or 10.0)
        self._suptitle: tuple[str, float] | None = None

    def suptitle(self, text: str, fontsize: float = 12.0) -> None:
        self._suptitle = (_draw.plain(text), fontsize)

    def png(self) -> bytes:
        """The figure as palette PNG bytes (as :func:`~.encode.figure_png` makes a matplotlib figure's)."""
        from PIL import Image

        size = self.size.pixels()
        panels = [p for p in self.axes.ravel()]
        canvas = (size[0] * SCALE, size[1] * SCALE)
        regions = [panel._ink(canvas) for panel in panels]
        if _apart([r for r in regions if r is not None]):
            # each panel's shapes at 2× over the pixels it inks only: the white margins are not filled and
            # halved at 2× (the same pixels: outside every panel's ink the figure stays white)
            parts = [([panel], region) for panel, region in zip(panels, regions) if region is not None]
        else:  # two panels ink the same pixels: one 2× canvas of the whole figure
            parts = [(panels, (0, 0, *canvas))]
        image = Image.new("RGB", size, "white")
        for drawn, region in parts:
            part = Image.new("RGB", (region[2] - region[0], region[3] - region[1]), "white")
            for panel in drawn:
                panel._shapes(part, region[:2])
            image.paste(part.reduce(SCALE), (region[0] // SCALE, region[1] // SCALE))
        for panel in panels:
            panel._texts(image)
        if self._suptitle:  # matplotlib's: centred, its top at 0.98 of the figure
            text, size_pt = self._suptitle
            _draw.text(image, text, size[0] / 2, (1 - 0.98) * size[1], size_pt, ha="center", va="top")
        buffer = io.BytesIO()
        # zlib level 3, not 6: 1.8 and 4.0 ms less for a gating figure and a patient panel, files 13 and 19 % larger;
        # against level 4, 0.33 and 0.35 ms less for files 7 % larger (quantising and encoding are half the figure)
        image.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(buffer, format="PNG", compress_level=3)
        return buffer.getvalue()


class Panel:
    """One panel of a :class:`Canvas`: what :mod:`.gates` and :mod:`.patient` ask of an ``Axes``, and
    the drawing calls of the figure modules' helpers (``raster`` tells them apart)."""

    raster = True
    transAxes = "axes"

    def __init__(self, size: _Size, box: _Box, labelsize: float) -> None:
        self.figure, self._box, self.labelsize = size, box, labelsize
        self._lim = {"x": (0.0, 1.0), "y": (0.0, 1.0)}
        self._ticks: dict[str, tuple | None] = {"x": None, "y": None}  # None: matplotlib's default ticks
        self._minors: dict[str, list] = {"x": [], "y": []}
        self._labels = {"x": ("", 10.0), "y": ("", 10.0)}
        self._title, self._title_size, self._title_pad = "", 8.0, 6.0
        self._on, self._image = True, None
        self._shape_ops: list[tuple] = []
        self._notes: list[tuple] = []
        self._legend: float | None = None
        self._pixel_box: tuple[int, int, int, int] | None = None

    # --- what the layouts ask of an Axes
    def get_position(self) -> _Box:
        return self._box

    def set_xlim(self, low: float, high: float) -> None:
        self._lim["x"] = (float(low), float(high))

    def set_ylim(self, low: float, high: float) -> None:
        self._lim["y"] = (float(low), float(high))

    def get_xlim(self) -> tuple[float, float]:
        return self._lim["x"]

    def get_ylim(self) -> tuple[float, float]:
        return self._lim["y"]

    def set_title(self, text: str, fontsize: float = 8.0, y: float = 1.0, pad: float = 6.0) -> None:
        self._title, self._title_size, self._title_pad = _draw.plain(text), fontsize, pad

    def get_title(self) -> str:
        return self._title

    def set_xlabel(self, text: str, fontsize: float = 10.0) -> None:
        self._labels["x"] = (_draw.plain(text), fontsize)

    def set_ylabel(self, text: str, fontsize: float = 10.0) -> None:
        self._labels["y"] = (_draw.plain(text), fontsize)

    def set_axis_off(self) -> None:
        self._on = False

    def set_xticks(self, ticks: list) -> None:
        self.ticks("x", list(ticks), [str(t) for t in ticks])

    def set_yticks(self, ticks: list) -> None:
        self.ticks("y", list(ticks), [str(t) for t in ticks])

    def text(self, x: float, y: float, s: str, *, transform=None, ha: str = "left", va: str = "baseline",
             fontsize: float = 10.0, color: str = "black", fontweight: str = "normal",
             bbox: dict | None = None) -> None:
        """Text at axes fractions ``x``, ``y`` (every text of these figures is placed so)."""
        self._notes.append((x, y, _draw.plain(s), ha, va, fontsize, color, fontweight == "bold", bbox))

    def legend(self, fontsize: float = 6.0, frameon: bool = False, loc: str = "upper right") -> None:
        """The labelled steps named in the upper right corner, without a frame (as the patient panel's)."""
        self._legend = fontsize

    # --- drawing calls of the helpers
    def ticks(self, which: str, majors: list, labels: list) -> None:
        self._ticks[which] = (list(majors), list(labels))

    def minor_ticks(self, which: str, positions: list) -> None:
        self._minors[which] = list(positions)

    def image(self, rgb: np.ndarray) -> None:
        """``rgb`` (rows from the top, values 0–1) filling the panel."""
        pixels = np.asarray(rgb)[..., :3] * 255  # truncated, as matplotlib makes bytes
        self._image = np.ascontiguousarray(pixels.astype(np.uint8))

    def line(self, x, y, *, color: str = "black", linewidth: float = 1.5, linestyle: str = "-",
             coords: str = "data", clip_on: bool = True) -> None:
        """A polyline; ``coords``: ``data``, ``xaxis`` (x data, y axes fraction) or ``yaxis``."""
        self._shape_ops.append(("line", np.asarray(x, float), np.asarray(y, float), coords, clip_on,
                                dict(color=color, width=linewidth, style=linestyle)))

    def span(self, x0: float, x1: float, *, color: str, alpha: float = 1.0) -> None:
        """Data ``x0``..``x1`` over the panel's height."""
        self._shape_ops.append(("fill", np.array([x0, x1, x1, x0]), np.array([0.0, 0.0, 1.0, 1.0]), "xaxis", True,
                                dict(color=color, alpha=alpha, hatch="")))

    def steps(self, counts, edges, *, baseline: float = 0.0, fill: bool = True, color: str = "#4c72b0",
              alpha: float = 1.0, linewidth: float = 1.0, linestyle: str = "-", hatch: str = "",
              label: str = "", coords: str = "data", clip_on: bool = True) -> None:
        """A step histogram (matplotlib's ``StepPatch``): filled, hatched or its outline."""
        counts, edges = np.asarray(counts, float), np.asarray(edges, float)
        x = np.repeat(edges, 2)
        y = np.concatenate([[baseline], np.repeat(counts, 2), [baseline]])
        if fill or hatch:
            self._shape_ops.append(("fill", x, y, coords, clip_on,
                                    dict(color=color, alpha=alpha if fill else 0.0, hatch=hatch)))
        if not fill or hatch:
            self._shape_ops.append(("line", x, y, coords, clip_on, dict(color=color, width=linewidth, style=linestyle)))
        if label:
            self._shape_ops.append(("label", label, color, fill, alpha, linestyle, hatch))

    # --- drawing
    def _pixels(self, scale: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of the panel in pixels of the image at ``scale`` × the PNG's,
        on whole PNG pixels (asked for by every shape and tick: worked out once)."""
        if self._pixel_box is None:
            w, h = self.figure.pixels()
            box = self._box
            left, right = round(box.x0 * w), round((box.x0 + box.width) * w)
            top, bottom = h - round((box.y0 + box.height) * h), h - round(box.y0 * h)  # as matplotlib rounds
            self._pixel_box = (left, top, right, bottom)
        return tuple(v * scale for v in self._pixel_box)

    def _to_pixels(self, x: np.ndarray, y: np.ndarray, coords: str, scale: int) -> np.ndarray:
        left, top, right, bottom = self._pixels(scale)
        (x0, x1), (y0, y1) = self._lim["x"], self._lim["y"]
        with np.errstate(all="ignore"):  # limits of no width: nothing drawn (not finite)
            fx = (x - x0) / (x1 - x0) if coords in ("data", "xaxis") else x
            fy = (y - y0) / (y1 - y0) if coords in ("data", "yaxis") else y
        return np.column_stack([left + fx * (right - left), bottom - fy * (bottom - top)])

    def _ink(self, canvas: tuple[int, int]) -> tuple[int, int, int, int] | None:
        """The pixels :meth:`_shapes` may draw on, at 2× and on whole PNG pixels (left, top, right,
        bottom, within ``canvas``): the panel, its spines and ticks, the bounds of its unclipped shapes
        and a margin of their line widths; None when it draws nothing; the whole canvas for an unclipped
        hatch (its stripes are laid from the canvas's corner)."""
        left, top, right, bottom = self._pixels(SCALE)
        unclipped = [op for op in self._shape_ops if op[0] != "label" and not op[4]]
        if any(op[5].get("hatch") for op in unclipped):
            return (0, 0, *canvas)
        bounds = []
        if self._on or self._image is not None or any(op[0] != "label" and op[4] for op in self._shape_ops):
            reach = round(3.5 * PT) * SCALE if self._on else 0
            bounds.append((left - reach, top, right + SCALE, bottom + SCALE + reach))
        for op in unclipped:
            points = self._to_pixels(op[1], op[2], op[3], SCALE)
            points = points[np.isfinite(points).all(axis=1)]
            if len(points):
                pad = op[5].get("width", 0) * PT * SCALE + 2 * SCALE
                (x0, y0), (x1, y1) = points.min(axis=0) - pad, points.max(axis=0) + pad
                bounds.append((x0, y0, x1, y1))
        if not bounds:
            return None
        x0, y0 = (max(0, int(np.floor(min(b[i] for b in bounds) / SCALE)) * SCALE) for i in (0, 1))
        x1, y1 = (min(canvas[i - 2], int(np.ceil(max(b[i] for b in bounds) / SCALE)) * SCALE) for i in (2, 3))
        return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None

    def _shapes(self, big, origin: tuple[int, int]) -> None:
        """Draw the panel's image, shapes and frame on ``big``, a 2× canvas whose top left is the
        figure's pixel ``origin`` (at 2×)."""
        from PIL import Image, ImageDraw

        ox, oy = origin
        left, top, right, bottom = box = self._pixels(SCALE)
        local = (left - ox, top - oy, right - ox, bottom - oy)
        if self._image is not None and right > left and bottom > top:  # the cell under each pixel's centre
            cells = Image.fromarray(self._image).resize(((right - left) // SCALE, (bottom - top) // SCALE),
                                                        Image.Resampling.NEAREST)  # at the PNG's pixels: sharp
            big.paste(cells.resize((right - left, bottom - top), Image.Resampling.NEAREST), local[:2])
        clipped = [op for op in self._shape_ops if op[0] != "label" and op[4]]
        if clipped:
            region = big.crop(local)
            draw = ImageDraw.Draw(region, "RGBA")
            for op in clipped:
                self._shape(region, draw, op, (left, top))
            big.paste(region, local[:2])
        draw = ImageDraw.Draw(big, "RGBA")
        for op in self._shape_ops:
            if op[0] != "label" and not op[4]:
                self._shape(big, draw, op, origin)
        if self._on:
            self._frame(draw, box, origin)

    def _shape(self, image, draw, op: tuple, origin: tuple) -> None:
        kind, x, y, coords, _, style = op
        points = self._to_pixels(x, y, coords, SCALE) - np.asarray(origin, float)
        points = points[np.isfinite(points).all(axis=1)]
        if len(points) < 2:
            return
        colour = _draw.rgb(style["color"])
        if kind == "line":
            width, pattern = max(1, round(style["width"] * PT * SCALE)), DASHES.get(style["style"])
            if pattern is not None and _draw.rule(image, points, pattern, style["width"] * PT * SCALE, width, colour):
                return  # a dashed threshold: one paste, not a call per dash
            for piece in _draw.dashed(points, pattern, style["width"] * PT * SCALE):
                draw.line(piece.ravel().tolist(), fill=colour, width=width, joint="curve")
            return
        if style["alpha"] > 0:
            draw.polygon(points.ravel().tolist(), fill=(*colour, round(255 * style["alpha"])))
        if style["hatch"]:
            _draw.hatch(image, points, colour, style["hatch"])

    def _frame(self, draw, box: tuple, origin: tuple[int, int]) -> None:
        """Spines (0.8 pt) and outward ticks (3.5 pt majors, 2 pt minors) as matplotlib draws them, on a
        canvas whose top left is the figure's pixel ``origin`` (at 2×)."""
        left, top, right, bottom = box  # on whole pixels of the PNG: one pixel wide lines stay sharp
        ox, oy = origin
        draw.rectangle([left - ox, top - oy, right + SCALE - 1 - ox, bottom + SCALE - 1 - oy], outline=(0, 0, 0),
                       width=SCALE)
        for which in ("x", "y"):
            majors = self._major_ticks(which)[0]
            for positions, length, shade in ((majors, 3.5, 0), (self._minors[which], 2.0, 64)):
                reach = round(length * PT) * SCALE
                for at in self._along(which, positions, 1):
                    if not np.isfinite(at):
                        continue
                    at = min(int(at), (right if which == "x" else bottom) // SCALE - 1) * SCALE
                    if which == "x":
                        draw.rectangle([at - ox, bottom + SCALE - oy, at + SCALE - 1 - ox, bottom + SCALE + reach - 1 - oy],
                                       fill=(shade,) * 3)
                    else:
                        draw.rectangle([left - reach - ox, at - oy, left - 1 - ox, at + SCALE - 1 - oy], fill=(shade,) * 3)

    def _major_ticks(self, which: str) -> tuple[list, list]:
        if self._ticks[which] is not None:
            return self._ticks[which]
        from matplotlib.ticker import MaxNLocator  # matplotlib's default: round values

        values = list(MaxNLocator(nbins="auto", steps=[1, 2, 2.5, 5, 10]).tick_values(*sorted(self._lim[which])))
        return values, [f"{v:g}".replace("-", "−") for v in values]

    def _along(self, which: str, positions: list, scale: int) -> np.ndarray:
        """Each position's pixel along the axis, NaN where it lies outside the limits (not drawn)."""
        low, high = self._lim[which]
        values = np.asarray(positions, float)
        fraction = (values - low) / (high - low) if high != low else values * 0
        fraction[~((fraction >= -1e-9) & (fraction <= 1 + 1e-9))] = np.nan
        left, top, right, bottom = self._pixels(scale)
        return left + fraction * (right - left) if which == "x" else bottom - fraction * (bottom - top)

    def _labelled(self, which: str) -> list[tuple[float, str]]:
        """(pixel, label) of the major ticks within the limits."""
        majors, labels = self._major_ticks(which)
        return [(at, label) for at, label in zip(self._along(which, majors, 1), labels) if np.isfinite(at)]

    def _texts(self, image) -> None:
        left, top, right, bottom = self._pixels(1)
        gap = (3.5 + 3.5) * PT  # tick length and pad
        label_bottom, label_left = bottom + gap, left - gap
        if self._on:
            shown = self._labelled("x")
            for at, label in shown:
                _draw.text(image, label, at, bottom + gap, self.labelsize, ha="center", va="top")
            if shown:
                label_bottom = bottom + gap + _draw.line_height(self.labelsize)
            shown = self._labelled("y")
            for at, label in shown:
                _draw.text(image, label, left - gap, at, self.labelsize, ha="right", va="center")
            if shown:
                label_left = left - gap - max(_draw.width(label, self.labelsize) for _, label in shown)
        text, size = self._labels["x"]
        if text:
            _draw.text(image, text, (left + right) / 2, label_bottom + 4 * PT, size, ha="center", va="top")
        text, size = self._labels["y"]
        if text:
            _draw.text(image, text, label_left - 4 * PT, (top + bottom) / 2, size, ha="right", va="center", rotate=True)
        if self._title:
            _draw.text(image, self._title, (left + right) / 2, top - self._title_pad * PT, self._title_size,
                       ha="center", va="baseline")
        for x, y, s, ha, va, size, colour, bold, bbox in self._notes:
            _draw.text(image, s, left + x * (right - left), bottom - y * (bottom - top), size, ha=ha, va=va,
                       color=colour, bold=bold, bbox=bbox)
        if self._legend is not None:
            self._draw_legend(image, (left, top, right, bottom), self._legend)

    def _draw_legend(self, image, box: tuple, size: float) -> None:
        """matplotlib's frameless legend in the upper right: a patch (2 × 0.7 font sizes) and the label
        per labelled step, 0.5 font sizes apart."""
        from PIL import ImageDraw

        entries = [op[1:] for op in self._shape_ops if op[0] == "label"]
        if not entries:
            return
        em = size * PT
        widest = max(_draw.width(e[0], size) for e in entries)
        right = box[2] - 0.5 * em - 0.4 * em
        text_left = right - widest
        patch_right = text_left - 0.8 * em
        patch_left = patch_right - 2.0 * em
        y = box[1] + 0.5 * em + 0.4 * em
        draw = ImageDraw.Draw(image, "RGBA")
        for label, colour, fill, alpha, style, hatch in entries:
            height = em
            middle = y + height / 2
            rect = [patch_left, middle - 0.35 * em, patch_right, middle + 0.35 * em]
            rgb = _draw.rgb(colour)
            if fill:
                draw.rectangle(rect, fill=(*rgb, round(255 * alpha)))
            if hatch:
                _draw.hatch(image, [(rect[0], rect[1]), (rect[2], rect[1]), (rect[2], rect[3]), (rect[0], rect[3])],
                       rgb, hatch, scale=1)
            if not fill or hatch:
                points = np.array([[rect[0], rect[1]], [rect[2], rect[1]], [rect[2], rect[3]], [rect[0], rect[3]],
                                   [rect[0], rect[1]]])
                for piece in _draw.dashed(points, DASHES.get(style), 1.3 * PT):
                    draw.line([tuple(p) for p in piece], fill=rgb, width=1)
            _draw.text(image, label, text_left, middle, size, ha="left", va="center")
            y += height + 0.5 * em
