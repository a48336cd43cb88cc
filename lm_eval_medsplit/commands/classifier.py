"""``medsplit classify`` and ``medsplit classifier train|evaluate|info``: the
reasoning-vs-knowledge question classifier.

Accepts: JSONL questions, or a benchmark of a ``--source``; labelled data for train and
evaluate. Guarantees: input rows are checked as the canonical record schema checks them
(``--strict`` fails naming file, line and field; lenient skips and counts); every
``--out`` is checked before any work; the labels and the embedded artefact are written
atomically."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from lm_eval_medsplit.fileio import write_jsonl_rows

CLASSIFY_EPILOG = """\
input: canonical JSONL, one object per line with id, question, options (dict letter -> text
or a list) and anything else; every field is written back unchanged, with reasoning_prob,
is_reasoning and reasoning_threshold added. Or --benchmark B to label a benchmark of
--source S (default $MEDSPLIT_SOURCE or the hub); its invalid rows are skipped and counted.

examples:
  medsplit classify my_questions.jsonl --out labelled.jsonl
  medsplit classify my_questions.jsonl --out labelled.jsonl --threshold 0.5
  medsplit classify --source ../shared/data/raw --benchmark medqa --out medqa.labelled.jsonl
  medsplit classify q.jsonl --out l.jsonl --backend transformer --model zou-lab/BioMedBERT-Knowledge-vs-Reasoning
"""

TRAIN_EPILOG = """\
examples:
  medsplit classifier train --backend embedded --data ../shared/data/raw \\
      --split ../shared/data/splits/medxpertqa_classifier_split.json --out model.npz
  medsplit classifier train --backend transformer --data ../shared/data/raw \\
      --split ../shared/data/splits/medxpertqa_classifier_split.json --out ckpt/ \\
      --base microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract-fulltext
"""

EVAL_EPILOG = """\
--labels: a JSONL of records with a gold label (meta.question_type Reasoning/Understanding,
question_type, or is_reasoning), or the raw MedXpertQA data (a directory like shared/data/raw).

example:
  medsplit classifier evaluate --labels ../shared/data/raw \\
      --split ../shared/data/splits/medxpertqa_classifier_split.json --part test
"""


def _add_backend_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=("embedded", "transformer"), default="embedded",
                   help="embedded (default, shipped CPU model) or transformer (fine-tuned encoder)")
    p.add_argument("--model", default=None,
                   help="embedded: artefact .npz (default: the shipped one); transformer: checkpoint "
                        "directory or hub id (default zou-lab/BioMedBERT-Knowledge-vs-Reasoning)")
    p.add_argument("--batch-size", type=int, default=None, help="transformer batch size (default 32)")
    p.add_argument("--device", default=None, help="transformer device (default: cuda when present)")


def register(sub) -> None:
    from lm_eval_medsplit.commands.common import add_source_args

    p = sub.add_parser("classify", help="add reasoning_prob / is_reasoning to questions",
                       description="Label questions with the reasoning-vs-knowledge classifier.",
                       epilog=CLASSIFY_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", nargs="?", type=Path, help="canonical JSONL of questions")
    p.add_argument("--out", type=Path, required=True, help="output JSONL")
    p.add_argument("--benchmark", default=None, help="with --source: the benchmark to label")
    add_source_args(p)
    _add_backend_args(p)
    p.add_argument("--threshold", type=float, default=None,
                   help="is_reasoning = reasoning_prob >= threshold (default: the classifier's own)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    from lm_eval_medsplit.commands.common import add_strictness_args

    add_strictness_args(p, "line")
    p.set_defaults(func=cmd_classify)

    g = sub.add_parser("classifier", help="train, evaluate or describe the reasoning classifier",
                       description="The reasoning-vs-knowledge question classifier.",
                       epilog="examples:\n  medsplit classifier info\n"
                              "  medsplit classifier evaluate --labels ../shared/data/raw \\\n"
                              "      --split ../shared/data/splits/medxpertqa_classifier_split.json --part test",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    gs = g.add_subparsers(dest="classifier_command", metavar="SUBCOMMAND")

    t = gs.add_parser("train", help="train a classifier on labelled questions",
                      epilog=TRAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--backend", choices=("embedded", "transformer"), default="embedded")
    t.add_argument("--data", required=True, type=Path,
                   help="raw MedXpertQA data (directory like shared/data/raw) or a JSONL of labelled records")
    t.add_argument("--split", type=Path, default=None,
                   help="split file; only its --part ids are used (without it: every question, "
                        "so nothing of the data stays held out)")
    t.add_argument("--part", default=None, help="with --split: the part to train on (default train)")
    t.add_argument("--out", type=Path, required=True,
                   help="embedded: artefact path (.npz); transformer: output directory")
    t.add_argument("--label-field", choices=("auto", "question_type", "is_reasoning"), default="auto")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--folds", type=int, default=5, help="embedded: CV folds for the threshold (default 5)")
    t.add_argument("--base", default=None,
                   help="transformer: base encoder, hub id or local path "
                        "(default microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract-fulltext)")
    t.add_argument("--epochs", type=float, default=3.0)
    t.add_argument("--lr", type=float, default=2e-5)
    t.add_argument("--batch-size", type=int, default=16)
    t.add_argument("--max-length", type=int, default=512)
    t.add_argument("--max-steps", type=int, default=None)
    t.add_argument("--device", default=None)
    t.set_defaults(func=cmd_train)

    e = gs.add_parser("evaluate", help="agreement with gold labels, with bootstrap intervals",
                      epilog=EVAL_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("--labels", required=True, type=Path, help="labelled JSONL or raw MedXpertQA directory")
    e.add_argument("--split", type=Path, default=None, help="split file; only its --part ids are scored")
    e.add_argument("--part", default=None, help="with --split: the part to evaluate (default test)")
    e.add_argument("--label-field", choices=("auto", "question_type", "is_reasoning"), default="auto")
    _add_backend_args(e)
    e.add_argument("--threshold", type=float, default=None)
    e.add_argument("--n-boot", type=int, default=1000)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")
    e.set_defaults(func=cmd_evaluate)

    i = gs.add_parser("info", help="print the classifier's identity (name, sha256, threshold, CV) and, "
                                   "with --source, the reasoning share it gives each benchmark",
                      description="The classifier's identity: name, sha256, threshold, CV; with "
                                  "--source, the reasoning share it gives each benchmark.",
                      epilog="examples:\n  medsplit classifier info\n"
                             "  medsplit classifier info --source ../shared/data/raw\n"
                             "  medsplit classifier info --backend transformer --model PATH_OR_ID",
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_backend_args(i)
    i.add_argument("--source", default=None,
                   help="also label every benchmark of this source (a raw directory, a hub-layout "
                        "directory, a JSONL, or 'hub') and print its reasoning share")
    i.add_argument("--threshold", type=float, default=None,
                   help="with --source: the threshold for the shares (default: the classifier's own)")
    i.set_defaults(func=cmd_info)

    g.set_defaults(func=lambda args: (g.print_help(), 2)[1])


# --------------------------------------------------------------------------- helpers


def _backend_kw(args) -> dict:
    kw = {}
    if args.backend == "transformer":
        if getattr(args, "batch_size", None):
            kw["batch_size"] = args.batch_size
        if getattr(args, "device", None):
            kw["device"] = args.device
    return kw


def _classifier(args):
    from lm_eval_medsplit.classifier import get_classifier
    from lm_eval_medsplit.cli import CLIError

    try:
        return get_classifier(args.backend, model=args.model, **_backend_kw(args))
    except (OSError, ValueError) as e:
        raise CLIError(str(e)) from None


def _need_sklearn(what: str) -> None:
    from lm_eval_medsplit.cli import CLIError

    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise CLIError(f"{what} needs scikit-learn: pip install 'lm-eval-medsplit[classifier]' "
                       f"(labelling with `medsplit classify` does not)") from None


def _check_threshold(t):
    from lm_eval_medsplit.cli import CLIError

    if t is not None and not 0.0 <= t <= 1.0:
        raise CLIError(f"--threshold {t} is outside [0, 1]")


# --------------------------------------------------------------------------- classify


def read_question_lines(path: Path) -> tuple[list[dict], list[str], list]:
    """Rows of a JSONL file, their classifier texts, and the problems found (file, line,
    field); a row with a problem gets no text. Rows are checked as the canonical record
    schema checks them (types, at least 2 options, a gold letter among the options, no
    duplicate id)."""
    from lm_eval_medsplit.classifier import ClassifierInputError, classifier_text
    from lm_eval_medsplit.schema import Problem, RowError, iter_json_objects, record_from_row, validate_record

    rows, texts, problems = [], [], []
    seen: dict[str, str] = {}
    for loc, row in iter_json_objects(path):
        if isinstance(row, RowError):
            problems.append(Problem(str(path), loc, row.field, row.message))
            continue
        if row.get("id") is None or str(row.get("id")).strip() == "":
            problems.append(Problem(str(path), loc, "id", "missing" if row.get("id") is None else "empty"))
            continue
        try:
            rec = record_from_row(row, path.stem)
            errs = validate_record(rec)
            text = classifier_text(row)
        except RowError as e:
            problems.append(Problem(str(path), loc, e.field, e.message))
            continue
        except ClassifierInputError as e:
            problems.append(Problem(str(path), loc, e.field, e.message))
            continue
        key = f"{rec.benchmark}\x00{rec.id}"
        if key in seen:
            errs.append(("id", f"duplicate id {rec.id!r} (first at {seen[key]})"))
        if errs:
            problems.extend(Problem(str(path), loc, f, m) for f, m in errs)
            continue
        seen[key] = loc
        rows.append(row)
        texts.append(text)
    return rows, texts, problems


def cmd_classify(args) -> int:
    from lm_eval_medsplit.cli import CLIError

    _check_threshold(args.threshold)
    if args.file is not None and (args.source is not None or args.benchmark is not None):
        raise CLIError("give either an input JSONL file or --benchmark B [--source S], not both")
    if args.file is None and args.benchmark is None:
        raise CLIError("give an input JSONL file, or --benchmark B to label a benchmark of "
                       "--source S (default $MEDSPLIT_SOURCE or the hub)")
    from lm_eval_medsplit.commands.common import check_io_files, report_skips

    progress = False if args.no_progress else None
    check_io_files(args.file, args.out, "the labels")
    if args.file is not None:
        rows, texts, problems = read_question_lines(args.file)
        if problems and (args.strict or not rows):
            shown = "\n".join(f"  - {p}" for p in problems[:20])
            more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
            raise CLIError(f"{len(problems)} invalid line(s), nothing written; the first: {problems[0]}"
                           + (f"\n{shown}{more}" if len(problems) > 1 else ""))
        if not rows:
            raise CLIError(f"{args.file}: no question to label (the file is empty); nothing written")
        report_skips(problems, "line")
        clf = _classifier(args)
        probs = clf.predict_proba(texts, progress=progress if progress is not None else len(texts) >= 2000)
        t = float(clf.threshold if args.threshold is None else args.threshold)
        out_rows = []
        for row, p in zip(rows, probs):
            row = dict(row)
            row["reasoning_prob"] = float(p)
            row["is_reasoning"] = bool(p >= t)
            row["reasoning_threshold"] = t
            out_rows.append(row)
        write_jsonl_rows(args.out, out_rows)
        n_r = sum(r["is_reasoning"] for r in out_rows)
    else:
        from lm_eval_medsplit.classifier import label_records
        from lm_eval_medsplit.commands.common import open_source
        from lm_eval_medsplit.sources import SourceError

        src = open_source(args)
        try:
            records, report = src.load(args.benchmark, strict=args.strict)
        except SourceError as e:
            raise CLIError(str(e)) from None
        if report.skipped:
            reasons = "; ".join(f"{k} x{v}" for k, v in report.skip_reasons().most_common())
            print(f"medsplit: {report.n_skipped} invalid row(s) of {args.benchmark} skipped "
                  f"({reasons}); the first: {report.skipped[0]}", file=sys.stderr)
        if not records:
            raise CLIError(f"no valid records of {args.benchmark} in {src.location}; nothing written")
        clf = _classifier(args)
        label_records(records, args.backend, args.threshold, model=args.model,
                      progress=progress if progress is not None else len(records) >= 2000,
                      **_backend_kw(args))
        t = float(clf.threshold if args.threshold is None else args.threshold)
        write_jsonl_rows(args.out, [r.to_dict() for r in records])
        n_r = sum(bool(r.is_reasoning) for r in records)
        out_rows = records
    ident = clf.identity()
    print(f"labelled {len(out_rows)} question(s): {n_r} reasoning, {len(out_rows) - n_r} knowledge "
          f"(threshold {t:.2f}; {ident['backend']} {ident['name']}) -> {args.out}")
    return 0


# --------------------------------------------------------------------------- train / evaluate / info


def _load_labelled(data, split, part, label_field):
    from lm_eval_medsplit.classifier import load_labelled
    from lm_eval_medsplit.cli import CLIError
    from lm_eval_medsplit.schema import RecordValidationError

    if part is not None and split is None:
        raise CLIError(f"--part {part} needs --split FILE (the split file that defines the parts)")
    try:
        return load_labelled(data, split=split, part=part if split else None, label_field=label_field)
    except (ValueError, RecordValidationError) as e:
        raise CLIError(str(e)) from None


def cmd_train(args) -> int:
    from lm_eval_medsplit.classifier import classifier_texts
    from lm_eval_medsplit.cli import CLIError
    from lm_eval_medsplit.fileio import check_output_dir, check_output_file

    if args.backend == "embedded":
        _need_sklearn("medsplit classifier train")
    # before any work: a bad --out is found now, not after the training
    (check_output_file if args.backend == "embedded" else check_output_dir)(args.out)
    if args.split is not None and args.part is None:
        args.part = "train"
    records, labels = _load_labelled(args.data, args.split, args.part, args.label_field)
    if args.split is None:
        print(f"warning: no --split: training on all {len(records):,} questions of {args.data}, so "
              f"none of them is held out (pass --split FILE to train on its train part only)",
              file=sys.stderr)
    if len(set(labels)) < 2:
        raise CLIError("the training data needs both classes (Reasoning and Understanding)")
    ids = [r.id for r in records]
    texts = classifier_texts(records)
    desc = f"{args.data}" + (f" [{args.split} part {args.part}]" if args.split else "")
    print(f"training {args.backend} classifier on {len(ids)} questions "
          f"({sum(labels)} reasoning) from {desc}", file=sys.stderr)

    def log(s):
        print(s, file=sys.stderr, flush=True)

    if args.backend == "embedded":
        from lm_eval_medsplit.classifier.embedded import train_embedded

        data_desc = {"data": os.path.basename(os.path.normpath(str(args.data))),
                     "split": os.path.basename(str(args.split)) if args.split else None,
                     "part": args.part if args.split else None}
        model = train_embedded(ids, texts, labels, folds=args.folds, seed=args.seed,
                               data_description=data_desc, log=log)
        sha = model.save(args.out)
        cv = model.meta.get("cv") or {}
        at = cv.get("at_threshold") or {}
        print(json.dumps({"out": str(args.out), "sha256": sha, "bytes": Path(args.out).stat().st_size,
                          "threshold": model.threshold, "cv_at_threshold": at}, indent=1))
    else:
        from lm_eval_medsplit.classifier.transformer import DEFAULT_BASE, train_transformer

        try:
            out = train_transformer(ids, texts, labels, out=args.out, base=args.base or DEFAULT_BASE,
                                    epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                                    max_length=args.max_length, max_steps=args.max_steps,
                                    seed=args.seed, device=args.device, log=log)
        except OSError as e:
            raise CLIError(f"cannot load base model {args.base or DEFAULT_BASE!r}: {e}") from None
        print(json.dumps({"out": str(out)}))
    return 0


def cmd_evaluate(args) -> int:
    from lm_eval_medsplit.classifier import classifier_texts
    from lm_eval_medsplit.classifier.metrics import bootstrap_metrics, format_report

    _check_threshold(args.threshold)
    _need_sklearn("medsplit classifier evaluate")
    if args.split is not None and args.part is None:
        args.part = "test"
    records, labels = _load_labelled(args.labels, args.split, args.part, args.label_field)
    clf = _classifier(args)
    probs = clf.predict_proba(classifier_texts(records))
    t = float(clf.threshold if args.threshold is None else args.threshold)
    res = bootstrap_metrics(labels, probs, t, n_boot=args.n_boot, seed=args.seed)
    ident = clf.identity()
    title = (f"{ident['backend']} classifier {ident['name']} on {args.labels}"
             + (f" [{args.split.name} part {args.part}]" if args.split else ""))
    print(format_report(res, title))
    seen = set((getattr(clf, "meta", None) or {}).get("train_ids") or [])
    overlap = sum(r.id in seen for r in records)
    if overlap:
        print(f"warning: {overlap} of these {len(records)} questions were in the classifier's "
              f"training set; these figures are not held-out", file=sys.stderr)
    if args.json:
        from lm_eval_medsplit.fileio import write_text

        write_text(args.json, json.dumps({"classifier": ident, "labels": str(args.labels),
                                          "split": str(args.split) if args.split else None,
                                          "part": args.part if args.split else None,
                                          "train_overlap": overlap, **res}, indent=1))
    return 0


def reasoning_shares(source, clf, threshold: float | None = None) -> dict:
    """Per benchmark of ``source``: questions, reasoning count and share as labelled by
    ``clf`` (the source's own labels are ignored), with the overall share beside the paper's."""
    from lm_eval_medsplit.build import PAPER_REASONING_SHARE
    from lm_eval_medsplit.classifier import classifier_texts

    t = float(clf.threshold if threshold is None else threshold)
    rows, n_all, r_all = {}, 0, 0
    for name in source.benchmarks():
        records, _ = source.load(name)
        if not records:
            continue
        n_r = int((clf.predict_proba(classifier_texts(records), progress=False) >= t).sum())
        rows[name] = {"questions": len(records), "reasoning": n_r, "reasoning_share": round(n_r / len(records), 4)}
        n_all += len(records)
        r_all += n_r
    return {"threshold": t, "benchmarks": rows,
            "all": {"questions": n_all, "reasoning": r_all,
                    "reasoning_share": round(r_all / n_all, 4) if n_all else None},
            "paper_reasoning_share_all_11": PAPER_REASONING_SHARE}


def cmd_info(args) -> int:
    from lm_eval_medsplit.cli import CLIError
    from lm_eval_medsplit.sources import SourceError

    _check_threshold(args.threshold)
    clf = _classifier(args)
    out = dict(clf.identity())
    if args.source is not None:
        from lm_eval_medsplit.sources import resolve_source

        try:
            out["reasoning_shares"] = reasoning_shares(resolve_source(args.source), clf, args.threshold)
        except SourceError as e:
            raise CLIError(str(e)) from None
    print(json.dumps(out, indent=1))
    return 0
