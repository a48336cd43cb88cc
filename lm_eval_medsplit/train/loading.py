"""Load the training rows and their ``reasoning_prob`` (steps 1 and 2 of the pipeline).

Accepts: ``zou-lab/BioMed-R1-Train`` by hub id (configs ``biomed_r1``, ``m23k_clean``;
``options`` a JSON string), a local directory in the same layout
(``DIR/<config>/train*.parquet|jsonl``), or a canonical MCQ JSONL file. Guarantees: every
row goes through :func:`lm_eval_medsplit.schema.build_records`, so invalid rows are
skipped and counted in the :class:`~lm_eval_medsplit.schema.LoadReport` (or raise with
``strict``), never silently dropped; a hub load records the resolved commit; rows without
``reasoning_prob`` are labelled by the embedded classifier only when asked
(:func:`ensure_reasoning_probs`). ``datasets`` and the classifier load inside the functions.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lm_eval_medsplit import registry
from lm_eval_medsplit.schema import (
    LoadReport,
    MCQRecord,
    RecordValidationError,
    build_records,
    dataset_hash,
    record_from_row,
)
from lm_eval_medsplit.train.arguments import TRAIN_SPLIT, TrainDataError

#: Files a local directory in the hub layout may hold for one config.
LOCAL_SUFFIXES = (".parquet", ".jsonl", ".json", ".csv")


def train_row_to_record(row: dict[str, Any], benchmark: str) -> MCQRecord:
    """One BioMed-R1-Train row (``options`` as JSON string) as a record; ``reasoning`` and
    any other column stay in :attr:`MCQRecord.extra`. A ``meta`` column holding a JSON
    string (what ``medsplit build`` writes, so its output trains GRPO) is parsed back."""
    meta = row.get("meta")
    if isinstance(meta, str):
        from lm_eval_medsplit.schema import RowError

        try:
            row = {**row, "meta": json.loads(meta) if meta.strip() else {}}
        except json.JSONDecodeError as e:
            raise RowError("meta", f"not valid JSON ({e.msg})") from None
    return record_from_row(row, benchmark, keep_extra=True)


def _with_ids(rows: Iterable[dict[str, Any]], prefix: str):
    for i, row in enumerate(rows):
        if isinstance(row, dict) and row.get("id") in (None, ""):
            row = {**row, "id": f"{prefix}-{i:06d}"}
        yield f"row {i}", row


def load_train_records(source: str = registry.TRAIN_DATASET, config: str = "biomed_r1", *,
                       split: str = TRAIN_SPLIT, revision: str | None = None,
                       strict: bool = False) -> tuple[list[MCQRecord], LoadReport]:
    """Load the training rows of ``source`` (hub id, local directory in the hub layout, or
    canonical MCQ JSONL) as validated records. Rows without an ``id`` get ``<config>-<row>``."""
    path = Path(os.path.expanduser(str(source)))
    if path.is_file():
        if path.suffix not in (".jsonl", ".json"):
            raise TrainDataError(f"{path}: a training file must be canonical MCQ JSONL (.jsonl)")
        from lm_eval_medsplit.sources import load_jsonl_records

        return load_jsonl_records(path, strict=strict)
    import datasets

    if path.is_dir():
        name = f"{path.resolve()}:{config}"
        sub = path / config
        if sub.is_dir():
            files = sorted(str(p) for p in sub.rglob("*") if p.suffix in LOCAL_SUFFIXES
                           and p.name.startswith(split))
            if not files:
                raise TrainDataError(f"{sub}: no {split}*.parquet / .jsonl file for config {config!r}")
            ds = datasets.load_dataset(str(path), data_dir=config, split=split)
        else:
            try:  # a local snapshot whose README declares the configs
                ds = datasets.load_dataset(str(path), config, split=split)
            except (ValueError, FileNotFoundError) as e:
                raise TrainDataError(f"{path}: no folder {config!r} and no config {config!r} "
                                     f"({e})") from None
    else:
        if str(source) != registry.TRAIN_DATASET and "/" not in str(source):
            raise TrainDataError(f"training source {source!r} is neither a hub id, a directory nor "
                                 f"a JSONL file")
        from lm_eval_medsplit.sources import resolve_hub_revision

        revision = resolve_hub_revision(str(source), revision or "main")
        try:
            ds = datasets.load_dataset(str(source), config, split=split, revision=revision)
        except Exception as e:  # noqa: BLE001 - offline, unknown id or config: say which and why
            raise TrainDataError(
                f"cannot load {source} (config {config!r}, split {split!r}) from the hub: "
                f"{type(e).__name__}: {e}. Without hub access, pass --dataset_source DIR (a local "
                f"copy in the same layout, DIR/{config}/{split}*.parquet) or an MCQ JSONL file") from e
        name = f"{source}:{config}" + (f"@{revision}" if revision else "")
    report = LoadReport(benchmark=config, source=str(source), revision=revision)
    report.files.append(name)
    records = list(build_records(_with_ids(ds, config), file=name, benchmark=config,
                                 report=report, convert=train_row_to_record))
    report.n_records = len(records)
    report.content_hash = dataset_hash(records)
    if strict and report.skipped:
        raise RecordValidationError(report.skipped)
    return records, report


def reasoning_text(record: MCQRecord) -> str:
    """The record's worked reasoning (``reasoning`` column), stripped; ``""`` when absent."""
    value = record.extra.get("reasoning")
    return value.strip() if isinstance(value, str) else ""


def ensure_reasoning_probs(records: list[MCQRecord], threshold: float | None = None) -> str:
    """Label rows without ``reasoning_prob`` with the embedded classifier (``is_reasoning``
    at ``threshold``, default the classifier's own). Returns where the probabilities came
    from (``source`` or ``classifier:<name>@<sha12>``)."""
    missing = [r for r in records if r.reasoning_prob is None]
    if not missing:
        return "source"
    try:
        from lm_eval_medsplit.classifier import classifier_identity, label_records

        label_records(missing, threshold=threshold)
        ident = classifier_identity()
    except (ImportError, FileNotFoundError) as e:
        raise TrainDataError(f"{len(missing)} row(s) have no reasoning_prob and the embedded "
                             f"classifier is not available ({e})") from None
    still = [r.id for r in missing if r.reasoning_prob is None]
    if still:
        raise TrainDataError(f"the classifier left {len(still)} row(s) without reasoning_prob "
                             f"(e.g. {still[0]!r})")
    who = f"classifier:{ident.get('name')}@{str(ident.get('sha256', ''))[:12]}"
    if len(missing) < len(records):  # the others kept the source's probabilities
        return f"source ({len(records) - len(missing)} rows) + {who} ({len(missing)} rows)"
    return who
