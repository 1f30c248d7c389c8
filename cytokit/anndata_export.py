"""Events of one population as AnnData, for the scverse (scanpy, pytometry): :func:`to_anndata`.

One row (``obs``) per event of the population in every analysed file, one column (``var``) per
channel. ``X`` holds the gating scale (the template's transforms; channels it does not transform
as they are), the layer ``"scale"`` the compensated scale values; ``obs`` the file, patient,
timepoint and stain, the event's index in its file and a boolean column per population, named
by the population's name (unique in a template; ``/`` would be a group in HDF5), then the sample
sheet's own columns (a ``response`` to group cells by). Files are gated again from the results' paths (as their figures are), so no events are kept in
the results themselves.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import numpy as np
import pandas as pd

from .controls import is_control
from .errors import CytokitError

MAX_EVENTS_PER_FILE = 10_000


def to_anndata(results, *, population: str, max_events_per_file: int | None = MAX_EVENTS_PER_FILE,
               seed: int = 0):
    """The events of ``population`` in every analysed file of ``results`` as an ``anndata.AnnData``.

    Parameters
    ----------
    results
        :class:`~cytokit.results.Results` (or anything with its ``samples``, ``paths`` and
        ``template_path``).
    population
        A population name of the template, or its path (``root`` for every event).
    max_events_per_file
        At most this many events of each file, drawn without replacement (the same ones on every
        call with the same ``seed``); None keeps every event.
    seed
        The subsample's seed.

    Raises
    ------
    CytokitError
        ``population`` is not a population of the template, ``max_events_per_file`` is negative or
        not a whole number, or anndata is not installed.
    """
    if max_events_per_file is not None and not (isinstance(max_events_per_file, int) and max_events_per_file >= 0):
        raise CytokitError(f"max_events_per_file must be a whole number >= 0 or None, got {max_events_per_file!r}")
    try:
        import anndata
    except ImportError:
        raise CytokitError("AnnData export needs the anndata package: pip install 'cytokit[anndata]'") from None
    from .gating.load import load_template
    from .plots.plotter import ResultsPlotter

    template = load_template(results.template_path, panel=getattr(results, "panel_path", "") or None)
    path = population_path(template, population)
    plotter = ResultsPlotter(results)
    frames, scales, obs = [], [], []
    markers: dict[str, str] = {}
    for row in results.samples[results.samples["status"] != "error"].itertuples():
        result = plotter.gating(row.file)
        mask = np.ones(len(result.scale), dtype=bool) if path == "root" else result.membership[path]
        index = np.flatnonzero(mask)
        if max_events_per_file is not None and len(index) > max_events_per_file:
            rng = np.random.default_rng([seed, *row.file.encode()])
            index = np.sort(rng.choice(index, max_events_per_file, replace=False))
        channels = list(result.scale.columns)
        frames.append(pd.DataFrame({c: result.transformed(c, index) for c in channels}))
        scales.append(result.scale.iloc[index].reset_index(drop=True).astype(np.float64))
        member = {p.rsplit("/", 1)[-1]: m[index] for p, m in result.membership.items()}  # names are unique
        obs.append(pd.DataFrame({"file": row.file, "patient": row.patient, "timepoint": row.timepoint,
                                 "stain": row.stain, "event": index, **member}))
        for pnn, pns in zip(result.sample.channels["pnn"], result.sample.channels["pns"]):
            if not is_control(row.stain) or pnn not in markers:  # a stained tube names the marker, not its isotype
                markers[pnn] = pns
    if not frames:
        raise CytokitError("no analysed file to export")
    x = pd.concat(frames, ignore_index=True)
    scale = pd.concat(scales, ignore_index=True)[x.columns]
    table = pd.concat(obs, ignore_index=True)
    for column in table.columns[5:]:  # a population a file lacks (skipped gate): not a member
        table[column] = table[column].fillna(False).astype(bool)
    from .pipeline import SAMPLE_COLUMNS

    extra = [c for c in results.samples.columns if c not in SAMPLE_COLUMNS and c != "path" and c not in table]
    by_file = results.samples.drop_duplicates("file").set_index("file")
    for column in extra:  # the sample sheet's own columns (response, arm ...), per event of the file
        table[column] = table["file"].map(by_file[column]).fillna("").astype(str)
    for column in ("file", "patient", "timepoint", "stain", *extra):
        table[column] = table[column].astype(str).astype("category")
    table.index = [f"{f}:{e}" for f, e in zip(table["file"], table["event"])]
    var = pd.DataFrame({"channel": list(x.columns), "marker": [markers.get(c, "") for c in x.columns]},
                       index=list(x.columns))
    return anndata.AnnData(X=x.to_numpy(np.float32), obs=table, var=var,
                           layers={"scale": scale.to_numpy(np.float32)},
                           uns={"cytokit": {"population": path, "template": str(results.template_path),
                                            "max_events_per_file": -1 if max_events_per_file is None
                                            else int(max_events_per_file), "seed": int(seed)}})


def write_h5ad(adata, path: str | Path) -> Path:
    """Write ``adata`` as ``.h5ad``, atomically (a temporary file in the same folder, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        adata.write_h5ad(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def population_path(template, population: str) -> str:
    """The path of ``population`` (a name or a path) in ``template``, or ``root``; CytokitError if it has none."""
    if population == "root":
        return "root"
    paths = template.paths
    if population in paths:
        return population
    try:
        return template.path_of(population)
    except (KeyError, ValueError):
        raise CytokitError(f"{population!r} is not a population of the template; its populations: "
                           f"{', '.join(paths)}") from None
