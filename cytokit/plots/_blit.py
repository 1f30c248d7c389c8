"""A reused figure drawn again without laying out and rendering its axes' text anew.

Most of a gating figure's or patient panel's drawing time was matplotlib's text, and most of the
text is the axes' tick labels and axis labels, which are the same for every file drawn on the same
scales and limits. Each axis's texts (its *layer*) are rendered once over white and kept on the
figure, keyed by everything that places and styles them (the axes' position, each label's text,
position, font and colour). When the figure is drawn again, the texts of an axis whose layer is
kept are hidden, the rest of the figure is drawn as usual, and the kept pixels are pasted in.

The result is the pixels a full draw gives, not an approximation. A full draw renders those texts
over white whenever nothing else is drawn under or over them, so a layer is pasted only where the
rest of the drawing left every pixel of its boxes white and nothing that paints white (an axes
background, a text's box, a legend frame) reaches them; it is learned only from a figure whose
full draw shows exactly the layer's pixels there. Anything else (a layer's boxes overlapping
another axis's, a label with a box or path effects) is drawn the ordinary way.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.backends.backend_agg import FigureCanvasAgg

#: layers kept per figure: a run's files share a few limits per axis
KEPT_LAYERS = 128
#: pixels added around a text's extent (antialiased glyph edges may reach past it; a layer is kept
#: only if the border of each box is white)
_MARGIN = 2


@dataclass(frozen=True, slots=True)
class _Layer:
    """One axis's texts rendered over white."""

    boxes: list[tuple[slice, slice, np.ndarray]]
    """(rows, columns, their RGBA pixels) of the canvas, one per text."""


def draw(canvas: FigureCanvasAgg) -> np.ndarray:
    """``canvas``'s figure drawn, as the H × W × 4 RGBA pixels ``canvas.draw()`` gives, with the kept
    layers of its axes pasted in rather than rendered; the layers of the other axes are learned."""
    figure = canvas.figure
    kept = figure.__dict__.setdefault("_cytokit_layers", OrderedDict())
    axes = [(texts, key) for texts, key in map(_static_texts, _axes_of(figure)) if texts]
    known = [(texts, key, kept[key]) for texts, key in axes if key is not None and key in kept]
    hidden = [text for texts, _, _ in known for text in texts]
    for text in hidden:
        text.set_visible(False)
    try:
        canvas.draw()
    finally:
        for text in hidden:
            text.set_visible(True)
    image = np.array(canvas.buffer_rgba())
    if known:
        painters = _white_painters(figure, canvas.get_renderer(), image.shape[0])
        if not _paste(image, [layer for _, _, layer in known], painters):
            canvas.draw()
            return np.array(canvas.buffer_rgba())
        for _, key, _ in known:
            kept.move_to_end(key)
    new = [(texts, key) for texts, key in axes if key is not None and key not in kept]
    if new:
        _learn(canvas, image, new, known, kept)
    return image


def _axes_of(figure) -> list:
    return [axis for ax in figure.axes if ax.get_visible() and ax.axison for axis in (ax.xaxis, ax.yaxis)
            if axis.get_visible()]


def _font(text) -> tuple:
    font = text.get_fontproperties()
    return (tuple(font.get_family()), font.get_style(), font.get_variant(), font.get_weight(),
            font.get_stretch(), font.get_size(), font.get_file(), font.get_math_fontfamily())


def _style(text) -> tuple | None:
    """Everything but the position that makes ``text``'s pixels, or None for a text that is not kept
    (a box, path effects, TeX, a clip box)."""
    from matplotlib.colors import to_rgba

    if (text.get_bbox_patch() is not None or text.get_path_effects() or text.get_usetex()
            or (text.get_clip_on() and text.get_clip_box() is not None)):
        return None
    return (text.get_text(), _font(text), to_rgba(text.get_color(), text.get_alpha()), text.get_rotation(),
            text.get_horizontalalignment(), text.get_verticalalignment(), text.get_rotation_mode(),
            _linespacing(text), text.get_antialiased(), text.get_wrap())


def _linespacing(text) -> float:
    """``text``'s line spacing (``get_linespacing`` is new in matplotlib 3.11)."""
    getter = getattr(text, "get_linespacing", None)
    return getter() if getter is not None else text._linespacing


def _static_texts(axis) -> tuple[list, tuple | None]:
    """The texts ``axis`` draws (tick labels, its label, the offset text) and their key (None: not
    kept). The tick labels are placed as drawing would place them (matplotlib's ``_update_ticks``)."""
    import matplotlib

    update_ticks = getattr(axis, "_update_ticks", None)  # private: without it, the axis is drawn as usual
    if update_ticks is None:
        return [], None
    ticks = update_ticks()
    labels = [label for tick in ticks if tick.get_visible() for label in (tick.label1, tick.label2)
              if label.get_visible() and label.get_text()]
    offset = axis.major.formatter.get_offset()
    texts = [*labels, *(t for t in (axis.label,) if t.get_visible() and t.get_text())]
    if offset and axis.offsetText.get_visible():
        texts.append(axis.offsetText)
    styles = [_style(text) for text in texts]
    if any(style is None for style in styles):
        return texts, None
    ax = axis.axes
    placed = tuple((style, tuple(text.get_transform().transform(text.get_unitless_position()).tolist()))
                   for text, style in zip(labels, styles))
    rc = matplotlib.rcParams
    key = (type(axis).__name__, tuple(ax.bbox.bounds), ax.figure.dpi, placed,
           tuple(styles[len(labels):]), offset, axis.labelpad, axis.get_label_position(),
           rc["text.hinting"], rc["text.hinting_factor"], rc["text.antialiased"])
    return texts, key


def _boxes(texts: list, renderer, height: int, width: int) -> list[tuple[slice, slice]]:
    """(rows, columns) of the canvas each of ``texts`` draws in."""
    out = []
    for text in texts:
        box = text.get_window_extent(renderer)
        col0 = max(0, int(np.floor(box.x0)) - _MARGIN)
        col1 = min(width, int(np.ceil(box.x1)) + _MARGIN)
        row0 = max(0, height - int(np.ceil(box.y1)) - _MARGIN)  # rows count from the top
        row1 = min(height, height - int(np.floor(box.y0)) + _MARGIN)
        if row1 > row0 and col1 > col0:
            out.append((slice(row0, row1), slice(col0, col1)))
    return out


def _white_painters(figure, renderer, height: int) -> list[tuple[slice, slice]]:
    """(rows, columns) of what may paint white over a layer after its texts in a full draw: the
    axes' backgrounds, the texts' boxes, the legends' frames."""
    extents = [ax.bbox for ax in figure.axes if ax.get_visible() and ax.axison]
    for ax in figure.axes:
        for text in [*ax.texts, ax.title, ax._left_title, ax._right_title]:
            if text.get_visible() and text.get_bbox_patch() is not None:
                extents.append(text.get_bbox_patch().get_window_extent(renderer))
        if ax.legend_ is not None and ax.legend_.legendPatch.get_visible():
            extents.append(ax.legend_.get_window_extent(renderer))
    for text in figure.texts:
        if text.get_visible() and text.get_bbox_patch() is not None:
            extents.append(text.get_bbox_patch().get_window_extent(renderer))
    return [(slice(height - int(np.ceil(b.y1)) - 1, height - int(np.floor(b.y0)) + 1),
             slice(int(np.floor(b.x0)) - 1, int(np.ceil(b.x1)) + 1)) for b in extents]


def _meet(a: tuple[slice, slice], b: tuple[slice, slice]) -> bool:
    return a[0].start < b[0].stop and b[0].start < a[0].stop and a[1].start < b[1].stop and b[1].start < a[1].stop


def _paste(image: np.ndarray, layers: list[_Layer], painters: list) -> bool:
    """Paste ``layers`` into ``image`` if they are what a full draw would show; False (``image``
    partly pasted) otherwise."""
    for i, layer in enumerate(layers):
        others = [(r, c) for j, other in enumerate(layers) if j != i for r, c, _ in other.boxes]
        for rows, cols, _ in layer.boxes:
            if not (image[rows, cols] == 255).all() or any(_meet((rows, cols), b) for b in [*others, *painters]):
                return False
    for layer in layers:
        for rows, cols, pixels in layer.boxes:
            image[rows, cols] = pixels
    return True


def _learn(canvas, image: np.ndarray, new: list, known: list, kept: OrderedDict) -> None:
    """Keep the layers of ``new`` axes, drawn in full in ``image``: each text rendered again over
    white, kept where that is exactly what the full draw shows and apart from every other layer."""
    renderer = canvas.get_renderer()
    height, width = image.shape[:2]
    boxes = [_boxes(texts, renderer, height, width) for texts, _ in new]
    taken = [(rows, cols) for _, _, layer in known for rows, cols, _ in layer.boxes]
    buffer = np.asarray(canvas.buffer_rgba())
    buffer[...] = 255
    for texts, _ in new:
        for text in texts:
            text.draw(renderer)
    for i, ((texts, key), own) in enumerate(zip(new, boxes)):
        others = [b for j, theirs in enumerate(boxes) if j != i for b in theirs] + taken
        if own and all(_inked_inside(buffer[r, c]) and np.array_equal(image[r, c], buffer[r, c]) for r, c in own) \
                and not any(_meet(box, other) for box in own for other in others):
            kept[key] = _Layer([(r, c, buffer[r, c].copy()) for r, c in own])
    buffer[...] = image  # the canvas shows the figure again
    while len(kept) > KEPT_LAYERS:
        kept.popitem(last=False)


def _inked_inside(box: np.ndarray) -> bool:
    """Whether a text rendered over white left the border of its box white (all its ink inside)."""
    return bool((box[0] == 255).all() and (box[-1] == 255).all() and (box[:, 0] == 255).all()
                and (box[:, -1] == 255).all())
