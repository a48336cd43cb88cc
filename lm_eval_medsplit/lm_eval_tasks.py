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
- prompts come from :mod:`lm_eval_medsplit.prompts` in the style chosen by
  ``--metadata '{"style": "cot"|"direct"|"paper"}'`` (default ``cot``; the adversarial
  assistant prefill through lm-eval's ``gen_prefix``);
- ``--metadata '{"repeats": k}'`` sets lm-eval's ``repeats`` (k generations per doc; pass
  sampling ``--gen_kwargs`` too, the YAMLs decode greedily);
- generated text is scored by :func:`lm_eval_medsplit.scoring.score` (in the doc's style)
  in the ``score`` filter (:class:`ScoreFilter`). What lm-eval logs as ``filtered_resps``
  is the extracted letter (``[invalid]`` when none is found), or the list of letters, one
  per repeat, when ``repeats`` > 1. The scoring fields (``pred``, ``method``, ``outcome``,
  ``correct``, ``parsed``, ``style``) of each repeat are put in the logged doc, under
  ``medsplit_scores`` (a list in repeat order) and ``medsplit_score`` (the first repeat);
  :func:`process_results` turns the letters into the metrics ``acc`` and ``parsed`` (means
  over the repeats) and, for adversarial tasks, ``acc_trace0..2`` (each only from the docs
  of its own trace, so lm-eval gives it a real standard error);
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
from lm_eval_medsplit.prompts import (
    DEFAULT_STYLE,
    STYLES,
    build_prompt,
    format_question,
    get_trace,
    prefill_text,
)
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
METADATA_STRICT = "strict"
METADATA_STYLE = "style"
METADATA_REPEATS = "repeats"

#: Fields of every doc besides :data:`lm_eval_medsplit.samples.METADATA_KEYS`.
DOC_FIELDS = ("question", "options", "letters", "answer_idx", "gold", "style")
#: Doc keys the ``score`` filter fills: the scoring fields of every repeat, and of the first.
SCORES_KEY = "medsplit_scores"
SCORE_KEY = "medsplit_score"
#: What ``filtered_resps`` holds for a generation whose answer cannot be read (lm-eval's
#: own regex filters log the same).
INVALID = "[invalid]"


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
    """User turn of the generative tasks: question, options and the instruction of the
    doc's prompt style."""
    return build_prompt(doc_record(doc), doc.get("style") or DEFAULT_STYLE).user_text


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


def source_from_metadata(metadata: dict[str, Any] | None, *, check_hub: bool = False):
    """The source chosen by ``--metadata '{"source": ...}'`` (with ``revision``,
    ``pubmedqa_split``), else ``MEDSPLIT_SOURCE``, else the hub; ``check_hub``: also fail
    now when that is the hub and it cannot be reached. Errors are :class:`MedsplitTaskError`
    in lm-eval's syntax (also what the ``lm_eval`` command's early check prints)."""
    from lm_eval_medsplit.sources import (
        SourceError,
        check_hub_reachable,
        resolve_source,
        source_error_message,
    )

    meta = metadata if isinstance(metadata, dict) else {}
    value = meta.get(METADATA_SOURCE) or os.environ.get("MEDSPLIT_SOURCE") or "hub"
    try:
        src = resolve_source(str(value), revision=meta.get(METADATA_REVISION),
                             pubmedqa_split=meta.get(METADATA_PUBMEDQA_SPLIT))
        if check_hub and src.kind == "hub":
            check_hub_reachable(src.location, src.revision)
        return src
    except SourceError as e:
        raise MedsplitTaskError(f"medsplit source (--metadata '{{\"source\": ...}}' or "
                                f"MEDSPLIT_SOURCE): {source_error_message(e, 'lm-eval')}") from None


def _strict_from_metadata(metadata: dict[str, Any] | None) -> bool:
    from lm_eval_medsplit.dataset import flag_value

    return flag_value((metadata if isinstance(metadata, dict) else {}).get(METADATA_STRICT, False))


def _prepared(src, benchmark: str, strict: bool = False) -> _Prepared:
    from lm_eval_medsplit.dataset import load_eval_records, source_key
    from lm_eval_medsplit.schema import RecordValidationError
    from lm_eval_medsplit.sources import SourceError, source_error_message

    key = (*source_key(src), benchmark, strict)
    if key not in _PREPARED:
        if src.kind in ("hub_dir", "raw_dir") and benchmark not in src.benchmarks():
            raise MedsplitTaskError(
                f"source {src.location} ({src.kind}) has no {benchmark!r} benchmark; it has "
                f"{', '.join(src.benchmarks()) or 'none'}. Run only the tasks it has "
                f"(`medsplit lm-eval tasks --source {src.location}` prints them) or use "
                f"the hub source.")
        try:
            _PREPARED[key] = _Prepared(load_eval_records(
                benchmark, src, shared=True, strict=strict,
                strict_hint="--metadata '{\"strict\": true}'"))
        except RecordValidationError as e:
            raise MedsplitTaskError(f"medsplit source (strict): {e}") from None
        except SourceError as e:
            raise MedsplitTaskError(source_error_message(e, "lm-eval")) from None
    return _PREPARED[key]


def style_from_metadata(metadata: dict[str, Any] | None) -> str:
    """The prompt style chosen by ``--metadata '{"style": ...}'`` (default ``cot``)."""
    meta = metadata if isinstance(metadata, dict) else {}
    style = meta.get(METADATA_STYLE)
    if style is None:
        return DEFAULT_STYLE
    if style not in STYLES:
        raise MedsplitTaskError(
            f"--metadata '{{\"{METADATA_STYLE}\": {json.dumps(style)}}}': unknown prompt style; "
            f"choose one of {', '.join(json.dumps(s) for s in STYLES)}")
    return style


def repeats_from_metadata(metadata: dict[str, Any] | None) -> int | None:
    """``repeats`` from ``--metadata '{"repeats": k}'`` (None when not given)."""
    meta = metadata if isinstance(metadata, dict) else {}
    value = meta.get(METADATA_REPEATS)
    if value is None:
        return None
    try:
        k = int(value)
    except (TypeError, ValueError):
        k = 0
    if k < 1 or str(k) != str(value).strip():
        raise MedsplitTaskError(f"--metadata '{{\"{METADATA_REPEATS}\": {json.dumps(value)}}}': "
                                f"repeats must be a whole number >= 1")
    return k


def load_task_docs(benchmark: str, subset: str, mode: str,
                   metadata: dict[str, Any] | None = None) -> tuple[DocList, dict[str, Any]]:
    """Docs and provenance of one task (built once per process, source, task and style)."""
    if mode not in MODES:
        raise MedsplitTaskError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if subset not in SUBSETS:
        raise MedsplitTaskError(f"unknown subset {subset!r}; choose one of {', '.join(SUBSETS)}")
    b = registry.find_benchmark(benchmark)
    name = b.name if b else benchmark
    style = "mc" if mode == "mc" else style_from_metadata(metadata)
    prep = _prepared(source_from_metadata(metadata), name, _strict_from_metadata(metadata))
    if (subset, mode, style) in prep.docs:
        return prep.docs[(subset, mode, style)]
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
    if mode != "mc":
        for d in docs:  # fresh dicts from record_doc: set in place, no second copy
            d["style"] = style
    prov = {
        **prep.provenance,
        "harness": "lm-eval",
        "task": task_name(name, subset, mode),
        "subset": subset,
        "mode": mode,
        "prompt_style": style,
        "adversarial": "prefill" if mode == "adversarial" else None,
        "n_traces": N_TRACES if mode == "adversarial" else None,
        "subset_records_hash": subset_hash,
        "n_subset_records": len(records),
        "n_docs": len(docs),
        "scorer": None if mode == "mc" else f"lm_eval_medsplit.scoring.score(fuzzy=True, style={style!r})",
    }
    prep.docs[(subset, mode, style)] = (DocList(docs), prov)
    return prep.docs[(subset, mode, style)]


class MedsplitTask(ConfigurableTask):
    """A YAML-configured lm-eval task whose docs come from :func:`load_task_docs`.

    ``dataset_kwargs`` in the YAML names ``benchmark``, ``subset`` and ``mode``; the
    data source comes from the task metadata (``--metadata``) or ``MEDSPLIT_SOURCE``, and so
    do the prompt style (``style``) and the number of generations per doc (``repeats``)."""

    def __init__(self, data_dir=None, cache_dir=None, download_mode=None,
                 config: dict | None = None) -> None:
        config = {k: v for k, v in (config or {}).items() if k != "class"}
        repeats = repeats_from_metadata(config.get("metadata"))
        if repeats is not None and config.get("output_type") == "generate_until":
            config["repeats"] = repeats
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
        meta["medsplit"] = dict(prov, repeats=self.config.repeats or 1)
        self.config.metadata = meta

    def construct_requests(self, doc, ctx, **kwargs):
        # A chat template whose generation prompt opens <think> (R1 distills, Qwen3): the
        # output starts inside the block, so the scorer is told to read it that way (an
        # unfinished think is then unparsed, not an answer). Set on every request, so a
        # cached doc never keeps the flag of an earlier run.
        if isinstance(doc, dict) and self.OUTPUT_TYPE == "generate_until":
            doc[THINK_OPENED] = isinstance(ctx, str) and opens_think(ctx[-_THINK_TAIL:])
            doc.pop(SCORES_KEY, None)  # a cached doc never shows the scores of an earlier run
            doc.pop(SCORE_KEY, None)
        return super().construct_requests(doc, ctx, **kwargs)


# --------------------------------------------------------------------------- scoring


class Answer(str):
    """What the ``score`` filter outputs for one generation: the extracted letter, or
    :data:`INVALID`. A plain ``str`` for lm-eval (logged as such in ``filtered_resps``);
    :func:`process_results` tells it from raw text by its type."""

    __slots__ = ()


class ScoreFilter(Filter):
    """Scores every generation of a doc (every repeat) with
    :func:`lm_eval_medsplit.scoring.score` against the doc's options and gold letter, in
    the doc's prompt style. Outputs the extracted letter (:class:`Answer`) when the doc
    has one generation, else the list of letters in repeat order; the scoring fields of
    each repeat go into the doc (:data:`SCORES_KEY`, :data:`SCORE_KEY`), which lm-eval
    logs with ``--log_samples``."""

    def __init__(self, fuzzy: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.fuzzy = fuzzy

    def apply(self, resps, docs):
        out = []
        for r, doc in zip(resps, docs):
            texts = all_texts(r)
            fields = [score_fields_of(t, doc, fuzzy=self.fuzzy) for t in texts]
            if isinstance(doc, dict):
                doc[SCORES_KEY] = fields
                doc[SCORE_KEY] = fields[0]
            answers = [Answer(f["pred"] or INVALID) for f in fields]
            out.append(answers[0] if len(answers) == 1 else answers)
        return out


def all_texts(resps) -> list[str]:
    """The generations of one doc (one per repeat; at least one, ``""`` when none)."""
    if isinstance(resps, (list, tuple)):
        texts = [r if isinstance(r, str) else "" for r in resps]
        return texts or [""]
    return [resps if isinstance(resps, str) else ""]


#: Doc key set by :meth:`MedsplitTask.construct_requests` when the prompt opened ``<think>``.
THINK_OPENED = "think_opened_by_prompt"
_THINK_TAIL = 400  # the generation prompt: how much of the end of a rendered prompt is looked at


def score_doc(text: str, doc: dict[str, Any], *, fuzzy: bool = True):
    from lm_eval_medsplit.scoring import score

    text = text or ""
    if doc.get(THINK_OPENED) and "<think>" not in text[:64]:
        text = "<think>" + text  # the prompt opened it: read the output as its continuation
    return score(text, doc_options(doc), doc["answer_idx"], fuzzy=fuzzy,
                 style=doc.get("style") or DEFAULT_STYLE)


def score_fields_of(text: str, doc: dict[str, Any], *, fuzzy: bool = True) -> dict[str, Any]:
    """:func:`lm_eval_medsplit.samples.score_fields` of one generation, plus its style."""
    return {**score_fields(score_doc(text, doc, fuzzy=fuzzy)),
            "style": doc.get("style") or DEFAULT_STYLE}


def _outcomes(result: Any, doc: dict[str, Any]) -> list[tuple[bool, bool]]:
    """``(correct, parsed)`` of every repeat of one (filtered) result: the ``score``
    filter's letters, or raw text scored here when a user replaced the filter list."""
    items = result if isinstance(result, list) else [result]
    if items and all(isinstance(x, Answer) for x in items):
        return [(x == doc["answer_idx"], x != INVALID) for x in items]
    out = []
    for text in all_texts(result):
        fields = score_fields_of(text, doc)
        out.append((fields["correct"], fields["parsed"]))
    return out


def process_results(doc: dict[str, Any], results: list[Any]) -> dict[str, float]:
    """``acc`` and ``parsed`` of one doc (means over its repeats); adversarial docs also
    give ``acc_trace{k}`` for their own trace ``k`` only (the key is absent for the other
    traces, so each per-trace accuracy is a plain mean over that trace's docs and gets
    lm-eval's standard error)."""
    outcomes = _outcomes(results[0], doc)
    n = len(outcomes)
    acc = sum(1.0 for c, _ in outcomes if c) / n
    out: dict[str, float] = {"acc": acc, "parsed": sum(1.0 for _, p in outcomes if p) / n}
    if doc.get("adversarial"):
        out[f"acc_trace{doc.get('trace_index')}"] = acc
    return out


def trace_mean(items: list[float | None]) -> float:
    """Mean over the docs of one trace (the ``None`` entries belong to other traces)."""
    vals = [x for x in items if x is not None]
    return sum(vals) / len(vals) if vals else float("nan")


__all__ = [
    "MODES", "SUBSETS", "FILTER_NAME", "DEFAULT_MAX_GEN_TOKS", "MedsplitTask", "MedsplitTaskError",
    "ScoreFilter", "DocList", "record_doc", "record_fields", "doc_record", "doc_to_text", "doc_to_text_mc",
    "load_task_docs", "process_results", "trace_mean", "task_name", "task_yaml_dir",
    "Answer", "INVALID", "SCORES_KEY", "SCORE_KEY", "style_from_metadata",
]
