"""Evaluation sets as every adapter sees them: records with labels and traces.

:func:`load_eval_records` is what lm-eval tasks, Inspect tasks, the trainer and the
report call. Hub data (and directories written by ``medsplit build``) already carry
``reasoning_prob`` / ``is_reasoning`` and adversarial traces; a source without them (a
raw directory, a user's JSONL) is labelled by the embedded classifier and given offline
template traces on the fly. Labelled sets are cached on disk by content hash
(``$MEDSPLIT_CACHE``, else the platform's user cache folder from ``platformdirs``:
``$XDG_CACHE_HOME/lm_eval_medsplit``, default ``~/.cache/lm_eval_medsplit`` on Linux) and in
memory per process.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lm_eval_medsplit import __version__
from lm_eval_medsplit.schema import LoadReport, MCQRecord, dataset_hash, record_from_row
from lm_eval_medsplit.sources import Source, resolve_source, write_jsonl

SUBSETS = ("reasoning", "knowledge", "all")
ENV_CACHE = "MEDSPLIT_CACHE"
_log = logging.getLogger("lm_eval_medsplit")
#: Strings an adapter's boolean parameter reads as true (``--metadata '{"strict": "yes"}'``,
#: ``-T strict=on``); any other string is false.
TRUE_STRINGS = ("1", "true", "yes", "on")


def flag_value(value: Any) -> bool:
    """An adapter's boolean parameter (``strict``, ``force_prefill``) as given: a bool or
    number as is, a string true when it is one of :data:`TRUE_STRINGS` (any case)."""
    if isinstance(value, str):
        return value.strip().lower() in TRUE_STRINGS
    return bool(value)


def skipped_rows_message(report: LoadReport, strict_hint: str | None = None) -> str | None:
    """One line for the console: how many rows of a benchmark were skipped, the first
    reasons, and how to make them fail instead (in the caller's tool syntax)."""
    if not report.skipped:
        return None
    reasons = "; ".join(f"{k} x{v}" for k, v in report.skip_reasons().most_common(3))
    how = f"; to fail on them instead: {strict_hint}" if strict_hint else ""
    return (f"medsplit: {report.benchmark}: skipped {report.n_skipped} invalid row(s) of "
            f"{report.source} ({reasons}); the first: {report.skipped[0]}{how}")


@dataclass
class EvalSet:
    benchmark: str
    records: list[MCQRecord]
    report: LoadReport
    source: Source
    labels_from: str
    """``source`` when the data carried labels, else ``classifier:<name>@<sha12>``."""
    traces_from: str
    """``source``, ``offline-template`` or ``none``."""

    @property
    def content_hash(self) -> str:
        """Hash of the records as evaluated (labels and traces included)."""
        return dataset_hash(self.records)

    def provenance(self) -> dict[str, Any]:
        """What every run records: source, revision, hashes, label and trace origin."""
        return {
            "benchmark": self.benchmark,
            "source": self.source.describe(),
            "revision": self.report.revision or self.source.revision,
            "source_content_hash": self.report.content_hash,
            "content_hash": self.content_hash,
            "labels_from": self.labels_from,
            "traces_from": self.traces_from,
            "n_records": len(self.records),
            "n_skipped": self.report.n_skipped,
            "package_version": __version__,
        }

    def subset(self, name: str) -> list[MCQRecord]:
        return select(self.records, name)


def select(records: list[MCQRecord], subset: str) -> list[MCQRecord]:
    """Records of one subset. Unlabelled records are an error for reasoning/knowledge."""
    if subset not in SUBSETS:
        raise ValueError(f"unknown subset {subset!r}; choose one of {', '.join(SUBSETS)}")
    if subset == "all":
        return list(records)
    missing = [r.id for r in records if r.is_reasoning is None]
    if missing:
        raise ValueError(f"{len(missing)} record(s) have no is_reasoning label (e.g. {missing[0]!r}); "
                         f"label them with `medsplit classify` or load with label=True")
    want = subset == "reasoning"
    return [r for r in records if r.is_reasoning is want]


_MEMO: dict[tuple, EvalSet] = {}


def source_key(src: Source) -> tuple:
    """What identifies a resolved source in the per-process caches (kind, location,
    revision, options)."""
    return (src.kind, src.location, src.revision, tuple(sorted(src.options.items())))


def cache_dir() -> Path:
    """``$MEDSPLIT_CACHE`` when set, else platformdirs' user cache folder (honours
    ``XDG_CACHE_HOME`` on Linux)."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE])
    import platformdirs

    return Path(platformdirs.user_cache_dir("lm_eval_medsplit", appauthor=False))


def load_eval_records(benchmark: str, source: str | Source | None = None, *,
                      revision: str | None = None, label: bool = True,
                      traces: bool = True, strict: bool = False,
                      shared: bool = False, strict_hint: str | None = None) -> EvalSet:
    """Load one benchmark ready for evaluation (a deep copy: callers may mutate it;
    ``shared=True`` returns the process-wide cached set itself, which callers must not
    mutate, saving the copy).

    ``label``: records without ``is_reasoning`` are labelled by the embedded classifier.
    ``traces``: a benchmark whose records carry no adversarial traces at all (not from the
    hub) gets offline template traces; partly traced data is left as it is.
    ``strict``: an invalid row fails the load; otherwise skipped rows are counted in the
    provenance and logged once as a warning (``strict_hint`` says how to turn strict on in
    the caller's tool)."""
    src = resolve_source(source, revision=revision)
    key = (*source_key(src), benchmark, label, traces, strict)
    if key not in _MEMO:
        _MEMO[key] = _load(src, benchmark, label=label, traces=traces, strict=strict)
        msg = skipped_rows_message(_MEMO[key].report, strict_hint)
        if msg:
            _log.warning(msg)
    return _MEMO[key] if shared else copy.deepcopy(_MEMO[key])


def _load(src: Source, benchmark: str, *, label: bool, traces: bool, strict: bool) -> EvalSet:
    records, report = src.load(benchmark, strict=strict)
    needs_labels = label and any(r.is_reasoning is None for r in records)
    # offline traces on the fly only for data that carries none (a raw folder, a user's
    # file, a build without traces); where some records have traces, one without is an
    # error when an adversarial task asks for it (MissingTraceError), never filled silently
    needs_traces = (traces and src.kind != "hub" and bool(records)
                    and not any(r.adversarial_traces for r in records))
    labels_from = "source" if not needs_labels else ""
    traces_from = ("source" if records and all(r.adversarial_traces for r in records)
                   else "none")
    if not (needs_labels or needs_traces):
        return EvalSet(report.benchmark, records, report, src, labels_from, traces_from)

    ident = _classifier_identity() if needs_labels else None
    tag = f"{report.content_hash[:16]}-{(ident or {}).get('sha256', 'nolabel')[:12]}-{int(needs_traces)}"
    path = cache_dir() / "eval" / f"{report.benchmark}-{tag}.jsonl"
    if path.is_file():
        records = [record_from_row(json.loads(line), report.benchmark, keep_extra=True)
                   for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        if needs_labels:
            from lm_eval_medsplit.classifier import label_records

            label_records([r for r in records if r.is_reasoning is None])
        if needs_traces:
            from lm_eval_medsplit.adversarial import add_offline_traces

            add_offline_traces(records)
        write_jsonl(records, path, lock=False)  # a shared cache: parallel workers may race
    if needs_labels:
        labels_from = f"classifier:{ident['name']}@{ident['sha256'][:12]}"
    if needs_traces:
        sources = {r.adversarial_source for r in records if r.adversarial_traces}
        traces_from = "+".join(sorted(s or "source" for s in sources)) or "none"
    return EvalSet(report.benchmark, records, report, src, labels_from, traces_from)


def _classifier_identity() -> dict[str, Any]:
    from lm_eval_medsplit.classifier import classifier_identity

    return classifier_identity()


