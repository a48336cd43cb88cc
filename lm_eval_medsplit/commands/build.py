"""``medsplit build``: the stratified evaluation set, rebuilt from a source.

Accepts: the build flags below. Guarantees: those of :func:`lm_eval_medsplit.build.build`
(byte-identical output for the same inputs; ``--out`` replaced whole or left as it was),
every failure a :class:`~lm_eval_medsplit.errors.CLIError` whose first line names it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lm_eval_medsplit.commands.common import add_source_args, console, open_source
from lm_eval_medsplit.prompts import STYLES

EPILOG = """\
writes DIR/<config>/test-00000-of-00001.parquet (the hub's fields: id, question,
options as JSON, answer, answer_idx, dataset_name, reasoning_prob, is_reasoning,
reasoning_threshold, adversarial_trace_0..N-1, plus adversarial_source and meta) and
DIR/manifest.json (per config: records, reasoning share, content hash, source file
sha256, classifier identity and threshold, trace source and style, package version).
Re-running with the same inputs gives byte-identical files. DIR is then a --source for
everything.

Records already labelled / with traces (a hub-layout source) keep them unless
--relabel / --retrace. Model traces that fail the check after --max-attempts get the
offline template in their slot, and the record's adversarial_source says so.

--style sets the last line of new traces: "Answer: X" (cot, the default) or "The final
answer is \\boxed{X}." (paper). Traces are prefills (only the model's continuation is
scored), so a build works as a --source with any evaluation style; for the paper's
adversarial setting build with --style paper (docs/reproduce.md). A source build's
traces of another style are kept only without --style, or replaced with --retrace.

examples:
  medsplit build --source ../shared/data/raw --out build/
  medsplit build --source ../shared/data/raw --out build/ --benchmarks medqa,pubmedqa
  medsplit build --source ../shared/data/raw --out build-paper/ --style paper
  medsplit build --source ../shared/data/raw --out build/ \\
      --traces-endpoint http://localhost:8000/v1 --endpoint-model Qwen/Qwen2.5-72B-Instruct
"""


def register(sub) -> None:
    p = sub.add_parser("build", help="rebuild the labelled evaluation set with traces (hub layout)",
                       description="Label every question reasoning / knowledge, add adversarial "
                                   "traces, and write the hub dataset's layout plus a manifest.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_args(p)
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--benchmarks", "-b", default=None,
                   help="comma-separated short names or hub configs (default: all in the source)")
    p.add_argument("--backend", default="embedded",
                   help="classifier backend: embedded (default) or transformer")
    p.add_argument("--classifier-model", default=None,
                   help="transformer backend: fine-tuned checkpoint (path or hub id)")
    p.add_argument("--threshold", type=float, default=None,
                   help="override the classifier's decision threshold")
    p.add_argument("--relabel", action="store_true", help="relabel records that already have labels")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--traces", choices=("offline",), default="offline",
                     help="offline template traces (default)")
    how.add_argument("--traces-model", metavar="PATH_OR_ID", help="local transformers model for traces")
    how.add_argument("--traces-endpoint", metavar="URL", help="OpenAI-compatible endpoint for traces")
    p.add_argument("--endpoint-model", default=None, help="model name at --traces-endpoint")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY")
    p.add_argument("--concurrency", type=int, default=8, help="--traces-endpoint requests in flight")
    p.add_argument("--batch-size", type=int, default=8, help="--traces-model prompts per batch")
    p.add_argument("--max-new-tokens", type=int, default=1024)
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--max-attempts", type=int, default=3)
    p.add_argument("--style", choices=STYLES, default=None,
                   help="prompt style whose final-answer line new traces end with: Answer: X "
                        "(cot, direct) or \\boxed{X} (paper) (default cot)")
    p.add_argument("--n-traces", type=int, default=3, help="traces per record (default 3)")
    p.add_argument("--retrace", action="store_true", help="replace traces the source already has")
    p.add_argument("--strict", action="store_true", help="fail on any invalid source row")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="print the manifest instead of the table")
    p.set_defaults(func=cmd_build)


def cmd_build(args) -> int:
    from lm_eval_medsplit.build import BuildError, build, share_table
    from lm_eval_medsplit.errors import CLIError
    from lm_eval_medsplit.schema import RecordValidationError

    src = open_source(args)
    gen = None
    try:
        if args.traces_endpoint or args.traces_model:
            from lm_eval_medsplit.trace_generation import (
                EndpointGenerator,
                GenerationError,
                TransformersGenerator,
            )

            try:
                gen = (EndpointGenerator(args.traces_endpoint, args.endpoint_model,
                                         api_key_env=args.api_key_env, concurrency=args.concurrency,
                                         temperature=args.temperature, max_tokens=args.max_new_tokens)
                       if args.traces_endpoint else
                       TransformersGenerator(args.traces_model, batch_size=args.batch_size,
                                             max_new_tokens=args.max_new_tokens,
                                             temperature=args.temperature))
            except (GenerationError, OSError, ValueError) as e:
                raise CLIError(str(e)) from None
        res = build(src, args.out, benchmarks=args.benchmarks, backend=args.backend,
                    threshold=args.threshold, classifier_model=args.classifier_model,
                    relabel=args.relabel, traces=gen or "offline", n_traces=args.n_traces,
                    retrace=args.retrace, max_attempts=args.max_attempts, strict=args.strict,
                    progress=not args.no_progress, style=args.style)
    except RecordValidationError as e:
        raise CLIError(f"invalid source rows (--strict):\n{e}") from None
    except BuildError as e:
        raise CLIError(str(e)) from None
    finally:
        if gen is not None:
            gen.close()
    if args.json:
        print(json.dumps(res.manifest, indent=2, sort_keys=True))
        return 0
    c = console()
    c.print(share_table(res.manifest))
    m = res.manifest
    cls = m.get("classifier")
    if cls:
        c.print(f"classifier: {cls.get('name', '?')} sha256 {str(cls.get('sha256', '?'))[:12]}, "
                f"threshold {m.get('threshold')}", markup=False)
    made = (f"made with {m['traces']['generator']} ({m['traces']['style']} style)"
            if m["traces"]["generator"] else "all kept from the source")
    c.print(f"traces: {m['traces']['n_traces']} per record, {made}; records by trace source: "
            + ", ".join(f"{k} {v:,}" for k, v in m["traces"]["sources"].items()), markup=False)
    for e in m["configs"].values():
        if e["skipped"]:
            c.print(f"  {e['config']}: {e['skipped']:,} invalid source row(s) skipped ("
                    + "; ".join(f"{k} x{v}" for k, v in e["skip_reasons"].items())
                    + "); --strict fails on them", markup=False)
    for cb in res.configs:
        st = cb.run_stats
        if st:
            c.print(f"  {cb.config}: {st['requested']:,} trace(s) asked for, {st['accepted']:,} "
                    f"accepted, {st['rejected']:,} rejected -> offline template; "
                    f"{st['resumed']:,} record(s) resumed, {st['retries']:,} retr(ies)", markup=False)
    c.print(f"wrote {args.out} ({m['revision']}); use it with --source {args.out}", markup=False)
    return 0
