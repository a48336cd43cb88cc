"""Join scored samples back to the benchmark records; flag runs from another data revision.

The unit that is accepted or flagged is a *part*: the samples of one benchmark in one
input (an lm-eval results file or an Inspect log). The reference for each benchmark is

- with ``source`` (``--source``): the evaluation set :func:`load_eval_records` gives for
  it; a part is joined when its eval-set content hash equals the reference's and every
  sample's ``id`` exists there with the same ``record_hash``; the labels
  (``subset``, ``reasoning_prob``) then come from the reference records;
- without: the eval-set content hash used by most parts (ties: most samples, then input
  order); parts that record no content hash are joined when their ``record_hash`` and
  subset agree, sample by sample, with the accepted parts.

A part that fails is *flagged*: listed with the reason and its own accuracy, and kept out
of every comparison. Duplicate samples (same model, benchmark, id, condition and trace)
keep the first one read and are counted in the notes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lm_eval_medsplit.report.read_common import Run
from lm_eval_medsplit.samples import SampleRow


class JoinError(ValueError):
    """The reference evaluation set could not be loaded."""


@dataclass
class Part:
    run: Run
    benchmark: str
    rows: list[SampleRow]
    content_hash: str | None
    revision: str | None

    def describe(self) -> dict[str, Any]:
        n = len(self.rows)
        clean = [r for r in self.rows if not r.adversarial]
        return {"file": self.run.path, "harness": self.run.harness, "model": self.run.model,
                "benchmark": self.benchmark, "samples": n,
                "content_hash": self.content_hash, "revision": self.revision,
                "clean_samples": len(clean),
                "clean_accuracy": round(sum(r.outcome == "correct" for r in clean) / len(clean), 6)
                if clean else None}


@dataclass
class JoinResult:
    rows: list[SampleRow] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    flagged: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    reference: dict[str, dict[str, Any]] = field(default_factory=dict)
    """benchmark -> {content_hash, revision, how}."""


def split_parts(runs: Sequence[Run]) -> list[Part]:
    parts = []
    for run in runs:
        by: dict[str, list[SampleRow]] = {}
        for r in run.rows:
            by.setdefault(r.benchmark, []).append(r)
        for bench, rows in by.items():
            prov = run.provenance.get(bench) or {}
            ch = prov.get("content_hash") or next((r.content_hash for r in rows if r.content_hash), None)
            rev = prov.get("revision") or next((r.revision for r in rows if r.revision), None)
            parts.append(Part(run, bench, rows, ch, rev))
    return parts


#: Inspect model providers (``provider/model``): the prefix names the backend, not the model.
INSPECT_PROVIDERS = frozenset((
    "hf", "vllm", "sglang", "ollama", "llama-cpp-python", "transformer_lens", "openai", "anthropic",
    "google", "mistral", "grok", "groq", "together", "fireworks", "bedrock", "azureai", "cf",
    "perplexity", "goodfire", "hf-inference-providers", "openrouter", "none", "mockllm"))
#: lm-eval backends whose ``model_name`` may carry a provider-style prefix.
_MULTI_SEGMENT_PROVIDERS = frozenset(("openai-api",))  # openai-api/<service>/<model>


def canonical_model(name: str, harness: str | None = None) -> str:
    """One name for one model across harnesses: Inspect's ``provider/`` prefix dropped
    (``hf//abs/path`` -> ``/abs/path``, ``hf/Qwen/Qwen3-8B`` -> ``Qwen/Qwen3-8B``,
    ``openai-api/together/m`` -> ``m``), a local path made absolute, normalised and
    without a trailing slash (symlinks resolved when it exists). A suffix such as
    ``" (loglikelihood)"`` is kept."""
    import os

    base, sep, suffix = name.partition(" (")
    suffix = sep + suffix
    parts = base.split("/")
    if harness != "lm-eval" and len(parts) > 1:
        if parts[0] in _MULTI_SEGMENT_PROVIDERS and len(parts) > 2:
            base = "/".join(parts[2:])
        elif parts[0] in INSPECT_PROVIDERS:
            base = "/".join(parts[1:])
    if base.startswith(("/", "./", "../", "~")) or (os.sep != "/" and os.sep in base):
        path = os.path.expanduser(base)
        base = os.path.realpath(path) if os.path.exists(path) else os.path.normpath(os.path.abspath(path))
    return base.rstrip("/") + suffix if base not in ("", "/") else base + suffix


def normalise_models(runs: Sequence[Run]) -> list[str]:
    """Give each run and its rows the :func:`canonical_model` name, in place; returns a
    note per canonical name that joins runs logged under different names."""
    logged: dict[str, dict[str, list[str]]] = {}
    for run in runs:
        base = run.model
        canon = canonical_model(base, run.harness)
        logged.setdefault(canon, {}).setdefault(base, []).append(f"{run.harness} {run.path}")
        if canon == base:
            continue
        for r in run.rows:
            if r.model.startswith(base):
                r.model = canon + r.model[len(base):]
        run.model = canon
    notes = []
    for canon, names in logged.items():
        if len(names) > 1 or next(iter(names)) != canon:
            joined = "; ".join(f"{n!r} ({', '.join(w)})" for n, w in names.items())
            notes.append(f"model {canon!r}: joined {joined}")
    return notes


def rename_models(runs: Sequence[Run], mapping: Mapping[str, str]) -> list[str]:
    """Rename models (``--rename OLD=NEW``) in place, runs and rows alike. A row's model
    with a suffix (``"M (loglikelihood)"``, the ``_mc`` tasks) keeps it (``"NEW
    (loglikelihood)"``) unless the full name is renamed. Returns the OLD names that
    matched no model."""
    if not mapping:
        return []
    used: set[str] = set()
    for run in runs:
        base = run.model
        for r in run.rows:
            if r.model in mapping:  # the full name, suffix included
                used.add(r.model)
                r.model = mapping[r.model]
            elif base in mapping and r.model.startswith(base):
                used.add(base)
                r.model = mapping[base] + r.model[len(base):]
        if base in mapping:
            used.add(base)
            run.model = mapping[base]
    return sorted(set(mapping) - used)


def join_runs(runs: Sequence[Run], *, source: Any = None, revision: str | None = None) -> JoinResult:
    """Accepted (deduplicated) rows, flagged parts and notes for ``runs``."""
    res = JoinResult()
    parts = split_parts(runs)
    accepted: list[Part] = []
    by_bench: dict[str, list[Part]] = {}
    for p in parts:
        by_bench.setdefault(p.benchmark, []).append(p)
    for bench, ps in by_bench.items():
        if source is not None:
            ok, flagged = _join_to_source(bench, ps, source, revision, res)
        else:
            ok, flagged = _join_by_majority(bench, ps, res)
        accepted += ok
        for p, reason in flagged:
            res.flagged.append({**p.describe(), "reference_content_hash":
                                res.reference.get(bench, {}).get("content_hash"), "reason": reason})
    accepted_ids = {id(p) for p in accepted}
    # run summaries, in input order
    for run in runs:
        mine = [p for p in parts if p.run is run]
        res.runs.append({
            "file": run.path, "harness": run.harness, "model": run.model,
            "tasks": ", ".join(run.tasks), "created": run.created,
            "benchmarks": ", ".join(p.benchmark for p in mine),
            "samples": len(run.rows),
            "content_hashes": {p.benchmark: p.content_hash for p in mine},
            "revision": ", ".join(sorted({str(p.revision) for p in mine if p.revision})) or None,
            "status": "joined" if all(id(p) in accepted_ids for p in mine)
            else "flagged" if not any(id(p) in accepted_ids for p in mine) else "partly flagged",
            "notes": list(run.notes),
        })
        for note in run.notes:
            res.notes.append(f"{run.path}: {note}")
    # keep input order for dedup: first read wins
    order = {id(p): i for i, p in enumerate(parts)}
    accepted.sort(key=lambda p: order[id(p)])
    seen: dict[tuple, str] = {}
    dups: Counter[tuple[str, str, str]] = Counter()
    for p in accepted:
        for r in p.rows:
            key = (r.model, r.benchmark, r.id, r.adversarial, r.trace_index, r.repeat)
            first = seen.get(key)
            if first is None:
                seen[key] = p.run.path
                res.rows.append(r)
            else:
                dups[(r.model, p.run.path, first)] += 1
    for (model, path, first), n in sorted(dups.items()):
        if path == first:
            res.notes.append(f"{path}: {n} duplicate sample(s) of model {model} within the file; "
                             f"the first of each was used")
        else:
            res.notes.append(f"{path}: {n} sample(s) of model {model} already read from {first}; "
                             f"the first read was used")
    return res


def _join_to_source(bench: str, ps: list[Part], source: Any, revision: str | None,
                    res: JoinResult) -> tuple[list[Part], list[tuple[Part, str]]]:
    from lm_eval_medsplit.dataset import load_eval_records

    try:
        es = load_eval_records(bench, source, revision=revision, shared=True)  # read only
    except Exception as e:  # source errors, unknown benchmark, unreachable hub
        raise JoinError(f"cannot load the reference eval set of {bench!r} from source "
                        f"{source!r}: {e}") from None
    ref_hash = es.content_hash
    res.reference[bench] = {"content_hash": ref_hash, "revision": es.source.revision,
                            "how": f"source {es.source.kind} {es.source.location}"}
    recs = {r.id: r for r in es.records}
    hashes = {rid: r.content_hash() for rid, r in recs.items()}
    ok, flagged = [], []
    for p in ps:
        if p.content_hash and p.content_hash != ref_hash:
            flagged.append((p, f"eval-set content hash {p.content_hash[:12]} (revision {p.revision}) "
                               f"differs from the source's {ref_hash[:12]} (revision {es.source.revision}): "
                               f"a run on another data revision, not merged"))
            continue
        unknown = [r.id for r in p.rows if r.id not in recs]
        changed = [r.id for r in p.rows if r.id in recs and r.record_hash and r.record_hash != hashes[r.id]]
        relabel = [r.id for r in p.rows if r.id in recs and r.subset is not None
                   and r.subset != recs[r.id].subset]
        problems = []
        if unknown:
            problems.append(f"{len(unknown)} sample id(s) not in the source (e.g. {unknown[0]!r})")
        if changed:
            problems.append(f"{len(changed)} record hash(es) differ from the source (e.g. {changed[0]!r})")
        if relabel:
            problems.append(f"{len(relabel)} subset label(s) differ from the source (e.g. {relabel[0]!r})")
        if problems:
            flagged.append((p, "; ".join(problems) + ": a run on another data revision, not merged"))
            continue
        for r in p.rows:
            rec = recs[r.id]
            r.subset = rec.subset
            r.reasoning_prob = rec.reasoning_prob
        if not p.content_hash:
            res.notes.append(f"{p.run.path}: {bench}: the run records no eval-set content hash; "
                             f"joined by id and record hash")
        ok.append(p)
    return ok, flagged


def _join_by_majority(bench: str, ps: list[Part], res: JoinResult) -> tuple[list[Part], list[tuple[Part, str]]]:
    votes: dict[str, list[int]] = {}
    for i, p in enumerate(ps):
        if p.content_hash:
            v = votes.setdefault(p.content_hash, [0, 0, -i])
            v[0] += 1
            v[1] += len(p.rows)
    ref_hash = max(votes, key=lambda h: votes[h]) if votes else None
    if ref_hash:
        users = votes[ref_hash][0]
        rev = next((p.revision for p in ps if p.content_hash == ref_hash), None)
        res.reference[bench] = {"content_hash": ref_hash, "revision": rev,
                                "how": f"used by {users} of {len(ps)} run(s); pass --source to pin it"}
        if len(votes) > 1:
            res.notes.append(f"{bench}: runs used {len(votes)} different eval sets; the reference is "
                             f"{ref_hash[:12]} ({users} run(s)); the others are flagged. Pass --source "
                             f"to compare against a known data source")
    ok: list[Part] = []
    flagged: list[tuple[Part, str]] = []
    ref_rows: dict[str, tuple[str | None, str | None]] = {}
    for p in ps:
        if p.content_hash and p.content_hash == ref_hash:
            ok.append(p)
            for r in p.rows:
                ref_rows.setdefault(r.id, (r.record_hash, r.subset))
    for p in ps:
        if p.content_hash == ref_hash and ref_hash is not None:
            continue
        if p.content_hash:
            flagged.append((p, f"eval-set content hash {p.content_hash[:12]} (revision {p.revision}) "
                               f"differs from {ref_hash[:12]} used by {votes[ref_hash][0]} other run(s): "
                               f"a run on another data revision, not merged"))
            continue
        bad = [r.id for r in p.rows if r.id in ref_rows and
               (ref_rows[r.id][0] != r.record_hash or ref_rows[r.id][1] != r.subset)]
        if bad:
            flagged.append((p, f"no eval-set content hash recorded and {len(bad)} record hash(es) or "
                               f"label(s) differ from the other runs (e.g. {bad[0]!r}): not merged"))
            continue
        res.notes.append(f"{p.run.path}: {bench}: the run records no eval-set content hash; "
                         f"joined by id and record hash")
        ok.append(p)
        for r in p.rows:
            ref_rows.setdefault(r.id, (r.record_hash, r.subset))
    return ok, flagged
