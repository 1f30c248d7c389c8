"""The ``cytokit`` command: argument parsing only; the work is done by the public API.

Heavy libraries are imported inside the commands, so ``cytokit --help`` is fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .cli_run import add_panel_option, add_run_parser


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
                **_spillover_report(sample.spillover),
                "timestep": kw.get("$TIMESTEP", ""),
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


def _spillover_report(matrix) -> dict:
    """The file's spillover matrix as inspect reports it: its keyword, channels and whether it is
    the identity (an Attune's LEGENDplex file: a matrix that compensates nothing)."""
    import numpy as np

    if matrix is None:
        return {}
    return {"spillover_keyword": str(matrix.attrs.get("source", "")).rsplit(": ", 1)[-1],
            "spillover_channels": [str(c) for c in matrix.columns],
            "spillover_identity": bool(np.array_equal(matrix.to_numpy(), np.eye(len(matrix))))}


def _print_inspect(report: dict) -> None:
    print(f"{report['file']}")
    spill = "no"
    if report["spillover"]:
        spill = (f"{report['spillover_keyword']} on {len(report['spillover_channels'])} channels"
                 + (" (the identity: compensates nothing)" if report["spillover_identity"] else ""))
    print(
        f"  FCS {report['version']}  cytometer: {report['cytometer'] or '-'}  events: {report['n_events']}"
        f"  data sets: {report['n_datasets']}" + (f"  $TIMESTEP: {report['timestep']}" if report["timestep"] else "")
        + f"  spillover: {spill}"
    )
    width = max([len(c["pnn"]) for c in report["channels"]] + [3])
    swidth = max([len(c["pns"]) for c in report["channels"]] + [3])
    print(f"  {'PnN':<{width}}  {'PnS':<{swidth}}  {'range':>10}  {'decades':>7}  {'gain':>6}")
    for c in report["channels"]:
        print(f"  {c['pnn']:<{width}}  {c['pns'] or '-':<{swidth}}  {c['range']:>10g}  {c['decades']:>7g}  {c['gain']:>6g}")
    for warning in report["warnings"]:
        print(f"  warning: {warning}")


def _simulate(args: argparse.Namespace) -> int:
    from .simulate import CohortDesign, simulate_cohort

    try:
        timepoints = tuple(args.timepoints.split(","))
        share = args.nonresponder_share
        sheet = simulate_cohort(
            args.out_dir, patients=args.patients, events=args.events, layout=args.layout, seed=args.seed,
            timepoints=timepoints, response=args.response,
            design=None if share is None else CohortDesign(nonresponder_share=share),
        )
    except ValueError as exc:
        print(f"cytokit simulate: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.patients * 2 * len(timepoints)} FCS files, truth and the sample sheet {sheet}")
    return 0


def _gate(args: argparse.Namespace) -> int:
    import pandas as pd

    from .errors import ChannelNotFoundError, CytokitError, GateError, MetadataError, TemplateError
    from .fcs import read_fcs
    from .gating.load import load_template

    for option, value in (("--export-gatingml", args.export_gatingml), ("--plot", args.plot)):
        target = Path(value) if value else None
        if target is not None and (target.is_dir() or not target.parent.is_dir()):
            why = "is a folder" if target.is_dir() else f"is in a folder that does not exist ({target.parent})"
            print(f"cytokit gate: error: {option} {target} {why}; give a file path", file=sys.stderr)
            return 2
    if args.plot and Path(args.plot).suffix.lower() not in (".png", ".svg", ".pdf"):
        print(f"cytokit gate: error: --plot {args.plot}: give a .png, .svg or .pdf file", file=sys.stderr)
        return 2
    try:
        template = load_template(args.template, panel=args.panel)
        from .quality import noting_misreads

        with noting_misreads(args.file) as notes:
            sample = read_fcs(args.file, dataset=args.dataset)
        sample.data_warnings = notes
        control = None
        if args.control:
            with noting_misreads(args.control) as notes:
                control = read_fcs(args.control)
            control.data_warnings = notes
        for path, tube in ((args.file, sample), (args.control, control)):
            if tube is not None and not len(tube.events):  # as cytokit run says it
                raise GateError(f"{path}: the file holds no events ($TOT 0): nothing to gate")
        try:
            channels = template.resolve_channels(sample)
        except ChannelNotFoundError as exc:
            if not args.as_control:
                raise
            # an isotype tube's $PnS names the isotype (IgG1), not the marker its detector stands for
            raise ChannelNotFoundError(f"{exc}. A control tube alone does not say which detector is which "
                                       "marker: gate it as the control of its stained tube (cytokit gate STAINED "
                                       "--control CONTROL), or give --panel PANEL.csv naming the channels") from None
        control_result = None
        if control is not None:
            control_result = template.apply(
                control, is_control=True, channels=template.resolve_channels(control, reference=channels))
        result = template.apply(sample, control=control_result, channels=channels, is_control=args.as_control)
        pooled = [p.name for p in template.populations if p.pool]
        if pooled:  # a run fits them on all its files: these cuts, and any Gating-ML of them, are not the run's
            print(f"cytokit gate: note: {', '.join(pooled)}: pool: true gate(s) fitted on this file alone; "
                  "cytokit run fits them on the pooled events of all its files (its gates.wsp, --flowjo, "
                  "holds those)", file=sys.stderr)
        print(result.counts().to_string(index=False))
        from .quality import quality_flags

        for path, gated, res in ((args.file, sample, result), (args.control, control, control_result)):
            gates = {f"{p}: {f}" for p, f in res.flags.items()} if res is not None else set()
            for flag in quality_flags(gated, res) if gated is not None else []:
                if flag not in gates:  # the gates' flags are in the table
                    print(f"cytokit gate: note: {path}: {flag}", file=sys.stderr)
        if template.markers:
            from .stats import quantify

            meta = {"file": Path(args.file).name, "patient": "", "timepoint": "", "stain": "stained"}
            rows = quantify(result, control_result, meta=meta, is_control=args.as_control,
                            isotype_meta={**meta, "file": Path(args.control).name, "stain": "control"}
                            if control is not None else None)
            columns = ["marker", "population", "n_events", "median", "pct_pos", "threshold", "isotype_pct_pos",
                       "flag"]
            print()
            print(pd.DataFrame(rows)[columns].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        if args.plot:
            _plot_gates(result, args.plot, Path(args.file).name)
        if args.export_gatingml:
            path = result.to_gateset(failed="leave out").write(args.export_gatingml)
            print(f"gates as fitted for {args.file} written to {path}")
            left_out = result.unexportable()
            if left_out:  # the rest is still worth checking in FlowJo
                print(f"cytokit gate: warning: {len(left_out)} population(s) left out of {path}, their gate or one "
                      f"they rest on having failed: {'; '.join(left_out)}", file=sys.stderr)
    except CytokitError as exc:  # a template or panel sheet is a usage error (2), as in cytokit run; a file's, 1
        print(f"cytokit gate: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, (TemplateError, MetadataError)) else 1
    failed = [p for p, flag in result.flags.items() if flag.startswith("gate failed")]
    if failed:  # as cytokit run: the populations below are empty, their values NaN
        print(f"cytokit gate: {len(failed)} gate(s) failed: {', '.join(failed)} (their flags are in the table)",
              file=sys.stderr)
    return 1 if failed else 0


def _plot_gates(result, target: str, name: str) -> None:
    """The gating figure of ``result`` (every gate on its parent's events) written to ``target``."""
    import io

    from ._files import write_atomic
    from .plots import figure_png, plot_gates
    from .plots.encode import _figure_svg

    figure = plot_gates(result, title=f"{name}  ({len(result.scale):,} events)")
    suffix = Path(target).suffix.lower()
    if suffix in (".png", ".svg"):
        data = figure_png(figure) if suffix == ".png" else _figure_svg(figure)
    else:
        buffer = io.BytesIO()
        figure.savefig(buffer, format="pdf", facecolor="white")
        data = buffer.getvalue()
    print(f"gating figure written to {write_atomic(target, data)}")


def _compare(args: argparse.Namespace) -> int:
    import warnings

    from .agreement import compare, read_controls, read_mapping
    from .errors import CytokitError
    from .fcs import FCSWarning
    from .gating.load import load_template
    from .manual import read_manual
    from .report.agreement import AgreementSection, write_agreement_report

    files = [Path(f) for f in args.files]
    out = Path(args.out)
    try:
        if len(files) == 1 and files[0].is_dir():
            from .metadata import in_subfolders, list_fcs

            folder, files = files[0], list_fcs(files[0])
            deeper = in_subfolders(folder) if files else 0
            if deeper:  # said, not searched: a folder of runs may hold old copies
                print(f"cytokit compare: note: {deeper} FCS file(s) in subfolders of {folder} are not compared "
                      f"(give them as {folder}/*/*.fcs)", file=sys.stderr)
        missing = [str(f) for f in files if not f.is_file()]
        if missing or not files:
            raise FileNotFoundError(f"no such FCS file(s): {', '.join(missing)}" if missing else
                                    f"no FCS files (.fcs/.lmd) in {args.files[0]}; subfolders are not searched: "
                                    "give the files themselves (FOLDER/*/*.fcs)")
        if out.exists() and not out.is_dir():
            raise FileExistsError(f"--out {out} is a file, not a folder")
        template = load_template(args.template, panel=args.panel)
        mapping = read_mapping(args.map) if args.map else None
        controls = read_controls(args.controls) if args.controls else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FCSWarning)
            manual = read_manual(args.manual, files)
            table = compare(files, template, manual, mapping=mapping, controls=controls, strict=False)
    except (CytokitError, OSError) as exc:
        print(f"cytokit compare: error: {exc}", file=sys.stderr)
        return 2
    section = AgreementSection(table, template=args.template, manual=args.manual, mapping=mapping or {},
                               controls=args.controls or "none")
    summary = section.summary
    section.write(out)
    write_agreement_report(section, out / "report.html",
                           title=f"cytokit compare: {Path(args.template).name} against {Path(args.manual).name}")
    failed = table[table["status"] == "error"]
    paired = table[table["status"] == "paired"]
    print(f"{table['file'].nunique()} files: {len(failed)} failed; {len(paired)} paired populations, "
          f"{int((table['status'] == 'unpaired').sum())} unpaired rows")
    if len(summary):
        print(summary[["population", "n_files", "f1_median", "f1_worst", "f1_parent_median",
                       "f1_parent_worst"]].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for row in failed.itertuples():
        print(f"  failed: {row.file}: {row.note}", file=sys.stderr)
    for population, note in _mapped_nowhere(table).items():
        print(f"cytokit compare: warning: --map: {population} is {note.split(',')[0]}, which no file's manual "
              "gating has (a misspelt name?)", file=sys.stderr)
    print(f"results in {out}: compare.csv, compare_summary.csv, compare_f1.png, report.html")
    return 1 if len(failed) else 0


def _mapped_nowhere(table) -> dict[str, str]:
    """cytokit populations that ``--map`` pairs with a manual name absent from every compared file."""
    from .pairing import MAPPED_ABSENT

    rows = table[table["status"] != "error"]
    unpaired = rows["note"].fillna("").str.endswith(MAPPED_ABSENT)
    return {str(p): str(group["note"].iloc[0]) for p, group in rows[unpaired].groupby("population", sort=False)
            if not (rows.loc[~unpaired, "population"] == p).any()}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cytokit", description="Flow cytometry marker analysis.")
    parser.add_argument("--version", action="version", version=f"cytokit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    inspect = commands.add_parser("inspect", help="describe FCS files: version, events, channels, spillover")
    inspect.add_argument("files", nargs="+", metavar="FILE")
    inspect.add_argument("--dataset", type=int, default=0, help="data set along $NEXTDATA (default 0)")
    inspect.add_argument("--json", action="store_true", help="machine-readable output")
    inspect.set_defaults(func=_inspect)

    add_run_parser(commands)

    gate = commands.add_parser("gate", help="gate one file with a template; export the fitted gates",
                               epilog="exit status: 0 when every gate was fitted, 1 when a gate failed (flagged in "
                                      "the table) or the file cannot be gated, 2 for usage or template errors")
    gate.add_argument("file", metavar="FILE")
    gate.add_argument("--template", required=True)
    control = gate.add_mutually_exclusive_group()
    control.add_argument("--control", metavar="CONTROL_FILE", help="the matched isotype (or other control) tube: "
                         "positivity is learned on it; without it, control-derived gates fail, flagged")
    control.add_argument("--as-control", action="store_true",
                         help="FILE is itself a control tube: its positivity thresholds are fitted on itself")
    add_panel_option(gate)
    gate.add_argument("--export-gatingml", metavar="OUT.xml", help="write the gates as fitted as Gating-ML 2.0")
    gate.add_argument("--dataset", type=int, default=0, metavar="N",
                      help="gate FILE's data set N (0-based, as cytokit inspect --dataset lists them; default 0)")
    gate.add_argument("--plot", metavar="OUT.png", help="draw every gate on its parent's events (.png, .svg or .pdf)")
    gate.set_defaults(func=_gate)

    cmp = commands.add_parser(
        "compare", help="compare cytokit's populations with a manual gating of the same files (F1 per population)",
        epilog="writes OUT/compare.csv, OUT/compare_summary.csv, OUT/compare_f1.png and OUT/report.html; exit status: 0 when every "
               "file was compared, 1 when some failed (listed in compare.csv, status error), 2 for usage errors")
    cmp.add_argument("files", nargs="+", metavar="FCS_DIR_OR_FILES")
    cmp.add_argument("--template", required=True, help="gating template (YAML, Gating-ML, .wsp, openCyto CSV)")
    cmp.add_argument("--manual", required=True,
                     help="the manual gating: a folder of <file stem>.npz, a FlowJo .wsp or a Gating-ML .xml")
    cmp.add_argument("--map", metavar="MAP.csv", help="CSV cytokit,manual: population pairs (default: by name)")
    cmp.add_argument("--controls", metavar="DESIGN.csv", help="CSV with columns file,control_file")
    add_panel_option(cmp)
    cmp.add_argument("--out", required=True, help="output folder")
    cmp.set_defaults(func=_compare)

    from .learn.cli import add_parser as add_learn  # the parser entry and handler live with learn

    add_learn(commands)

    simulate = commands.add_parser("simulate", help="write a synthetic CLL cohort with ground truth")
    simulate.add_argument("out_dir", metavar="OUT_DIR")
    simulate.add_argument("--patients", type=int, default=6, help="number of patients (default 6)")
    simulate.add_argument("--events", type=int, default=10_000, help="events per FCS file (default 10000)")
    simulate.add_argument("--layout", choices=["calibur", "modern"], default="calibur",
                          help="calibur (the default): FCS 2.0 log channels; modern: FCS 3.1 float, uncompensated")
    simulate.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    simulate.add_argument("--timepoints", default="C2D1,C2D8", metavar="T1,T2,...",
                          help="timepoint labels in time order (default C2D1,C2D8)")
    simulate.add_argument("--response", action="store_true",
                          help="add a response column (responder/non-responder) to samples.csv")
    simulate.add_argument("--nonresponder-share", type=float, metavar="SHARE",
                          help="share of patients who do not respond (default 1/6)")
    simulate.set_defaults(func=_simulate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cytokit`` console script."""
    import warnings

    parser = build_parser()
    args = parser.parse_args(argv)
    shown = warnings.formatwarning
    # a warning reaches the person at the terminal as a sentence, not as a Python source line
    warnings.formatwarning = lambda message, category, *_, **__: f"cytokit {args.command}: warning: {message}\n"
    try:
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
    except BrokenPipeError:  # `cytokit inspect ... | head`: stop quietly, as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a writer whose reader left
    except KeyboardInterrupt:  # Ctrl-C anywhere else: every output is written atomically, so none is half
        print(f"\ncytokit {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = shown  # main() called from Python (tests, notebooks) leaves it as it was
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
