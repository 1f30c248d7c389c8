"""The public API: exactly the exported names, lazily imported, and a light command line."""

from __future__ import annotations

import subprocess
import sys

import cytokit

EXPECTED = {
    "CytokitError", "FCSError", "TemplateError", "ChannelNotFoundError", "GateError", "MetadataError",
    "PairingError", "OutputError", "Sample", "read_fcs", "read_keywords", "list_datasets", "write_fcs", "load_template",
    "Template", "GatingResult", "Experiment", "Results", "read_sample_sheet", "read_panel", "simulate_cohort", "compensate",
    "make_transform", "shift_metrics", "cohort_summary", "compare", "learn_template", "__version__",
}


def test_exported_names_are_exactly_the_public_ones():
    assert set(cytokit.__all__) == EXPECTED
    for name in cytokit.__all__:
        assert getattr(cytokit, name) is not None


def test_error_hierarchy():
    assert issubclass(cytokit.FCSError, (cytokit.CytokitError, ValueError))
    assert issubclass(cytokit.ChannelNotFoundError, KeyError)
    assert issubclass(cytokit.PairingError, cytokit.MetadataError)


def test_cli_import_does_not_pull_heavy_libraries():
    code = ("import sys, cytokit.cli; heavy = {'pandas', 'matplotlib', 'flowkit', 'sklearn', 'scipy', 'numpy'}; "
            "print(sorted(heavy & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
