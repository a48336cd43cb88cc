"""Read one Inspect log into a :class:`~.read_common.Run`.

Inspect (``inspect eval lm_eval_medsplit/...``) writes ``.eval`` logs; each sample's
``metadata`` carries :func:`lm_eval_medsplit.samples.sample_metadata`, its score's
metadata the scoring fields (``pred`` / ``method`` / ``outcome``), and the task metadata
(``eval.metadata``) the run provenance.

Accepts: the path of an Inspect ``.eval`` or ``.json`` log. Needs the ``inspect`` extra
(``inspect_ai`` is imported when a log is read, not when this module is imported).

Guarantees: a :class:`~.read_common.Run` with one row per sample (per epoch); a broken,
partial, errored or ``--limit``-ed log is an :class:`~.read_common.InputError` naming
the file and sample unless ``allow_partial`` is set, and then a note in the run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lm_eval_medsplit.report.read_common import (
    INSPECT,
    InputError,
    Run,
    _outcome_fields,
    _row,
    find_metadata,
    find_provenance,
)

# --------------------------------------------------------------------------- inspect

_EXCLUDE = {"events", "messages", "store", "attachments", "events_data", "timelines"}
#: Outputs (of unparsed samples) read back per Inspect log for the gallery.
MAX_INSPECT_OUTPUTS = 25


@dataclass
class _Summary:
    """What the report needs of one Inspect sample."""

    id: Any
    epoch: int
    metadata: dict[str, Any]
    score_metadata: list[dict[str, Any]]
    error: str | None
    output: str | None


def _fast_summaries(path: Path) -> list[_Summary] | None:
    """The sample summaries of a finished local ``.eval`` log, read as plain JSON.

    An ``.eval`` log is a zip archive whose ``summaries.json`` member holds the sample
    summaries that :func:`inspect_ai.log.read_eval_log_sample_summaries` returns; that
    public function validates every summary with pydantic: ``benchmarks/bench_report.py
    --inspect-read`` on a 4,183-sample log measured 3.2-4.2 s for it against 0.5-1.3 s for
    ``zipfile`` + ``json`` here (2 shared cores; no Inspect internals are imported). Any
    problem (a remote log, another layout, a log still being written, with journal
    summaries only) returns ``None`` and the caller takes the public API;
    ``test_inspect_fast_summaries_equal_the_public_api`` checks the two agree. Duplicate
    ``(id, epoch)`` rows keep the last one, as Inspect does."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            if "summaries.json" not in z.namelist():
                return None
            data = json.loads(z.read("summaries.json"))
        if not isinstance(data, list):
            return None
        out: dict[tuple[str, int], _Summary] = {}
        for d in data:
            scores = d.get("scores") or {}
            out[(str(d["id"]), int(d["epoch"]))] = _Summary(
                d["id"], int(d["epoch"]), d.get("metadata") or {},
                [sc.get("metadata") or {} for sc in scores.values() if isinstance(sc, dict)],
                d.get("error") or None, None)
        return list(out.values())
    except Exception:
        return None


def _limited(n: int | None, limit: Any) -> int | None:
    """Samples an Inspect run covered: ``--limit N`` or ``--limit start,end`` of ``n``."""
    if n is None or limit is None:
        return n
    if isinstance(limit, int):
        return min(limit, n)
    start, end = limit
    return max(0, min(end, n) - start)


def read_inspect_log(path: str | Path, *, allow_partial: bool = False,
                     keep_outputs: str = "unparsed", max_outputs: int = MAX_INSPECT_OUTPUTS,
                     fast: bool = True) -> Run:
    """One Inspect log (``.eval`` or ``.json``).

    The header comes from :func:`inspect_ai.log.read_eval_log` (``header_only``); the
    per-sample metadata and scores from the log's sample summaries, which carry both
    (:func:`_fast_summaries`, else :func:`~inspect_ai.log.read_eval_log_sample_summaries`);
    the output texts of up to
    ``max_outputs`` unparsed samples (for the gallery) from
    :func:`~inspect_ai.log.read_eval_log_samples_by_id`. A log whose summaries cannot be
    read is read whole with :func:`~inspect_ai.log.read_eval_log`. ``fast=False`` uses
    the public API only."""
    from inspect_ai.log import read_eval_log, read_eval_log_sample_summaries, read_eval_log_samples_by_id

    path = Path(path)
    try:
        header = read_eval_log(str(path), header_only=True)
    except Exception as e:  # zip / JSON / validation errors of a broken log
        raise InputError(path, f"not a readable Inspect log ({type(e).__name__}: {str(e)[:300]})") from None
    spec = header.eval
    items = _fast_summaries(path) if fast and path.suffix == ".eval" and path.is_file() else None
    full = False
    if items is None:
        try:
            items = [_Summary(s.id, s.epoch, s.metadata or {},
                              [sc.metadata or {} for sc in (s.scores or {}).values()], s.error, None)
                     for s in read_eval_log_sample_summaries(str(path))]
        except Exception:
            try:
                log = read_eval_log(str(path), exclude_fields=_EXCLUDE)
            except Exception as e:
                raise InputError(path, f"samples not readable ({type(e).__name__}: {str(e)[:300]})") from None
            items = [_Summary(s.id, s.epoch, s.metadata or {},
                              [sc.metadata or {} for sc in (s.scores or {}).values()],
                              s.error.message if s.error else None,
                              s.output.completion if s.output is not None else None)
                     for s in (log.samples or [])]
            full = True
    n_all = spec.dataset.samples if spec.dataset else None
    epochs = spec.config.epochs or 1
    if getattr(spec.config, "sample_id", None) is not None:  # --sample-id: count unknown here
        n_run, expected = len(items) // epochs, None
    else:
        n_run = _limited(n_all, spec.config.limit)
        expected = n_run * epochs if n_run is not None else None
    model = str(spec.model)
    run = Run(str(path), INSPECT, model, [spec.task], [], created=str(spec.created), files=[str(path)])
    if header.status != "success" or header.invalidated:
        msg = (f"log status is {header.status!r} ({len(items)} of {expected} samples)"
               + (f": {header.error.message[:200]}" if header.error else ""))
        if not allow_partial:
            raise InputError(path, msg + "; re-run or retry it (use --allow-partial to include it anyway)")
        run.notes.append(msg)
    elif expected is not None and len(items) != expected:
        msg = f"{len(items)} samples in the log, {expected} expected: partial log"
        if not allow_partial:
            raise InputError(path, msg + " (use --allow-partial to include it anyway)")
        run.notes.append(msg)
    if n_run is not None and n_all is not None and n_run < n_all:
        how = "--sample-id" if expected is None else "--limit"
        msg = (f"task {spec.task!r} was run on {n_run} of {n_all} samples ({how}); "
               f"its numbers cover those only")
        if not allow_partial:
            raise InputError(path, msg + " (use --allow-partial to include it)")
        run.notes.append(msg)
    prov = find_provenance(spec.metadata or {}) or find_provenance(spec.task_args or {})
    later_epochs = 0
    first_without = None
    want: list[tuple[int, tuple[Any, int]]] = []
    outputs: dict[int, str | None] = {}
    for s in items:
        error = s.error
        meta = find_metadata(s.metadata)
        if meta is None:
            if run.rows:
                raise InputError(path, f"sample {s.id!r}: no medsplit sample metadata unlike earlier samples")
            first_without = s if first_without is None else first_without
            continue
        if first_without is not None:  # a log is all medsplit samples or none
            raise InputError(path, f"sample {first_without.id!r}: no medsplit sample metadata "
                                   f"unlike sample {s.id!r}")
        if s.epoch and s.epoch > 1:
            later_epochs += 1
        if error:
            if not allow_partial:
                raise InputError(path, f"sample {s.id!r} ended in an error ({str(error)[:200]}); "
                                       f"use --allow-partial to count it as unparsed")
            fields = {"pred": None, "method": "error", "outcome": "unparsed"}
        else:
            fields = None
            for sc_meta in s.score_metadata:
                fields = _outcome_fields(sc_meta)
                if fields is not None:
                    break
            if fields is None:
                raise InputError(path, f"sample {s.id!r}: no score with pred/method/outcome "
                                       f"(was it scored with medsplit_scorer?)")
        b = str(meta["benchmark"])
        rows_prov = prov.get(b) or {"content_hash": s.metadata.get("content_hash"),
                                     "revision": s.metadata.get("revision")}
        i = len(run.rows)
        try:
            run.rows.append(_row(meta, model=model, harness=INSPECT, task=spec.task, fields=fields,
                                 output=None, keep_outputs="none", prov=rows_prov,
                                 repeat=(s.epoch - 1) if epochs > 1 and s.epoch else None,
                                 style=(s.metadata or {}).get("style")))
        except (TypeError, ValueError) as e:
            raise InputError(path, f"sample {s.id!r}: bad sample metadata ({e})") from None
        if b not in prov and rows_prov.get("content_hash"):
            prov[b] = rows_prov
        if full:
            outputs[i] = s.output
        elif keep_outputs == "all" or (keep_outputs == "unparsed" and fields["outcome"] == "unparsed"
                                       and len(want) < max_outputs):
            want.append((i, (s.id, s.epoch)))
    if want:
        try:
            got = read_eval_log_samples_by_id(str(path), [k for _, k in want], exclude_fields=_EXCLUDE)
        except Exception as e:
            raise InputError(path, f"samples not readable ({type(e).__name__}: {str(e)[:300]})") from None
        texts = {(g.id, g.epoch): (g.output.completion if g.output is not None else None) for g in got}
        for i, key in want:
            outputs[i] = texts.get(key)
    for i, text in outputs.items():
        r = run.rows[i]
        if keep_outputs == "all" or (keep_outputs == "unparsed" and r.outcome == "unparsed"):
            r.output = text
    if later_epochs:
        run.notes.append(f"{epochs} epochs: {later_epochs} sample(s) of epochs > 1 averaged per question "
                         f"with epoch 1")
    if not run.rows:
        run.notes.append("no medsplit sample metadata in its samples")
    run.provenance = prov
    return run
