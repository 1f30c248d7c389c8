"""The :class:`Sample`: events, channels, keywords and provenance of one FCS data set."""

from __future__ import annotations

import hashlib
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ChannelNotFoundError


class Sample:
    """One FCS data set, decoded to FCS 3.1 scale values.

    Parameters
    ----------
    events
        One row per event, one column per channel (``$PnN``), scale values.
    channels
        One row per channel, columns ``pnn, pns, bits, range, decades, offset, gain``.
    keywords
        TEXT keywords: keys upper-case with ``$`` kept, values ``str``.
    version
        FCS version of the data set, e.g. ``"3.1"``.
    path
        Where the data set was read from (``None`` for samples built in memory).
    dataset
        0-based index of the data set along the ``$NEXTDATA`` chain.
    spillover
        Spillover matrix (rows: source channel, columns: detector), or ``None``.

    Examples
    --------
    >>> import pandas as pd
    >>> s = Sample.from_dataframe(pd.DataFrame({"FSC-A": [1.0, 2.0]}))
    >>> s.n_events, list(s.channels.pnn)
    (2, ['FSC-A'])
    """

    def __init__(
        self,
        events: pd.DataFrame,
        channels: pd.DataFrame,
        keywords: dict[str, str],
        *,
        version: str = "3.1",
        path: str | Path | None = None,
        dataset: int = 0,
        spillover: pd.DataFrame | None = None,
    ) -> None:
        self.events = events
        self.channels = channels
        self.keywords = keywords
        self.version = version
        self.path = Path(path) if path is not None else None
        self.dataset = dataset
        self.spillover = spillover

    @classmethod
    def from_dataframe(
        cls,
        events: pd.DataFrame,
        *,
        markers: dict[str, str] | None = None,
        spillover: pd.DataFrame | None = None,
        keywords: dict[str, str] | None = None,
    ) -> "Sample":
        """Build a sample in memory from a DataFrame whose columns are ``$PnN`` names."""
        markers = markers or {}
        channels = pd.DataFrame(
            {
                "pnn": [str(c) for c in events.columns],
                "pns": [markers.get(str(c), "") for c in events.columns],
                "bits": 32,
                "range": [float(np.nanmax(events[c].to_numpy())) if len(events) else 0.0
                          for c in events.columns],
                "decades": 0.0,
                "offset": 0.0,
                "gain": 1.0,
            }
        )
        return cls(events, channels, dict(keywords or {}), spillover=spillover)

    @property
    def n_events(self) -> int:
        """Number of events (rows of :attr:`events`)."""
        return len(self.events)

    @cached_property
    def sha256(self) -> str | None:
        """SHA-256 of the whole file, computed on first use (``None`` in memory)."""
        if self.path is None:
            return None
        digest = hashlib.sha256()
        with open(self.path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    @property
    def markers(self) -> dict[str, str]:
        """``$PnN`` → ``$PnS`` for channels that carry a stain name."""
        return {n: s for n, s in zip(self.channels.pnn, self.channels.pns) if s}

    def channel(self, name: str) -> str:
        """The ``$PnN`` of a channel given by its ``$PnN`` or its ``$PnS`` (case-insensitive).

        Raises
        ------
        ChannelNotFoundError
            When no channel has that name or stain.
        """
        wanted = name.strip().lower()
        for pnn, pns in zip(self.channels.pnn, self.channels.pns):
            if pnn.lower() == wanted or (pns and pns.lower() == wanted):
                return pnn
        where = f" in {self.path}" if self.path else ""
        raise ChannelNotFoundError(
            f"no channel named {name!r}{where}; channels are "
            + ", ".join(f"{n} ({s})" if s else n for n, s in zip(self.channels.pnn, self.channels.pns))
        )

    def __repr__(self) -> str:
        src = self.path.name if self.path else "in memory"
        return f"Sample({src!r}, FCS {self.version}, {self.n_events} events × {len(self.channels)} channels)"
