"""``medsplit benchmarks`` and ``medsplit data validate|show``.

Accepts: a ``--source`` (anything :func:`lm_eval_medsplit.sources.resolve_source` takes).
Guarantees: ``validate`` loads each benchmark through the one validator
(:func:`lm_eval_medsplit.schema.build_records`) and reports records, skipped rows and why;
``--strict`` fails naming file, line and field; an empty source is an error."""

from __future__ import annotations

import argparse
import json

from lm_eval_medsplit.commands.common import add_source_args, console, open_source


def register(sub) -> None:
    p = sub.add_parser("benchmarks", help="list the 11 benchmarks of the registry",
                       description="The benchmark registry: hub config, short name used in "
                                   "task names, options per question, licence and redistribution.",
                       epilog="examples:\n  medsplit benchmarks\n  medsplit benchmarks --json",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_benchmarks)

    data = sub.add_parser("data", help="validate and inspect data sources",
                          description="Validate and inspect a data source.",
                          epilog="examples:\n  medsplit data validate --source ../shared/data/raw\n"
                                 "  medsplit data show --source examples/mine.jsonl -b mine --n 2 --prompt",
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    v = dsub.add_parser(
        "validate", help="load every benchmark of a source and report records, skips, hashes",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Load and validate benchmarks.\n\nLenient (default): bad rows are skipped "
                    "and counted with their reasons.\n--strict: fail with one error listing "
                    "every problem (file, line or key, field, what is wrong).\n\nexample:\n"
                    "  medsplit data validate --source ../shared/data/raw --strict")
    add_source_args(v)
    v.add_argument("--benchmark", "-b", action="append",
                   help="benchmark short name or hub config (repeatable; default: all in the source)")
    v.add_argument("--strict", action="store_true", help="fail on the first invalid row set")
    v.add_argument("--json", action="store_true", help="print one JSON object per benchmark")
    v.add_argument("--show-skips", type=int, default=5, metavar="N",
                   help="print up to N skipped rows per benchmark (default 5)")
    v.set_defaults(func=cmd_validate)

    s = dsub.add_parser("show", help="print a few records and their rendered prompts",
                        description="Print records of one benchmark as canonical JSON, with the "
                                    "prompt every adapter sends.\n\nexample:\n  medsplit data show "
                                    "--source ../shared/data/raw --benchmark medqa --n 2",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_args(s)
    s.add_argument("--benchmark", "-b", required=True)
    s.add_argument("--n", type=int, default=3, help="how many records (default 3)")
    s.add_argument("--style", choices=("cot", "direct"), default="cot")
    s.add_argument("--prompt", action="store_true", help="also print the rendered prompt")
    s.set_defaults(func=cmd_show)


def cmd_benchmarks(args) -> int:
    from lm_eval_medsplit.registry import BENCHMARKS

    if args.json:
        print(json.dumps([{"config": b.config, "name": b.name, "title": b.title,
                           "n_options": b.n_options, "max_options": b.max_options,
                           "licence": b.licence, "redistribution": b.redistribution,
                           "raw_loader": b.local} for b in BENCHMARKS], indent=2))
        return 0
    from rich.table import Table

    t = Table(title="zou-lab/BioMed-R1-Eval benchmarks")
    for col in ("config (hub)", "name (tasks)", "title", "options", "licence", "redistribution"):
        t.add_column(col, overflow="fold")
    for b in BENCHMARKS:
        t.add_row(b.config, b.name, b.title, b.options_label, b.licence, b.redistribution)
    console().print(t)
    return 0


def cmd_validate(args) -> int:
    from lm_eval_medsplit.cli import CLIError
    from lm_eval_medsplit.schema import RecordValidationError
    from lm_eval_medsplit.sources import SourceError

    src = open_source(args)
    names = args.benchmark or src.benchmarks()
    if not names:
        raise CLIError(f"{src.location}: no benchmark to validate (the source is empty)")
    reports = []
    failed: list[str] = []
    for name in names:
        try:
            _, rep = src.load(name, strict=args.strict)
        except RecordValidationError as e:
            failed.append(f"{name}: {e}")
            continue
        except (SourceError, ValueError, KeyError) as e:
            raise CLIError(str(e)) from None
        reports.append(rep)
    if args.json:
        for rep in reports:
            print(json.dumps(rep.as_dict()))
    elif reports or not failed:
        _print_reports(src, reports, args.show_skips)
        if not args.benchmark:
            for name, why in src.absent().items():
                console().print(f"  not in this source: {name} ({why})", markup=False)
    if failed:
        raise CLIError(f"strict validation failed: {failed[0]}" + "".join(f"\n{f}" for f in failed[1:]))
    if reports and not any(r.n_records or r.n_skipped for r in reports):
        raise CLIError(f"{src.location}: no row at all in {', '.join(names)} (the source is empty)")
    return 0


def _print_reports(src, reports, show_skips: int) -> None:
    from rich.table import Table

    c = console()
    t = Table(title=f"source: {src.kind} {src.location}" + (f" @ {src.revision}" if src.revision else ""))
    for col in ("benchmark", "records", "skipped", "skip reasons", "content hash"):
        t.add_column(col, overflow="fold")
    for rep in reports:
        reasons = "; ".join(f"{k} x{v}" for k, v in rep.skip_reasons().most_common())
        t.add_row(rep.benchmark, f"{rep.n_records:,}", f"{rep.n_skipped:,}", reasons or "-",
                  rep.content_hash[:16])
    c.print(t)
    total = sum(r.n_records for r in reports)
    skipped = sum(r.n_skipped for r in reports)
    c.print(f"{total:,} records in {len(reports)} benchmark(s); {skipped:,} row(s) skipped")
    for rep in reports:
        for p in rep.skipped[:show_skips]:
            c.print(f"  skipped: {p}", markup=False)
        if len(rep.skipped) > show_skips:
            c.print(f"  ... {len(rep.skipped) - show_skips} more problem(s) in {rep.benchmark}")


def cmd_show(args) -> int:
    from lm_eval_medsplit.cli import CLIError
    from lm_eval_medsplit.prompts import build_prompt
    from lm_eval_medsplit.sources import SourceError

    src = open_source(args)
    try:
        records, rep = src.load(args.benchmark)
    except (SourceError, ValueError, KeyError) as e:
        raise CLIError(str(e)) from None
    for r in records[: args.n]:
        print(json.dumps(r.to_dict(), ensure_ascii=False, indent=2))
        if args.prompt:
            for m in build_prompt(r, args.style).messages:
                print(f"--- {m['role']} ---\n{m['content']}")
        print()
    print(f"# {rep.n_records:,} records, content hash {rep.content_hash}", flush=True)
    return 0
