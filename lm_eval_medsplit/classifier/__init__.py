"""Reasoning-vs-knowledge question classifier (BioMed-R1's ``reasoning_prob``).

BioMed-R1 labels every question with the probability that answering it takes multi-step
reasoning rather than recall of knowledge, from a classifier trained on MedXpertQA's expert
label (``question_type`` Reasoning vs Understanding). This package gives one interface over
two backends:

- ``"embedded"`` (default): scikit-learn TF-IDF + logistic regression shipped inside the
  wheel as plain arrays (``embedded_model.npz``, no pickles, numpy alone at prediction time,
  no network, no GPU). See :mod:`lm_eval_medsplit.classifier.embedded` and docs/classifier.md
  for what it is and how it was chosen and trained (``medsplit classifier train --backend
  embedded`` reproduces it).
- ``"transformer"``: a fine-tuned BERT-family encoder (``transformers``), e.g. the
  published ``zou-lab/BioMedBERT-Knowledge-vs-Reasoning`` or one fine-tuned with
  ``medsplit classifier train --backend transformer``; pass ``model=PATH_OR_HUB_ID``.

API::

    from lm_eval_medsplit.classifier import predict_proba, label_records, classifier_identity
    probs = predict_proba(records)                   # numpy array of reasoning_prob in [0, 1]
    label_records(records, threshold=None)           # sets reasoning_prob / is_reasoning / reasoning_threshold
    classifier_identity()                            # name, artefact sha256, threshold... for manifests

Every backend sees the same text, :func:`classifier_text` (stem, then the options in
MedXpertQA's own ``"\\nAnswer Choices: (A) ... (B) ..."`` form), for training and inference.

Importing this module is light (standard library only); numpy loads on the first
prediction, scikit-learn (the ``classifier`` extra) only for training and metrics, torch /
transformers only for the transformer backend.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lm_eval_medsplit.schema import ANSWER_CHOICES_RE

BACKENDS = ("embedded", "transformer")

#: The shipped embedded artefact.
DEFAULT_EMBEDDED_MODEL = Path(__file__).with_name("embedded_model.npz")

#: Hub id of the classifier published with BioMed-R1 (needs the hub or a local copy).
PUBLISHED_TRANSFORMER_MODEL = "zou-lab/BioMedBERT-Knowledge-vs-Reasoning"

OPTIONS_MARKER = "\nAnswer Choices: "


class ClassifierInputError(ValueError):
    """A record the classifier cannot read; names the record and the field."""

    def __init__(self, where: str, field: str, message: str):
        self.where = where
        self.field = field
        self.message = message
        super().__init__(f"{where}: field {field!r}: {message}")


# --------------------------------------------------------------------------- text


def _get(record: Any, key: str) -> Any:
    if isinstance(record, Mapping):
        return record.get(key)
    return getattr(record, key, None)


def _where(record: Any, index: int | None) -> str:
    rid = _get(record, "id")
    parts = []
    if index is not None:
        parts.append(f"record {index}")
    if rid is not None:
        parts.append(f"id {rid!r}")
    return " ".join(parts) or "record"


def question_and_options(record: Any, index: int | None = None) -> tuple[str, dict[str, str]]:
    """The stem (without any ``"Answer Choices:"`` suffix) and the lettered options of a
    :class:`~lm_eval_medsplit.schema.MCQRecord` or a mapping with ``question`` and
    ``options`` (a dict letter -> text, a list, or a JSON string of either). Raises
    :class:`ClassifierInputError` naming the record and field when one is missing or empty."""
    from lm_eval_medsplit.schema import RowError, coerce_options

    where = _where(record, index)
    q = _get(record, "question")
    if q is None:
        raise ClassifierInputError(where, "question", "missing")
    if not isinstance(q, str):
        raise ClassifierInputError(where, "question", f"expected a string, got {type(q).__name__}")
    m = ANSWER_CHOICES_RE.search(q)
    stem = (q[: m.start()] if m else q).strip()
    if not stem:
        raise ClassifierInputError(where, "question", "empty")
    raw = _get(record, "options")
    if raw is None:
        raise ClassifierInputError(where, "options", "missing")
    try:
        opts = coerce_options(raw)
    except RowError as e:
        raise ClassifierInputError(where, "options", e.message) from None
    if not opts:
        raise ClassifierInputError(where, "options", "empty")
    empty = [k for k, v in opts.items() if not str(v).strip()]
    if empty:
        raise ClassifierInputError(where, "options", f"empty option text for {', '.join(empty)}")
    return stem, opts


def classifier_text(record: Any, index: int | None = None) -> str:
    """The one text every backend is trained and run on: the stem, then
    ``"\\nAnswer Choices: (A) text (B) text ..."`` (MedXpertQA's own question format, which
    the published classifier was trained on). Whitespace inside options is collapsed."""
    stem, opts = question_and_options(record, index)
    choices = " ".join(f"({k}) {' '.join(str(v).split())}" for k, v in opts.items())
    return stem + OPTIONS_MARKER + choices


def classifier_texts(records: Iterable[Any]) -> list[str]:
    return [classifier_text(r, i) for i, r in enumerate(records)]


# --------------------------------------------------------------------------- gold labels


def gold_label(record: Any, field: str = "auto") -> int | None:
    """The gold reasoning label of a record: 1 Reasoning, 0 Understanding/knowledge.

    ``field="auto"`` takes ``meta.question_type`` (MedXpertQA's expert label) when present,
    else a top-level ``question_type``, else ``is_reasoning``. ``"question_type"`` or
    ``"is_reasoning"`` force one. ``None`` when the record has no such label."""
    def from_qtype(v: Any) -> int | None:
        if v is None:
            return None
        s = str(v).strip().lower()
        if s.startswith("reason"):
            return 1
        if s.startswith("understand") or s in ("knowledge", "recall"):
            return 0
        raise ValueError(f"unknown question_type {v!r} (expected Reasoning or Understanding)")

    meta = _get(record, "meta") or {}
    if field in ("auto", "question_type"):
        v = meta.get("question_type") if isinstance(meta, Mapping) else None
        if v is None:
            v = _get(record, "question_type")
        if v is not None or field == "question_type":
            return from_qtype(v)
    v = _get(record, "is_reasoning")
    if v is None:
        return None
    if isinstance(v, str):
        s = v.strip().lower()
        if s in ("true", "1"):
            return 1
        if s in ("false", "0"):
            return 0
        raise ValueError(f"is_reasoning {v!r} is not a boolean")
    return int(bool(v))


# --------------------------------------------------------------------------- backends

_MODEL_CACHE: dict[tuple, Any] = {}


def get_classifier(backend: str = "embedded", *, model: str | Path | None = None, **kw) -> Any:
    """A loaded classifier object with ``predict_proba(texts)``, ``threshold`` and
    ``identity()``. Loaded models are cached per (backend, model, options)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown classifier backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    key = (backend, str(model) if model is not None else None, tuple(sorted(kw.items())))
    if key in _MODEL_CACHE:
        return _MODEL_CACHE[key]
    if backend == "embedded":
        from lm_eval_medsplit.classifier.embedded import EmbeddedModel

        clf = EmbeddedModel.load(model or DEFAULT_EMBEDDED_MODEL)
    else:
        from lm_eval_medsplit.classifier.transformer import TransformerClassifier

        clf = TransformerClassifier(model or PUBLISHED_TRANSFORMER_MODEL, **kw)
    _MODEL_CACHE[key] = clf
    return clf


def predict_proba(records: Sequence[Any], backend: str = "embedded", *,
                  model: str | Path | None = None, progress: bool | None = None, **kw):
    """``reasoning_prob`` for each record (numpy float array in [0, 1], input order).

    ``records``: :class:`~lm_eval_medsplit.schema.MCQRecord` objects or mappings with
    ``question`` and ``options``. ``model``: an artefact path (embedded) or a checkpoint path
    / hub id (transformer; default the published BioMed-R1 classifier). Other keywords go
    to the transformer backend (``batch_size``, ``device``, ``max_length``)."""
    texts = classifier_texts(records)
    clf = get_classifier(backend, model=model, **kw)
    return clf.predict_proba(texts, progress=progress)


def label_records(records: Sequence[Any], backend: str = "embedded", threshold: float | None = None,
                  *, model: str | Path | None = None, progress: bool | None = None, **kw):
    """Set ``reasoning_prob``, ``is_reasoning`` (prob >= threshold) and
    ``reasoning_threshold`` on each record (attributes of records, keys of dicts) and return
    the records. ``threshold=None`` uses the classifier's own (chosen by cross-validation on
    the training ids for the embedded model; 0.5 for a transformer checkpoint without one)."""
    records = list(records)
    clf = get_classifier(backend, model=model, **kw)
    probs = clf.predict_proba(classifier_texts(records), progress=progress)
    t = float(clf.threshold if threshold is None else threshold)
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"threshold {t} is outside [0, 1]")
    for r, p in zip(records, probs):
        values = {"reasoning_prob": float(p), "is_reasoning": bool(p >= t), "reasoning_threshold": t}
        for k, v in values.items():
            if isinstance(r, dict):
                r[k] = v
            else:
                setattr(r, k, v)
    return records


def classifier_identity(backend: str = "embedded", *, model: str | Path | None = None,
                        threshold: float | None = None, **kw) -> dict[str, Any]:
    """What a manifest records about the classifier: backend, name, artefact sha256,
    threshold (and its criterion), training-data hash, package version."""
    ident = dict(get_classifier(backend, model=model, **kw).identity())
    if threshold is not None:
        ident["threshold_override"] = float(threshold)
    return ident


def read_split(path: str | Path) -> dict[str, list[str]]:
    """A split file ``{"train": [ids], "test": [ids], ...}`` (other keys ignored)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such split file") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: a split file must be a JSON object with id lists")
    return {k: [str(x) for x in v] for k, v in data.items() if isinstance(v, list)}


def load_labelled(data: str | Path, *, split: str | Path | None = None, part: str | None = None,
                  label_field: str = "auto") -> tuple[list[Any], list[int]]:
    """Labelled records for training or evaluation, and their gold labels (1/0).

    ``data``: a raw directory like ``shared/data/raw`` (its ``MedXpertQA`` folder is read),
    the ``MedXpertQA`` folder itself (``medxpertqa-r/`` + ``medxpertqa-u/``), or a JSONL file
    of records with a gold label (``meta.question_type`` / ``question_type`` /
    ``is_reasoning``, see :func:`gold_label`). ``split`` + ``part`` keep the ids listed
    under ``part`` of a split file, in the split file's order."""
    from lm_eval_medsplit.schema import LoadReport, RecordValidationError

    path = Path(data)
    if not path.exists():
        raise ValueError(f"{path}: no such file or directory")
    if path.is_dir():
        from lm_eval_medsplit import registry
        from lm_eval_medsplit.raw_loaders import load_raw

        b = registry.get_benchmark("medxpertqa")
        root = path
        if (path / "medxpertqa-r").is_dir():
            if path.name != b.config:
                raise ValueError(f"{path}: name the folder {b.config!r} or pass its parent directory")
            root = path.parent
        elif not (path / b.config).is_dir():
            raise ValueError(f"{path}: no {b.config}/ folder (medxpertqa-r/, medxpertqa-u/) in it")
        report = LoadReport(benchmark=b.name, source=str(root))
        records: list[Any] = load_raw(root, b, report)
        if report.skipped:
            raise RecordValidationError(report.skipped)
    else:
        from lm_eval_medsplit.sources import load_jsonl_records

        records, _ = load_jsonl_records(path, strict=True)
    if split is not None:
        if part is None:
            raise ValueError("--split needs --part (e.g. train or test)")
        parts = read_split(split)
        if part not in parts:
            raise ValueError(f"{split}: no part {part!r}; it has {', '.join(parts)}")
        by_id = {r.id: r for r in records}
        missing = [i for i in parts[part] if i not in by_id]
        if missing:
            raise ValueError(f"{len(missing)} id(s) of {split} part {part!r} are not in {path} "
                             f"(first: {missing[0]!r})")
        records = [by_id[i] for i in parts[part]]
    labels: list[int] = []
    for i, r in enumerate(records):
        try:
            y = gold_label(r, label_field)
        except ValueError as e:
            raise ValueError(f"{path}: record {i} (id {r.id!r}): {e}") from None
        if y is None:
            raise ValueError(f"{path}: record {i} (id {r.id!r}) has no gold label "
                             f"(meta.question_type, question_type or is_reasoning)")
        labels.append(y)
    return records, labels


__all__ = [
    "BACKENDS", "DEFAULT_EMBEDDED_MODEL", "PUBLISHED_TRANSFORMER_MODEL", "ClassifierInputError",
    "classifier_text", "classifier_texts", "question_and_options", "gold_label", "get_classifier",
    "predict_proba", "label_records", "classifier_identity", "read_split",
]
