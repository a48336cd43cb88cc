"""``medsplit build``: rebuild the stratified evaluation set from any source.

For each benchmark of the source: load and validate, label every unlabelled record with
the reasoning-vs-knowledge classifier (``reasoning_prob``, ``is_reasoning``,
``reasoning_threshold``), give every record without traces ``n_traces`` adversarial
traces (offline templates, or a model through
:func:`lm_eval_medsplit.trace_generation.generate_traces`), and write

- ``DIR/<config>/test-00000-of-00001.parquet`` in the hub dataset's layout and field
  names (``id, question, options`` as a JSON string, ``answer, answer_idx,
  dataset_name, reasoning_prob, is_reasoning, reasoning_threshold,
  adversarial_trace_0..N-1``) plus ``adversarial_source`` and ``meta`` (JSON string) so
  nothing is lost;
- ``DIR/manifest.json``: per config the record count, reasoning share, content hash,
  source file hashes, classifier identity and threshold, trace source, prompt style
  (the form of the traces' last line: ``Answer: X`` or ``\\boxed{X}``) and counts, the
  package version; and a top-level ``revision`` (``build:<hash>``) that
  :func:`lm_eval_medsplit.sources.resolve_source` reports for the directory.

The output is byte-identical when re-run with the same inputs: fixed Arrow schema, rows
in source order, no timestamps or timings anywhere, JSON with sorted keys. ``DIR`` is
then a valid ``--source`` for everything else.

Crash safety: the build is written into a staging sibling of ``DIR`` and swapped in
whole at the end (atomic on Linux), under a lock, so a kill or a failure at any point
leaves ``DIR`` as it was (an earlier build stays intact and matches its manifest) and
two builds never write the same ``DIR``. A ``--source`` and ``--out`` that are the same
folder, or nested, are refused; ``DIR`` may hold only what a build writes, so nothing
else is ever deleted. Only model-trace resume files (``DIR/.medsplit-traces``) are
written into ``DIR`` while the build runs.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lm_eval_medsplit import __version__, registry
from lm_eval_medsplit.fileio import (
    InputFileError,
    atomic_path,
    check_output_dir,
    locked,
    same_or_nested,
    staging_dir,
    swap_dir,
)
from lm_eval_medsplit.prompts import DEFAULT_STYLE, check_style
from lm_eval_medsplit.schema import MCQRecord, canonical_json, dataset_hash
from lm_eval_medsplit.sources import MANIFEST, read_manifest

DATA_FILE = f"{registry.HUB_SPLIT}-00000-of-00001.parquet"
FORMAT = "lm-eval-medsplit/build-1"
#: The share of reasoning questions the paper reports over all 11 benchmarks (hub labels).
PAPER_REASONING_SHARE = 0.328
TRACE_CACHE_DIR = ".medsplit-traces"
"""Under ``DIR``: resume files of model-generated traces (not part of the dataset)."""


class BuildError(ValueError):
    """A build that cannot run (unknown benchmark, nothing to build, unusable output)."""


# --------------------------------------------------------------------------- table


def arrow_schema(n_traces: int):
    """The fixed column layout of a built config (hub field names first)."""
    import pyarrow as pa

    cols = [("id", pa.string()), ("question", pa.string()), ("options", pa.string()),
            ("answer", pa.string()), ("answer_idx", pa.string()), ("dataset_name", pa.string()),
            ("reasoning_prob", pa.float64()), ("is_reasoning", pa.bool_()),
            ("reasoning_threshold", pa.float64())]
    cols += [(f"adversarial_trace_{k}", pa.string()) for k in range(n_traces)]
    cols += [("adversarial_source", pa.string()), ("meta", pa.string())]
    return pa.schema(cols)


def _json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def records_to_table(records: Sequence[MCQRecord], config: str, n_traces: int):
    """Records as an Arrow table in the hub layout (see :func:`arrow_schema`)."""
    import pyarrow as pa

    schema = arrow_schema(n_traces)
    cols: dict[str, list] = {name: [] for name in schema.names}
    for r in records:
        cols["id"].append(r.id)
        cols["question"].append(r.question)
        cols["options"].append(_json(r.options))
        cols["answer"].append(r.answer)
        cols["answer_idx"].append(r.answer_idx)
        cols["dataset_name"].append(r.meta.get("dataset_name", config))
        cols["reasoning_prob"].append(r.reasoning_prob)
        cols["is_reasoning"].append(r.is_reasoning)
        cols["reasoning_threshold"].append(r.reasoning_threshold)
        for k in range(n_traces):
            t = r.adversarial_traces[k] if k < len(r.adversarial_traces) else None
            cols[f"adversarial_trace_{k}"].append(t or None)
        cols["adversarial_source"].append(r.adversarial_source)
        cols["meta"].append(_json(r.meta))
    return pa.Table.from_pydict(cols, schema=schema)


def write_parquet(table, path: Path) -> None:
    """Deterministic parquet: one row group, zstd, no pandas metadata, atomic replace."""
    import pyarrow.parquet as pq

    with atomic_path(path, lock=False) as tmp:  # inside the build's private staging folder
        pq.write_table(table, tmp, compression="zstd", compression_level=9,
                       row_group_size=max(1, table.num_rows), write_statistics=True,
                       use_dictionary=["id", "answer_idx", "dataset_name", "adversarial_source"])


def sha256_file(path: Path, bufsize: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(bufsize):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- classifier


@dataclass
class Labeler:
    """The classifier as the build uses it: ``label(records)`` and its identity."""

    backend: str
    threshold: float | None
    model: str | None = None
    _identity: dict[str, Any] | None = None

    def identity(self) -> dict[str, Any]:
        if self._identity is None:
            from lm_eval_medsplit import classifier

            fn = classifier.classifier_identity
            kw = _supported(fn, backend=self.backend, model=self.model)
            ident = dict(fn(**kw))
            if self.threshold is not None:
                ident["threshold_override"] = self.threshold
            ident.setdefault("backend", self.backend)
            self._identity = ident
        return self._identity

    @property
    def effective_threshold(self) -> float | None:
        return self.threshold if self.threshold is not None else self.identity().get("threshold")

    def label(self, records: list[MCQRecord]) -> None:
        try:
            from lm_eval_medsplit import classifier
        except ImportError as e:
            raise BuildError(f"the reasoning classifier is not available ({e}); build from a "
                             f"source that already has labels") from None

        fn = classifier.label_records
        kw = _supported(fn, backend=self.backend, threshold=self.threshold, model=self.model,
                        progress=False)
        try:
            fn(records, **kw)
        except (OSError, ValueError) as e:  # e.g. no local weights for the transformer backend
            raise BuildError(f"the {self.backend} classifier could not label "
                             f"{records[0].benchmark}: {type(e).__name__}: {e}") from None
        missing = [r.id for r in records if r.is_reasoning is None or r.reasoning_prob is None]
        if missing:
            raise BuildError(f"the classifier left {len(missing)} record(s) unlabelled "
                             f"(e.g. {missing[0]!r})")


def _supported(fn: Callable, **kw) -> dict[str, Any]:
    """The keyword arguments ``fn`` accepts, dropping ``None`` values."""
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return {k: v for k, v in kw.items() if v is not None}
    return {k: v for k, v in kw.items() if k in params and v is not None}


# --------------------------------------------------------------------------- build


@dataclass
class ConfigBuild:
    """What the build did for one config."""

    config: str
    name: str
    records: list[MCQRecord]
    entry: dict[str, Any]
    """This config's manifest entry."""
    run_stats: dict[str, Any] | None = None
    """What this run's trace generation did (resumed, requested, retries...; not in the
    manifest, which depends only on the result)."""
    traced: int = 0
    """Records this build gave traces (the others kept the source's)."""


@dataclass
class BuildResult:
    out: Path
    manifest: dict[str, Any]
    configs: list[ConfigBuild] = field(default_factory=list)

    @property
    def revision(self) -> str:
        return self.manifest["revision"]


def build(source, out: str | Path, *, benchmarks: str | Sequence[str] | None = None,
          backend: str = "embedded", threshold: float | None = None,
          classifier_model: str | None = None, relabel: bool = False,
          traces: str | Any = "offline", n_traces: int = 3, retrace: bool = False,
          max_attempts: int = 3, strict: bool = False, progress: bool = True,
          revision: str | None = None, style: str | None = None) -> BuildResult:
    """Build ``out`` from ``source`` (anything :func:`resolve_source` accepts).

    ``traces`` is ``"offline"`` or a trace generator
    (:class:`~lm_eval_medsplit.trace_generation.EndpointGenerator`,
    :class:`~lm_eval_medsplit.trace_generation.TransformersGenerator`); model traces
    that fail the check after ``max_attempts`` get the offline template in their slot and
    the record's ``adversarial_source`` says so. Records that already carry labels /
    traces keep them unless ``relabel`` / ``retrace``. ``strict`` fails on any invalid
    source row instead of skipping (and counting) it.

    ``style`` (a :data:`lm_eval_medsplit.prompts.STYLES` name; ``None`` means ``cot``) is
    the prompt style whose final-answer line new traces end with; the manifest records it
    (``traces.style``, and per config the style of the written traces, ``None`` where
    unknown). Given explicitly, traces kept from a source build made in another style are
    an error (``retrace`` makes new ones).
    """
    from lm_eval_medsplit.sources import SourceError, resolve_source

    if n_traces < 1:
        raise BuildError("n_traces must be at least 1")
    if backend not in ("embedded", "transformer"):
        raise BuildError(f"unknown classifier backend {backend!r}; choose embedded or transformer")
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise BuildError(f"threshold must be in [0, 1], got {threshold}")
    if style is not None:
        try:
            check_style(style)
        except ValueError as e:
            raise BuildError(str(e)) from None
    try:
        src = resolve_source(source, revision=revision)
    except SourceError as e:
        raise BuildError(str(e)) from None
    out = Path(out)
    try:
        check_output_dir(out)
    except InputFileError as e:
        raise BuildError(str(e)) from None
    if out.is_symlink():
        raise BuildError(f"--out {out} is a symbolic link; give the directory it points to")
    if src.kind in ("raw_dir", "hub_dir", "jsonl") and same_or_nested(src.location, out):
        raise BuildError(f"--source {src.location} and --out {out} are the same folder or one "
                         f"holds the other; build into a separate folder")
    available = src.benchmarks()
    names = _select(benchmarks, available, src)
    with locked(out, "--out"):
        _check_out_contents(out)
        return _build_locked(src, out, names, backend, threshold, classifier_model, relabel,
                             traces, n_traces, retrace, max_attempts, strict, progress, style)


def _check_out_contents(out: Path) -> None:
    """``out`` may hold only what a build writes (config folders with their data file, the
    manifest, the trace resume folder): the swap replaces all of it."""
    if not out.is_dir():
        return
    configs = {b.config for b in registry.BENCHMARKS}
    foreign = []
    for p in sorted(out.iterdir()):
        if p.name in (MANIFEST, TRACE_CACHE_DIR) and not p.is_symlink():
            continue
        if p.name in configs and p.is_dir() and not p.is_symlink():
            foreign += [f"{p.name}/{q.name}" for q in sorted(p.iterdir()) if q.name != DATA_FILE]
            continue
        foreign.append(p.name)
    if foreign:
        raise BuildError(f"--out {out} holds files a build did not write ({', '.join(foreign[:5])}"
                         f"{', ...' if len(foreign) > 5 else ''}); a build replaces the whole "
                         f"folder, so choose an empty or new one")


def _build_locked(src, out: Path, names, backend, threshold, classifier_model, relabel,
                  traces, n_traces, retrace, max_attempts, strict, progress,
                  style: str | None = None) -> BuildResult:
    from lm_eval_medsplit.adversarial import OFFLINE_SOURCE, add_offline_traces
    from lm_eval_medsplit.sources import SourceError

    generator = None if isinstance(traces, str) else traces
    if generator is None and traces != "offline":
        raise BuildError(f"traces must be 'offline' or a trace generator, got {traces!r}")
    trace_source = OFFLINE_SOURCE if generator is None else generator.source
    trace_style = style or DEFAULT_STYLE
    labeler = Labeler(backend, threshold, classifier_model)
    # a build made from a build: labels kept from the source keep their classifier identity
    src_manifest = read_manifest(src.location) if src.kind == "hub_dir" else None
    src_configs = (src_manifest or {}).get("configs") or {}

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(names), desc="build", unit="benchmark", dynamic_ncols=True)
    result = BuildResult(out=out, manifest={})
    stage = staging_dir(out)
    try:
        for name in names:
            b = registry.get_benchmark(name)
            if bar is not None:
                bar.set_postfix_str(f"{b.config}: load")
            try:
                records, rep = src.load(b.name, strict=strict)
            except SourceError as e:
                raise BuildError(str(e)) from None
            if not records:
                raise BuildError(f"{b.name}: no valid records in {src.location} "
                                 f"({rep.n_skipped} row(s) skipped)")
            for r in records:  # hub fields
                r.meta.setdefault("dataset_name", b.config)
                if r.answer is None and r.answer_idx in r.options:
                    r.answer = r.options[r.answer_idx]

            to_label = records if relabel else [r for r in records if r.is_reasoning is None]
            if threshold is not None and len(to_label) < len(records):
                raise BuildError(f"{b.name}: --threshold applies to the labels the classifier "
                                 f"makes, but {len(records) - len(to_label):,} record(s) keep the "
                                 f"source's labels; add --relabel to label them all with it")
            if not retrace:
                short = [r for r in records if r.adversarial_traces and len(r.adversarial_traces) < n_traces]
                if short:
                    raise BuildError(f"{b.name}: --n-traces {n_traces} but {len(short):,} record(s) keep "
                                     f"the source's {len(short[0].adversarial_traces)} trace(s) "
                                     f"(e.g. {short[0].id!r}); add --retrace to make {n_traces} new ones")
            kept = [] if retrace else [r for r in records if r.adversarial_traces]
            n_kept = len(kept)
            kept_style = _kept_style(kept, src_configs.get(b.config))
            if style is not None and n_kept and kept_style is not None and kept_style != style:
                raise BuildError(f"{b.name}: --style {style} but {n_kept:,} record(s) keep the "
                                 f"source's {kept_style}-style traces; add --retrace to make "
                                 f"new ones in the {style} style")
            if to_label:
                if bar is not None:
                    bar.set_postfix_str(f"{b.config}: classify {len(to_label):,}")
                labeler.label(to_label)
            labels_from = ("classifier" if len(to_label) == len(records) else
                           "source" if not to_label else "source+classifier")

            gen_stats = None
            need = [r for r in records if retrace or not r.adversarial_traces]
            if need:
                if bar is not None:
                    bar.set_postfix_str(f"{b.config}: traces {len(need):,}")
                if generator is None:
                    add_offline_traces(need, n=n_traces, overwrite=True, style=trace_style)
                else:
                    gen_stats = _model_traces(need, generator, out, b.config, n_traces,
                                              max_attempts, progress, trace_style)
            styles = {trace_style} if need else set()
            if n_kept:
                styles.add(kept_style or "unknown")
            inherited = (src_configs.get(b.config) or {}).get("labels") if not to_label else None
            entry = _write_config(stage, b, records, rep, src, n_traces, labels_from,
                                  labeler if to_label else None, inherited,
                                  "+".join(sorted(styles)) if styles - {"unknown"} else None)
            result.configs.append(ConfigBuild(b.config, b.name, records, entry, gen_stats, len(need)))
            if bar is not None:
                bar.update(1)
        manifest = _manifest(result.configs, src, n_traces, trace_source,
                             labeler if any(c.entry["labels"]["from"] != "source"
                                            for c in result.configs) else None, trace_style)
        (stage / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True,
                                                 ensure_ascii=False) + "\n", encoding="utf-8")
        cache = out / TRACE_CACHE_DIR
        if cache.is_dir() and any(cache.iterdir()):  # model-trace resume files stay with DIR
            os.replace(cache, stage / TRACE_CACHE_DIR)
        swap_dir(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    result.manifest = manifest
    return result


def _select(benchmarks, available: list[str], src) -> list[str]:
    if benchmarks is None or benchmarks == "all" or benchmarks == ["all"]:
        names = list(available)
    else:
        items = benchmarks.split(",") if isinstance(benchmarks, str) else list(benchmarks)
        names = []
        for item in (x.strip() for x in items):
            if not item:
                continue
            b = registry.find_benchmark(item)
            if b is None:
                raise BuildError(f"unknown benchmark {item!r}: `medsplit build` writes the hub "
                                 f"layout, which has the registry's configs only "
                                 f"({', '.join(registry.benchmark_names())}); label and add "
                                 f"traces to your own JSONL with `medsplit classify` and "
                                 f"`medsplit adversarial generate`")
            if b.name not in available:
                raise BuildError(f"benchmark {b.name!r} is not in source {src.location} "
                                 f"(it has: {', '.join(available) or 'none'})")
            if b.name not in names:
                names.append(b.name)
    unknown = [n for n in names if registry.find_benchmark(n) is None]
    if unknown:
        raise BuildError(f"benchmark(s) {', '.join(unknown)} of {src.location} are not registry "
                         f"configs; `medsplit build` writes the hub layout, which has the "
                         f"registry's configs only")
    if not names:
        raise BuildError(f"source {src.location} has no benchmark to build")
    # registry order, whatever order they were asked in
    order = {b.name: i for i, b in enumerate(registry.BENCHMARKS)}
    return sorted(names, key=lambda n: order[registry.get_benchmark(n).name])


def _kept_style(kept: list[MCQRecord], src_entry: dict[str, Any] | None) -> str | None:
    """The prompt style of the traces ``kept`` from the source: its build manifest's, else
    the one every record's model-trace status names; ``None`` when unknown (the hub's
    traces, offline templates of a JSONL file, a build from before styles were recorded)."""
    if not kept:
        return None
    style = ((src_entry or {}).get("traces") or {}).get("style")
    if style is not None:
        return style
    from lm_eval_medsplit.trace_generation import META_KEY

    found = set()
    for r in kept:
        st = r.meta.get(META_KEY)
        found.add(st.get("style") if isinstance(st, dict) else None)
    return found.pop() if len(found) == 1 else None


def _model_traces(records, generator, out: Path, config: str, n: int, max_attempts: int,
                  progress: bool, style: str = DEFAULT_STYLE) -> dict[str, Any]:
    from lm_eval_medsplit.trace_generation import generate_traces

    cache = out / TRACE_CACHE_DIR / f"{config}.jsonl"
    _, st = generate_traces(records, generator, n=n, max_attempts=max_attempts, out=cache,
                            on_reject="offline", progress=progress, style=style)
    return st.as_dict()


def _generation_summary(records: list[MCQRecord]) -> dict[str, Any] | None:
    """Outcome of model trace generation, read from the records themselves (not from the
    run, so a resumed build writes the same manifest as an uninterrupted one)."""
    from lm_eval_medsplit.trace_generation import META_KEY

    status: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    attempts = 0
    sources: set[str] = set()
    for r in records:
        st = r.meta.get(META_KEY)
        if not isinstance(st, dict):
            continue
        sources.add(str(st.get("source")))
        status.update(st.get("status") or [])
        attempts += sum(int(a) for a in st.get("attempts") or [])
        for s, why in zip(st.get("status") or [], st.get("reasons") or []):
            if s != "ok" and why:
                reasons[why.split(" (")[0] if why.startswith("no final") else " ".join(why.split()[:4])] += 1
    if not sources:
        return None
    return {"generators": sorted(sources), "model_traces": status.get("ok", 0),
            "offline_fallback": status.get("offline", 0), "empty": status.get("rejected", 0),
            "attempts": attempts, "fallback_reasons": dict(sorted(reasons.items()))}


def _write_config(out: Path, b, records, rep, src, n_traces, labels_from,
                  labeler, inherited: dict[str, Any] | None = None,
                  trace_style: str | None = None) -> dict[str, Any]:
    path = out / b.config / DATA_FILE
    write_parquet(records_to_table(records, b.config, n_traces), path)
    n = len(records)
    n_reason = sum(r.is_reasoning is True for r in records)
    thresholds = sorted({r.reasoning_threshold for r in records if r.reasoning_threshold is not None})
    return {
        "config": b.config,
        "name": b.name,
        "records": n,
        "skipped": rep.n_skipped,
        "skip_reasons": dict(sorted(rep.skip_reasons().items())),
        "reasoning": n_reason,
        "knowledge": sum(r.is_reasoning is False for r in records),
        "reasoning_share": round(n_reason / n, 6) if n else None,
        "content_hash": dataset_hash(records),
        "source_content_hash": rep.content_hash,
        "source_files": _source_files(rep.files, src),
        "files": [{"path": f"{b.config}/{DATA_FILE}", "sha256": sha256_file(path),
                   "bytes": path.stat().st_size}],
        "labels": {"from": labels_from,
                   "classifier": labeler.identity() if labeler is not None else
                   (inherited or {}).get("classifier"),
                   "threshold": labeler.effective_threshold if labeler is not None else
                   (thresholds[0] if len(thresholds) == 1 else thresholds or None)},
        "traces": {"n_traces": n_traces,
                   "sources": dict(sorted(Counter(r.adversarial_source or "none"
                                                  for r in records).items())),
                   # the prompt style of the written traces' last line; None: unknown
                   # (kept from a source that does not say), "cot+paper" / "cot+unknown": mixed
                   "style": trace_style,
                   "generation": _generation_summary(records)},
    }


def _source_files(files: list[str], src) -> list[dict[str, Any]]:
    root = Path(src.location) if src.kind in ("raw_dir", "hub_dir") else None
    out = []
    for f in files:
        p = Path(f)
        if p.is_file():
            rel = str(p.relative_to(root)) if root is not None and p.is_relative_to(root) else p.name
            out.append({"path": rel, "sha256": sha256_file(p), "bytes": p.stat().st_size})
        else:  # a hub dataset: identified by repo, config and revision
            out.append({"path": f, "sha256": None, "bytes": None})
    return out


def _manifest(configs: list[ConfigBuild], src, n_traces: int, trace_source: str,
              labeler: Labeler | None, trace_style: str = DEFAULT_STYLE) -> dict[str, Any]:
    entries = {c.config: c.entry for c in configs}
    n = sum(e["records"] for e in entries.values())
    n_reason = sum(e["reasoning"] for e in entries.values())
    identity_core = {c: {"content_hash": e["content_hash"],
                         "files": [f["sha256"] for f in e["files"]]} for c, e in entries.items()}
    rev = hashlib.sha256(canonical_json(identity_core).encode()).hexdigest()
    if labeler is not None:
        classifier, threshold = labeler.identity(), labeler.effective_threshold
    else:  # every label kept from the source: say which classifier, where they all agree
        idents = {canonical_json(e["labels"]["classifier"]) for e in entries.values()}
        thresholds = {canonical_json(e["labels"]["threshold"]) for e in entries.values()}
        classifier = json.loads(idents.pop()) if len(idents) == 1 else None
        threshold = json.loads(thresholds.pop()) if len(thresholds) == 1 else None
    sources: Counter[str] = Counter()
    for e in entries.values():
        sources.update(e["traces"]["sources"])
    return {
        "format": FORMAT,
        "revision": f"build:{rev[:16]}",
        "build_hash": rev,
        "package": "lm-eval-medsplit",
        "package_version": __version__,
        "split": registry.HUB_SPLIT,
        "source": src.describe(),
        "classifier": classifier,
        "threshold": threshold,
        # generator, style: what this build made traces with and the prompt style of their
        # last line (None when every record kept the source's); sources: where the traces
        # of the written records come from (each config's traces.style: their style)
        "traces": {"n_traces": n_traces,
                   "generator": trace_source if any(c.traced for c in configs) else None,
                   "style": trace_style if any(c.traced for c in configs) else None,
                   "sources": dict(sorted(sources.items()))},
        "totals": {"configs": len(entries), "records": n, "reasoning": n_reason,
                   "reasoning_share": round(n_reason / n, 6) if n else None,
                   "paper_reasoning_share_all_11": PAPER_REASONING_SHARE},
        "configs": entries,
    }


# --------------------------------------------------------------------------- table


def share_table(manifest: dict[str, Any]):
    """A rich table of per-benchmark reasoning share, with the overall share and the
    paper's figure for comparison."""
    from rich.table import Table

    t = Table(title=f"medsplit build {manifest['revision']}",
              caption=f"paper: {100 * PAPER_REASONING_SHARE:.1f}% reasoning over all 11 "
                      f"benchmarks (hub labels); this build has {manifest['totals']['configs']}")
    for col, just in (("benchmark", "left"), ("records", "right"), ("reasoning", "right"),
                      ("knowledge", "right"), ("reasoning share", "right"),
                      ("traces", "left"), ("content hash", "left")):
        t.add_column(col, justify=just)
    for e in manifest["configs"].values():
        t.add_row(e["config"], f"{e['records']:,}", f"{e['reasoning']:,}", f"{e['knowledge']:,}",
                  _pct(e["reasoning_share"]), ", ".join(e["traces"]["sources"]),
                  e["content_hash"][:12])
    tot = manifest["totals"]
    t.add_section()
    t.add_row("all", f"{tot['records']:,}", f"{tot['reasoning']:,}",
              f"{tot['records'] - tot['reasoning']:,}", _pct(tot["reasoning_share"]), "", "")
    return t


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


__all__ = ["build", "BuildResult", "BuildError", "records_to_table", "arrow_schema",
           "share_table", "MANIFEST", "DATA_FILE", "PAPER_REASONING_SHARE"]
