"""Exceptions raised by cytokit.

All of them derive from :class:`CytokitError`, so ``except cytokit.CytokitError``
catches anything cytokit raises on purpose::

    CytokitError
    ├── FCSError(ValueError)            unreadable or malformed FCS file
    ├── TemplateError(ValueError)       invalid gating template (file, line, key)
    ├── ChannelNotFoundError(KeyError)  a channel role or marker not in a file
    ├── GateError                       a gate could not be fitted or applied
    ├── PairingError(ValueError)        sample sheet / pairing problems
    ├── MetadataError(ValueError)       sample sheet or file-name pattern problems
    └── OutputError(OSError)            the output folder cannot be written, or is in use

Every message names the file, channel or template key it is about, and what to do.
"""

from __future__ import annotations


class CytokitError(Exception):
    """Base class of every error cytokit raises on purpose."""


class FCSError(CytokitError, ValueError):
    """An FCS file cannot be read: it is truncated, malformed or unsupported."""


class TemplateError(CytokitError, ValueError):
    """A gating template is invalid."""


class ChannelNotFoundError(CytokitError, KeyError):
    """A channel, marker or channel role is not present in a sample."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class GateError(CytokitError):
    """A gate cannot be fitted or applied."""


class MetadataError(CytokitError, ValueError):
    """A sample sheet or file-name pattern is unusable."""


class PairingError(MetadataError):
    """Samples cannot be paired (missing isotype control, duplicate tube, ...)."""


class OutputError(CytokitError, OSError):
    """An output folder cannot be written (read-only, full) or another run holds it."""


__all__ = [
    "CytokitError",
    "FCSError",
    "TemplateError",
    "ChannelNotFoundError",
    "GateError",
    "MetadataError",
    "PairingError",
    "OutputError",
]
