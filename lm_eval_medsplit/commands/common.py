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
