"""The output folder always holds one whole run: staged writes, recovery, one run at a time, checked up front."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from cytokit import outputs
from cytokit.cli import main
from cytokit.errors import OutputError
from cytokit.experiment import Experiment

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = str(REPO / "gating_templates" / "cll_cd19_7aad.yaml")
MODERN = REPO / "sample_fcs" / "modern"


@pytest.fixture(scope="module")
def results():
    return Experiment.from_folder(MODERN, template=TEMPLATE).run()


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and ".cache" not in p.parts and p.name != outputs.LOCK}


def test_a_failed_write_leaves_the_previous_run_whole(results, tmp_path, monkeypatch):
    outputs.write_outputs(results, tmp_path, run_info={"run": 1}, plots=False)
    before = _snapshot(tmp_path)
    calls = []
    real = outputs.write_staged

    def disk_full(path, data):
        calls.append(path)
        if len(calls) == 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(outputs, "write_staged", disk_full)
    with pytest.raises(OutputError, match="No space left on device.*previous run's outputs are unchanged"):
        outputs.write_outputs(results, tmp_path, run_info={"run": 2}, plots=False)
    assert len(calls) == 5
    assert _snapshot(tmp_path) == before
    assert not (tmp_path / outputs.STAGING).exists()


def test_staged_files_are_synced_before_the_run_is_published(results, tmp_path, monkeypatch):
    """The staged files are written without an fsync each and synced together: a sync that fails
    (the disk gave out after the writes) leaves the previous run whole, and a run that syncs has
    synced every file it publishes before its marker exists."""
    outputs.write_outputs(results, tmp_path, run_info={"run": 1}, plots=False)
    before = _snapshot(tmp_path)
    real = outputs.sync_files
    synced = []

    def failing(paths):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(outputs, "sync_files", failing)
    with pytest.raises(OutputError, match="Input/output error.*previous run's outputs are unchanged"):
        outputs.write_outputs(results, tmp_path, run_info={"run": 2}, plots=False)
    assert _snapshot(tmp_path) == before
    assert not (tmp_path / outputs.STAGING).exists()

    def recording(paths):
        paths = list(paths)
        assert not (tmp_path / outputs.MARKER).exists()
        synced.extend(p.name for p in paths)
        real(paths)

    monkeypatch.setattr(outputs, "sync_files", recording)
    outputs.write_outputs(results, tmp_path, run_info={"run": 2}, plots=False)
    published = {p.name for p in tmp_path.iterdir() if p.is_file() and p.name != outputs.LOCK}
    assert published and published <= set(synced)


def test_a_run_killed_while_moving_its_files_in_is_finished_by_the_next(results, tmp_path, monkeypatch):
    reference = tmp_path / "reference"
    outputs.write_outputs(results, reference, run_info={"run": 2}, plots=False)
    out = tmp_path / "out"
    outputs.write_outputs(results.__class__(**{**vars(results), "cohort": results.cohort.iloc[:0]}), out,
                          run_info={"run": 1}, plots=False)
    moved = []
    real = os.replace

    def killed(src, dst):
        if not (out / outputs.MARKER).exists() or Path(dst).name == outputs.MARKER:
            return real(src, dst)  # still staging (write_atomic renames too)
        if len(moved) == 3:
            raise KeyboardInterrupt  # as a kill between two renames
        moved.append(dst)
        return real(src, dst)

    monkeypatch.setattr(outputs.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        outputs.write_outputs(results, out, run_info={"run": 2}, plots=False)
    assert "a mix of two runs" in (out / outputs.MARKER).read_text()
    monkeypatch.setattr(outputs.os, "replace", real)
    assert outputs.recover(out)
    assert _snapshot(out) == _snapshot(reference)


def test_a_second_run_into_a_held_folder_is_refused(tmp_path, capsys):
    held = outputs.lock_folder(tmp_path)
    try:
        code = main(["run", str(MODERN), "--template", TEMPLATE, "--out", str(tmp_path), "--quiet", "--no-plots"])
    finally:
        held.close()
    assert code == 2
    assert f"in use by another cytokit run (pid {os.getpid()})" in capsys.readouterr().err
    assert not (tmp_path / "samples.csv").exists()


def test_an_unwritable_out_is_refused_before_any_file_is_read(tmp_path, monkeypatch, capsys):
    if os.geteuid() == 0:  # root writes anywhere chmod allows nothing: /proc refuses new files even to root
        out = Path("/proc")
    else:
        out = tmp_path / "ro"
        out.mkdir()
        out.chmod(0o555)

    def no_reading(*args, **kwargs):
        raise AssertionError("the FCS folder was read before --out was checked")

    monkeypatch.setattr(Experiment, "from_folder", no_reading)
    code = main(["run", str(MODERN), "--template", TEMPLATE, "--out", str(out), "--quiet"])
    assert code == 2
    assert f"{out}: cannot write the outputs there" in capsys.readouterr().err


def test_a_folder_of_other_files_is_refused_and_a_run_removes_only_what_it_wrote(results, tmp_path, monkeypatch,
                                                                                   capsys):
    """``--out`` at a folder of the user's own files would overwrite them (``report.html``, figures
    in ``plots/``): refused before any file is read. In an earlier run's folder only the files that
    run wrote (its ``run.json``'s ``outputs``) and this one does not are removed."""
    other = tmp_path / "mine"
    (other / "plots").mkdir(parents=True)
    (other / "plots" / "figure1.png").write_bytes(b"mine")
    (other / "report.html").write_text("mine")

    def no_reading(*args, **kwargs):
        raise AssertionError("the FCS folder was read before --out was checked")

    with monkeypatch.context() as patch:
        patch.setattr(Experiment, "from_folder", no_reading)
        assert main(["run", str(MODERN), "--template", TEMPLATE, "--out", str(other), "--quiet"]) == 2
    assert "holds files that are not a cytokit run's (plots, report.html)" in capsys.readouterr().err
    assert (other / "report.html").read_text() == "mine" and (other / "plots" / "figure1.png").exists()
    out = tmp_path / "out"
    (out / ".hidden").mkdir(parents=True)  # hidden entries (a cache) are no obstacle
    written = outputs.write_outputs(results, out, run_info={"run": 1}, plots=True)
    listed = __import__("json").loads(written["run.json"].read_text())["outputs"]
    assert "report.html" in listed and any(n.startswith("plots/") for n in listed) and listed[-1] == "run.json"
    (out / "plots" / "mine.png").write_bytes(b"mine")  # the user's, added to the run's folder
    outputs.write_outputs(results, out, run_info={"run": 2}, plots=False)
    assert not (out / "report.html").exists() and sorted(p.name for p in (out / "plots").iterdir()) == ["mine.png"]
    (out / "plots" / "mine.png").unlink()
    outputs.write_outputs(results, out, run_info={"run": 3}, plots=True)
    outputs.write_outputs(results, out, run_info={"run": 4}, plots=False)
    assert not (out / "plots").exists()  # every figure gone with --no-plots: no empty folder left
    victim = tmp_path / "victim.txt"  # a run.json naming files outside its folder is not followed there
    victim.write_text("mine")
    (out / "run.json").write_text('{"outputs": ["../victim.txt", "%s"]}' % victim)
    outputs.write_outputs(results, out, run_info={"run": 3}, plots=False)
    assert victim.read_text() == "mine"
