"""Events of a population as AnnData: the documented fields, the right events, an .h5ad anndata reads back."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

anndata = pytest.importorskip("anndata", reason="the anndata extra is not installed (pip install 'cytokit[anndata]')")

from cytokit.cli import main  # noqa: E402
from cytokit.experiment import Experiment  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = str(REPO / "gating_templates" / "cll_cd19_7aad.yaml")
CD19 = "Lymphocytes/Singlets/Viable/CD19+"


@pytest.fixture(scope="module")
def one_patient(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fcs")
    for path in (REPO / "sample_fcs" / "modern").glob("CLL001_*.fcs"):
        shutil.copy(path, folder / path.name)
    return folder


@pytest.fixture(scope="module")
def results(one_patient):
    return Experiment.from_folder(one_patient, template=TEMPLATE).run()


def test_the_population_events_with_their_fields(results):
    adata = results.to_anndata(max_events_per_file=700)
    counts = results.populations[results.populations["population"] == CD19].set_index("file")["count"]
    assert adata.n_obs == sum(min(700, n) for n in counts)
    assert list(adata.obs.columns[:5]) == ["file", "patient", "timepoint", "stain", "event"]
    assert adata.obs["CD19+"].all() and set(adata.obs["patient"]) == {"CLL001"}
    assert dict(zip(adata.var["channel"], adata.var["marker"]))["PE-A"] == "LAG3"  # not the isotype's IgG1
    assert adata.uns["cytokit"]["population"] == CD19
    # X is the gating scale, the "scale" layer the compensated values, of the very events named in obs
    first = adata[adata.obs["file"] == "CLL001_C2D1_stained.fcs"]
    result = results.plot.gating("CLL001_C2D1_stained.fcs")
    events = first.obs["event"].to_numpy()
    pe = list(adata.var_names).index("PE-A")
    np.testing.assert_allclose(first.X[:, pe], result.transformed("PE-A", events), rtol=1e-6)
    np.testing.assert_allclose(first.layers["scale"][:, pe], result.scale["PE-A"].to_numpy()[events], rtol=1e-6)


def test_the_subsample_is_the_same_on_every_call(results):
    a = results.to_anndata(max_events_per_file=300)
    b = results.to_anndata(max_events_per_file=300)
    assert list(a.obs_names) == list(b.obs_names)
    assert results.to_anndata(max_events_per_file=None).n_obs > a.n_obs


def test_a_negative_event_cap_is_refused_by_name(results):
    from cytokit.errors import CytokitError

    with pytest.raises(CytokitError, match=r"max_events_per_file must be a whole number >= 0 or None, got -5"):
        results.to_anndata(population="CD19+", max_events_per_file=-5)


def test_run_writes_an_h5ad_that_anndata_reads(one_patient, tmp_path):
    assert main(["run", str(one_patient), "--template", TEMPLATE, "--out", str(tmp_path), "--quiet",
                 "--no-plots", "--anndata"]) == 0
    adata = anndata.read_h5ad(tmp_path / "events.h5ad")
    assert adata.n_obs > 0 and "scale" in adata.layers and adata.obs["CD19+"].all()
    # a later run without --anndata removes it: it would describe other results
    assert main(["run", str(one_patient), "--template", TEMPLATE, "--out", str(tmp_path), "--quiet",
                 "--no-plots"]) == 0
    assert not (tmp_path / "events.h5ad").exists()


def test_an_unknown_population_is_a_usage_error(one_patient, tmp_path, capsys):
    code = main(["run", str(one_patient), "--template", TEMPLATE, "--out", str(tmp_path / "o"), "--quiet",
                 "--anndata", "NK cells"])
    assert code == 2 and "'NK cells' is not a population of the template" in capsys.readouterr().err


def test_the_sample_sheets_own_columns_are_in_obs(one_patient, tmp_path):
    """A sheet's response or arm column, what a notebook groups cells by, was left out of obs."""
    sheet = tmp_path / "samples.csv"
    sheet.write_text("file,patient,timepoint,stain,response\n" + "".join(
        f"{p.name},CLL001,{p.name[7:11]},{p.stem[12:]},{'R' if 'C2D1' in p.name else 'NR'}\n"
        for p in sorted(one_patient.glob("*.fcs"))))
    adata = Experiment.from_folder(one_patient, template=TEMPLATE, samples=sheet).run().to_anndata(
        max_events_per_file=50)
    assert adata.obs["response"].dtype == "category"
    by_file = adata.obs.groupby("file", observed=True)["response"].first()
    assert by_file.to_dict() == {f: "R" if "C2D1" in f else "NR" for f in by_file.index}
