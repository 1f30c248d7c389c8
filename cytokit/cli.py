"""The ``cytokit`` command: argument parsing only; the work is done by the public API.

Heavy libraries are imported inside the commands, so ``cytokit --help`` is fast.
"""

from __future__ import annotations

import argparse
import json
import sys
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
                "warnings": [str(w.message) for w in caught],
            }
        )
    if args.json:
        json.dump(reports, sys.stdout, indent=2)
        print()
    else:
        for report in reports:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cytokit", description="Flow cytometry marker analysis.")
    parser.add_argument("--version", action="version", version=f"cytokit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    inspect = commands.add_parser("inspect", help="describe FCS files: version, events, channels, spillover")
    inspect.add_argument("files", nargs="+", metavar="FILE")
    inspect.add_argument("--dataset", type=int, default=0, help="data set along $NEXTDATA (default 0)")
    inspect.add_argument("--json", action="store_true", help="machine-readable output")
    inspect.set_defaults(func=_inspect)

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
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
