"""Data sources: one setting (``--source`` / ``MEDSPLIT_SOURCE``) used by every part.

- ``hub`` (default): ``datasets.load_dataset("zou-lab/BioMed-R1-Eval", config,
  split="test", revision=HUB_REVISION)``; ``options`` arrives as a JSON string.
- a directory in the hub layout (``DIR/<config>/*.parquet`` or ``*.jsonl``, same fields),
  e.g. what ``medsplit build`` writes.
- a raw directory laid out like ``shared/data/raw`` (config folders, original files),
  read by one small loader per format (see :mod:`lm_eval_medsplit.raw_loaders`).
- a canonical JSONL file of your own questions (``id, question, options`` required).

Every loader goes through :func:`lm_eval_medsplit.schema.build_records`, so validation,
skip accounting and content hashes are the same everywhere. Paths are kept as the user
typed them (made absolute, symlinks not resolved). A hub that cannot be reached fails at
once (:func:`check_hub_reachable`: one short request, no retries) with a
:class:`HubUnavailableError` that says what to do in the syntax of the tool in use
(:data:`SOURCE_SYNTAX`: ``--source``, ``--metadata '{"source": ...}'``, ``-T source=``).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lm_eval_medsplit import registry
from lm_eval_medsplit.schema import (
    LoadReport,
    MCQRecord,
    RecordValidationError,
    RowError,
    build_records,
    dataset_hash,
    iter_jsonl,
    record_from_row,
)

ENV_SOURCE = "MEDSPLIT_SOURCE"
ENV_REVISION = "MEDSPLIT_REVISION"
ENV_PUBMEDQA_SPLIT = "MEDSPLIT_PUBMEDQA_SPLIT"

HUB_LAYOUT_SUFFIXES = (".parquet", ".jsonl", ".json")
#: The file `medsplit build` writes beside the config folders (:mod:`lm_eval_medsplit.build`).
MANIFEST = "manifest.json"


class SourceError(ValueError):
    """A source that cannot be used (missing path, unknown layout, absent benchmark)."""


#: How each tool takes the data source, for messages in the syntax of the tool the user
#: is in (``{value}`` is filled in).
SOURCE_SYNTAX = {
    "medsplit": "--source {value}",
    "lm-eval": "--metadata '{{\"source\": \"{value}\"}}'",
    "inspect": "-T source={value}",
}


def source_flag(tool: str, value: str = "DIR") -> str:
    """``--source DIR`` / ``--metadata '{"source": "DIR"}'`` / ``-T source=DIR``."""
    return SOURCE_SYNTAX.get(tool, SOURCE_SYNTAX["medsplit"]).format(value=value)


class HubUnavailableError(SourceError):
    """The hub could not be reached (offline, not found, gated, no cache). ``str()`` ends
    with what to do in the medsplit CLI's syntax; :meth:`for_tool` says it for lm-eval or
    Inspect."""

    def __init__(self, detail: str, tool: str = "medsplit"):
        self.detail, self.tool = detail, tool
        super().__init__(self._message())

    def _message(self) -> str:
        return (f"{self.detail}. Without the hub, use a local source: {source_flag(self.tool)} "
                f"(a `medsplit build` output, a raw folder or your own .jsonl); with the dataset "
                f"already in the Hugging Face cache, set HF_HUB_OFFLINE=1 (gated: HF_TOKEN)")

    def for_tool(self, tool: str) -> HubUnavailableError:
        return HubUnavailableError(self.detail, tool)


def source_error_message(error: Exception, tool: str) -> str:
    """The message of a source error in the syntax of ``tool`` (see :data:`SOURCE_SYNTAX`)."""
    if isinstance(error, HubUnavailableError):
        return str(error.for_tool(tool))
    return str(error)


@dataclass
class Source:
    """A resolved data source. Use :func:`resolve_source` to make one."""

    kind: str
    """``hub``, ``hub_dir``, ``raw_dir`` or ``jsonl``."""
    location: str
    revision: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """What every run records about its data."""
        return {"kind": self.kind, "location": self.location, "revision": self.revision,
                **({"options": self.options} if self.options else {})}

    # ---------------------------------------------------------------- discovery
    def benchmarks(self) -> list[str]:
        """Benchmark names available in this source (registry short names, or the
        user's own names for a JSONL file)."""
        if self.kind == "hub":
            return registry.benchmark_names()
        if self.kind == "jsonl":
            return _jsonl_benchmarks(Path(self.location))
        root = Path(self.location)
        out = []
        for b in registry.BENCHMARKS:
            d = root / b.config
            if self.kind == "hub_dir" and _hub_dir_files(d):
                out.append(b.name)
            elif self.kind == "raw_dir":
                from lm_eval_medsplit.raw_loaders import RAW_LOADERS

                if b.config in RAW_LOADERS and d.is_dir():
                    out.append(b.name)
        return out

    def absent(self) -> dict[str, str]:
        """Registry benchmarks this local source does not hold, each with the reason
        (so a listing of :meth:`benchmarks` never leaves one out unexplained)."""
        if self.kind in ("hub", "jsonl"):
            return {}
        root = Path(self.location)
        have = set(self.benchmarks())
        out = {}
        for b in registry.BENCHMARKS:
            if b.name in have:
                continue
            d = root / b.config
            if not d.is_dir():
                out[b.name] = f"no folder {b.config}/"
            elif self.kind == "raw_dir":
                out[b.name] = f"{b.config}/ has no raw loader: {b.redistribution}"
            else:
                out[b.name] = f"{b.config}/ has no .parquet or .jsonl file"
        return out

    # ---------------------------------------------------------------- loading
    def load(self, benchmark: str, *, strict: bool = False) -> tuple[list[MCQRecord], LoadReport]:
        """Load and validate one benchmark. Strict mode raises one
        :class:`RecordValidationError` listing every problem; lenient mode skips bad rows
        and lists them in the returned report."""
        b = registry.find_benchmark(benchmark)
        name = b.name if b else benchmark
        report = LoadReport(benchmark=name, source=self.location, revision=self.revision)
        if self.kind == "jsonl":
            records = _load_jsonl_file(Path(self.location), report, only=name)
            if not records and not report.skipped:
                raise SourceError(f"{self.location}: no records for benchmark {name!r}; "
                                  f"it has: {', '.join(self.benchmarks())}")
        elif b is None:
            raise SourceError(f"unknown benchmark {benchmark!r}; known: "
                              f"{', '.join(registry.benchmark_names())}")
        elif self.kind == "hub":
            records = _load_hub(b, report, repo=self.location, revision=self.revision)
        elif self.kind == "hub_dir":
            records = _load_hub_dir(Path(self.location) / b.config, b, report)
        elif self.kind == "raw_dir":
            from lm_eval_medsplit.raw_loaders import load_raw

            records = load_raw(Path(self.location), b, report, **self.options)
        else:  # pragma: no cover - guarded by resolve_source
            raise SourceError(f"unknown source kind {self.kind!r}")
        report.n_records = len(records)
        report.content_hash = dataset_hash(records)
        if strict and report.skipped:
            raise RecordValidationError(report.skipped)
        return records, report


def resolve_source(source: str | os.PathLike | Source | None = None, *,
                   revision: str | None = None,
                   pubmedqa_split: str | None = None) -> Source:
    """Turn ``--source`` (or ``MEDSPLIT_SOURCE``, default ``hub``) into a :class:`Source`."""
    if isinstance(source, Source):
        return source
    value = str(source) if source is not None else os.environ.get(ENV_SOURCE) or "hub"
    if value == "hub":
        rev = revision or os.environ.get(ENV_REVISION) or registry.HUB_REVISION
        return Source("hub", registry.HUB_DATASET, revision=rev)
    path = Path(value).expanduser()
    if not path.exists():
        raise SourceError(f"source {value!r} is neither 'hub' nor an existing file or directory")
    if path.is_file():
        if path.suffix not in (".jsonl", ".json"):
            raise SourceError(f"{path}: a source file must be canonical JSONL (.jsonl)")
        return Source("jsonl", _as_typed(path))
    kind = detect_layout(path)
    opts: dict[str, Any] = {}
    if kind == "raw_dir":
        split = pubmedqa_split or os.environ.get(ENV_PUBMEDQA_SPLIT) or "all"
        if split not in ("all", "test"):
            raise SourceError(f"pubmedqa split must be 'all' (1,000 PQA-L) or 'test' (official 500), got {split!r}")
        opts["pubmedqa_split"] = split
    rev = (read_manifest(path) or {}).get("revision") if kind == "hub_dir" else None
    return Source(kind, _as_typed(path), revision=rev, options=opts)


def read_manifest(d: str | os.PathLike) -> dict[str, Any] | None:
    """The build manifest in folder ``d`` as a dict; ``None`` when there is none or it
    cannot be read (a hub-layout folder need not have one)."""
    from lm_eval_medsplit.fileio import InputFileError, read_text

    p = Path(d) / MANIFEST
    if not p.is_file():
        return None
    try:
        m = json.loads(read_text(p))
    except (InputFileError, ValueError, RecursionError):
        return None
    return m if isinstance(m, dict) else None


def _as_typed(path: Path) -> str:
    """The absolute path as the user typed it (symlinks not resolved), for provenance
    and messages."""
    return os.path.abspath(path)


def detect_layout(path: Path) -> str:
    """``hub_dir`` when any registry config folder holds parquet/jsonl files in the hub
    layout (fields ``question`` and ``options``), ``raw_dir`` when it holds the original
    files; raises :class:`SourceError` naming what was looked for otherwise."""
    from lm_eval_medsplit.raw_loaders import RAW_LOADERS, raw_files_present

    hub_like = raw_like = False
    for b in registry.BENCHMARKS:
        d = path / b.config
        if not d.is_dir():
            continue
        files = _hub_dir_files(d)
        if (path / MANIFEST).is_file() or any(f.suffix == ".parquet" for f in files) \
                or any(_has_hub_rows(f) for f in files if f.suffix == ".jsonl"):
            hub_like = True
        elif b.config in RAW_LOADERS and raw_files_present(d, b.config):
            raw_like = True
        elif _hub_dir_files(d):
            hub_like = True
    if hub_like:
        return "hub_dir"
    if raw_like:
        return "raw_dir"
    configs = ", ".join(b.config for b in registry.BENCHMARKS)
    raise SourceError(f"{path}: no benchmark folders found; expected sub-folders named after "
                      f"hub configs ({configs}) holding either hub-layout test files "
                      f"(*.parquet / *.jsonl) or the original raw files")


def _has_hub_rows(path: Path) -> bool:
    """Whether a ``test*.jsonl`` holds hub-layout rows (an ``id`` field) rather than an
    original file of the same name (raw MedQA's ``test.jsonl`` has ``realidx``)."""
    with open(path, encoding="utf-8", errors="replace") as f:  # a peek; loading reports bad bytes
        for line in f:
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    return False
                return isinstance(row, dict) and "id" in row
    return False


def load_benchmark(source: str | Source | None, benchmark: str, *, strict: bool = False,
                   **kw) -> tuple[list[MCQRecord], LoadReport]:
    """Shortcut: ``resolve_source(source).load(benchmark)``."""
    return resolve_source(source, **kw).load(benchmark, strict=strict)


def load_many(source: str | Source | None, benchmarks: list[str] | None = None, *,
              strict: bool = False) -> dict[str, tuple[list[MCQRecord], LoadReport]]:
    """Load several benchmarks (default: every one the source has)."""
    src = resolve_source(source)
    names = benchmarks or src.benchmarks()
    return {n: src.load(n, strict=strict) for n in names}


# --------------------------------------------------------------------------- hub + hub layout


def hub_row_to_record(row: dict[str, Any], benchmark: str) -> MCQRecord:
    """A row of ``zou-lab/BioMed-R1-Eval`` (options as JSON string, adversarial_trace_k
    columns) to a record; ``dataset_name`` goes to ``meta``. A ``meta`` column holding a
    JSON string (as ``medsplit build`` writes it) is parsed back into ``meta``."""
    meta = row.get("meta")
    if isinstance(meta, str):
        try:
            parsed = json.loads(meta) if meta.strip() else {}
        except json.JSONDecodeError as e:
            raise RowError("meta", f"not valid JSON ({e.msg})") from None
        row = {**row, "meta": parsed}
    rec = record_from_row(row, benchmark, keep_extra=False)
    if row.get("dataset_name") is not None:
        rec.meta.setdefault("dataset_name", row["dataset_name"])
    if rec.adversarial_traces and rec.adversarial_source is None:
        rec.adversarial_source = "hub"
    for k, v in row.items():
        if k not in _HUB_FIELDS and not k.startswith("adversarial_trace_") and v is not None:
            rec.meta.setdefault(k, v)
    return rec


_HUB_FIELDS = {"id", "question", "options", "answer", "answer_idx", "dataset_name",
               "reasoning_prob", "is_reasoning", "reasoning_threshold", "benchmark",
               "adversarial_traces", "adversarial_source", "meta"}


def _load_hub(b: registry.Benchmark, report: LoadReport, *, repo: str,
              revision: str | None) -> list[MCQRecord]:
    """The real hub path. ``repo`` may also be a local directory in the hub layout
    (``datasets`` treats both the same way), which is how tests exercise this code."""
    import datasets

    if Path(repo).is_dir():
        ds = datasets.load_dataset(str(repo), data_dir=b.config, split=registry.HUB_SPLIT)
    else:
        check_hub_reachable(repo, revision)
        revision = resolve_hub_revision(repo, revision)
        report.revision = revision
        try:
            ds = datasets.load_dataset(repo, b.config, split=registry.HUB_SPLIT, revision=revision)
        except (ConnectionError, OSError) as e:  # offline, not found, gated, no cache
            raise HubUnavailableError(
                f"{repo} (config {b.config}, revision {revision}): could not load from the Hugging "
                f"Face hub: {type(e).__name__}: {_first_line(e)}") from e
    name = f"{repo}:{b.config}@{revision}" if revision else f"{repo}:{b.config}"
    report.files.append(name)
    rows = ((f"row {i}", row) for i, row in enumerate(ds))
    return list(build_records(rows, file=name, benchmark=b.name, report=report,
                              convert=hub_row_to_record))


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else ""


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE`` asks for the local cache only."""
    from lm_eval_medsplit.dataset import flag_value  # dataset imports this module

    return any(flag_value(os.environ.get(v, "")) for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


#: Seconds the one hub probe may take before the run stops (``datasets`` would otherwise
#: retry for 25-60 s on an unreachable network before failing).
HUB_PROBE_TIMEOUT = 10.0


@functools.cache
def check_hub_reachable(repo: str, revision: str | None) -> None:
    """Fail fast, with what to do, when the hub cannot be reached: one request with a
    short timeout and no retries, once per process. Skipped under ``HF_HUB_OFFLINE=1``
    (the cache is then used as is)."""
    if hub_offline():
        return
    import urllib.error
    import urllib.request

    from huggingface_hub import constants

    url = f"{constants.ENDPOINT.rstrip('/')}/api/datasets/{repo}"
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"),
                               timeout=HUB_PROBE_TIMEOUT).close()
    except urllib.error.HTTPError:
        pass  # the hub answered (401/404/...): datasets gives the precise error
    except (urllib.error.URLError, OSError) as e:  # no DNS, refused, timed out
        raise HubUnavailableError(
            f"{repo} (revision {revision}): the Hugging Face hub ({constants.ENDPOINT}) cannot be "
            f"reached: {type(e).__name__}: {_first_line(e)}") from None


@functools.cache
def resolve_hub_revision(repo: str, revision: str | None) -> str | None:
    """A branch or tag name resolved to the commit sha it points at now, so a run loads
    and records one exact commit; a full sha is returned unchanged. Resolved once per
    process, so every benchmark of a run loads the same commit (one hub call, not one per
    benchmark)."""
    if revision and len(revision) == 40 and all(c in "0123456789abcdef" for c in revision):
        return revision
    from huggingface_hub import HfApi

    try:
        return HfApi().dataset_info(repo, revision=revision).sha or revision
    except Exception as e:  # noqa: BLE001 - offline / gated: say so and let datasets decide
        import warnings

        warnings.warn(f"could not resolve {repo}@{revision} to a commit ({type(e).__name__}); "
                      f"the run records the unresolved revision", stacklevel=3)
        return revision


def _hub_dir_files(d: Path) -> list[Path]:
    if not d.is_dir():
        return []
    files = sorted(p for p in d.iterdir() if p.is_file() and p.suffix in HUB_LAYOUT_SUFFIXES
                   and p.name.startswith(registry.HUB_SPLIT))
    return files


def _load_hub_dir(d: Path, b: registry.Benchmark, report: LoadReport) -> list[MCQRecord]:
    files = _hub_dir_files(d)
    if not files:
        raise SourceError(f"{d}: no {registry.HUB_SPLIT}*.parquet / .jsonl file for config {b.config!r}")
    records: list[MCQRecord] = []
    seen: dict[str, tuple[str, str]] = {}  # ids across all shards of the config
    for f in files:
        report.files.append(str(f))
        records.extend(build_records(_iter_table_rows(f), file=str(f), benchmark=b.name,
                                     report=report, convert=hub_row_to_record, seen=seen))
    return records


def _iter_table_rows(path: Path) -> Iterator[tuple[str, Any]]:
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(path).to_pylist()
        except (pa.ArrowException, OSError) as e:
            raise SourceError(f"{path}: not a readable parquet file ({type(e).__name__}: "
                              f"{' '.join(str(e).split())[:200]})") from None
        for i, row in enumerate(rows):
            yield f"row {i}", row
    elif path.suffix == ".jsonl":
        yield from iter_jsonl(path)
    else:
        from lm_eval_medsplit.raw_loaders import read_json

        data = read_json(path)
        if not isinstance(data, list):
            raise SourceError(f"{path}: expected a JSON list of rows")
        for i, row in enumerate(data):
            yield f"item {i}", row


# --------------------------------------------------------------------------- canonical JSONL


def _jsonl_row(stem: str):
    def convert(row: Any, benchmark: str) -> MCQRecord:
        return record_from_row(row, stem, keep_extra=True)
    return convert


def _row_benchmark(raw: Any, stem: str) -> str:
    """The benchmark a JSONL row belongs to; unreadable rows belong to the file's stem."""
    if isinstance(raw, dict) and raw.get("benchmark"):
        return str(raw["benchmark"])
    return stem


def _jsonl_benchmarks(path: Path) -> list[str]:
    return sorted({_row_benchmark(raw, path.stem) for _, raw in iter_jsonl(path)})


def _load_jsonl_file(path: Path, report: LoadReport, only: str | None = None) -> list[MCQRecord]:
    """Records of a canonical JSONL file: those of benchmark ``only``, or all. Every row
    (and every unreadable line) belongs to exactly one benchmark, so problems are
    reported once; ids must be unique per benchmark."""
    report.files.append(str(path))
    by_bench: dict[str, list[tuple[str, Any]]] = {}
    for loc, raw in iter_jsonl(path):
        by_bench.setdefault(_row_benchmark(raw, path.stem), []).append((loc, raw))
    recs: list[MCQRecord] = []
    for bench, rows in by_bench.items():
        if only is not None and bench != only:
            continue
        recs.extend(build_records(rows, file=str(path), benchmark=bench, report=report,
                                  convert=_jsonl_row(path.stem)))
    return recs


def load_jsonl_records(path: str | Path, *, strict: bool = False) -> tuple[list[MCQRecord], LoadReport]:
    """Every record of a canonical JSONL file, whatever its benchmark field."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"{path}: no such file")
    report = LoadReport(benchmark=path.stem, source=str(path))
    records = _load_jsonl_file(path, report)
    report.n_records = len(records)
    report.content_hash = dataset_hash(records)
    if strict and report.skipped:
        raise RecordValidationError(report.skipped)
    return records, report


def write_jsonl(records, path: str | Path, *, lock: bool = True) -> None:
    """Write records as canonical JSONL (unknown input fields written back untouched),
    atomically (and under the output lock unless ``lock=False``)."""
    from lm_eval_medsplit.fileio import write_jsonl_rows

    write_jsonl_rows(path, (r.to_dict() for r in records), lock=lock)


__all__ = [
    "ENV_SOURCE", "ENV_REVISION", "Source", "SourceError", "resolve_source", "detect_layout",
    "load_benchmark", "load_many", "load_jsonl_records", "write_jsonl", "hub_row_to_record",
    "RowError", "MANIFEST", "read_manifest",
]
