"""The ``cytokit`` command: argument parsing only; the work is done by the public API.

Heavy libraries are imported inside the commands, so ``cytokit --help`` is fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence

from . import __version__


def _inspect(args: argparse.Namespace) -> int:
    import warnings

    from .errors import CytokitError
    from .fcs import FCSWarning, list_datasets, read_fcs

    failed = 0
    reports = []
    for path in args.files:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", FCSWarning)
                datasets = list_datasets(path)
                sample = read_fcs(path, dataset=args.dataset)
        except CytokitError as exc:
            failed += 1
            print(f"cytokit inspect: error: {exc}", file=sys.stderr)
            reports.append({"file": str(path), "error": str(exc)})
            continue
        kw = sample.keywords
        reports.append(
            {
                "file": str(path),
                "version": sample.version,
                "cytometer": kw.get("$CYT", ""),
                "dataset": sample.dataset,
                "n_datasets": len(datasets),
                "n_events": sample.n_events,
                "spillover": sample.spillover is not None,
                "channels": [
                    {"pnn": r.pnn, "pns": r.pns, "range": r.range, "decades": r.decades, "gain": r.gain}
                    for r in sample.channels.itertuples()
                ],
                "warnings": list(dict.fromkeys(str(w.message) for w in caught)),  # TEXT is parsed twice
            }
        )
    if args.json:
        json.dump(reports, sys.stdout, indent=2)
        print()
    else:
        for report in reports:
            if "error" not in report:  # failed files were reported on stderr as they came
                _print_inspect(report)
    return 1 if failed else 0


def _print_inspect(report: dict) -> None:
    print(f"{report['file']}")
    print(
        f"  FCS {report['version']}  cytometer: {report['cytometer'] or '-'}  events: {report['n_events']}"
        f"  data sets: {report['n_datasets']}  spillover: {'yes' if report['spillover'] else 'no'}"
    )
    width = max([len(c["pnn"]) for c in report["channels"]] + [3])
    swidth = max([len(c["pns"]) for c in report["channels"]] + [3])
    print(f"  {'PnN':<{width}}  {'PnS':<{swidth}}  {'range':>10}  {'decades':>7}  {'gain':>6}")
    for c in report["channels"]:
        print(f"  {c['pnn']:<{width}}  {c['pns'] or '-':<{swidth}}  {c['range']:>10g}  {c['decades']:>7g}  {c['gain']:>6g}")
    for warning in report["warnings"]:
        print(f"  warning: {warning}")


def _simulate(args: argparse.Namespace) -> int:
    from .simulate import simulate_cohort

    try:
        sheet = simulate_cohort(
            args.out_dir, patients=args.patients, events=args.events, layout=args.layout, seed=args.seed
        )
    except ValueError as exc:
        print(f"cytokit simulate: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.patients * 4} FCS files, truth and the sample sheet {sheet}")
    return 0


def _run(args: argparse.Namespace) -> int:
    import shutil
    import time

    from .batch import StrictFailure
    from .errors import CytokitError, MetadataError, OutputError
    from .experiment import Experiment
    from .metadata import ISOTYPE, list_fcs
    from .gating.load import load_template
    from .outputs import LOCK, check_writable, lock_folder, run_info, write_outputs

    started = time.perf_counter()
    out = Path(args.out)
    created = not out.exists()
    try:
        if args.samples is None and not list_fcs(args.fcs_dir):  # a sheet may name files in subfolders
            raise MetadataError(f"no FCS files (.fcs/.lmd) in {args.fcs_dir}; subfolders are not searched "
                                "(a --samples sheet may name files in them)")
        template = load_template(args.template)
        if args.anndata:
            from .anndata_export import population_path

            population_path(template, args.anndata)  # a population the template lacks: a usage error now
        problem = _out_problem(args)
        if problem:
            raise OutputError(problem)
        # Before any FCS file is read: a folder we cannot write, or another run's, is a usage error.
        check_writable(out)
        lock = lock_folder(out)  # noqa: F841 - held until this process exits
        experiment = Experiment.from_folder(
            args.fcs_dir, template=args.template, samples=args.samples, pattern=args.pattern,
            baseline=args.baseline, followup=args.followup,
        )
    except CytokitError as exc:  # template, sheet, --out or --anndata: usage errors
        print(f"cytokit run: error: {exc}", file=sys.stderr)
        if created and out.is_dir() and {p.name for p in out.iterdir()} <= {LOCK}:
            shutil.rmtree(out)  # a usage error leaves no empty output folder behind
        return 2
    bad = experiment.samples[experiment.samples["status"] == "error"]
    if args.strict and len(bad):  # a metadata error is a failed file too
        row = bad.iloc[0]
        print(f"cytokit run: --strict: stopped before the analysis: {row.file}: {row.error}", file=sys.stderr)
        return 1
    prepared = time.perf_counter()
    try:
        results = experiment.run(workers=args.workers, dask=args.dask, cache_dir=Path(args.out) / ".cache",
                                 progress=not args.quiet, strict=args.strict, figures=not args.no_plots)
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
    except CytokitError as exc:
        print(f"cytokit run: error: {exc}", file=sys.stderr)
        return 2
    analysed = time.perf_counter()
    source = args.samples or (args.pattern and f"pattern {args.pattern}") or str(Path(args.fcs_dir) / "samples.csv")
    info = run_info(template_path=experiment.template_path, command=sys.argv, samples_source=str(source),
                    timings={"prepare": prepared - started, "analyse": analysed - prepared, **results.timings})
    try:
        population = None if args.anndata is None else (args.anndata or results._quantified_population())
        written = write_outputs(results, args.out, run_info=info, plots=not args.no_plots, anndata=population)
    except OutputError as exc:
        print(f"cytokit run: error: {exc}", file=sys.stderr)
        return 1
    failed = results.samples[results.samples["status"] == "error"]
    unpaired = results.samples[results.samples["status"] == "unpaired"]
    n_paired = results.paired["patient"].nunique() if len(results.paired) else 0
    if not args.quiet:
        print(f"{len(results.samples)} files: {len(results.samples) - len(failed)} analysed, "
              f"{len(failed)} failed, {len(unpaired)} unpaired; {n_paired} paired patients")
        for row in failed.itertuples():
            print(f"  failed: {row.file}: {row.error}", file=sys.stderr)
        for row in unpaired.itertuples():
            print(f"  unpaired: {row.file}: {row.error}", file=sys.stderr)
    usable = results.samples[results.samples["status"] != "error"]
    if not n_paired and (usable["stain"] != ISOTYPE).any():  # labels are normalised (metadata)
        timepoints = ", ".join(sorted(set(usable["timepoint"].astype(str))))
        print(f"cytokit run: warning: no patient could be paired: {len(unpaired)} files unpaired, "
              f"{len(failed)} failed (timepoints found: {timepoints}; --baseline {args.baseline}, "
              f"--followup {args.followup}); paired.csv and cohort.csv are empty", file=sys.stderr)
    if not args.quiet:
        print(f"results in {args.out}" + (f"; report: {written['report.html']}" if "report.html" in written else ""))
    never = _failed_everywhere(results.populations)
    for population, (n_files, example) in never.items():
        print(f"cytokit run: error: population {population}: the gate failed in all {n_files} files "
              f"({example})", file=sys.stderr)
    return 1 if len(failed) or never else 0


def _failed_everywhere(populations) -> dict[str, tuple[int, str]]:
    """Populations whose gate failed in every file that has them: ``{path: (files, first file's flag)}``."""
    out = {}
    flags = populations["flag"].fillna("").astype(str)
    for path, rows in populations.assign(flag=flags).groupby("population", sort=False):
        if len(rows) and rows["flag"].str.startswith("gate failed").all():
            first = rows.iloc[0]
            out[str(path)] = (len(rows), f"{first['file']}: {first['flag']}")
    return out


def _out_problem(args: argparse.Namespace) -> str | None:
    """Why ``--out`` cannot be used (a file; the FCS folder; an input it would overwrite), or None."""
    from .experiment import Results

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        return f"--out {out} is a file, not a folder"
    if out.resolve() == Path(args.fcs_dir).resolve():
        return f"--out {out} is the FCS folder; the outputs (samples.csv, ...) would overwrite its files"
    outputs = {out / name for name in ("run.json", "report.html")}
    outputs |= {out / f"{table}.{ext}" for table in Results.TABLES for ext in ("csv", "parquet")}
    outputs = {path.resolve() for path in outputs}
    for given in (args.samples, args.template):
        if given and Path(given).resolve() in outputs:
            return f"--out {out} would overwrite the input {given}; choose another output folder"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a regular file, or no permission
        return f"--out {out}: cannot use it as the output folder: {exc.strerror or exc}"
    return None


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _gate(args: argparse.Namespace) -> int:
    import warnings

    from .errors import CytokitError
    import pandas as pd

    from .fcs import FCSWarning, read_fcs
    from .gating.load import load_template

    if args.export_gatingml:
        target = Path(args.export_gatingml)
        if target.is_dir() or not target.parent.is_dir():
            why = "is a folder" if target.is_dir() else f"is in a folder that does not exist ({target.parent})"
            print(f"cytokit gate: error: --export-gatingml {target} {why}; give a file path", file=sys.stderr)
            return 2
    try:
        template = load_template(args.template)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FCSWarning)
            sample = read_fcs(args.file)
            control = read_fcs(args.control) if args.control else None
        channels = template.resolve_channels(sample)
        control_result = None
        if control is not None:
            control_result = template.apply(
                control, is_control=True, channels=template.resolve_channels(control, reference=channels))
        result = template.apply(sample, control=control_result, channels=channels,
                                is_control=control is None)
        print(result.counts().to_string(index=False))
        if template.markers:
            from .stats import quantify

            meta = {"file": Path(args.file).name, "patient": "", "timepoint": "", "stain": "stained"}
            rows = quantify(result, control_result, meta=meta, is_control=control is None,
                            isotype_meta={**meta, "file": Path(args.control).name} if control is not None else None)
            columns = ["marker", "population", "n_events", "median", "pct_pos", "threshold", "isotype_pct_pos",
                       "flag"]
            print()
            print(pd.DataFrame(rows)[columns].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        if args.export_gatingml:
            path = result.to_gateset().write(args.export_gatingml)
            print(f"gates as fitted for {args.file} written to {path}")
    except CytokitError as exc:
        print(f"cytokit gate: error: {exc}", file=sys.stderr)
        return 1
    return 0


def _compare(args: argparse.Namespace) -> int:
    import warnings

    from ._files import write_atomic
    from .agreement import compare, plot_f1, read_controls, read_mapping, summarise
    from .errors import CytokitError
    from .fcs import FCSWarning
    from .gating.load import load_template
    from .manual import read_manual

    files = [Path(f) for f in args.files]
    out = Path(args.out)
    try:
        if len(files) == 1 and files[0].is_dir():
            from .metadata import list_fcs

            files = list_fcs(files[0])
        missing = [str(f) for f in files if not f.is_file()]
        if missing or not files:
            raise FileNotFoundError(f"no such FCS file(s): {', '.join(missing)}" if missing else
                                    f"no FCS files (.fcs/.lmd) in {args.files[0]}")
        if out.exists() and not out.is_dir():
            raise FileExistsError(f"--out {out} is a file, not a folder")
        template = load_template(args.template)
        mapping = read_mapping(args.map) if args.map else None
        controls = read_controls(args.controls) if args.controls else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FCSWarning)
            manual = read_manual(args.manual, files)
            table = compare(files, template, manual, mapping=mapping, controls=controls, strict=False)
    except (CytokitError, OSError) as exc:
        print(f"cytokit compare: error: {exc}", file=sys.stderr)
        return 2
    summary = summarise(table)
    write_atomic(out / "compare.csv", table.to_csv(index=False))
    write_atomic(out / "compare_summary.csv", summary.to_csv(index=False))
    import io

    buffer = io.BytesIO()
    plot_f1(table).savefig(buffer, format="png", dpi=120)
    write_atomic(out / "compare_f1.png", buffer.getvalue())
    failed = table[table["status"] == "error"]
    paired = table[table["status"] == "paired"]
    print(f"{table['file'].nunique()} files: {len(failed)} failed; {len(paired)} paired populations, "
          f"{int((table['status'] == 'unpaired').sum())} unpaired rows")
    if len(summary):
        print(summary[["population", "n_files", "f1_median", "f1_worst", "f1_parent_median",
                       "f1_parent_worst"]].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for row in failed.itertuples():
        print(f"  failed: {row.file}: {row.note}", file=sys.stderr)
    print(f"results in {out}: compare.csv, compare_summary.csv, compare_f1.png")
    return 1 if len(failed) else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cytokit", description="Flow cytometry marker analysis.")
    parser.add_argument("--version", action="version", version=f"cytokit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    inspect = commands.add_parser("inspect", help="describe FCS files: version, events, channels, spillover")
    inspect.add_argument("files", nargs="+", metavar="FILE")
    inspect.add_argument("--dataset", type=int, default=0, help="data set along $NEXTDATA (default 0)")
    inspect.add_argument("--json", action="store_true", help="machine-readable output")
    inspect.set_defaults(func=_inspect)

    run = commands.add_parser(
        "run", help="analyse a folder of FCS files: gate, quantify, pair, summarise",
        epilog="exit status: 0 when every file was analysed, 1 when some failed (listed in samples.csv) or "
               "a population's gate failed in every file, "
               "2 for usage errors (bad template or sheet, no FCS files in FCS_DIR, unusable --out or "
               "--dask)")
    run.add_argument("fcs_dir", metavar="FCS_DIR")
    run.add_argument("--template", required=True, help="gating template (YAML, Gating-ML, .wsp, openCyto CSV)")
    meta = run.add_mutually_exclusive_group()
    meta.add_argument("--samples", metavar="SHEET.csv", help="sample sheet: file,patient,timepoint,stain")
    meta.add_argument("--pattern", help="file-name pattern, e.g. '{patient}_{timepoint}_{stain}.fcs'")
    run.add_argument("--baseline", default="C2D1", help="baseline timepoint label (default C2D1)")
    run.add_argument("--followup", default="C2D8", help="follow-up timepoint label (default C2D8)")
    run.add_argument("--out", required=True, help="output folder")
    run.add_argument("--workers", type=_positive_int, default=os.cpu_count() or 1,
                     help="worker processes (default: cores)")
    run.add_argument("--dask", metavar="ADDRESS", help="dask.distributed scheduler address, or 'local'")
    run.add_argument("--strict", action="store_true", help="stop at the first failed file")
    run.add_argument("--no-plots", action="store_true",
                     help="skip plots/ and report.html (removing those of an earlier run in --out)")
    run.add_argument("--anndata", nargs="?", const="", metavar="POPULATION",
                     help="also write OUT/events.h5ad: the events of POPULATION (default: the markers' "
                          "population), at most 10,000 per file, for scanpy/pytometry")
    run.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    run.set_defaults(func=_run)

    gate = commands.add_parser("gate", help="gate one file with a template; export the fitted gates")
    gate.add_argument("file", metavar="FILE")
    gate.add_argument("--template", required=True)
    gate.add_argument("--control", metavar="ISO_FILE", help="the matched isotype tube")
    gate.add_argument("--export-gatingml", metavar="OUT.xml", help="write the gates as fitted as Gating-ML 2.0")
    gate.set_defaults(func=_gate)

    cmp = commands.add_parser(
        "compare", help="compare cytokit's populations with a manual gating of the same files (F1 per population)",
        epilog="writes OUT/compare.csv, OUT/compare_summary.csv, OUT/compare_f1.png; exit status: 0 when every "
               "file was compared, 1 when some failed (listed in compare.csv, status error), 2 for usage errors")
    cmp.add_argument("files", nargs="+", metavar="FCS_DIR_OR_FILES")
    cmp.add_argument("--template", required=True, help="gating template (YAML, Gating-ML, .wsp, openCyto CSV)")
    cmp.add_argument("--manual", required=True,
                     help="the manual gating: a folder of <file stem>.npz, a FlowJo .wsp or a Gating-ML .xml")
    cmp.add_argument("--map", metavar="MAP.csv", help="CSV cytokit,manual: population pairs (default: by name)")
    cmp.add_argument("--controls", metavar="DESIGN.csv", help="CSV with columns file,control_file")
    cmp.add_argument("--out", required=True, help="output folder")
    cmp.set_defaults(func=_compare)

    from .learn.cli import add_parser as add_learn  # the parser entry and handler live with learn

    add_learn(commands)

    simulate = commands.add_parser("simulate", help="write a synthetic CLL cohort with ground truth")
    simulate.add_argument("out_dir", metavar="OUT_DIR")
    simulate.add_argument("--patients", type=int, default=6, help="number of patients (default 6)")
    simulate.add_argument("--events", type=int, default=10_000, help="events per FCS file (default 10000)")
    simulate.add_argument("--layout", choices=["calibur", "modern"], default="calibur",
                          help="calibur: FCS 2.0 log channels; modern: FCS 3.1 float, uncompensated")
    simulate.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    simulate.set_defaults(func=_simulate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cytokit`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
    except BrokenPipeError:  # `cytokit inspect ... | head`: stop quietly, as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a writer whose reader left
    except KeyboardInterrupt:  # Ctrl-C anywhere else: every output is written atomically, so none is half
        print(f"\ncytokit {args.command}: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
