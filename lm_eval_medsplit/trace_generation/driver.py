"""The resumable adversarial-trace generation run (:func:`generate_traces`).

Accepts: records with a gold letter, at least two options and a question (anything else is
refused up front, listing every such record) and any :class:`TraceGenerator`.
Guarantees: every requested trace ends up accepted or rejected, each counted, and the
run's output survives a crash, as follows.

:func:`generate_traces` drives either: for every record and trace index ``k`` it asks for
an argument for ``wrong_letter(record, k)``, checks it with the scoring core
(:func:`lm_eval_medsplit.adversarial.check_trace`: it must conclude with that letter,
never the gold one), re-asks a failed trace up to ``max_attempts`` times and then
rejects it, counting everything in :class:`GenerationStats`. A rejected slot stays an
empty string (so trace ``k`` always argues for ``wrong_letter(record, k)``), or, with
``on_reject="offline"``, is filled with the offline template and the record's source
becomes ``"<model source>+offline-template"``. Per-trace status lives in
``record.meta["adversarial_generation"]`` (with the run's prompt ``style``).

Resumable and crash-safe: with ``out`` set, finished records are appended chunk by chunk
to the resume file ``<out>.partial`` (never to ``out`` itself); a re-run reads ``out``
and the resume file back, skips records whose traces were all accepted from the same
source in the same ``style`` (a run in another style asks for every trace again), re-asks
only the missing slots of partial ones, and at the end replaces ``out``
atomically with every record in input order and removes the resume file. A kill at any
point leaves an earlier ``out`` intact; ``resume=False`` ignores both files and empties
only the resume file. The run holds a lock on ``out``. After ``max_consecutive_errors``
calls in a row that returned no text (a dead or refusing endpoint), the run stops with
one :class:`GenerationError`; what was done stays in the resume file.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lm_eval_medsplit.adversarial import (
    N_TRACES,
    check_trace,
    combined_source,
    offline_trace,
    raise_trace_input_problems,
    trace_input_problems,
    wrong_letters,
)
from lm_eval_medsplit.fileio import atomic_path, locked
from lm_eval_medsplit.prompts import check_style
from lm_eval_medsplit.schema import MCQRecord, RowError, record_from_row
from lm_eval_medsplit.trace_generation.jobs import GenerationError, TraceGenerator, TraceJob

META_KEY = "adversarial_generation"
STATUS_OK = "ok"
STATUS_REJECTED = "rejected"
STATUS_OFFLINE = "offline"
ON_REJECT = ("empty", "offline")


@dataclass
class GenerationStats:
    """What one :func:`generate_traces` run did. Every requested trace ends up exactly
    once in ``accepted`` or ``rejected``."""

    source: str
    n_traces: int
    records: int = 0
    resumed: int = 0
    """Records skipped because ``out`` (or the input) already had all their traces."""
    partial: int = 0
    """Records with some traces kept from ``out`` and the rest asked for again."""
    requested: int = 0
    """Traces asked for in this run."""
    accepted: int = 0
    rejected: int = 0
    """Traces still failing the check after ``max_attempts`` attempts."""
    fallback_offline: int = 0
    """Rejected traces replaced by the offline template (``on_reject="offline"``)."""
    attempts: int = 0
    retries: int = 0
    """Attempts after the first one (a failed check or a failed call)."""
    errors: int = 0
    """Attempts that produced no text (HTTP failure after retries, generate error)."""
    consecutive_errors: int = 0
    """Attempts in a row, up to now, that produced no text."""
    reasons: Counter = field(default_factory=Counter)
    """Why attempts failed (``concludes with the gold letter B`` grouped by kind)."""
    generator: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    style: str = "cot"
    """Prompt style of the traces' final-answer line."""

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "n_traces": self.n_traces, "records": self.records,
                "resumed": self.resumed, "partial": self.partial, "requested": self.requested,
                "accepted": self.accepted, "rejected": self.rejected,
                "fallback_offline": self.fallback_offline, "attempts": self.attempts,
                "retries": self.retries, "errors": self.errors,
                "reasons": dict(self.reasons.most_common()), "generator": dict(self.generator),
                "wall_s": round(self.wall_s, 3), "style": self.style}


def _reason_kind(reason: str) -> str:
    for prefix in ("concludes with the gold letter", "concludes with", "no final answer",
                   "empty trace", "error"):
        if reason.startswith(prefix):
            return prefix
    return reason[:60]


def _status(record: MCQRecord) -> dict[str, Any] | None:
    st = record.meta.get(META_KEY)
    return st if isinstance(st, dict) else None


def _kept_slots(record: MCQRecord, source: str, n: int,
                record_hash: str, style: str = "cot") -> dict[int, tuple[str, int]]:
    """``k -> (trace, attempts)`` for the slots of ``record`` (from ``out`` or the input)
    already accepted from ``source`` in ``style`` for the same question content (a status
    without a style is from before styles were recorded: ``cot``)."""
    st = _status(record)
    if (not st or st.get("source") != source or st.get("record_hash") != record_hash
            or st.get("style", "cot") != style):
        return {}
    statuses = st.get("status") or []
    tries = st.get("attempts") or []
    kept = {}
    for k in range(min(n, len(record.adversarial_traces), len(statuses))):
        if statuses[k] == STATUS_OK and record.adversarial_traces[k].strip():
            kept[k] = (record.adversarial_traces[k], int(tries[k]) if k < len(tries) else 1)
    return kept


def _meta(source, record_hash, letters, status, attempts, reasons, style) -> dict[str, Any]:
    return {"source": source, "record_hash": record_hash, "letters": list(letters),
            "status": list(status), "attempts": list(attempts), "reasons": list(reasons),
            "style": style}


def read_previous(path: Path) -> dict[tuple[str, str], MCQRecord]:
    """Rows of an earlier run's ``out`` by ``(benchmark, id)``; later lines win (a run
    that was cut off appended its finished chunks after the older rows)."""
    prev: dict[tuple[str, str], MCQRecord] = {}
    if not path.is_file():
        return prev
    from lm_eval_medsplit.fileio import JSONProblem, iter_lines, parse_json

    for i, line in iter_lines(path):
        if not line.strip():
            continue
        try:
            row = parse_json(line)
            if not isinstance(row, dict):
                raise RowError("<row>", f"expected a JSON object, got {type(row).__name__}")
            rec = record_from_row(row, str(row.get("benchmark") or ""), keep_extra=True)
        except (JSONProblem, RowError) as e:
            if not line.endswith("\n"):
                break  # the last line of a run killed mid-write
            raise ValueError(f"{path}: line {i}: cannot resume from this file ({e}); "
                             f"use --no-resume to start over") from None
        prev[(rec.benchmark, rec.id)] = rec
    return prev


def _drop_partial_tail(path: Path) -> None:
    """Cut a half-written last line (a run killed mid-write) off ``path`` before appending
    to it, so the next line starts on its own; :func:`read_previous` already ignores it
    and its record is generated again."""
    with open(path, "rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        block = 1 << 16
        end = size
        while end > 0:  # find the last newline, reading backwards
            start = max(0, end - block)
            f.seek(start)
            i = f.read(end - start).rfind(b"\n")
            if i >= 0:
                f.truncate(start + i + 1)
                return
            end = start
        f.truncate(0)


def partial_path(out: str | Path) -> Path:
    """The resume file of a run writing ``out``."""
    out = Path(out)
    return out.with_name(f"{out.name}.partial")


def _write_line(f, rec: MCQRecord) -> None:
    f.write(json.dumps(rec.to_dict(), ensure_ascii=False) + "\n")


def generate_traces(records: Sequence[MCQRecord], generator: TraceGenerator, *,
                    n: int = N_TRACES, max_attempts: int = 3, out: str | Path | None = None,
                    resume: bool = True, on_reject: str = "empty", chunk_size: int = 64,
                    progress: bool = True,
                    on_chunk: Callable[[list[MCQRecord]], None] | None = None,
                    max_consecutive_errors: int | None = 16,
                    style: str = "cot") -> tuple[list[MCQRecord], GenerationStats]:
    """Give every record ``n`` model traces (see the module docstring). Records are
    changed in place and returned in input order with the run's stats.

    Raises :class:`TraceInputError` listing every record that cannot get traces (no gold
    letter, fewer than two options, empty question) before any request is made.
    """
    if on_reject not in ON_REJECT:
        raise ValueError(f"on_reject must be one of {', '.join(ON_REJECT)}, got {on_reject!r}")
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    raise_trace_input_problems(trace_input_problems(records))
    if out is None:
        return _generate(records, generator, n, max_attempts, None, resume, on_reject,
                         chunk_size, progress, on_chunk, max_consecutive_errors, style)
    with locked(out, "--out"):
        return _generate(records, generator, n, max_attempts, Path(out), resume, on_reject,
                         chunk_size, progress, on_chunk, max_consecutive_errors, style)


def _generate(records, generator, n, max_attempts, out_path, resume, on_reject, chunk_size,
              progress, on_chunk, max_consecutive_errors, style):
    t0 = time.perf_counter()
    stats = GenerationStats(source=generator.source, n_traces=n, records=len(records),
                            style=check_style(style))
    part = partial_path(out_path) if out_path is not None else None
    prev = {}
    if out_path is not None and resume:
        prev = read_previous(out_path)
        prev.update(read_previous(part))  # the resume file is newer than ``out``

    # what is left to do, per record: kept slots come from ``out`` (or the input itself)
    plans: list[tuple[MCQRecord, str, list[str], dict[int, tuple[str, int]]]] = []
    for r in records:
        h = r.content_hash()
        letters = wrong_letters(r, n)
        old = prev.get((r.benchmark, r.id))
        kept = _kept_slots(old, generator.source, n, h, stats.style) if old is not None else {}
        if not kept:
            kept = _kept_slots(r, generator.source, n, h, stats.style)
        if len(kept) == n:
            r.adversarial_traces = [kept[k][0] for k in range(n)]
            r.adversarial_source = generator.source
            r.meta[META_KEY] = _meta(generator.source, h, letters, [STATUS_OK] * n,
                                     [kept[k][1] for k in range(n)], [None] * n, stats.style)
            stats.resumed += 1
            continue
        if kept:
            stats.partial += 1
        plans.append((r, h, letters, kept))
    stats.requested = sum(n - len(kept) for *_, kept in plans)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=stats.requested, desc=f"traces ({generator.source})", unit="trace",
                   dynamic_ncols=True)
    fh = None
    if part is not None:
        append = resume and part.exists()
        if append:
            _drop_partial_tail(part)
        fh = open(part, "a" if append else "w", encoding="utf-8")
    try:
        for c in range(0, len(plans), max(1, chunk_size)):
            chunk = plans[c: c + max(1, chunk_size)]
            _run_chunk(chunk, generator, n, max_attempts, on_reject, stats, bar,
                       max_consecutive_errors, part)
            if fh is not None:
                for r, *_ in chunk:
                    _write_line(fh, r)
                fh.flush()
            if on_chunk is not None:
                on_chunk([r for r, *_ in chunk])
    finally:
        if fh is not None:
            fh.close()
        if bar is not None:
            bar.close()
    stats.generator = generator.counters()
    if out_path is not None:  # final file: every input record once, in input order
        with atomic_path(out_path, lock=False) as tmp, open(tmp, "w", encoding="utf-8") as f:
            for r in records:
                _write_line(f, r)
        part.unlink(missing_ok=True)
    stats.wall_s = time.perf_counter() - t0
    return list(records), stats


def _sub_batches(jobs: list[TraceJob], generator) -> list[list[TraceJob]]:
    """Jobs in batches of a few times the generator's parallelism, so a dead endpoint is
    noticed after a few rounds of calls rather than after a whole chunk."""
    width = getattr(generator, "concurrency", None) or getattr(generator, "batch_size", None)
    size = max(1, 4 * int(width)) if width else max(1, len(jobs))
    return [jobs[i: i + size] for i in range(0, len(jobs), size)]


def _call(generator, jobs: list[TraceJob], stats: GenerationStats,
          max_consecutive_errors: int | None, resume_file: Path | None) -> list:
    results: list = []
    for batch in _sub_batches(jobs, generator):
        got = generator.generate(batch)
        results += got
        last = None
        for res in got:
            if isinstance(res, BaseException):
                stats.consecutive_errors += 1
                last = res
            else:
                stats.consecutive_errors = 0
        if max_consecutive_errors and stats.consecutive_errors >= max_consecutive_errors:
            where = (f"; the {stats.accepted:,} trace(s) finished so far are kept in {resume_file}: "
                     f"run the same command again to resume" if resume_file is not None else "")
            raise GenerationError(f"{generator.source}: {stats.consecutive_errors} calls in a row "
                                  f"failed, stopping (last: {last}){where}")
    return results


def _run_chunk(chunk, generator: TraceGenerator, n: int, max_attempts: int, on_reject: str,
               stats: GenerationStats, bar, max_consecutive_errors: int | None = None,
               resume_file: Path | None = None) -> None:
    slots: dict[int, list[str]] = {}
    status: dict[int, list[str]] = {}
    attempts: dict[int, list[int]] = {}
    reasons: dict[int, list[str | None]] = {}
    pending: list[TraceJob] = []
    for j, (r, h, letters, kept) in enumerate(chunk):
        slots[j] = [kept[k][0] if k in kept else "" for k in range(n)]
        status[j] = [STATUS_OK if k in kept else STATUS_REJECTED for k in range(n)]
        attempts[j] = [kept[k][1] if k in kept else 0 for k in range(n)]
        reasons[j] = [None] * n
        pending += [TraceJob(r, k, letters[k], h, style=stats.style) for k in range(n) if k not in kept]
    index = {id(r): j for j, (r, *_) in enumerate(chunk)}
    for attempt in range(max_attempts):
        if not pending:
            break
        for job in pending:
            job.attempt = attempt
        results = _call(generator, pending, stats, max_consecutive_errors, resume_file)
        stats.attempts += len(pending)
        if attempt:
            stats.retries += len(pending)
        failed: list[TraceJob] = []
        for job, res in zip(pending, results):
            j = index[id(job.record)]
            attempts[j][job.k] += 1
            if isinstance(res, BaseException):
                stats.errors += 1
                ok, why = False, f"error: {res}"
            else:
                res = res.strip()
                ok, why = check_trace(job.record, res, job.letter)
            if ok:
                slots[j][job.k] = res
                status[j][job.k] = STATUS_OK
                reasons[j][job.k] = None
                stats.accepted += 1
                if bar is not None:
                    bar.update(1)
            else:
                stats.reasons[_reason_kind(why)] += 1
                reasons[j][job.k] = why[:300]
                failed.append(job)
        pending = failed
        if bar is not None:
            bar.set_postfix(accepted=stats.accepted, retries=stats.retries)
    for job in pending:  # rejected for good
        j = index[id(job.record)]
        stats.rejected += 1
        if on_reject == "offline":
            slots[j][job.k] = offline_trace(job.record, job.k, letter=job.letter, style=job.style)
            status[j][job.k] = STATUS_OFFLINE
            stats.fallback_offline += 1
        if bar is not None:
            bar.update(1)
    for j, (r, h, letters, _kept) in enumerate(chunk):
        n_off = status[j].count(STATUS_OFFLINE)
        r.adversarial_traces = slots[j]
        r.adversarial_source = combined_source(generator.source, n_off)
        r.meta[META_KEY] = _meta(generator.source, h, letters, status[j], attempts[j], reasons[j],
                                 stats.style)

