"""Shared fixtures: where the real-file corpus is, and skipping when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# The same generated examples on every run: a property test that finds a bug fails
# every time (reproducibly), not on one CI run in twenty. Explore more locally with
# HYPOTHESIS_PROFILE=explore.
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("CYTOKIT_CORPUS", REPO.parent / "shared" / "fcs_corpus"))
CORPUS_REASON = f"shared FCS corpus not found at {CORPUS} (set CYTOKIT_CORPUS)"


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not (CORPUS / "EXPECTED.tsv").exists():
        pytest.skip(CORPUS_REASON)
    return CORPUS
