"""Events drawn as one image per panel: the density and dot plots are binned with NumPy and shown
as an image filling the axes, not as thousands of hexagons or markers (matplotlib drew a 60-wide
hexbin in ~15 ms and 5,000 markers in ~10 ms; an image costs well under a millisecond, drawn by
indexing its cells at the axes' pixels: ``imshow``'s resampler cost 2–3 ms more).

A density plot is a 2-D histogram coloured by log count (viridis, empty bins left white), as
FlowJo's pseudocolour plots; a dot plot is a histogram at the panel's pixel size, each event a
1- or 2-pixel-wide dot, overlapping dots darkening as transparent markers do.
"""

from __future__ import annotations

import functools

import numpy as np

from .encode import PNG_DPI

#: most bins per axis of a density plot (a 3.1-inch panel at 90 dpi is ~200 pixels: 2 per bin)
DENSITY_BINS = 100


def _histogram(x: np.ndarray, y: np.ndarray, xlim: tuple, ylim: tuple, shape: tuple[int, int]) -> np.ndarray:
    """Counts on a (rows = y from the top, columns = x) grid over the limits; events outside are dropped."""
    rows, cols = shape
    (x0, x1), (y0, y1) = xlim, ylim
    col = np.floor((np.asarray(x, np.float64) - x0) * (cols / (x1 - x0))).astype(np.int64)
    row = np.floor((y1 - np.asarray(y, np.float64)) * (rows / (y1 - y0))).astype(np.int64)
    inside = (col >= 0) & (col < cols) & (row >= 0) & (row < rows)
    return np.bincount(row[inside] * cols + col[inside], minlength=rows * cols).reshape(rows, cols)


def _show(ax, rgb: np.ndarray, xlim: tuple, ylim: tuple) -> None:
    """``rgb`` (rows from the top, values 0–1, opaque) over the whole axes, whose limits are set to
    ``xlim`` × ``ylim``."""
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    if getattr(ax, "raster", False):
        return ax.image(rgb)
    ax.add_image(_image(ax, rgb, (*xlim, *ylim)))


def _image(ax, rgb: np.ndarray, extent: tuple):
    global _PIXELS
    if _PIXELS is None:  # matplotlib imported only when a figure is drawn
        _PIXELS = _pixels_class()
    return _PIXELS(ax, rgb, extent)


def _pixels_class():
    from matplotlib.image import AxesImage

    class Pixels(AxesImage):
        """``imshow(rgb, extent=<the axes' limits>, origin="upper", interpolation="nearest")`` without
        imshow's bookkeeping and, on a raster canvas, without its resampling (the two cost 2–3 ms an
        image, a sixth of a gating figure): each pixel of the axes shows the cell under its centre,
        as imshow's do except where a centre lies on a cell's edge (imshow's Agg resampler rounds
        to 1/256 pixel: a line of pixels there shows the cell on the other side); on a vector
        canvas it is drawn as any image."""

        def __init__(self, ax, rgb: np.ndarray, extent: tuple) -> None:
            super().__init__(ax, interpolation="nearest", origin="upper", extent=extent, zorder=1)
            rgba = np.empty((*rgb.shape[:2], 4), np.uint8)
            rgba[..., :3] = np.asarray(rgb)[..., :3] * 255  # truncated, as matplotlib makes bytes
            rgba[..., 3] = 255
            self.set_data(rgba)

        def draw(self, renderer) -> None:
            ax = self.axes
            if renderer.option_scale_image() or not self.get_visible():
                return super().draw(renderer)
            box = ax.bbox  # rounded to whole pixels as matplotlib rounds an image's
            left, right = int(np.floor(box.x0 + 0.5)), int(np.floor(box.x1 + 0.5 + 1e-8))
            bottom, top = int(np.ceil(box.y0 - 0.5 - 1e-8)), int(np.ceil(box.y1 - 0.5))
            if right <= left or top <= bottom:
                return
            rgba = self.get_array()
            n_rows, n_cols = rgba.shape[:2]
            # the cell under each pixel's centre; the canvas takes the image's bottom row first, the
            # cells count rows from the top
            cols = np.floor((left + np.arange(right - left) + 0.5 - box.x0) * (n_cols / box.width))
            rows = np.floor((box.y1 - bottom - 0.5 - np.arange(top - bottom)) * (n_rows / box.height))
            cols, rows = (np.clip(v.astype(np.intp), 0, n - 1) for v, n in ((cols, n_cols), (rows, n_rows)))
            gc = renderer.new_gc()
            gc.set_clip_rectangle(box)
            renderer.draw_image(gc, left, bottom, rgba[rows[:, None], cols[None, :]])
            gc.restore()
            self.stale = False

    return Pixels


_PIXELS = None


def density(ax, x: np.ndarray, y: np.ndarray, xlim: tuple, ylim: tuple, *, bins: int | None = None) -> None:
    """``x`` against ``y`` as a log-count density over the limits (the axes keep them); ``bins`` per
    axis default to 0.7 √n, 40 to :data:`DENSITY_BINS` (a sparse population is not drawn as scattered
    single bins: 20,000 events get 99, 8,000 get 62)."""
    if bins is None:
        bins = int(np.clip(0.7 * np.sqrt(len(x)), 40, DENSITY_BINS))
    counts = _histogram(x, y, xlim, ylim, (bins, bins))
    rgba = np.ones((*counts.shape, 4))  # empty bins opaque white: an opaque image is drawn without
    occupied = counts > 0                # premultiplying its alpha (a transparent one cost 1 ms more)
    if occupied.any():
        top = np.log10(counts.max())
        level = np.log10(counts[occupied]) / top if top > 0 else np.zeros(occupied.sum())
        rgba[occupied] = _viridis()[np.minimum((level * 256).astype(np.intp), 255)]  # as the colormap's call
    _show(ax, rgba, xlim, ylim)


@functools.lru_cache(maxsize=1)
def _viridis() -> np.ndarray:
    """viridis's 256 colours (RGBA, 0–1): looked up by index, as ``colormaps["viridis"](level)`` does."""
    from matplotlib import colormaps

    return colormaps["viridis"](np.arange(256))


def _pixels(ax) -> tuple[int, int]:
    """The axes' (height, width) in pixels at the PNG resolution."""
    box = ax.get_position()
    width, height = ax.figure.get_size_inches()
    return max(1, round(box.height * height * PNG_DPI)), max(1, round(box.width * width * PNG_DPI))


def _dots(counts: np.ndarray) -> np.ndarray:
    """Each event's pixel grown to 2 × 2: the counts of a pixel and its right, lower and lower-right
    neighbours' events."""
    grown = counts.copy()
    grown[:, 1:] += counts[:, :-1]
    grown[1:, :] += grown[:-1, :].copy()
    return grown


def dots(ax, layers: list[tuple[np.ndarray, np.ndarray, str, float, int]], xlim: tuple, ylim: tuple) -> None:
    """Dot plot of ``layers`` (``x``, ``y``, colour, alpha of one dot, its side: 1 or 2 pixels), drawn
    in order on white over the limits, at the panel's pixel size."""
    from matplotlib.colors import to_rgb

    shape = _pixels(ax)
    image = np.ones((*shape, 3))
    pixels = image.reshape(-1, 3)
    for x, y, name, alpha, side in layers:
        counts = _histogram(x, y, xlim, ylim, shape)
        counts = (_dots(counts) if side > 1 else counts).ravel()
        hit = np.flatnonzero(counts)  # only the pixels with dots (a tenth of the panel, or less)
        cover = 1.0 - (1.0 - alpha) ** counts[hit]  # n dots on one pixel
        pixels[hit] += (np.asarray(to_rgb(name)) - pixels[hit]) * cover[:, None]
    _show(ax, image, xlim, ylim)
