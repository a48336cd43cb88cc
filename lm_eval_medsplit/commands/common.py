"""Options and helpers shared by command modules.

Accepts parsed ``argparse`` namespaces and paths from the command line. Guarantees: the
same flags, help and one-line :class:`~lm_eval_medsplit.errors.CLIError` messages in every
command that uses them (data source, --strict/--lenient, input and output file checks,
skip summaries)."""

from __future__ import annotations

import argparse

SOURCE_HELP = ("data source: 'hub' (pinned zou-lab/BioMed-R1-Eval), a hub-layout directory "
               "(e.g. from `medsplit build`), a raw directory like shared/data/raw, or a "
               "canonical JSONL file; default $MEDSPLIT_SOURCE or 'hub'")


def add_source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", default=None, help=SOURCE_HELP)
    p.add_argument("--revision", default=None,
                   help="hub revision (default: the revision pinned in the package, or $MEDSPLIT_REVISION)")
    p.add_argument("--pubmedqa-split", choices=("all", "test"), default=None,
                   help="raw PubMedQA: all 1,000 PQA-L questions (default) or the official 500 test PMIDs")


def open_source(args):
    from lm_eval_medsplit.cli import CLIError
    from lm_eval_medsplit.sources import SourceError, resolve_source

    try:
        return resolve_source(args.source, revision=args.revision, pubmedqa_split=args.pubmedqa_split)
    except SourceError as e:
        raise CLIError(str(e)) from None


def check_io_files(inp, out, what: str) -> None:
    """Refuse, before any work, an input path that is not a file and an ``--out`` (given
    or ``None``) that cannot be written or is the input file itself; ``what`` names what
    the command writes ("the scores")."""
    from lm_eval_medsplit.errors import CLIError
    from lm_eval_medsplit.fileio import check_output_file, same_file

    if inp is not None and not inp.is_file():
        raise CLIError(f"{inp}: no such file" + (" (it is a directory)" if inp.is_dir() else ""))
    if out is None:
        return
    check_output_file(out)
    if inp is not None and out.exists() and same_file(out, inp):
        raise CLIError(f"--out {out} is the input file; write {what} elsewhere")


def console():
    import sys

    from rich.console import Console

    # a pipe or CI log gets wide tables instead of rich's 80-column default
    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def add_strictness_args(p: argparse.ArgumentParser, what: str = "row") -> None:
    """``--strict`` / ``--lenient``: the one rule for bad input rows across commands.
    Lenient (the default) skips each bad row and reports how many and why on stderr;
    strict fails with one error naming file, line and field and writes nothing."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--strict", action="store_true",
                   help=f"fail on the first invalid input {what} (one error naming file, line "
                        f"and field; nothing written)")
    g.add_argument("--lenient", action="store_true",
                   help=f"skip invalid input {what}s and report how many and why (the default)")


def report_skips(problems, what: str = "row", stream=None) -> None:
    """One stderr line: how many inputs were skipped, why (grouped) and the first one."""
    import sys
    from collections import Counter

    from lm_eval_medsplit.schema import _reason_kind

    if not problems:
        return
    # grouped as a source's LoadReport groups its skip reasons; rows counted, not problems
    reasons = Counter(f"{p.field}: {_reason_kind(p.message, 60)}" for p in problems)
    n = len({(p.file, p.location) for p in problems})
    print(f"medsplit: skipped {n} invalid {what}(s) ("
          + "; ".join(f"{k} x{v}" for k, v in reasons.most_common(5))
          + f"); the first: {problems[0]}; --strict fails on them", file=stream or sys.stderr)
