"""Training data for the TRL entrypoint: load, select, decontaminate, augment, render.

Pipeline (:func:`prepare_training_data`):

1. **Load** ``zou-lab/BioMed-R1-Train`` (configs ``biomed_r1``, ``m23k_clean``; fields
   ``question, options`` (JSON string), ``answer_idx, answer, reasoning, reasoning_prob``)
   with ``datasets.load_dataset`` by hub id, or the same call on a local directory in the
   same layout (``DIR/<config>/train*.parquet|jsonl``), or read a canonical MCQ JSONL file
   through :func:`lm_eval_medsplit.sources.load_jsonl_records` (``reasoning`` optional).
   Every row goes through :func:`lm_eval_medsplit.schema.build_records`: invalid rows are
   skipped and counted, never silently dropped.
2. **Label** rows without ``reasoning_prob`` with the embedded classifier (only when the
   selection needs it).
3. **Decontaminate** against the evaluation source (default: the one in use,
   ``$MEDSPLIT_SOURCE`` or ``hub``): exact matches of the normalised question + options and
   near-duplicates (MinHash LSH candidates verified with ``rapidfuzz.fuzz.ratio``) are
   removed, with counts per benchmark.
4. **Select** reasoning-heavy rows (``reasoning_prob >= threshold``, the classifier's own
   ``is_reasoning`` rule), optionally mixed with a
   share of knowledge rows.
5. **Augment**: a deterministic share of rows is rendered in the adversarial ``prefill``
   form of :func:`lm_eval_medsplit.prompts.build_prompt`, so the policy continues an
   incorrect trace and must backtrack to the gold answer.
6. **Render** SFT prompt/completion rows or GRPO prompt rows. Every row carries
   :func:`lm_eval_medsplit.samples.sample_metadata` plus the gold letter (``answer_idx``),
   the option texts (``options``) and the prompt ``style``, which GRPO passes to the reward
   functions as kwargs.

The steps live in one module each, re-exported here: :mod:`.arguments` (settings and
:class:`TrainDataError`), :mod:`.loading` (1, 2), :mod:`.decontamination` (3),
:mod:`.selection` (4 and the adversarial share), :mod:`.rows` (5, 6). This module accepts
a :class:`MedsplitTrainArguments` and guarantees a :class:`PreparedData` whose report says
what every step kept and dropped.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from lm_eval_medsplit.train.arguments import (
    PROMPT_FORMATS,
    TASKS,
    TRAIN_SPLIT,
    MedsplitTrainArguments,
    TrainDataError,
)
from lm_eval_medsplit.train.decontamination import (
    CONTAINED_MIN_CHARS,
    CONTAINED_MIN_SHARE,
    OPTION_BUCKET_MAX,
    SHINGLE_CHARS,
    DecontaminationReport,
    Match,
    MinHashLSH,
    decontaminate,
    load_eval_sets,
    match_parts,
    match_text,
    normalise_text,
)
from lm_eval_medsplit.train.loading import (
    LOCAL_SUFFIXES,
    ensure_reasoning_probs,
    load_train_records,
    reasoning_text,
    train_row_to_record,
)
from lm_eval_medsplit.train.rows import THINK_CLOSE, THINK_OPEN, build_rows, render_prompt, sft_completion
from lm_eval_medsplit.train.selection import cap, choose_adversarial, row_key, select_reasoning


@dataclass
class PreparedData:
    rows: list[dict[str, Any]]
    report: dict[str, Any]
    decontamination: DecontaminationReport | None = None

    def to_dataset(self):
        import datasets

        return datasets.Dataset.from_list(self.rows)


def prepare_training_data(args: MedsplitTrainArguments, task: str, *, tokenizer=None,
                          log=print) -> PreparedData:
    """Run the whole data pipeline for ``task`` and return the rows and a report of what
    every step kept and dropped."""
    if task not in TASKS:
        raise TrainDataError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    records, load_report = load_train_records(args.dataset_source, args.dataset_config,
                                              split=args.dataset_split, revision=args.dataset_revision,
                                              strict=getattr(args, "dataset_strict", False))
    from lm_eval_medsplit.dataset import skipped_rows_message

    skipped = skipped_rows_message(load_report, "--dataset_strict true")
    if skipped:
        log(f"warning: {skipped}")
    steps: dict[str, Any] = {"loaded": len(records), "skipped_invalid": load_report.n_skipped,
                             "skip_reasons": dict(load_report.skip_reasons())}
    no_gold = [r for r in records if r.answer_idx is None]
    records = [r for r in records if r.answer_idx is not None]
    steps["dropped_no_gold"] = len(no_gold)
    if task == "sft":
        n = len(records)
        records = [r for r in records if reasoning_text(r)]
        steps["dropped_no_reasoning"] = n - len(records)
    if not records:
        raise TrainDataError(f"no usable training rows in {args.dataset_source} ({args.dataset_config}): "
                             f"{json.dumps(steps)}")

    deco = None
    against = args.decontaminate_against
    if against is None or str(against).lower() != "none":
        eval_sets, described = load_eval_sets(against, args.decontaminate_benchmarks)
        records, deco = decontaminate(records, eval_sets, near_threshold=args.near_duplicate_threshold,
                                      against=described)
        counts = deco.per_benchmark()
        log(f"decontamination against {described.get('location')}: removed {deco.n_removed} of "
            f"{deco.n_checked} training rows")
        for b, c in counts.items():
            log(f"  {b:<26} exact {c['exact']:>5}  near {c['near']:>5}")
    steps["removed_contaminated"] = deco.n_removed if deco else 0

    probs_from = "not needed"
    if args.reasoning_threshold is not None:
        probs_from = ensure_reasoning_probs(records, args.reasoning_threshold)
    records, sel = select_reasoning(records, args.reasoning_threshold,
                                    knowledge_ratio=args.knowledge_ratio, seed=args.selection_seed)
    steps["selection"] = {**sel, "reasoning_prob_from": probs_from}
    t = args.reasoning_threshold
    records = cap(records, args.max_train_samples, seed=args.selection_seed,
                  stratum=None if t is None else (lambda r: r.reasoning_prob >= t))
    if args.max_train_samples is not None:
        steps["after_cap"] = {"rows": len(records),
                              "knowledge": 0 if t is None else sum(r.reasoning_prob < t for r in records)}
    if not records:
        raise TrainDataError(f"no training rows left after selection: {json.dumps(steps)}")

    adversarial_ids: set[str] = set()
    traces_from = None
    if args.adversarial_share > 0:
        from lm_eval_medsplit.adversarial import OFFLINE_SOURCE, add_offline_traces

        adversarial_ids = choose_adversarial(records, args.adversarial_share, seed=args.selection_seed)
        need = [r for r in records if row_key(r) in adversarial_ids and not r.adversarial_traces]
        add_offline_traces(need)
        traces_from = OFFLINE_SOURCE if need else "source"
    fmt = args.prompt_format
    if fmt == "auto":
        fmt = "text" if adversarial_ids else "conversational"
    rows = build_rows(records, task, adversarial_ids=adversarial_ids, style=args.prompt_style,
                      think_tags=args.think_tags, prompt_format=fmt, tokenizer=tokenizer)
    steps["final"] = len(rows)
    steps["adversarial"] = len(adversarial_ids)
    report = {
        "task": task,
        "source": {"dataset_source": args.dataset_source, "config": args.dataset_config,
                   "split": args.dataset_split,
                   "revision": load_report.revision or args.dataset_revision,
                   "files": load_report.files, "content_hash": load_report.content_hash},
        "steps": steps,
        "prompt_format": fmt,
        "prompt_style": args.prompt_style,
        "think_tags": args.think_tags,
        "adversarial_traces_from": traces_from,
        "decontamination": deco.as_dict() if deco else None,
        "rows_hash": hashlib.sha256("\n".join(
            json.dumps(r, sort_keys=True, ensure_ascii=False) for r in rows).encode()).hexdigest(),
    }
    return PreparedData(rows, report, deco)


__all__ = [
    "MedsplitTrainArguments", "TrainDataError", "load_train_records", "reasoning_text",
    "ensure_reasoning_probs", "select_reasoning", "cap", "row_key", "choose_adversarial",
    "normalise_text",
    "match_text", "MinHashLSH", "Match", "DecontaminationReport", "decontaminate",
    "load_eval_sets", "sft_completion", "render_prompt", "build_rows", "PreparedData",
    "prepare_training_data",
    # also importable from here, as before the split
    "TRAIN_SPLIT", "TASKS", "PROMPT_FORMATS", "THINK_OPEN", "THINK_CLOSE", "LOCAL_SUFFIXES",
    "train_row_to_record", "match_parts", "CONTAINED_MIN_SHARE", "CONTAINED_MIN_CHARS",
    "OPTION_BUCKET_MAX", "SHINGLE_CHARS",
]
