"""``cytokit run``: its options and the command, a thin layer over :class:`cytokit.Experiment`
and :func:`cytokit.outputs.write_outputs` (the other commands are in :mod:`cytokit.cli`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def add_panel_option(command) -> None:
    """``--panel CSV``, shared by ``run``, ``gate``, ``compare`` and ``learn``."""
    command.add_argument("--panel", metavar="PANEL.csv",
                         help="panel sheet: CSV channel,marker (optional file: a name or glob) giving each "
                              "detector's marker, over $PnS; replaces the template's panel key")


def add_run_parser(commands) -> None:
    """The ``run`` subcommand and its options, on ``cytokit``'s subparsers."""
    run = commands.add_parser(
        "run", help="analyse a folder of FCS files: gate, quantify, pair, summarise",
        epilog="exit status: 0 when every file was analysed, 1 when some failed (listed in samples.csv) or "
               "a population's gate failed in every file, "
               "2 for usage errors (bad template or sheet, no FCS files in FCS_DIR, unusable --out or "
               "--dask)")
    run.add_argument("fcs_dir", metavar="FCS_DIR")
    run.add_argument("--template", required=True, help="gating template (YAML, Gating-ML, .wsp, openCyto CSV)")
    add_panel_option(run)
    meta = run.add_mutually_exclusive_group()
    meta.add_argument("--samples", metavar="SHEET.csv", help="sample sheet: file,patient,timepoint,stain (optional control_file: a stained tube's control)")
    meta.add_argument("--pattern", help="file-name pattern, e.g. '{patient}_{timepoint}_{stain}.fcs'")
    run.add_argument("--baseline", help="baseline timepoint label (default C2D1)")
    run.add_argument("--followup", help="follow-up timepoint label (default C2D8)")
    run.add_argument("--compare", action="append", metavar="BASELINE:FOLLOWUP",
                     help="a pair of timepoints to compare, e.g. C1D1:C1D8; repeat for more (instead of "
                          "--baseline/--followup)")
    run.add_argument("--group-by", metavar="COLUMN",
                     help="a sample-sheet column (e.g. response): compare the patients' changes between its "
                          "groups (OUT/groups.csv)")
    run.add_argument("--out", required=True, help="output folder")
    run.add_argument("--workers", type=_positive_int, help="worker processes (default: cores)")
    run.add_argument("--dask", metavar="ADDRESS", help="dask.distributed scheduler address, or 'local' "
                     "(a cluster of one worker per core; --workers is not used)")
    run.add_argument("--strict", action="store_true", help="stop at the first failed file")
    run.add_argument("--no-plots", action="store_true",
                     help="skip plots/ and report.html (removing those of an earlier run in --out)")
    run.add_argument("--anndata", nargs="?", const="", metavar="POPULATION",
                     help="also write OUT/events.h5ad: the events of POPULATION (default: the markers' "
                          "population, or the nearest holding all of theirs), at most 10,000 per file, for scanpy/pytometry")
    run.add_argument("--flowjo", action="store_true",
                     help="also write OUT/gates.wsp: a FlowJo 10 workspace, each file with its own fitted gates, "
                          "transforms and compensation")
    run.add_argument("--manual", metavar="MANUAL",
                     help="also compare the run's populations with a manual gating of its files (a folder of "
                          "<file stem>.npz, a FlowJo .wsp or a Gating-ML .xml): OUT/compare.csv, "
                          "compare_summary.csv, compare_f1.png and a section of report.html")
    run.add_argument("--map", metavar="MAP.csv",
                     help="with --manual: CSV cytokit,manual of population pairs (default: by name)")
    run.add_argument("--quiet", action="store_true", help="no progress or summary (failed files are still named)")
    run.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import time

    from .agreement import read_mapping
    from .batch import StrictFailure
    from .controls import is_control
    from .errors import CytokitError, MetadataError, OutputError
    from .experiment import Experiment
    from .gating.load import load_template
    from .metadata import DEFAULT_PATTERN, list_fcs
    from .outputs import check_writable, lock_folder, run_info, write_outputs

    started = time.perf_counter()
    out = Path(args.out)
    created = not out.exists()
    try:
        # the sheet Experiment.from_folder reads when none is given: the folder's own, unless a pattern is
        own_sheet = Path(args.fcs_dir, "samples.csv") if args.pattern is None else None
        own_sheet = own_sheet if own_sheet is not None and own_sheet.is_file() else None
        if args.samples is None and own_sheet is None and not list_fcs(args.fcs_dir):  # a sheet may name subfolders' files
            raise MetadataError(f"no FCS files (.fcs/.lmd) in {args.fcs_dir}; subfolders are not searched "
                                "(a --samples sheet may name files in them)")
        template = load_template(args.template, panel=args.panel)
        if args.anndata:
            from .anndata_export import population_path

            population_path(template, args.anndata)  # a population the template lacks: a usage error now
        problem = _out_problem(args)
        if problem:
            raise OutputError(problem)
        if args.map and not args.manual:
            raise MetadataError("--map pairs populations with a manual gating: give --manual too")
        mapping = read_mapping(args.map) if args.map else None
        # Before any FCS file is read: a folder we cannot write, or another run's, is a usage error.
        check_writable(out)
        lock = lock_folder(out)  # noqa: F841 - held until this process exits
        experiment = Experiment.from_folder(
            args.fcs_dir, template=args.template, samples=args.samples, pattern=args.pattern,
            baseline=args.baseline, followup=args.followup, compare=args.compare, group_by=args.group_by,
            panel=args.panel,
        )
        manual = _open_manual(args.manual, experiment.samples) if args.manual else None
    except CytokitError as exc:  # template, sheet, --out, --anndata, --manual or --map: usage errors
        print(f"cytokit run: error: {exc}", file=sys.stderr)
        _remove_if_empty(out, created)
        return 2
    bad = experiment.samples[experiment.samples["status"] == "error"]
    if args.strict and len(bad):  # a metadata error is a failed file too
        row = bad.iloc[0]
        print(f"cytokit run: --strict: stopped before the analysis: {row.file}: {row.error}", file=sys.stderr)
        _remove_if_empty(out, created)
        return 1
    prepared = time.perf_counter()
    from .batch import keep_freed_memory

    keep_freed_memory()  # this process only runs the analysis (and forks the workers, which inherit it)
    try:
        if args.dask and args.workers is not None:
            print(f"cytokit run: warning: --workers {args.workers} is not used with --dask: the cluster's workers "
                  "run the groups", file=sys.stderr)
        results = experiment.run(workers=args.workers or os.cpu_count() or 1, dask=args.dask,
                                 cache_dir=Path(args.out) / ".cache",
                                 progress=not args.quiet, strict=args.strict, figures=not args.no_plots,
                                 prune_cache=True)
    except StrictFailure as exc:
        print(f"cytokit run: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        import multiprocessing

        print(f"\ncytokit run: interrupted; the patients already analysed are cached in "
              f"{Path(args.out) / '.cache'}: run the same command again to go on", file=sys.stderr, flush=True)
        sys.stdout.flush()
        # Stop the workers now, and leave without waiting on the process pool's threads: a worker ended
        # while it sends a result leaves them waiting forever. Cache entries are written atomically,
        # so a group cut short leaves none.
        for worker in multiprocessing.active_children():
            worker.terminate()
        os._exit(130)
    except CytokitError as exc:  # --dask: no scheduler there
        print(f"cytokit run: error: {exc}", file=sys.stderr)
        _remove_if_empty(out, created)
        return 2
    analysed = time.perf_counter()
    source = args.samples or (str(own_sheet) if own_sheet else f"pattern {args.pattern or DEFAULT_PATTERN}")
    info = run_info(template_path=experiment.template_path, panel_path=experiment.panel_path,
                    command=sys.argv, samples_source=str(source),
                    timings={"prepare": prepared - started, "analyse": analysed - prepared, **results.timings})
    agreement = None
    if manual is not None:
        from .report.agreement import AgreementSection

        table = results.compare_manual(manual, mapping=mapping)
        agreement = AgreementSection(table, template=str(experiment.template_path), manual=str(args.manual),
                                     mapping=mapping or {}, controls="the run's (each stained tube's control)")
    try:
        population = None if args.anndata is None else (args.anndata or results._quantified_population())
        written = write_outputs(results, args.out, run_info=info, plots=not args.no_plots, anndata=population,
                                flowjo=args.flowjo, agreement=agreement)
    except OutputError as exc:
        print(f"cytokit run: error: {exc}", file=sys.stderr)
        return 1
    failed = results.samples[results.samples["status"] == "error"]
    unpaired = results.samples[results.samples["status"] == "unpaired"]
    from .results import paired_patients

    n_paired, n_valued = paired_patients(results.paired)
    never = _failed_everywhere(results.populations)
    gate_failed = _gate_failed(results.populations, never)
    if not args.quiet:
        print(f"{len(results.samples)} files: {len(results.samples) - len(failed)} analysed, "
              f"{len(failed)} failed, {len(unpaired)} unpaired"
              + (f", {len(gate_failed)} with a failed gate" if gate_failed else "") + f"; {n_paired} paired patients"
              + (f" ({n_valued} with values: the others' gated populations are empty)" if n_valued < n_paired else ""))
    for row in failed.itertuples():  # an error: said with --quiet too
        print(f"  failed: {row.file}: {row.error}", file=sys.stderr)
    if not args.quiet:
        untimed = unpaired["error"].str.startswith("no timepoint (")  # a study without timepoints: said once
        if untimed.any():
            print(f"  unpaired: {untimed.sum()} file(s): {unpaired.loc[untimed, 'error'].iloc[0]}", file=sys.stderr)
        for row in unpaired[~untimed].itertuples():
            print(f"  unpaired: {row.file}: {row.error}", file=sys.stderr)
        for file, (population, flag) in gate_failed.items():  # its populations below are empty: its values NaN
            print(f"  gate failed: {file}: {population}: {flag.split('; ')[0]}", file=sys.stderr)
    for path, gate in results.pooled.items():  # its files' flags judge each file; the fit itself, once
        if gate.failed_ or gate.warning_:
            print(f"cytokit run: warning: pooled gate {path}: {gate.failed_ or gate.warning_}", file=sys.stderr)
    usable = results.samples[results.samples["status"] != "error"]
    analysed = set(usable["timepoint"].astype(str)) - {""}
    only_failed = sorted(set(failed["timepoint"].astype(str)) - analysed - {""})
    timepoints = ", ".join(sorted(analysed)) + (f"; {', '.join(only_failed)} only in failed files" if only_failed else "")
    asked = (" ".join(f"--compare {b}:{f}" for b, f in experiment.comparisons) if args.compare
             else f"--baseline {experiment.baseline}, --followup {experiment.followup}")
    serving = usable.get("control_of", usable["stain"].map(lambda _: "")).fillna("").astype(str) != ""
    control_timepoints = {str(tp) for tp, tubes in usable.groupby("timepoint")  # controls of other timepoints' tubes
                          if tubes["stain"].map(is_control).all() and serving[tubes.index].any()}
    controls_only = [tp for b, f in experiment.comparisons for tp in (b, f) if tp in control_timepoints]
    if controls_only:  # an unstimulated timepoint named as a baseline: nothing stained to pair
        asked += (f"; {', '.join(dict.fromkeys(controls_only))} holds only control tubes, which serve the "
                  "stained tubes' thresholds and are never paired: compare two timepoints of stained tubes")
    if not experiment.template.markers and len(usable):
        print("cytokit run: note: the template quantifies no marker (it has no markers: section): populations.csv "
              "holds each file's counts; add markers: to compare timepoints (paired.csv and cohort.csv are empty)",
              file=sys.stderr)
    elif len(usable) and not (usable["timepoint"].astype(str) != "").any():  # a pattern without {timepoint}
        print("cytokit run: note: no file has a timepoint (the file-name pattern has no {timepoint}): markers.csv "
              "holds each file's values; nothing is paired (paired.csv and cohort.csv are empty)", file=sys.stderr)
    elif not n_paired and (~usable["stain"].map(is_control)).any():  # labels are normalised (metadata)
        print(f"cytokit run: warning: no patient could be paired: {len(unpaired)} files unpaired, "
              f"{len(failed)} failed (timepoints found: {timepoints}; {asked}); paired.csv and cohort.csv are empty",
              file=sys.stderr)
    elif len(experiment.comparisons) > 1:
        compared = set(zip(results.paired["baseline"], results.paired["followup"]))
        for b, f in experiment.comparisons:
            if (b, f) not in compared:
                only = [tp for tp in (b, f) if tp in controls_only]
                print(f"cytokit run: warning: --compare {b}:{f} paired no patient (timepoints found: "
                      f"{timepoints}" + (f"; {', '.join(only)} holds only control tubes" if only else "") + ")",
                      file=sys.stderr)
    if agreement is not None and not args.quiet:
        rows = agreement.table
        not_compared = rows.loc[rows["status"] == "error", "file"]
        print(f"compared with the manual gating {args.manual}: {rows['file'].nunique() - len(not_compared)} "
              f"files, {len(not_compared)} not compared (compare.csv, status error)")
        for row in agreement.summary.itertuples():
            print(f"  {row.population}: median F1 {row.f1_median:.3f}, worst {row.f1_worst:.3f} "
                  f"({row.n_files} files)")
    if not args.quiet:
        print(f"results in {args.out}" + (f"; report: {written['report.html']}" if "report.html" in written else ""))
    for population, (n_files, example) in never.items():
        print(f"cytokit run: error: population {population}: the gate failed in all {n_files} files "
              f"({example})", file=sys.stderr)
    return 1 if len(failed) or never else 0


def _open_manual(manual: str, samples):
    """The manual gating of ``--manual``, opened on the run's files (a usage error before any is gated)."""
    from .manual import read_manual

    return read_manual(manual, [p for p in samples["path"].astype(str) if p])


def _failed_everywhere(populations) -> dict[str, tuple[int, str]]:
    """Populations whose gate failed in every file that has them: ``{path: (files, first file's flag)}``."""
    out = {}
    flags = populations["flag"].fillna("").astype(str)
    for path, rows in populations.assign(flag=flags).groupby("population", sort=False):
        if len(rows) and rows["flag"].str.startswith("gate failed").all():
            first = rows.iloc[0]
            out[str(path)] = (len(rows), f"{first['file']}: {first['flag']}")
    return out


def _remove_if_empty(out: Path, created: bool) -> None:
    """A run stopped before writing anything leaves no output folder of its own making behind (only
    its lock, and an empty cache folder, are in it)."""
    import shutil

    from .outputs import LOCK

    if created and out.is_dir() and all(p.name == LOCK or (p.is_dir() and not any(p.iterdir()))
                                        for p in out.iterdir()):
        shutil.rmtree(out)


def _gate_failed(populations, never: dict) -> dict[str, tuple[str, str]]:
    """Per file, its first population whose own gate failed (``{file: (path, flag)}``), but for the
    populations that failed in every file (:func:`_failed_everywhere`, reported once)."""
    out: dict[str, tuple[str, str]] = {}
    for row in populations.itertuples():
        flag = str(row.flag) if isinstance(row.flag, str) else ""
        if flag.startswith("gate failed") and str(row.population) not in never:
            out.setdefault(str(row.file), (str(row.population), flag))
    return out


def _out_problem(args: argparse.Namespace) -> str | None:
    """Why ``--out`` cannot be used (a file; the FCS folder; an input it would overwrite), or None."""
    from .experiment import Results

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        return f"--out {out} is a file, not a folder"
    if out.resolve() == Path(args.fcs_dir).resolve():
        return f"--out {out} is the FCS folder; the outputs (samples.csv, ...) would overwrite its files"
    outputs = {out / name for name in ("run.json", "report.html", "compare.csv", "compare_summary.csv")}
    outputs |= {out / f"{table}.{ext}" for table in (*Results.TABLES, "groups") for ext in ("csv", "parquet")}
    outputs = {path.resolve() for path in outputs}
    for given in (args.samples, args.template, args.map):
        if given and Path(given).resolve() in outputs:
            return f"--out {out} would overwrite the input {given}; choose another output folder"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a regular file, or no permission
        return f"--out {out}: cannot use it as the output folder: {exc.strerror or exc}"
    return None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:  # argparse said "invalid _positive_int value"
        raise argparse.ArgumentTypeError(f"a whole number of worker processes, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


