"""Eval sets -> an Inspect ``MemoryDataset`` plus the provenance the task records.

Records come from :func:`lm_eval_medsplit.dataset.load_eval_records` (labelled, with
traces) and the subset from :func:`lm_eval_medsplit.dataset.select`, so a task sees
exactly the records the lm-eval tasks see for the same source.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from inspect_ai.dataset import MemoryDataset, Sample

from lm_eval_medsplit import __version__, registry
from lm_eval_medsplit.dataset import SUBSETS, load_eval_records, select
from lm_eval_medsplit.prompts import ADVERSARIAL_MODES, STYLES, get_trace
from lm_eval_medsplit.schema import MCQRecord
from lm_eval_medsplit.sources import Source, resolve_source

from .record_to_sample import record_to_sample, sample_id

#: Records of every dataset built in this process, by dataset key then sample id. The
#: solver reads them to re-render a sample when it has to fall back from ``prefill`` to
#: ``reconsider`` (the record itself is not put in the logged metadata).
_RECORD_STORE: dict[str, dict[str, MCQRecord]] = {}


@dataclass
class MedsplitDataset:
    dataset: MemoryDataset
    key: str
    """Identifies this dataset's records in the process-wide store (see the solver)."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Task-level provenance: source, revision, per-benchmark content hashes..."""


def lookup_record(key: str, sid: str) -> MCQRecord:
    try:
        return _RECORD_STORE[key][sid]
    except KeyError:
        raise KeyError(f"no record for sample {sid!r} (dataset key {key!r}); build the dataset "
                       f"with medsplit_dataset() in this process") from None


def parse_list(value: str | list | tuple | None) -> list[str] | None:
    """``"a,b"`` / ``["a", "b"]`` (what ``-T x=a,b`` gives) -> list; None/"all" -> None."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    items = [x.strip() for x in items if x.strip()]
    if not items or items == ["all"]:
        return None
    return items


def resolve_benchmarks(value: str | list | None, src: Source) -> list[str]:
    """Short names to evaluate: registry names (short or hub config), or a user JSONL's own
    benchmark names. ``all`` means every benchmark the source has."""
    items = parse_list(value)
    if items is None:
        return src.benchmarks()
    out: list[str] = []
    for x in items:
        b = registry.find_benchmark(x)
        if b is not None:
            name = b.name
        elif src.kind == "jsonl":
            name = x
        else:
            raise ValueError(f"unknown benchmark {x!r}; known: {', '.join(registry.benchmark_names())}")
        if name not in out:
            out.append(name)
    return out


def parse_trace(trace: int | str | None) -> int | None:
    """``0``/``1``/``2`` (int or string) -> that index; ``"all"`` -> None (every trace)."""
    if trace is None or str(trace).strip().lower() == "all":
        return None
    try:
        k = int(str(trace).strip())
    except ValueError:
        raise ValueError(f"trace must be a trace index (0, 1, 2) or 'all', got {trace!r}") from None
    if k < 0:
        raise ValueError(f"trace must be >= 0, got {k}")
    return k


def _check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def medsplit_dataset(benchmarks: str | list | None = "all", subset: str = "all", *,
                     style: str = "cot", adversarial: str | None = None,
                     trace: int | str | None = 0, source: str | None = None,
                     revision: str | None = None,
                     shuffle_seed: int | None = None, strict: bool = False) -> MedsplitDataset:
    """Samples of ``subset`` of ``benchmarks`` from ``source`` (``hub`` by default, or
    ``$MEDSPLIT_SOURCE``), rendered in ``style``; adversarial samples use trace ``trace``
    (or every trace of each record with ``"all"``). ``shuffle_seed`` shuffles sample order
    (never option order, so prompts stay identical to the lm-eval tasks')."""
    _check_choice("subset", subset, SUBSETS)
    _check_choice("style", style, STYLES)
    if adversarial is not None:
        _check_choice("adversarial_mode", adversarial, ADVERSARIAL_MODES)
    trace_k = parse_trace(trace) if adversarial else None
    src = resolve_source(source, revision=revision)
    names = resolve_benchmarks(benchmarks, src)
    if not names:
        raise ValueError(f"source {src.location} has no benchmarks")

    samples: list[Sample] = []
    records: dict[str, MCQRecord] = {}
    provenance: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for name in names:
        es = load_eval_records(name, src, revision=revision, strict=strict,
                               strict_hint="-T strict=true")
        chosen = select(es.records, subset)
        ch = es.content_hash
        n_before = len(samples)
        for r in chosen:
            if adversarial is None:
                ks: list[int | None] = [None]
            elif trace_k is None:
                get_trace(r, 0)  # a record without traces is an error, never a silent skip
                ks = list(range(len(r.adversarial_traces)))
            else:
                ks = [trace_k]
            for k in ks:
                s = record_to_sample(r, style=style, adversarial=adversarial, trace_index=k,
                                     content_hash=ch, revision=src.revision)
                samples.append(s)
                records[str(s.id)] = r
        counts[name] = len(samples) - n_before
        provenance[name] = es.provenance()
    if not samples:
        raise ValueError(f"no samples: subset {subset!r} of {', '.join(names)} is empty in {src.location}")
    ids = [s.id for s in samples]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate sample ids (duplicate record ids within one benchmark?)")

    metadata = {
        "package": "lm-eval-medsplit",
        "package_version": __version__,
        "source": src.describe(),
        "revision": src.revision,
        "benchmarks": names,
        "subset": subset,
        "style": style,
        "adversarial_mode": adversarial,
        "trace": "all" if adversarial and trace_k is None else trace_k,
        "shuffle_seed": shuffle_seed,
        "content_hashes": {n: p["content_hash"] for n, p in provenance.items()},
        "source_content_hashes": {n: p["source_content_hash"] for n, p in provenance.items()},
        "n_samples": counts,
        "provenance": provenance,
        "scoring": f"lm_eval_medsplit.scoring.score(output, record.options, record.answer_idx, "
                   f"style={style!r})",
    }
    key = hashlib.sha256(json.dumps(
        {k: metadata[k] for k in ("source", "benchmarks", "subset", "style", "adversarial_mode",
                                  "trace", "content_hashes")},
        sort_keys=True, default=str).encode()).hexdigest()[:16]
    _RECORD_STORE[key] = records
    metadata["dataset_key"] = key

    name = f"medsplit_{subset}" + (f"_adversarial_{adversarial}" if adversarial else "")
    dataset = MemoryDataset(samples, name=name, location=src.location)
    if shuffle_seed is not None:
        dataset.shuffle(seed=int(shuffle_seed))
    return MedsplitDataset(dataset, key, metadata)


__all__ = ["MedsplitDataset", "medsplit_dataset", "lookup_record", "resolve_benchmarks",
           "parse_trace", "parse_list", "sample_id"]
