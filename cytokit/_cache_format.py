"""A :class:`~cytokit.pipeline.GroupResult` as bytes that cannot run code when read.

One ``.npz`` (NumPy's zip of ``.npy`` arrays, read with ``allow_pickle=False``): the tables as
Parquet bytes, the plot events and the marker values as arrays (a plot-events column each: as
Parquet they cost 1.2 ms a file to write, half a group's encoding), PNGs as bytes, and the
rest (fitted gates, keywords, figure provenance) as JSON. A pickle from a shared folder would
run its author's code on load; these are data only, and :func:`decode` checks every part's type,
so a damaged or foreign entry is a :class:`ValueError` (the cache then analyses the group again).
"""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pandas as pd

from .pipeline import GroupResult

FORMAT = "cytokit-group-5"  # 2: float64 marker values; 3: the comparisons; 4: plot events on the gate's axis;
#                            5: plot events as arrays
_TABLES = ("samples", "populations", "markers", "paired")


def _bytes(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint8)


def _parquet(frame: pd.DataFrame) -> np.ndarray:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return _bytes(buffer.getvalue())


def encode(result: GroupResult) -> bytes:
    """``result`` as the bytes of one ``.npz`` file."""
    arrays: dict[str, np.ndarray] = {name: _parquet(getattr(result, name)) for name in _TABLES}
    values, plot_events, figures = [], [], []
    for i, ((file, marker), array) in enumerate(result.values.items()):
        arrays[f"value_{i}"] = np.asarray(array, dtype=np.float64)
        values.append([file, marker])
    for i, (file, frame) in enumerate(result.plot_events.items()):
        for j, column in enumerate(frame.columns):
            arrays[f"plot_events_{i}_{j}"] = frame[column].to_numpy()
        plot_events.append({"file": file, "columns": [str(c) for c in frame.columns], "rows": len(frame)})
    for i, ((kind, name), drawn) in enumerate(result.figures.items()):
        png = drawn if kind == "gates" else drawn["png"]
        arrays[f"figure_{i}"] = _bytes(png)
        figures.append({"kind": kind, "name": name,
                        **({} if kind == "gates" else {"files": drawn["files"], "markers": drawn["markers"]})})
    manifest = {"format": FORMAT, "values": values, "plot_events": plot_events, "figures": figures,
                "fitted": result.fitted, "gating": result.gating, "drew_figures": result.drew_figures,
                "template_path": result.template_path, "comparisons": [list(pair) for pair in result.comparisons]}
    arrays["manifest"] = _bytes(json.dumps(manifest).encode())
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def decode(data: bytes) -> GroupResult:
    """The :class:`GroupResult` of :func:`encode`'s bytes; ValueError when they are not one."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        manifest = json.loads(arrays["manifest"].tobytes())
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ValueError("not a cytokit group result of this format")
        tables = {name: _table(arrays[name]) for name in _TABLES}
        values = {}
        for i, (file, marker) in enumerate(manifest["values"]):
            array = arrays[f"value_{i}"]
            if array.dtype != np.float64 or array.ndim != 1:
                raise ValueError(f"marker values of {file} are not a float64 vector")
            values[(str(file), str(marker))] = array
        plot_events = {str(entry["file"]): _columns(arrays, f"plot_events_{i}", entry)
                       for i, entry in enumerate(manifest["plot_events"])}
        figures: dict = {}
        for i, figure in enumerate(manifest["figures"]):
            png = arrays[f"figure_{i}"].tobytes()
            if figure["kind"] == "gates":
                figures[("gates", str(figure["name"]))] = png
            else:
                figures[(str(figure["kind"]), str(figure["name"]))] = {
                    "png": png, "files": list(figure["files"]), "markers": list(figure["markers"])}
        for name in ("fitted", "gating"):
            if not isinstance(manifest[name], dict):
                raise ValueError(f"{name} is not a mapping")
        return GroupResult(**tables, values=values, plot_events=plot_events, fitted=manifest["fitted"],
                           gating=manifest["gating"], figures=figures, drew_figures=bool(manifest["drew_figures"]),
                           template_path=str(manifest["template_path"]),
                           comparisons=tuple((str(b), str(f)) for b, f in manifest["comparisons"]))
    except (KeyError, TypeError, AttributeError, OSError, EOFError, zipfile.BadZipFile, json.JSONDecodeError,
            UnicodeDecodeError) as exc:
        raise ValueError(f"a damaged cache entry ({type(exc).__name__}: {exc})") from None


def _columns(arrays: dict, prefix: str, entry: dict) -> pd.DataFrame:
    """A frame stored as one array per column (numbers or booleans, all of ``entry["rows"]``)."""
    columns = [str(c) for c in entry["columns"]]
    data = {}
    for j, column in enumerate(columns):
        array = arrays[f"{prefix}_{j}"]
        if array.ndim != 1 or array.dtype.kind not in "biuf" or len(array) != int(entry["rows"]):
            raise ValueError(f"plot events column {column!r} is not a vector of {entry['rows']} numbers")
        data[column] = array
    return pd.DataFrame(data, columns=columns)


def _table(array: np.ndarray) -> pd.DataFrame:
    if array.dtype != np.uint8 or array.ndim != 1:
        raise ValueError("a table is not stored as bytes")
    try:
        return pd.read_parquet(io.BytesIO(array.tobytes()))
    except Exception as exc:  # noqa: BLE001 - pyarrow raises its own types for damaged bytes
        raise ValueError(f"a damaged table ({exc})") from None
