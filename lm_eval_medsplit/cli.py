"""The ``medsplit`` command line.

Accepts: ``argv``. Guarantees: exit 0 on success; any error is one ``medsplit: error:``
line on stderr (the message's first line names the file, row and field) and exit 2, with
the traceback only under ``MEDSPLIT_DEBUG=1``; Ctrl-C exits 130.

Each command group lives in its own module under :mod:`lm_eval_medsplit.commands` and
exposes ``register(subparsers)``; heavy imports happen inside the handlers so that
``medsplit --help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import os
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
    except Exception as e:  # noqa: BLE001 - one line for the user; MEDSPLIT_DEBUG=1 for the traceback
        if os.environ.get("MEDSPLIT_DEBUG", "").strip() not in ("", "0"):
            raise
        print(f"medsplit: error: {error_line(e)}", file=sys.stderr)
        return 2


def error_line(e: BaseException) -> str:
    """What ``medsplit`` prints for an exception: a :class:`CLIError`'s own message; for
    anything else (an unreadable file, a corrupt parquet, a bug) its type and message on
    the first line, with a hint to see the traceback."""
    if isinstance(e, CLIError) or (type(e).__module__.startswith("lm_eval_medsplit")
                                    and isinstance(e, (ValueError, RuntimeError, LookupError))):
        return str(e)  # the package's own errors name file, row and field
    if isinstance(e, OSError) and e.filename is not None:
        what = "is a directory, expected a file" if isinstance(e, IsADirectoryError) else e.strerror
        return f"{e.filename}: {what or type(e).__name__}"
    if isinstance(e, UnicodeError):
        return f"{type(e).__name__}: {e}; files must be UTF-8"
    msg = " ".join(str(e).split()) or "(no message)"
    return f"{type(e).__name__}: {msg[:500]} (MEDSPLIT_DEBUG=1 shows the traceback)"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
