"""Read one lm-eval results file and its per-sample logs into a :class:`~.read_common.Run`.

lm-eval (``lm_eval ... --output_path OUT --log_samples``) writes, per model,
``OUT/<model_sanitized>/results_<date>.json`` and one
``samples_<task>_<date>.jsonl`` per task with the same ``<date>``. Each logged sample's
``doc`` carries :func:`lm_eval_medsplit.samples.sample_metadata` (flat, or nested under a
key) and the scoring core's ``pred`` / ``method`` / ``outcome`` are logged per sample
(top level, or inside the doc); where they are absent the report re-scores the logged
response with :func:`lm_eval_medsplit.scoring.score` (and says so). Run provenance
(source, revision, eval-set content hash) is read from ``configs[task]["metadata"]``.

Accepts: the path of a ``results_<date>.json`` file (its sample files are found next to it).

Guarantees: a :class:`~.read_common.Run` with one row per logged sample (per repeat) of
every medsplit task; every problem is an :class:`~.read_common.InputError` naming the
file and line; a task that is not a medsplit task, or lines of other filters, are
listed in the run's notes, never dropped silently. Needs no optional dependency.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lm_eval_medsplit.report.read_common import (
    _RESULTS_RE,
    LM_EVAL,
    LOGLIKELIHOOD,
    InputError,
    Run,
    _decode,
    _first_text,
    _loads,
    _outcome_fields,
    _rescore,
    _row,
    _text,
    find_metadata,
    find_provenance,
)
from lm_eval_medsplit.samples import SampleRow

# --------------------------------------------------------------------------- lm-eval


def read_lm_eval_results(path: str | Path, *, allow_partial: bool = False,
                         keep_outputs: str = "unparsed") -> Run:
    """One lm-eval ``results_<date>.json`` and its ``samples_<task>_<date>.jsonl`` files."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(path, f"cannot read ({e.strerror})") from None
    res = _loads(_decode(data, path), path)
    if not isinstance(res, dict) or "configs" not in res:
        raise InputError(path, "not an lm-eval results file (no 'configs')")
    for key, kind in (("configs", dict), ("n-samples", dict), ("config", dict)):
        if res.get(key) is not None and not isinstance(res[key], kind):
            raise InputError(path, f"field {key!r} is a JSON {type(res[key]).__name__}, expected an object")
    m = _RESULTS_RE.match(path.name)
    date = m.group("date") if m else None
    model = (res.get("model_name") or (res.get("config") or {}).get("model_name")
             or _model_from_args(res.get("config") or {}) or path.parent.name)
    try:
        model = _text(model, "model_name")
    except ValueError as e:
        raise InputError(path, str(e)) from None
    run = Run(str(path), LM_EVAL, model, [], [], created=date, files=[str(path)])
    n_samples = res.get("n-samples") or {}
    for task, cfg in sorted((res.get("configs") or {}).items()):
        if not isinstance(cfg, dict):
            raise InputError(path, f"field 'configs.{task}' is a JSON {type(cfg).__name__}, expected an object")
        sfile = path.parent / f"samples_{task}_{date}.jsonl" if date else None
        if sfile is None or not sfile.is_file():
            # a results file without per-sample logs cannot be split by subset
            if _is_medsplit_task(task, cfg):
                raise InputError(path, f"task {task!r}: per-sample file {sfile.name if sfile else 'samples_' + task + '_*.jsonl'} "
                                       f"not found next to it (run lm_eval with --log_samples)")
            run.notes.append(f"task {task}: not a medsplit task, ignored")
            continue
        task_prov = find_provenance((cfg or {}).get("metadata") or {})
        rows, n_lines, rescored, other = _read_lm_eval_samples(sfile, task, run.model, task_prov, keep_outputs)
        if other:
            run.notes.append(f"task {task}: {other} sample line(s) of other filters than the one used ignored")
        run.files.append(str(sfile))
        if not rows:
            run.notes.append(f"task {task}: no medsplit metadata in its samples, ignored")
            continue
        ns = n_samples.get(task) if isinstance(n_samples.get(task), dict) else {}
        expected, original = ns.get("effective"), ns.get("original")
        if expected is not None and n_lines != expected and not allow_partial:
            raise InputError(sfile, f"{n_lines} sample line(s) but the results file reports "
                                    f"{expected} for task {task!r}: partial or truncated log "
                                    f"(use --allow-partial to include it anyway)")
        if original is not None and expected is not None and expected < original:
            msg = (f"task {task!r} was run on {expected} of {original} documents "
                   f"(--limit); its numbers cover those only")
            if not allow_partial:
                raise InputError(path, msg + " (use --allow-partial to include it)")
            run.notes.append(msg)
        if rescored:
            run.notes.append(f"task {task}: {rescored} sample(s) carried no scoring fields and "
                             f"were re-scored from the logged response with lm_eval_medsplit.scoring")
        k = max((r.repeat or 0) for r in rows) + 1
        if k > 1:
            run.notes.append(f"task {task}: {k} samples per document (lm-eval repeats)")
        run.tasks.append(task)
        run.rows.extend(rows)
        for bench, p in task_prov.items():
            run.provenance.setdefault(bench, p)
        for r in rows:
            if r.benchmark not in run.provenance and r.content_hash:
                run.provenance[r.benchmark] = {"content_hash": r.content_hash, "revision": r.revision}
    return run


def _model_from_args(config: Mapping[str, Any]) -> str | None:
    args = config.get("model_args")
    if isinstance(args, Mapping):
        for k in ("pretrained", "model", "path"):
            if k in args:
                return str(args[k])
    if isinstance(args, str):
        for part in args.split(","):
            k, _, v = part.partition("=")
            if k.strip() in ("pretrained", "model", "path") and v:
                return v.strip()
    return config.get("model") if isinstance(config.get("model"), str) else None


def _is_medsplit_task(task: str, cfg: Any) -> bool:
    if task.startswith("medsplit"):
        return True
    return bool(find_provenance((cfg or {}).get("metadata") or {})) if isinstance(cfg, Mapping) else False


def _read_lm_eval_samples(sfile: Path, task: str, model: str, task_prov: dict[str, dict[str, Any]],
                          keep_outputs: str) -> tuple[list[SampleRow], int, int, int]:
    """Rows of one per-sample file: ``(rows, lines used, re-scored, lines ignored)``.

    lm-eval logs one line per document *and filter*. The medsplit tasks have one filter,
    ``score``; when a task has several, the ``score`` lines are used (or, without
    any, those of the first filter seen) and the others are counted as ignored."""
    by_filter: dict[Any, list[SampleRow]] = {}
    rescored: dict[Any, int] = {}
    lines: dict[Any, int] = {}
    try:
        fh = open(sfile, "rb")
    except OSError as e:
        raise InputError(sfile, f"cannot read ({e.strerror})") from None
    seen_meta = False
    first_without = 0
    with fh:
        for i, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            where = f"line {i}: "
            s = _loads(_decode(raw, sfile, where), sfile, where)
            if not isinstance(s, dict):
                raise InputError(sfile, f"line {i}: expected a JSON object")
            doc = s.get("doc")
            meta = find_metadata(doc)
            if meta is None:
                if seen_meta:
                    raise InputError(sfile, f"line {i}: the doc has no medsplit sample metadata "
                                            f"(id, benchmark, record_hash) unlike earlier lines")
                first_without = first_without or i
                continue
            if first_without:  # a file is all medsplit samples or none (then ignored whole)
                raise InputError(sfile, f"line {first_without}: the doc has no medsplit sample "
                                        f"metadata (id, benchmark, record_hash) unlike line {i}")
            seen_meta = True
            doc_style = doc.get("style") if isinstance(doc, Mapping) else None
            # the run provenance of the row's benchmark (or the task's only one)
            prov = task_prov.get(str(meta["benchmark"])) or (next(iter(task_prov.values())) if len(task_prov) == 1 else None)
            flt = s.get("filter")
            if not isinstance(flt, (str, type(None))):
                raise InputError(sfile, f"line {i}: field 'filter' is a JSON {type(flt).__name__}")
            lines[flt] = lines.get(flt, 0) + 1
            output = _first_text(s.get("resps"))
            texts = _texts(s.get("resps"))
            # repeated samples: the scoring fields of every repeat in the doc (what the
            # medsplit tasks log with repeats > 1), or every response re-scored
            many = _repeat_fields(doc)
            if many is None and len(texts) > 1:
                many = [_rescore(t, doc, s.get("target")) for t in texts]
                if any(f is None for f in many):
                    many = None
                else:
                    rescored[flt] = rescored.get(flt, 0) + len(many)
            if many is not None and len(many) > 1:
                ll = many[0].get("method") == LOGLIKELIHOOD
                try:
                    for j, f in enumerate(many):
                        by_filter.setdefault(flt, []).append(
                            _row(meta, model=f"{model} ({LOGLIKELIHOOD})" if ll else model, harness=LM_EVAL, task=task, fields=f,
                                 output=texts[j] if j < len(texts) else None, keep_outputs=keep_outputs,
                                 prov=prov, repeat=j, style=doc_style))
                except (TypeError, ValueError) as e:
                    raise InputError(sfile, f"line {i}: bad sample metadata ({e})") from None
                continue
            # the score filter's JSON first (what the medsplit tasks log), then fields
            # anywhere in the sample or doc (other adapters / hand-made logs)
            fields = ((many[0] if many else None) or _from_filtered(s.get("filtered_resps"))
                      or _outcome_fields(s, doc, meta))
            row_model = model
            if fields is not None and fields.get("method") == LOGLIKELIHOOD:  # a report's own export
                row_model = f"{model} ({LOGLIKELIHOOD})"
            if fields is None:
                fields = _from_loglikelihoods(s, doc)
                if fields is not None:
                    # log-likelihood scoring is another setting than generation: its own row
                    row_model = f"{model} ({LOGLIKELIHOOD})"
                    output = None
            if fields is None:
                fields = _rescore(_first_text(s.get("filtered_resps")) if output is None else output,
                                  doc, s.get("target"))
                if fields is None:
                    raise InputError(sfile, f"line {i}: no pred/method/outcome and no options + "
                                            f"gold in the doc to re-score the response")
                rescored[flt] = rescored.get(flt, 0) + 1
            try:
                by_filter.setdefault(flt, []).append(
                    _row(meta, model=row_model, harness=LM_EVAL, task=task, fields=fields,
                         output=output, keep_outputs=keep_outputs, prov=prov,
                         style=None if row_model != model else doc_style))
            except (TypeError, ValueError) as e:
                raise InputError(sfile, f"line {i}: bad sample metadata ({e})") from None
    if not by_filter:
        return [], 0, 0, 0
    use = "score" if "score" in by_filter else next(iter(by_filter))
    rows = by_filter[use]
    ignored = sum(v for k, v in lines.items() if k != use and k in by_filter)
    return rows, lines.get(use, 0), rescored.get(use, 0), ignored


def _texts(resps: Any) -> list[str]:
    """Every generated text of a logged sample (several with lm-eval ``repeats``)."""
    x = resps
    while isinstance(x, list) and len(x) == 1 and isinstance(x[0], list):
        x = x[0]
    if isinstance(x, list):
        return [t for t in x if isinstance(t, str)]
    return [x] if isinstance(x, str) else []


def _repeat_fields(doc: Any) -> list[dict[str, Any]] | None:
    """The scoring fields of every repeat, as the medsplit tasks log them in the doc
    (``medsplit_scores``, a list in repeat order)."""
    scores = doc.get("medsplit_scores") if isinstance(doc, Mapping) else None
    if not isinstance(scores, list) or not scores:
        return None
    out = [_outcome_fields(x) for x in scores]
    return None if any(f is None for f in out) else out


def _from_filtered(filtered: Any) -> dict[str, Any] | None:
    """The ``score`` filter's output: a JSON object of :func:`score_fields`."""
    first = filtered[0] if isinstance(filtered, list) and filtered else filtered
    if isinstance(first, str) and first.startswith("{"):
        try:
            obj = json.loads(first)
        except json.JSONDecodeError:
            return None
        return _outcome_fields(obj)
    return None


def _from_loglikelihoods(s: Mapping[str, Any], doc: Any) -> dict[str, Any] | None:
    """Log-likelihood (``_mc``) tasks: the prediction is the most likely option letter."""
    lls = s.get("filtered_resps")
    letters = doc.get("letters") if isinstance(doc, Mapping) else None
    if not (isinstance(lls, list) and lls and isinstance(letters, list) and len(letters) == len(lls)):
        return None
    try:
        scores = [float(x[0] if isinstance(x, list) else x) for x in lls]
    except (TypeError, ValueError, IndexError):
        return None
    pred = letters[max(range(len(scores)), key=scores.__getitem__)]
    gold = doc.get("answer_idx")
    if gold is None:
        return None
    return {"pred": pred, "method": LOGLIKELIHOOD,
            "outcome": "correct" if pred == gold else "incorrect"}
