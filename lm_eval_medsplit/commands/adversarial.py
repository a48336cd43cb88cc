"""``medsplit adversarial generate|check``: incorrect reasoning traces for any MCQ set.

``generate`` accepts a canonical JSONL file, or ``--source``/``--benchmark``; bad rows fail
the run with ``--strict`` and are otherwise skipped and counted on stderr; it writes
``--out`` whole or not at all (model runs resume from ``OUT.partial``; see
:mod:`lm_eval_medsplit.trace_generation.driver`). ``check`` accepts a JSONL file or a
directory source, reads every trace with the scoring core
(:func:`lm_eval_medsplit.adversarial.check_trace`) and exits 1 when one fails.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from lm_eval_medsplit.commands.common import add_source_args, console, open_source
from lm_eval_medsplit.prompts import DEFAULT_STYLE, STYLES

GENERATE_EPILOG = """\
every trace argues for a wrong option picked deterministically from (record content
hash, k) and must conclude with it (checked by the scoring core; never the gold letter).
A failed trace is asked for again up to --max-attempts times, then rejected: its slot
stays empty (or, with --on-reject offline, gets the offline template and the record's
adversarial_source says "+offline-template"). Each record keeps per-trace status,
attempts and reasons in meta.adversarial_generation.

--style sets the form of a trace's last line: "Answer: X" (cot, direct) or "The final answer
is \\boxed{X}." (paper, the form the paper's prompt asks for); the style is recorded in
the run's counts and, for model traces, in meta.adversarial_generation. Traces are
prefills (only the model's continuation is scored), so traces of any style work with any
evaluation style (docs/reproduce.md).

with --model or --endpoint, finished records go to the resume file OUT.partial as the run
goes; --out is replaced only when the run completes, so a killed or failed run leaves an
earlier --out whole. Re-running with the same --out skips finished records (of the same
--style) and asks only for missing traces (--offline traces are deterministic and simply
made again). A dead endpoint stops the run after 16 calls in a row fail; run the same
command again to resume.

examples:
  medsplit adversarial generate mine.jsonl --out mine.traces.jsonl --offline
  medsplit adversarial generate mine.jsonl --out mine.paper.jsonl --offline --style paper
  medsplit adversarial generate mine.jsonl --out t.jsonl --endpoint http://localhost:8000/v1 \\
      --endpoint-model Qwen/Qwen2.5-7B-Instruct --concurrency 32
  medsplit adversarial generate --source ../shared/data/raw -b medqa --out medqa.jsonl \\
      --model ./my-local-model --batch-size 16
"""


def _at_least_one(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def register(sub) -> None:
    p = sub.add_parser("adversarial", help="generate and check adversarial reasoning traces",
                       description="Incorrect reasoning traces (the adversarial setting).",
                       epilog="examples:\n"
                              "  medsplit adversarial generate mine.labelled.jsonl --out mine.adv.jsonl --offline\n"
                              "  medsplit adversarial check mine.adv.jsonl",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    asub = p.add_subparsers(dest="adversarial_command", metavar="ACTION", required=True)

    g = asub.add_parser("generate", help="add adversarial traces to records (JSONL in, JSONL out)",
                        description="Add N incorrect reasoning traces to every record.",
                        epilog=GENERATE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    g.add_argument("input", nargs="?", type=Path,
                   help="canonical JSONL (id, question, options, answer_idx); or use --source/-b")
    add_source_args(g)
    g.add_argument("--benchmark", "-b", help="with --source: the benchmark to read")
    g.add_argument("--out", type=Path, required=True, help="output JSONL (also the resume file)")
    how = g.add_mutually_exclusive_group(required=True)
    how.add_argument("--offline", action="store_true", help="deterministic template traces (no model)")
    how.add_argument("--model", metavar="PATH_OR_ID", help="local transformers causal LM (path or hub id)")
    how.add_argument("--endpoint", metavar="URL",
                     help="OpenAI-compatible server, e.g. http://localhost:8000/v1 (vLLM)")
    g.add_argument("--endpoint-model", help="model name for --endpoint (default: first of GET /v1/models)")
    g.add_argument("--api-key-env", default="OPENAI_API_KEY",
                   help="environment variable holding the endpoint's API key (default OPENAI_API_KEY)")
    g.add_argument("--style", choices=STYLES, default=DEFAULT_STYLE,
                   help="prompt style whose final-answer line the traces end with: Answer: X "
                        "(cot, direct) or \\boxed{X} (paper) (default cot)")
    g.add_argument("--n", type=_at_least_one, default=3, help="traces per record (default 3)")
    g.add_argument("--max-attempts", type=_at_least_one, default=3, help="attempts per trace before rejecting (default 3)")
    g.add_argument("--on-reject", choices=("empty", "offline"), default="empty",
                   help="what a rejected slot gets (default: empty, asked again on re-run)")
    g.add_argument("--concurrency", type=_at_least_one, default=8, help="--endpoint: requests in flight (default 8)")
    g.add_argument("--http-retries", type=int, default=4, help="--endpoint: retries per request (default 4)")
    g.add_argument("--batch-size", type=_at_least_one, default=8, help="--model: prompts per generate call (default 8)")
    g.add_argument("--max-new-tokens", type=_at_least_one, default=1024, help="tokens per trace (default 1024)")
    g.add_argument("--temperature", type=float, default=0.7, help="sampling temperature (default 0.7)")
    from lm_eval_medsplit.commands.common import add_strictness_args

    add_strictness_args(g, "row")
    g.add_argument("--no-resume", action="store_true",
                   help="ignore an existing --out and its resume file (--out itself is kept until "
                        "the new run replaces it at the end)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--json", action="store_true", help="print the run's counts as JSON")
    g.set_defaults(func=cmd_generate)

    c = asub.add_parser("check", help="check every trace of a JSONL file or build with the scoring core",
                        description="Read every adversarial trace of a canonical JSONL file (or of "
                                    "every benchmark of a directory source, e.g. a `medsplit build` "
                                    "output) and check that it concludes with wrong_letter(record, "
                                    "k), never the gold letter. Exit 1 when any trace fails.",
                        epilog="examples:\n  medsplit adversarial check mine.adv.jsonl\n"
                               "  medsplit adversarial check medsplit-build/",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("file", type=Path, help="canonical JSONL file or a directory source")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_check)


def _load_input(args):
    from lm_eval_medsplit.dataset import skipped_rows_message
    from lm_eval_medsplit.errors import CLIError
    from lm_eval_medsplit.schema import RecordValidationError
    from lm_eval_medsplit.sources import SourceError, load_jsonl_records

    try:
        if args.input is not None:
            if args.source or args.benchmark:
                raise CLIError("give either an input file or --source/--benchmark, not both")
            records, rep = load_jsonl_records(args.input, strict=args.strict)
        else:
            if not args.benchmark:
                raise CLIError("give an input JSONL file, or --source and --benchmark")
            records, rep = open_source(args).load(args.benchmark, strict=args.strict)
    except RecordValidationError as e:
        raise CLIError(f"invalid input (--strict): {e}") from None
    except (SourceError, KeyError) as e:
        raise CLIError(str(e)) from None
    skipped = skipped_rows_message(rep, "--strict")
    if skipped:
        print(skipped, file=sys.stderr)
    if not args.strict:  # rows that are valid records but cannot get traces (e.g. no gold letter)
        from lm_eval_medsplit.adversarial import trace_input_problems

        problems = trace_input_problems(records)
        if problems:
            bad = {id(r) for r, _ in problems}
            records = [r for r in records if id(r) not in bad]
            print(f"skipped {len(problems)} record(s) that cannot get traces; the first: "
                  f"{problems[0][1]}", file=sys.stderr)
    if not records:
        raise CLIError("no record to give traces to; nothing written")
    return records


def cmd_generate(args) -> int:
    from lm_eval_medsplit.adversarial import TraceInputError
    from lm_eval_medsplit.commands.common import check_io_files
    from lm_eval_medsplit.errors import CLIError

    check_io_files(args.input, args.out, "the traces")
    records = _load_input(args)
    if args.offline:
        stats = _offline(records, args)
    else:
        from lm_eval_medsplit.trace_generation import GenerationError, generate_traces

        try:
            gen = _generator(args)
        except (GenerationError, ValueError, OSError) as e:
            raise CLIError(str(e)) from None
        try:
            _, st = generate_traces(records, gen, n=args.n, max_attempts=args.max_attempts,
                                    out=args.out, resume=not args.no_resume,
                                    on_reject=args.on_reject, progress=not args.no_progress,
                                    style=args.style)
        except (TraceInputError, GenerationError, ValueError) as e:
            raise CLIError(str(e)) from None
        finally:
            gen.close()
        stats = st.as_dict()
    if args.json:
        print(json.dumps(stats))
        return 0
    c = console()
    c.print(f"{stats['source']} ({stats['style']} style): {stats['records']:,} record(s), "
            f"{stats['requested']:,} trace(s) asked for: {stats['accepted']:,} accepted, {stats['rejected']:,} rejected"
            + (f" ({stats['fallback_offline']:,} replaced by the offline template)"
               if stats.get("fallback_offline") else ""), markup=False)
    if stats.get("resumed") or stats.get("partial"):
        c.print(f"resumed from {args.out}: {stats['resumed']:,} finished record(s) skipped, "
                f"{stats['partial']:,} completed", markup=False)
    if stats.get("attempts"):
        c.print(f"{stats['attempts']:,} attempt(s), {stats['retries']:,} retr(ies), "
                f"{stats['errors']:,} error(s)", markup=False)
    for why, n in (stats.get("reasons") or {}).items():
        c.print(f"  failed attempts: {why} x{n}", markup=False)
    c.print(f"wrote {args.out}", markup=False)
    return 0


def _offline(records, args) -> dict:
    from lm_eval_medsplit.adversarial import (
        OFFLINE_SOURCE,
        TraceInputError,
        add_offline_traces,
        check_record_traces,
        raise_trace_input_problems,
        trace_input_problems,
    )
    from lm_eval_medsplit.errors import CLIError
    from lm_eval_medsplit.sources import write_jsonl

    try:
        raise_trace_input_problems(trace_input_problems(records))
    except TraceInputError as e:
        raise CLIError(str(e)) from None
    add_offline_traces(records, n=args.n, overwrite=True, style=args.style)
    reasons: Counter = Counter()
    ok = 0
    for r in records:
        for _, good, why in check_record_traces(r):
            ok += good
            if not good:
                reasons[why] += 1
    write_jsonl(records, args.out)
    n = len(records) * args.n
    return {"source": OFFLINE_SOURCE, "n_traces": args.n, "records": len(records),
            "resumed": 0, "partial": 0, "requested": n, "accepted": ok, "rejected": n - ok,
            "fallback_offline": 0, "attempts": n, "retries": 0, "errors": 0,
            "reasons": dict(reasons), "style": args.style}


def _generator(args):
    from lm_eval_medsplit.trace_generation import EndpointGenerator, TransformersGenerator

    if args.endpoint:
        return EndpointGenerator(args.endpoint, args.endpoint_model, api_key_env=args.api_key_env,
                                 concurrency=args.concurrency, http_retries=args.http_retries,
                                 temperature=args.temperature, max_tokens=args.max_new_tokens)
    return TransformersGenerator(args.model, batch_size=args.batch_size,
                                 max_new_tokens=args.max_new_tokens, temperature=args.temperature)


def cmd_check(args) -> int:
    from lm_eval_medsplit.adversarial import check_record_traces
    from lm_eval_medsplit.errors import CLIError
    from lm_eval_medsplit.sources import SourceError, resolve_source

    if not args.file.exists():
        raise CLIError(f"{args.file}: no such file or directory")
    records, skipped = [], 0
    try:
        src = resolve_source(args.file)
        for name in src.benchmarks():
            recs, rep = src.load(name)
            records += recs
            skipped += rep.n_skipped
    except SourceError as e:
        raise CLIError(str(e)) from None
    reasons: Counter = Counter()
    sources: Counter = Counter()
    traces = ok = no_traces = 0
    failed_ids: list[str] = []
    for r in records:
        if not r.adversarial_traces:
            no_traces += 1
            continue
        sources[r.adversarial_source or "unknown"] += 1
        for k, good, why in check_record_traces(r):
            traces += 1
            ok += good
            if not good:
                reasons[why.split(" (")[0] if why.startswith("no final") else
                        " ".join(why.split()[:4])] += 1
                failed_ids.append(f"{r.id}#{k}")
    out = {"records": len(records), "skipped_rows": skipped, "without_traces": no_traces,
           "traces": traces, "ok": ok, "failed": traces - ok, "reasons": dict(reasons.most_common()),
           "sources": dict(sources.most_common()), "failed_examples": failed_ids[:10]}
    if args.json:
        print(json.dumps(out))
    else:
        c = console()
        c.print(f"{args.file}: {out['records']:,} record(s), {traces:,} trace(s): {ok:,} ok, "
                f"{traces - ok:,} failed; {no_traces:,} record(s) without traces", markup=False)
        c.print("sources: " + ", ".join(f"{k} x{v}" for k, v in sources.most_common()), markup=False)
        for why, n in reasons.most_common():
            c.print(f"  {why} x{n}", markup=False)
        if failed_ids:
            c.print("  e.g. " + ", ".join(failed_ids[:10]), markup=False)
    return 0 if traces == ok else 1
