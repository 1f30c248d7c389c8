"""``cytokit learn``: its parser entry and handler (registered from :mod:`cytokit.cli`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cli_run import add_panel_option


def add_parser(commands) -> None:
    """Add the ``learn`` subcommand to ``commands`` (an argparse subparsers object)."""
    learn = commands.add_parser(
        "learn", help="learn a template of fitted gates from a few manually gated files",
        epilog="writes --out (the template, YAML); prints what was learned per population and, with two "
               "files or more, the leave-one-out agreement; exit status: 0 when written, 2 for usage "
               "errors (no manual gating, unreadable files, nothing to learn)")
    learn.add_argument("manual", metavar="MANUAL",
                       help="the manual gating: a folder of <file stem>.npz, a FlowJo .wsp or a Gating-ML .xml")
    learn.add_argument("--files", nargs="+", required=True, metavar="FCS", help="the manually gated files (or one folder of them)")
    learn.add_argument("--out", required=True, metavar="TEMPLATE.yaml", help="where to write the template")
    learn.add_argument("--no-leave-one-out", action="store_true", help="skip the leave-one-out agreement")
    learn.add_argument("--controls", metavar="DESIGN.csv",
                       help="CSV file,control_file: which training file is whose control; a population may then "
                            "be learned as a cut at a quantile of the control tube (give the controls among "
                            "--files, and the same sheet to compare --controls or run's control_file)")
    add_panel_option(learn)
    learn.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Learn, write the template, print the populations and the leave-one-out agreement."""
    import warnings

    from ..errors import CytokitError
    from ..fcs import FCSWarning
    from . import learn_template

    out = Path(args.out)
    try:
        if out.is_dir():
            raise IsADirectoryError(f"--out {out} is a folder; give the template's file name")
        folder = len(args.files) == 1 and Path(args.files[0]).is_dir()  # its FCS files (learn_template's)
        missing = [] if folder else [f for f in args.files if not Path(f).is_file()]
        if missing:
            raise FileNotFoundError(f"no such FCS file(s): {', '.join(missing)}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FCSWarning)
            learned = learn_template(args.manual, args.files[0] if folder else args.files, out=out, leave_one_out=not args.no_leave_one_out,
                                     panel=args.panel, controls=args.controls)
    except (CytokitError, OSError) as exc:
        print(f"cytokit learn: error: {exc}", file=sys.stderr)
        return 2
    import pandas as pd

    table = learned.populations
    unlearned = table["gate"] == ""  # named by their manual path; no gate, so no registered / pool either
    crossed = table["n_files"] >= 2  # cross-validated only over two training files or more
    shown = table.assign(cv_f1=[f"{v:.3f}" if pd.notna(v) and c else "" for v, c in zip(table["cv_f1"], crossed)],
                         train_f1=table["train_f1"].map(lambda v: f"{v:.3f}" if pd.notna(v) else ""),
                         population=table["population"].where(~unlearned, table["manual"]),
                         registered=table["registered"].where(~unlearned, ""),
                         pool=table["pool"].where(~unlearned, ""))
    print(shown[["population", "gate", "dims", "registered", "pool", "cv_f1", "train_f1"]].to_string(index=False))
    notes = shown[shown["note"] != ""]
    if len(notes) or learned.notes:  # below the table: one long note would widen every row
        print("\nnotes:")
        for note in learned.notes:
            print(f"  {note}")
        for population, note in zip(notes["population"], notes["note"]):
            print(f"  {population} — {note}")
    if learned.leave_one_out is not None:
        from ..agreement import summarise

        summary = summarise(learned.leave_one_out)
        print("\nleave-one-out agreement (learned on the other files, compared on each):")
        if summary.empty:
            print("  none: no learned population is in two or more training files")
        else:
            print(summary[["population", "n_files", "f1_median", "f1_worst", "f1_parent_median"]]
                  .to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"template written to {out}")
    return 0


__all__ = ["add_parser", "run"]
