"""cytokit: flow cytometry marker analysis, from FCS files to paired cohort statistics.

The public API is listed in ``__all__``. Names are imported on first use, so
``import cytokit`` (and the ``cytokit`` command) start without pandas,
matplotlib, FlowKit or scikit-learn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import attach

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "CytokitError": "errors",
    "FCSError": "errors",
    "TemplateError": "errors",
    "ChannelNotFoundError": "errors",
    "GateError": "errors",
    "MetadataError": "errors",
    "PairingError": "errors",
    "OutputError": "errors",
    "Sample": "sample",
    "read_fcs": "fcs",
    "list_datasets": "fcs",
    "write_fcs": "fcs",
    "read_keywords": "fcs",
    "load_template": "gating.load",
    "Template": "gating.template",
    "GatingResult": "gating.result",
    "Experiment": "experiment",
    "Results": "experiment",
    "read_sample_sheet": "metadata",
    "read_panel": "panel",
    "simulate_cohort": "simulate",
    "compensate": "compensation",
    "make_transform": "transforms",
    "shift_metrics": "shift",
    "cohort_summary": "cohort",
    "compare": "agreement",
    "learn_template": "learn",
}

__all__ = sorted([*_EXPORTS, "__version__"])


__getattr__, __dir__ = attach(__name__, _EXPORTS)


if TYPE_CHECKING:  # pragma: no cover
    from .agreement import compare  # noqa: F401
    from .learn import learn_template  # noqa: F401
    from .errors import (  # noqa: F401
        ChannelNotFoundError, CytokitError, FCSError, GateError, MetadataError, OutputError, PairingError,
        TemplateError,
    )
    from .compensation import compensate  # noqa: F401
    from .experiment import Experiment, Results  # noqa: F401
    from .fcs import list_datasets, read_fcs, read_keywords, write_fcs  # noqa: F401
    from .gating.load import load_template  # noqa: F401
    from .gating.result import GatingResult  # noqa: F401
    from .gating.template import Template  # noqa: F401
    from .metadata import read_sample_sheet  # noqa: F401
    from .panel import read_panel  # noqa: F401
    from .cohort import cohort_summary  # noqa: F401
    from .sample import Sample  # noqa: F401
    from .shift import shift_metrics  # noqa: F401
    from .simulate import simulate_cohort  # noqa: F401
    from .transforms import make_transform  # noqa: F401
