"""``medsplit report``: knowledge vs reasoning and adversarial robustness from lm-eval
and Inspect runs, with intervals, plots, HTML and leaderboard exports.

Accepts: lm-eval output folders / results files and Inspect logs (see ``EPILOG``).
Guarantees: an unreadable, partial or foreign input is one error line naming the file;
files are written only under ``--out``, each whole or not at all."""

from __future__ import annotations

import argparse
import sys

EPILOG = """\
inputs: any mix of
  lm-eval output directories or results_*.json files (run with --log_samples: the
    samples_<task>_<date>.jsonl files next to each results file are read)
  Inspect logs (.eval, or .json) or directories holding them
for one or many models. Samples are joined to the benchmark records by id and record
hash; a run made on another data revision (different eval-set content hash) is flagged
and kept out of the comparisons. With --source the reference is that data source;
without, it is the eval set most runs used.

outputs (under --out, default medsplit_report/):
  report.md, report.html (self-contained), plots/*.png, report.json + csv/*.csv (every
  number), lm_eval_results/<model>/ (an lm-eval results file with lm-eval's task and group
  names and a samples_<task>_medsplit.jsonl per task: medsplit report reads it back),
  hf_eval_results/<model>/.eval_results/*.yaml (Hugging Face eval results) and
  model_index.yaml (a model card's model-index block)
Names taken from the logs are sanitised: nothing is written outside --out.

one model, several harnesses: an Inspect model 'hf//abs/path' or 'hf/org/name' and an
lm-eval model '/abs/path' or 'org/name' are one model (provider prefix dropped, local
paths resolved); the notes list which logged names were joined. Repeated samples
(lm-eval repeats, Inspect --epochs) are averaged per question; the repeats table gives
pass@1, maj@k and pass@k with intervals over questions.

examples:
  medsplit report runs/lm_eval_out runs/inspect_logs --out report/
  medsplit report runs/ --source build/ --format md,html
  medsplit report runs/ --rename "hf/Qwen/Qwen3-8B=Qwen3-8B" --json
"""

_EXTRA_HINT = 'pip install "lm-eval-medsplit[report]"'


def register(sub) -> None:
    p = sub.add_parser("report", help="compare models: knowledge vs reasoning, adversarial robustness",
                       description="Turn lm-eval and Inspect runs into the paper's comparisons: each "
                                   "model's knowledge vs reasoning accuracy, clean vs adversarial "
                                   "accuracy, models side by side; with Wilson and question-level bootstrap "
                                   "intervals, exact McNemar tests, plots, a self-contained HTML page and exports.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", help="lm-eval output dirs/results files and Inspect logs/dirs")
    p.add_argument("--out", "-o", default="medsplit_report", help="output directory (default medsplit_report)")
    p.add_argument("--format", default="all",
                   help="comma list of md,html,png,csv,json,lm-eval,hf (default all); 'none' prints only")
    p.add_argument("--source", default=None,
                   help="reference data source to join against (hub, hub-layout dir, raw dir, JSONL); "
                        "default: the eval set most runs used")
    p.add_argument("--revision", default=None, help="hub revision of --source hub")
    p.add_argument("--rename", action="append", default=[], metavar="OLD=NEW",
                   help="rename a model (repeatable), e.g. to merge an lm-eval and an Inspect run of one model")
    p.add_argument("--allow-partial", action="store_true",
                   help="include partial inputs (cancelled Inspect logs, lm-eval --limit runs, truncated "
                        "sample files) instead of failing; they are listed in the notes")
    p.add_argument("--bootstrap", type=int, default=None, metavar="B",
                   help="bootstrap replicates (default 2000)")
    p.add_argument("--seed", type=int, default=None, help="bootstrap seed")
    p.add_argument("--gallery", type=int, default=20, metavar="N",
                   help="unparsed outputs shown per model in the HTML (default 20)")
    p.add_argument("--title", default="medsplit report")
    p.add_argument("--json", action="store_true", help="print the report's numbers as JSON on stdout")
    p.add_argument("--quiet", "-q", action="store_true", help="do not print the tables")
    p.set_defaults(func=cmd_report)


def _formats(value: str) -> list[str]:
    from lm_eval_medsplit.cli import CLIError
    from lm_eval_medsplit.report import FORMATS

    if value in ("all", ""):
        return list(FORMATS)
    if value == "none":
        return []
    items = [x.strip() for x in value.split(",") if x.strip()]
    bad = [x for x in items if x not in FORMATS]
    if bad:
        raise CLIError(f"unknown --format {', '.join(bad)}; choose from {', '.join(FORMATS)}, all or none")
    return items


def _need(formats: list[str]) -> None:
    from lm_eval_medsplit.cli import CLIError

    mods = []
    if "png" in formats or "html" in formats:
        mods.append("matplotlib")
    if "html" in formats:
        mods.append("jinja2")
    missing = []
    for m in mods:
        try:
            __import__(m)
        except ImportError:
            missing.append(m)
    if missing:
        raise CLIError(f"the {', '.join(formats) or 'report'} output needs {', '.join(missing)}: {_EXTRA_HINT} "
                       f"(or pick other formats with --format md,csv,json,lm-eval,hf)")


def _rename(items: list[str]) -> dict[str, str]:
    from lm_eval_medsplit.cli import CLIError

    out = {}
    for it in items:
        old, sep, new = it.rpartition("=")
        if not sep or not old or not new:
            raise CLIError(f"--rename expects OLD=NEW, got {it!r}")
        out[old] = new
    return out


def cmd_report(args) -> int:
    import json
    import os

    from lm_eval_medsplit.cli import CLIError
    from lm_eval_medsplit.report import (
        DEFAULT_B,
        DEFAULT_SEED,
        InputError,
        JoinError,
        RenameError,
        build_report,
        write_report,
    )

    formats = _formats(args.format)
    _need(formats)
    if args.bootstrap is not None and args.bootstrap < 100:
        raise CLIError("--bootstrap needs at least 100 replicates")
    source = args.source
    if source is not None:
        from lm_eval_medsplit.sources import SourceError, resolve_source

        try:
            source = resolve_source(source, revision=args.revision)
        except SourceError as e:
            raise CLIError(str(e)) from None
    try:
        rep = build_report(args.inputs, source=source, revision=args.revision,
                           rename=_rename(args.rename), allow_partial=args.allow_partial,
                           b=args.bootstrap or DEFAULT_B, seed=DEFAULT_SEED if args.seed is None else args.seed,
                           gallery_per_model=args.gallery)
    except (InputError, JoinError, RenameError) as e:
        raise CLIError(str(e)) from None
    if not rep.joined.rows:
        msg = "no samples to report"
        if rep.data.flagged:
            msg += f": all {len(rep.data.flagged)} run part(s) were flagged:\n" + "\n".join(
                f"  - {f['file']} [{f['benchmark']}]: {f['reason']}" for f in rep.data.flagged[:10])
            if len(rep.data.flagged) > 10:
                msg += f"\n  ... and {len(rep.data.flagged) - 10} more"
        if rep.read.skipped:
            msg += "; skipped inputs: " + "; ".join(f"{p} ({why})" for p, why in rep.read.skipped[:5])
        raise CLIError(msg)
    written = write_report(rep, args.out, formats=formats, title=args.title) if formats else {}
    if args.json:
        print(json.dumps(rep.data.as_dict(), ensure_ascii=False))
        return 0
    if not args.quiet:
        from lm_eval_medsplit.commands.common import console
        from lm_eval_medsplit.report.tables import all_tables, to_rich

        c = console()
        for spec in all_tables(rep.data, terminal=True):
            c.print(to_rich(spec))
        for n in rep.data.notes:
            c.print(f"note: {n}", markup=False)
        if rep.data.flagged:
            c.print(f"[bold red]{len(rep.data.flagged)} run part(s) flagged[/]: another data revision, "
                    f"not merged (see the Flagged table)")
        for fmt, paths in written.items():
            if paths:
                # several files: the folder holding all of them (they may sit in subfolders)
                shown = paths[0] if len(paths) == 1 else \
                    f"{os.path.commonpath([str(p) for p in paths])} ({len(paths)} files)"
                c.print(f"wrote {fmt}: {shown}", markup=False)
    sys.stdout.flush()
    return 0
