"""The ``medsplit`` command line.

Each command group lives in its own module under :mod:`lm_eval_medsplit.commands` and
exposes ``register(subparsers)``; heavy imports happen inside the handlers so that
``medsplit --help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from lm_eval_medsplit.errors import CLIError  # noqa: F401  (re-exported for command modules)

#: Command modules, in the order their commands appear in ``medsplit --help``.
COMMAND_MODULES = (
    "lm_eval_medsplit.commands.data",
    "lm_eval_medsplit.commands.score",
    "lm_eval_medsplit.commands.lm_eval",
    "lm_eval_medsplit.commands.adversarial",
    "lm_eval_medsplit.commands.build",
    "lm_eval_medsplit.commands.report",
    "lm_eval_medsplit.commands.classifier",
)

DESCRIPTION = """\
Reasoning vs knowledge splits of medical QA benchmarks (BioMed-R1).

lm-eval and Inspect run the evaluations (`lm_eval --tasks medsplit_reasoning`,
`inspect eval lm_eval_medsplit/medsplit_reasoning`); this command does what the
harnesses don't: inspect and validate data sources, re-score saved outputs, and more.

Data sources (--source, or MEDSPLIT_SOURCE in the environment):
  hub                the pinned zou-lab/BioMed-R1-Eval on the Hugging Face hub (default)
  DIR                a directory in the hub layout (DIR/<config>/test.parquet|jsonl),
                     e.g. one written by `medsplit build`
  DIR (raw)          a directory laid out like shared/data/raw (original files per config)
  FILE.jsonl         your own questions: id, question, options[, answer_idx, benchmark]
"""

EPILOG = """\
examples (from a checkout; the files are in examples/):
  medsplit benchmarks
  medsplit data validate --source ../shared/data/raw
  medsplit score examples/outputs.jsonl --out scored.jsonl
  medsplit classify examples/mine.jsonl --out mine.labelled.jsonl
  medsplit adversarial generate mine.labelled.jsonl --out mine.adv.jsonl --offline
  medsplit build --source ../shared/data/raw --out medsplit-build/
  medsplit lm-eval tasks --source mine.adv.jsonl --mode all --write my-tasks/
  medsplit report runs/ logs/ --out report/

`medsplit COMMAND --help` shows each command's options and examples.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medsplit",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from lm_eval_medsplit import __version__

    parser.add_argument("--version", action="version", version=f"medsplit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except CLIError as e:
        print(f"medsplit: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
