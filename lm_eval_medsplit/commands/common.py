"""Options and helpers shared by command modules."""

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

    if not problems:
        return
    reasons = Counter(f"{p.field}: {p.message.split(' (')[0].split(':')[0][:60]}" for p in problems)
    n = len({(p.file, p.location) for p in problems})
    print(f"medsplit: skipped {n} invalid {what}(s) ("
          + "; ".join(f"{k} x{v}" for k, v in reasons.most_common(5))
          + f"); the first: {problems[0]}; --strict fails on them", file=stream or sys.stderr)
