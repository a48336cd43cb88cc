"""Read lm-eval output directories and Inspect logs into :class:`SampleRow` objects.

Accepts: paths given to ``medsplit report`` -- lm-eval ``--output_path`` directories or
``results_<date>.json`` files (:mod:`.read_lm_eval`), Inspect ``.eval`` logs or log
directories (:mod:`.read_inspect`). Guarantees: every problem is an :class:`InputError`
naming the file (and line); a file or task that is not a medsplit run is listed in
:attr:`ReadResult.skipped` with the reason, never dropped silently.

This module finds the inputs and reads them (in parallel for large inputs); the readers
themselves are :mod:`.read_lm_eval` and :mod:`.read_inspect`, on the shared helpers of
:mod:`.read_common`. Their public names are re-exported here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lm_eval_medsplit.report.read_common import (
    _RESULTS_RE,
    INSPECT,
    LM_EVAL,
    LOGLIKELIHOOD,
    InputError,
    ReadResult,
    Run,
    find_metadata,
    find_provenance,
)
from lm_eval_medsplit.report.read_inspect import MAX_INSPECT_OUTPUTS, read_inspect_log
from lm_eval_medsplit.report.read_lm_eval import read_lm_eval_results

__all__ = ["INSPECT", "LM_EVAL", "LOGLIKELIHOOD", "MAX_INSPECT_OUTPUTS", "PARALLEL_BYTES", "InputError",
           "ReadResult", "Run", "find_metadata", "find_provenance", "read_inputs", "read_inspect_log",
           "read_lm_eval_results"]

# --------------------------------------------------------------------------- discovery


def read_inputs(paths: Iterable[str | Path], *, allow_partial: bool = False,
                keep_outputs: str = "unparsed", workers: int | None = None) -> ReadResult:
    """Read every lm-eval results file and Inspect log found in ``paths`` (files or
    directories, searched recursively).

    Files are read by up to ``workers`` processes (default: one per CPU, at most 8;
    ``1`` reads in this process); results keep the input order either way."""
    result = ReadResult()
    seen: set[Path] = set()
    jobs: list[tuple[str, Path]] = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise InputError(p, "no such file or directory")
        for kind, f in _discover(p, result):
            f = f.resolve()
            if f not in seen:
                seen.add(f)
                jobs.append((kind, f))
    if not jobs and not result.skipped:
        raise InputError(", ".join(str(p) for p in paths),
                         "no lm-eval results_*.json or Inspect .eval log found")
    opts = {"allow_partial": allow_partial, "keep_outputs": keep_outputs}
    if workers is None:  # processes pay off for large inputs only
        big = sum(_job_bytes(f) for _, f in jobs) >= PARALLEL_BYTES
        workers = min(8, os.cpu_count() or 1) if big else 1
    n = min(len(jobs), workers)
    if n > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        with ProcessPoolExecutor(max_workers=n, mp_context=ctx) as pool:
            runs = list(pool.map(_read_one, jobs, [opts] * len(jobs)))
    else:
        runs = [_read_one(job, opts) for job in jobs]
    for (_, f), run in zip(jobs, runs):
        if run.rows:
            result.runs.append(run)
        else:
            result.skipped.append((str(f), "; ".join(run.notes) or "no medsplit samples"))
    return result


#: Inputs larger than this (bytes, all files) are read by several processes by default.
PARALLEL_BYTES = 64 * 2**20


def _job_bytes(f: Path) -> int:
    m = _RESULTS_RE.match(f.name)
    files = [f] + (list(f.parent.glob(f"samples_*_{m.group('date')}.jsonl")) if m else [])
    return sum(x.stat().st_size for x in files if x.is_file())


def _read_one(job: tuple[str, Path], opts: dict[str, Any]) -> Run:
    kind, f = job
    if kind == LM_EVAL:
        return read_lm_eval_results(f, **opts)
    return read_inspect_log(f, **opts)


def _discover(p: Path, result: ReadResult) -> list[tuple[str, Path]]:
    if p.is_file():
        kind = _kind(p)
        if kind is None:
            raise InputError(p, "not an lm-eval results_*.json file or an Inspect .eval/.json log")
        return [(kind, p)]
    out = []
    for f in sorted(p.rglob("*")):
        if not f.is_file() or any(part.startswith(".") for part in f.relative_to(p).parts):
            continue
        if f.suffix == ".eval" or _RESULTS_RE.match(f.name):
            out.append((INSPECT if f.suffix == ".eval" else LM_EVAL, f))
        elif f.name.startswith("samples_") and f.suffix == ".jsonl":
            continue  # read with its results file
        elif f.suffix == ".json" and f.name != "logs.json" and _kind(f) == INSPECT:
            out.append((INSPECT, f))
        elif f.suffix in (".json", ".jsonl"):
            result.skipped.append((str(f), "not an lm-eval results file or an Inspect log"))
    return out


def _kind(f: Path) -> str | None:
    if f.suffix == ".eval":
        return INSPECT
    if _RESULTS_RE.match(f.name):
        return LM_EVAL
    if f.suffix == ".json":
        try:
            with open(f, "rb") as fh:
                head = fh.read(4096).decode("utf-8", "replace")
        except OSError as e:
            raise InputError(f, f"cannot read ({e.strerror})") from None
        if '"eval"' in head and '"status"' in head or head.lstrip().startswith('{\n  "version"'):
            return INSPECT
        if '"results"' in head and '"configs"' in head:
            return LM_EVAL
    return None

