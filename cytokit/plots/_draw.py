"""What :mod:`._canvas` draws with: texts in matplotlib's font and sizes, dashed lines and hatching, on
Pillow images (Pillow has no dashes or hatches; its text is FreeType's, as matplotlib's)."""

from __future__ import annotations

import functools
import threading

import numpy as np

from .encode import PNG_DPI

#: shapes are drawn at this multiple of the PNG's resolution, then reduced (antialiasing)
SCALE = 2
PT = PNG_DPI / 72  # pixels per point
DASHES = {"-": None, "solid": None, "--": (3.7, 1.6), "dashed": (3.7, 1.6), ":": (1.0, 1.65),
          "dotted": (1.0, 1.65), "-.": (6.4, 1.6, 1.0, 1.6)}  # matplotlib's, in line widths


def plain(text) -> str:
    """Text as drawn: the ``\\$`` that :func:`~._style._literal` writes for matplotlib is a ``$`` here."""
    return str(text).replace(r"\$", "$")


@functools.lru_cache(maxsize=64)
def rgb(colour: str) -> tuple[int, int, int]:
    from PIL import ImageColor

    return ImageColor.getrgb(colour)[:3]


@functools.lru_cache(maxsize=None)
def font(size: float, bold: bool):
    """DejaVu Sans (matplotlib's font, from its package) at ``size`` points."""
    from pathlib import Path

    import matplotlib
    from PIL import ImageFont

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name
    return ImageFont.truetype(str(path), size * PT, layout_engine=ImageFont.Layout.BASIC)


def line_height(size: float) -> float:
    return 1.2 * size * PT  # matplotlib's line spacing


def width(s: str, size: float, bold: bool = False) -> float:
    """The advance of one line of text."""
    return _rendered(s, size, bold)[3]


@functools.lru_cache(maxsize=4096)
def _rendered(line: str, size: float, bold: bool):
    """``line`` as an 8-bit mask, the offset of its top left from the pen's (left, baseline) point, its
    advance, and its ascent and descent (at least those of ``lp``, as matplotlib measures a line):
    kept, as a run draws the same tick labels, axis labels and names on every figure."""
    return _words(line, size, bold) or _render(line, size, bold)


def _words(line: str, size: float, bold: bool):
    """A line of several words put together from its words' kept masks, where that gives FreeType's own
    pixels: every word but the last a whole number of pixels wide (hinted advances are; a fractional
    kerning is not) and no kerning with a space. A title or a count line ("79,019 events (79% of
    parent)") is new in every figure, its words mostly not: only the new words are rendered. None otherwise."""
    words = line.split(" ")
    if len(words) < 2 or not words[0] or not words[-1] or not _spaces_unkerned(line, size, bold):
        return None
    from PIL import Image

    space = _space(size, bold)
    pen, total, placed = 0, 0.0, []
    for i, word in enumerate(words):
        if i:
            pen, total = pen + space, total + space
        if not word:  # two spaces
            continue
        mask, dx, dy, advance, *_ = _rendered(word, size, bold)
        if i < len(words) - 1 and advance != int(advance):
            return None
        placed.append((mask, pen + dx, dy))
        pen, total = pen + int(advance), total + advance
    left, top = min(x for _, x, _ in placed), min(y for _, _, y in placed)
    right, bottom = max(x + m.width for m, x, _ in placed), max(y + m.height for m, _, y in placed)
    out = Image.new("L", (right - left, bottom - top), 0)
    for mask, x, y in placed:
        out.paste(mask, (x - left, y - top))
    lp_ascent, lp_descent = _rendered("lp", size, bold)[4:]
    return out, left, top, total, max(-top, lp_ascent), max(bottom, lp_descent)


@functools.lru_cache(maxsize=None)
def _space(size: float, bold: bool) -> int:
    """The space's advance in whole pixels (0 where it is not whole: then no line is put together)."""
    with _FREETYPE:
        face = font(size, bold)
        advance, double = face.getlength(" "), face.getlength("  ")
    return int(advance) if advance == int(advance) and double == 2 * advance else 0


def _spaces_unkerned(line: str, size: float, bold: bool) -> bool:
    """Whether no character of ``line`` kerns with a space on either side (checked per character)."""
    return _space(size, bold) > 0 and all(_unkerned(c, size, bold) for c in set(line) - {" "})


@functools.lru_cache(maxsize=None)
def _unkerned(char: str, size: float, bold: bool) -> bool:
    with _FREETYPE:
        face = font(size, bold)
        alone, space = face.getlength(char), face.getlength(" ")
        return face.getlength(" " + char) == space + alone and face.getlength(char + " ") == alone + space


def _render(line: str, size: float, bold: bool):
    from PIL import Image, ImageDraw

    with _FREETYPE:
        face = font(size, bold)
        l, t, r, b = face.getbbox(line or " ", anchor="ls")
        mask = Image.new("L", (max(1, r - l), max(1, b - t)), 0)
        ImageDraw.Draw(mask).text((-l, -t), line, font=face, fill=255, anchor="ls")
        _, lp_top, _, lp_bottom = face.getbbox("lp", anchor="ls")
        advance = face.getlength(line)
    return mask.point(_DARKER), l, t, advance, max(-t, -lp_top), max(b, lp_bottom)


#: a FreeType face is used by one thread at a time (FreeType's rule; Dask may draw in threads)
_FREETYPE = threading.RLock()


#: FreeType's coverage drawn a little darker, as matplotlib's Agg text looks (FreeType's own is lighter
#: at 6–9 pt)
_DARKER = [round(255 * (v / 255) ** 0.7) for v in range(256)]


def _baselines(lines: list[str], size: float, bold: bool) -> tuple[list[float], float]:
    """Each line's baseline below the text's top, and the text's height, as matplotlib lays lines out
    (the next baseline the last line's descent and 1.2 × the larger of its ascent and ``lp``'s below)."""
    lp_ascent = _rendered("lp", size, bold)[4]
    baselines, y = [], 0.0
    for i, line in enumerate(lines):
        *_, ascent, descent = _rendered(line, size, bold)
        y += ascent if i == 0 else max(lp_ascent, ascent) * 1.2
        baselines.append(y)
        y += descent
    return baselines, y


def text(image, s: str, x: float, y: float, size: float, *, ha: str = "left", va: str = "baseline",
         color: str = "black", bold: bool = False, bbox: dict | None = None, rotate: bool = False) -> None:
    """``s`` (lines) aligned at pixel ``x``, ``y`` as matplotlib aligns a text's box (``baseline``: the
    last line's); ``bbox``: a box behind it (``facecolor``, ``alpha``, ``edgecolor``, ``pad`` in
    points); ``rotate``: 90° anticlockwise (a y label)."""
    from PIL import Image, ImageDraw

    lines = str(s).split("\n")
    baselines, height = _baselines(lines, size, bold)
    widths = [_rendered(line, size, bold)[3] for line in lines]
    width = max(widths)
    if rotate:  # drawn on its own, then turned
        block = Image.new("L", (max(1, int(np.ceil(width))), max(1, int(np.ceil(height)))), 0)
        for line, w, base in zip(lines, widths, baselines):
            mask, dx, dy, *_ = _rendered(line, size, bold)
            block.paste(mask, (int(round((width - w) / 2 + dx)), int(round(base + dy))))
        block = block.transpose(Image.Transpose.ROTATE_90)
        left = x - block.width if ha == "right" else x - block.width / 2 if ha == "center" else x
        top = y - block.height / 2 if va == "center" else y - block.height if va in ("bottom", "baseline") else y
        image.paste(rgb(color), (int(round(left)), int(round(top))), block)
        return
    left = x - width if ha == "right" else x - width / 2 if ha == "center" else x
    top = {"top": y, "center": y - height / 2, "bottom": y - height, "baseline": y - baselines[-1]}.get(va, y)
    if bbox:
        pad = bbox.get("pad", 4) * PT
        face, edge = bbox.get("facecolor", "white"), bbox.get("edgecolor", "none")
        rect = [left - pad, top - pad, left + width + pad, top + height + pad]
        draw = ImageDraw.Draw(image, "RGBA")
        draw.rectangle(rect, fill=(*rgb(face), round(255 * bbox.get("alpha", 1.0))),
                       outline=None if edge == "none" else rgb(edge), width=1)
    for line, w, base in zip(lines, widths, baselines):
        mask, dx, dy, *_ = _rendered(line, size, bold)
        at = left + (width - w) / 2 if ha == "center" else left + width - w if ha == "right" else left
        image.paste(rgb(color), (int(round(at + dx)), int(round(top + base + dy))), mask)


def dashed(points: np.ndarray, pattern: tuple | None, width: float) -> list[np.ndarray]:
    """The on pieces of a polyline dashed with ``pattern`` (on, off, … in line widths; None: solid)."""
    if pattern is None:
        return [points]
    at = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(points, axis=0).T))])
    period = np.asarray(pattern, float) * max(width, 1.0)
    starts = np.arange(0.0, at[-1], period.sum())
    edges = (starts[:, None] + np.concatenate([[0.0], np.cumsum(period)])[None, :-1]).ravel()
    cuts = np.union1d(at, edges[edges < at[-1]])  # the vertices and where a dash starts or ends
    middle = (cuts[:-1] + cuts[1:]) / 2
    on = (np.searchsorted(edges, middle, side="right") - 1) % 2 == 0
    xy = np.column_stack([np.interp(cuts, at, points[:, 0]), np.interp(cuts, at, points[:, 1])])
    change = np.flatnonzero(np.diff(np.concatenate([[False], on, [False]]).astype(np.int8)))
    return [xy[a:b + 1] for a, b in zip(change[::2], change[1::2])]


def rule(image, points: np.ndarray, pattern: tuple, scaled: float, width: int, colour: tuple) -> bool:
    """A dashed horizontal or vertical segment (a threshold line) pasted through one mask of its dashes,
    the pixels the dashes' ``line`` calls would draw (Pillow truncates their ends to whole pixels, so a
    mask drawn a whole number of pixels away is the same; one per length and start, cached). False (nothing
    drawn) for any other polyline."""
    if len(points) != 2 or not (points >= 0).all():
        return False
    (x0, y0), (x1, y1) = points.tolist()
    if x0 != x1 and y0 != y1:
        return False
    vertical = x0 == x1
    start, end, across = (y0, y1, x0) if vertical else (x0, x1, y0)
    base = np.floor(min(start, end))
    mask, margin = _rule_mask(start - base, end - base, pattern, scaled, width, vertical)
    at = (int(across) - margin, int(base) - margin)
    image.paste(colour, at if vertical else at[::-1], mask)
    return True


@functools.lru_cache(maxsize=64)
def _rule_mask(start: float, end: float, pattern: tuple, scaled: float, width: int, vertical: bool):
    """The dashes of a segment from ``start`` to ``end`` (within a pixel of 0) along one axis, ``margin``
    pixels in from the mask's edges, as ``line`` draws them."""
    from PIL import Image, ImageDraw

    margin = width + 2
    length = int(np.ceil(max(start, end))) + 2 * margin
    mask = Image.new("L", (2 * margin + 1, length) if vertical else (length, 2 * margin + 1), 0)
    draw = ImageDraw.Draw(mask)
    along = np.array([start, end]) + margin
    points = np.column_stack([np.full(2, margin + 0.5), along] if vertical else [along, np.full(2, margin + 0.5)])
    for piece in dashed(points, pattern, scaled):
        draw.line(piece.ravel().tolist(), fill=255, width=width, joint="curve")
    return mask, margin


def hatch(image, polygon: np.ndarray, colour: tuple, hatch: str, scale: int = SCALE) -> None:
    """``/`` hatching inside ``polygon`` (its corners, n × 2): 6 lines per inch per ``/`` (matplotlib's
    density), 1 pt wide."""
    from PIL import Image, ImageChops, ImageDraw

    corners = np.asarray(polygon, float)
    x0, y0 = np.maximum(np.floor(corners.min(axis=0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(corners.max(axis=0)).astype(int) + 1, image.size)
    if x1 <= x0 or y1 <= y0:
        return
    mask = Image.new("L", (int(x1 - x0), int(y1 - y0)), 0)
    ImageDraw.Draw(mask).polygon((corners - [x0, y0]).ravel().tolist(), fill=255)
    stripes = _stripes(image.size, PNG_DPI * scale / (6 * max(1, hatch.count("/"))), PT * scale)
    mask = ImageChops.multiply(mask, stripes.crop((int(x0), int(y0), int(x1), int(y1))))
    image.paste(colour, (int(x0), int(y0)), mask)


@functools.lru_cache(maxsize=8)
def _stripes(size: tuple[int, int], spacing: float, width: float):
    """Rising diagonal stripes over an image of ``size``, as a mask (a panel's are the same in every figure)."""
    from PIL import Image

    ys, xs = np.ogrid[0:size[1], 0:size[0]]
    return Image.fromarray(np.where(((xs + ys) % spacing) < width, 255, 0).astype(np.uint8))
