"""The lm-evaluation-harness adapter: docs, prompts, scoring and provenance of the
``medsplit_*`` tasks whose YAMLs live in :mod:`lm_eval_medsplit.task_yaml`.

Every task YAML names :class:`MedsplitTask` (``class: !function ...``) and says which
benchmark, subset and mode it evaluates in ``dataset_kwargs``; this module turns that
into docs:

- records come from :func:`lm_eval_medsplit.dataset.load_eval_records` (labels and
  traces included) for the source chosen by ``--metadata '{"source": ...}'`` or
  ``MEDSPLIT_SOURCE`` (default: the pinned hub revision), and
  :func:`lm_eval_medsplit.dataset.select` picks the subset;
- each doc carries :func:`lm_eval_medsplit.samples.sample_metadata` of its record (so
  ``--log_samples`` output joins back to the records) plus the question, options and
  gold letter;
- prompts come from :mod:`lm_eval_medsplit.prompts` (``cot`` user turn; the adversarial
  assistant prefill through lm-eval's ``gen_prefix``);
- generated text is scored by :func:`lm_eval_medsplit.scoring.score` in the ``score``
  filter (:class:`ScoreFilter`), whose output -- a JSON object with ``pred``, ``method``,
  ``outcome``, ``correct``, ``parsed`` -- is what lm-eval logs as ``filtered_resps``;
  :func:`process_results` turns it into the metrics ``acc`` and ``parsed`` (and, for
  adversarial tasks, ``acc_trace0..2``);
- :meth:`MedsplitTask.download` records source, revision and content hashes in the task
  config's ``metadata["medsplit"]``, which lm-eval writes into the results JSON under
  ``configs.<task>.metadata``.

Modes: ``cot`` (generative, step by step), ``adversarial`` (generative, one doc per
(record, trace), assistant turn prefilled with the trace and the reconsider cue) and
``mc`` (log-likelihood over the option letters, for base models).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from typing import Any

from lm_eval.api.filter import Filter
from lm_eval.api.task import ConfigurableTask

from lm_eval_medsplit import registry
from lm_eval_medsplit.adversarial import N_TRACES
from lm_eval_medsplit.prompts import build_prompt, format_question, get_trace, prefill_text
from lm_eval_medsplit.samples import sample_metadata, score_fields
from lm_eval_medsplit.schema import MCQRecord
from lm_eval_medsplit.scoring import opens_think
from lm_eval_medsplit.task_yaml import (  # naming lives with the YAMLs, importable without lm-eval
    DEFAULT_MAX_GEN_TOKS,
    FILTER_NAME,
    MODES,
    SUBSETS,
    TASK_DIR,
    task_name,
)

#: Keys of ``--metadata`` (or ``TaskManager(metadata=...)``) read by the tasks.
METADATA_SOURCE = "source"
METADATA_REVISION = "revision"
METADATA_PUBMEDQA_SPLIT = "pubmedqa_split"

#: Fields of every doc besides :data:`lm_eval_medsplit.samples.METADATA_KEYS`.
DOC_FIELDS = ("question", "options", "letters", "answer_idx", "gold")


class MedsplitTaskError(ValueError):
    """A task that cannot be built from the chosen source; the message says what the
    source has and what to run instead."""


def task_yaml_dir() -> str:
    """The directory holding the task YAMLs (what ``--include_path`` takes)."""
    return TASK_DIR


# --------------------------------------------------------------------------- docs


class DocList(list):
    """The docs of one task: a plain list of dicts with the ``features`` attribute that
    lm-eval reads to know the field names (no Arrow conversion, so building every task
    stays cheap)."""

    def __init__(self, docs: list[dict[str, Any]]):
        super().__init__(docs)
        self.features = {k: None for k in (docs[0] if docs else {})}


def record_fields(record: MCQRecord) -> dict[str, Any]:
    """What the prompt and the scorer need from a record (shared by all its docs)."""
    if record.answer_idx is None:
        raise MedsplitTaskError(
            f"record {record.id!r} of {record.benchmark} has no gold answer_idx; "
            f"lm-eval tasks score against the gold letter")
    letters = list(record.options)
    return {"question": record.question, "options": list(record.options.values()),
            "letters": letters, "answer_idx": record.answer_idx,
            "gold": letters.index(record.answer_idx)}


def record_doc(record: MCQRecord, *, adversarial: str | None = None,
               trace_index: int | None = None, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    """One doc: the per-sample metadata contract plus what the prompt and scorer need
    (``fields``: :func:`record_fields` of ``record`` when already computed)."""
    doc = sample_metadata(record, adversarial=adversarial, trace_index=trace_index)
    doc.update(fields if fields is not None else record_fields(record))
    if adversarial is not None:
        if adversarial != "prefill":
            raise MedsplitTaskError(f"lm-eval tasks use the prefill form, not {adversarial!r}")
        # what build_prompt(record, adversarial="prefill", trace_index=k).prefill gives,
        # without rendering the user turn again; a missing trace raises MissingTraceError
        doc["prefill"] = prefill_text(get_trace(record, trace_index))
    return doc


def doc_record(doc: dict[str, Any]) -> MCQRecord:
    """The record a doc was made from (question, options, gold), for the prompt builder."""
    return MCQRecord(id=str(doc["id"]), benchmark=doc["benchmark"], question=doc["question"],
                     options=dict(zip(doc["letters"], doc["options"])),
                     answer_idx=doc["answer_idx"])


def doc_options(doc: dict[str, Any]) -> dict[str, str]:
    return dict(zip(doc["letters"], doc["options"]))


def doc_to_text(doc: dict[str, Any]) -> str:
    """User turn of the generative tasks: question, options, step-by-step instruction."""
    return build_prompt(doc_record(doc), "cot").user_text


def doc_to_text_mc(doc: dict[str, Any]) -> str:
    """Log-likelihood prompt: question and lettered options, then ``Answer:``; the
    continuations are the option letters."""
    return f"{format_question(doc_record(doc))}\nAnswer:"


# --------------------------------------------------------------------------- loading

class _Prepared:
    """One benchmark of one source, loaded once per process: the evaluation set, its
    provenance (hashes computed once) and the docs of each (subset, mode)."""

    def __init__(self, evalset):
        self.evalset = evalset  # the shared cached set: read, never mutated
        self.provenance = evalset.provenance()
        self.subsets: dict[str, tuple[list[MCQRecord], str]] = {}
        self._fields: dict[int, dict[str, Any]] = {}
        self.docs: dict[tuple[str, str], tuple[DocList, dict[str, Any]]] = {}
        # shallow copies that remember their content hash: each record is hashed once,
        # not once per doc (sample_metadata calls record.content_hash())
        self.records: list[MCQRecord] = []
        for r in evalset.records:
            c = copy.copy(r)
            h = r.content_hash()
            c.content_hash = (lambda h=h: h)  # type: ignore[method-assign]
            self.records.append(c)

    def fields(self, record: MCQRecord) -> dict[str, Any]:
        key = id(record)
        if key not in self._fields:
            self._fields[key] = record_fields(record)
        return self._fields[key]

    def subset(self, subset: str) -> tuple[list[MCQRecord], str]:
        """The subset's records and a fingerprint of which questions it holds (sha256
        over their sorted record hashes; the set's labels and traces are covered by
        ``content_hash``)."""
        from lm_eval_medsplit.dataset import select

        if subset not in self.subsets:
            records = select(self.records, subset)
            ids = "\n".join(sorted(r.content_hash() for r in records))
            self.subsets[subset] = (records, hashlib.sha256(ids.encode()).hexdigest())
        return self.subsets[subset]


_PREPARED: dict[tuple, _Prepared] = {}


def _source_from_metadata(metadata: dict[str, Any] | None):
    from lm_eval_medsplit.sources import SourceError, resolve_source, source_error_message

    meta = metadata if isinstance(metadata, dict) else {}
    value = meta.get(METADATA_SOURCE) or os.environ.get("MEDSPLIT_SOURCE") or "hub"
    try:
        return resolve_source(str(value), revision=meta.get(METADATA_REVISION),
                              pubmedqa_split=meta.get(METADATA_PUBMEDQA_SPLIT))
    except SourceError as e:
        raise MedsplitTaskError(f"medsplit source (--metadata '{{\"source\": ...}}' or "
                                f"MEDSPLIT_SOURCE): {source_error_message(e, 'lm-eval')}") from None


def _prepared(src, benchmark: str) -> _Prepared:
    from lm_eval_medsplit.dataset import load_eval_records
    from lm_eval_medsplit.sources import SourceError, source_error_message

    key = (src.kind, src.location, src.revision, tuple(sorted(src.options.items())), benchmark)
    if key not in _PREPARED:
        if src.kind in ("hub_dir", "raw_dir") and benchmark not in src.benchmarks():
            raise MedsplitTaskError(
                f"source {src.location} ({src.kind}) has no {benchmark!r} benchmark; it has "
                f"{', '.join(src.benchmarks()) or 'none'}. Run only the tasks it has "
                f"(`medsplit lm-eval tasks --source {src.location}` prints them) or use "
                f"the hub source.")
        try:
            _PREPARED[key] = _Prepared(load_eval_records(benchmark, src, shared=True))
        except SourceError as e:
            raise MedsplitTaskError(source_error_message(e, "lm-eval")) from None
    return _PREPARED[key]


def load_task_docs(benchmark: str, subset: str, mode: str,
                   metadata: dict[str, Any] | None = None) -> tuple[DocList, dict[str, Any]]:
    """Docs and provenance of one task (built once per process, source and task)."""
    if mode not in MODES:
        raise MedsplitTaskError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if subset not in SUBSETS:
        raise MedsplitTaskError(f"unknown subset {subset!r}; choose one of {', '.join(SUBSETS)}")
    b = registry.find_benchmark(benchmark)
    name = b.name if b else benchmark
    prep = _prepared(_source_from_metadata(metadata), name)
    if (subset, mode) in prep.docs:
        return prep.docs[(subset, mode)]
    records, subset_hash = prep.subset(subset)
    if not records:
        raise MedsplitTaskError(f"{name}: no {subset} records in source "
                                f"{prep.evalset.source.location}")
    fields = prep.fields
    if mode == "adversarial":
        docs = [record_doc(r, adversarial="prefill", trace_index=k, fields=fields(r))
                for r in records for k in range(N_TRACES)]
    else:
        docs = [record_doc(r, fields=fields(r)) for r in records]
    prov = {
        **prep.provenance,
        "harness": "lm-eval",
        "task": task_name(name, subset, mode),
        "subset": subset,
        "mode": mode,
        "prompt_style": "mc" if mode == "mc" else "cot",
        "adversarial": "prefill" if mode == "adversarial" else None,
        "n_traces": N_TRACES if mode == "adversarial" else None,
        "subset_records_hash": subset_hash,
        "n_subset_records": len(records),
        "n_docs": len(docs),
        "scorer": None if mode == "mc" else "lm_eval_medsplit.scoring.score(fuzzy=True)",
    }
    prep.docs[(subset, mode)] = (DocList(docs), prov)
    return prep.docs[(subset, mode)]


class MedsplitTask(ConfigurableTask):
    """A YAML-configured lm-eval task whose docs come from :func:`load_task_docs`.

    ``dataset_kwargs`` in the YAML names ``benchmark``, ``subset`` and ``mode``; the
    data source comes from the task metadata (``--metadata``) or ``MEDSPLIT_SOURCE``."""

    def __init__(self, data_dir=None, cache_dir=None, download_mode=None,
                 config: dict | None = None) -> None:
        config = {k: v for k, v in (config or {}).items() if k != "class"}
        super().__init__(data_dir=data_dir, cache_dir=cache_dir,
                         download_mode=download_mode, config=config)

    def download(self, dataset_kwargs: dict[str, Any] | None = None, **kwargs) -> None:
        spec = dict(dataset_kwargs or {})
        missing = [k for k in ("benchmark", "subset", "mode") if k not in spec]
        if missing:
            raise MedsplitTaskError(f"{self.config.task}: dataset_kwargs lacks {', '.join(missing)}")
        meta = dict(self.config.metadata) if isinstance(self.config.metadata, dict) else {}
        docs, prov = load_task_docs(spec["benchmark"], spec["subset"], spec["mode"], meta)
        self.dataset = {self.config.test_split or "test": docs}
        meta["medsplit"] = dict(prov)
        self.config.metadata = meta

    def construct_requests(self, doc, ctx, **kwargs):
        # A chat template whose generation prompt opens <think> (R1 distills, Qwen3): the
        # output starts inside the block, so the scorer is told to read it that way (an
        # unfinished think is then unparsed, not an answer). Set on every request, so a
        # cached doc never keeps the flag of an earlier run.
        if isinstance(doc, dict) and self.OUTPUT_TYPE == "generate_until":
            doc[THINK_OPENED] = isinstance(ctx, str) and opens_think(ctx[-_THINK_TAIL:])
        return super().construct_requests(doc, ctx, **kwargs)


# --------------------------------------------------------------------------- scoring


class ScoreFilter(Filter):
    """Scores each generation with :func:`lm_eval_medsplit.scoring.score` against the
    doc's options and gold letter. Its output (what lm-eval logs as ``filtered_resps``)
    is the JSON of :func:`lm_eval_medsplit.samples.score_fields`. Like lm-eval's default
    ``take_first``, only the first of repeated generations is scored."""

    def __init__(self, fuzzy: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.fuzzy = fuzzy

    def apply(self, resps, docs):
        return [score_json(first_text(r), doc, fuzzy=self.fuzzy) for r, doc in zip(resps, docs)]


def first_text(resps) -> str:
    if isinstance(resps, (list, tuple)):
        resps = resps[0] if resps else ""
    return resps if isinstance(resps, str) else ""


#: Doc key set by :meth:`MedsplitTask.construct_requests` when the prompt opened ``<think>``.
THINK_OPENED = "think_opened_by_prompt"
_THINK_TAIL = 400  # the generation prompt: how much of the end of a rendered prompt is looked at


def score_doc(text: str, doc: dict[str, Any], *, fuzzy: bool = True):
    from lm_eval_medsplit.scoring import score

    text = text or ""
    if doc.get(THINK_OPENED) and "<think>" not in text[:64]:
        text = "<think>" + text  # the prompt opened it: read the output as its continuation
    return score(text, doc_options(doc), doc["answer_idx"], fuzzy=fuzzy)


def score_json(text: str, doc: dict[str, Any], *, fuzzy: bool = True) -> str:
    return json.dumps(score_fields(score_doc(text, doc, fuzzy=fuzzy)), sort_keys=True)


def _fields_from_result(result: Any, doc: dict[str, Any]) -> dict[str, Any]:
    """The score fields of one (filtered) result: the ``score`` filter's JSON, or raw
    text scored here when a user replaced the filter list."""
    if isinstance(result, str) and result.startswith("{"):
        try:
            fields = json.loads(result)
        except json.JSONDecodeError:
            fields = None
        if isinstance(fields, dict) and {"correct", "parsed"} <= fields.keys():
            return fields
    return score_fields(score_doc(first_text(result), doc))


def process_results(doc: dict[str, Any], results: list[Any]) -> dict[str, float | None]:
    """``acc`` and ``parsed`` of one generation; adversarial docs also give
    ``acc_trace{k}`` for their own trace ``k`` (``None`` for the others, skipped by
    :func:`trace_mean`)."""
    fields = _fields_from_result(results[0], doc)
    acc = 1.0 if fields["correct"] else 0.0
    out: dict[str, float | None] = {"acc": acc, "parsed": 1.0 if fields["parsed"] else 0.0}
    if doc.get("adversarial"):
        k = doc.get("trace_index")
        for j in range(N_TRACES):
            out[f"acc_trace{j}"] = acc if j == k else None
    return out


def trace_mean(items: list[float | None]) -> float:
    """Mean over the docs of one trace (the ``None`` entries belong to other traces)."""
    vals = [x for x in items if x is not None]
    return sum(vals) / len(vals) if vals else float("nan")


__all__ = [
    "MODES", "SUBSETS", "FILTER_NAME", "DEFAULT_MAX_GEN_TOKS", "MedsplitTask", "MedsplitTaskError",
    "ScoreFilter", "DocList", "record_doc", "record_fields", "doc_record", "doc_to_text", "doc_to_text_mc",
    "load_task_docs", "process_results", "trace_mean", "task_name", "task_yaml_dir",
    "score_json",
]
