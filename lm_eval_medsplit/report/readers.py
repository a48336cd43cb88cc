"""Read lm-eval output directories and Inspect logs into :class:`SampleRow` objects.

lm-eval (``lm_eval ... --output_path OUT --log_samples``) writes, per model,
``OUT/<model_sanitized>/results_<date>.json`` and one
``samples_<task>_<date>.jsonl`` per task with the same ``<date>``. Each logged sample's
``doc`` carries :func:`lm_eval_medsplit.samples.sample_metadata` (flat, or nested under a
key) and the scoring core's ``pred`` / ``method`` / ``outcome`` are logged per sample
(top level, or inside the doc); where they are absent the report re-scores the logged
response with :func:`lm_eval_medsplit.scoring.score` (and says so). Run provenance
(source, revision, eval-set content hash) is read from ``configs[task]["metadata"]``.

Inspect (``inspect eval lm_eval_medsplit/...``) writes ``.eval`` logs; each sample's
``metadata`` carries the same contract, its score's metadata the scoring fields, and
the task metadata (``eval.metadata``) the provenance.

Every problem is an :class:`InputError` naming the file (and line); a file or task that
is not a medsplit run is listed in :attr:`ReadResult.skipped` with the reason, never
dropped silently.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lm_eval_medsplit.samples import SampleRow

LM_EVAL = "lm-eval"
INSPECT = "inspect"
_RESULTS_RE = re.compile(r"^results_(?P<date>.+)\.json$")
_OUTCOMES = ("correct", "incorrect", "unparsed")
#: Method of log-likelihood (``_mc``) samples; their model is reported as ``"<model> (loglikelihood)"``.
LOGLIKELIHOOD = "loglikelihood"


class InputError(ValueError):
    """An input that cannot be read (unreadable, partial, not what it claims to be)."""

    def __init__(self, path: str | Path, message: str):
        self.path = str(path)
        self.message = message
        super().__init__(f"{path}: {message}")

    def __reduce__(self):  # raised in reader processes, re-raised here
        return (InputError, (self.path, self.message))


@dataclass
class Run:
    """The scored samples of one input file (an lm-eval results file with its sample
    files, or one Inspect log)."""

    path: str
    harness: str
    model: str
    tasks: list[str]
    rows: list[SampleRow]
    provenance: dict[str, dict[str, Any]] = field(default_factory=dict)
    """benchmark -> run provenance (``content_hash``, ``revision``, ``source``...)."""
    created: str | None = None
    notes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


@dataclass
class ReadResult:
    runs: list[Run] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(path, reason) of inputs that are not medsplit runs."""


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


# --------------------------------------------------------------------------- helpers


def _decode(data: bytes, path: Path, where: str = "") -> str:
    """UTF-8 text of ``data``, or an :class:`InputError` naming the encoding problem."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        hint = (" (it looks like UTF-16: re-save it as UTF-8)"
                if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:64] else "")
        raise InputError(path, f"{where}not UTF-8 text: byte 0x{data[e.start]:02x} at offset "
                               f"{e.start}{hint}") from None


def _loads(text: str, path: Path, where: str = "") -> Any:
    """``json.loads`` with one-line errors for invalid, too deeply nested or too large input."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(path, f"{where}not valid JSON ({e.msg} at line {e.lineno} column {e.colno}); "
                               f"a partial write?") from None
    except RecursionError:
        raise InputError(path, f"{where}JSON nested too deeply") from None
    except ValueError as e:  # integers over sys.get_int_max_str_digits() digits
        raise InputError(path, f"{where}unreadable JSON value ({str(e).splitlines()[0][:120]})") from None


def _text(value: Any, name: str) -> str:
    """``str(value)``, refusing what cannot be written back as UTF-8 (lone surrogates)."""
    s = value if isinstance(value, str) else str(value)
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"field {name!r} holds a lone surrogate (not valid Unicode)") from None
    return s


def _opt_text(value: Any, name: str) -> str | None:
    return None if value is None else _text(value, name)


def _safe_output(text: str | None) -> str | None:
    """Model output kept for the gallery, with lone surrogates replaced."""
    if text is None:
        return None
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def find_metadata(obj: Any, depth: int = 0) -> dict[str, Any] | None:
    """The :func:`sample_metadata` dict inside a logged doc (flat or nested)."""
    if not isinstance(obj, Mapping) or depth > 3:
        return None
    if "record_hash" in obj and "id" in obj and "benchmark" in obj:
        return dict(obj)
    for v in obj.values():
        if isinstance(v, Mapping):
            found = find_metadata(v, depth + 1)
            if found is not None:
                return found
    return None


_PROV_KEYS = ("content_hash", "revision", "source", "source_content_hash", "labels_from",
              "traces_from", "n_records", "package_version")


def find_provenance(obj: Any, default_benchmark: str | None = None,
                    out: dict[str, dict[str, Any]] | None = None, depth: int = 0) -> dict[str, dict[str, Any]]:
    """benchmark -> provenance, from every mapping with a ``content_hash`` found in
    ``obj`` (a ``benchmark`` key, or the nearest enclosing one, names the benchmark).
    ``{"content_hashes": {benchmark: hash}}`` maps are understood too."""
    out = {} if out is None else out
    if depth > 6:
        return out
    if isinstance(obj, list):
        for v in obj:
            find_provenance(v, default_benchmark, out, depth + 1)
        return out
    if not isinstance(obj, Mapping):
        return out
    bench = obj.get("benchmark") if isinstance(obj.get("benchmark"), str) else default_benchmark
    if isinstance(obj.get("content_hash"), str) and bench:
        entry = out.setdefault(bench, {})
        for k in _PROV_KEYS:
            if k in obj:
                entry.setdefault(k, obj[k])
    hashes = obj.get("content_hashes")
    if isinstance(hashes, Mapping):
        for b, h in hashes.items():
            if isinstance(h, str):
                entry = out.setdefault(str(b), {})
                entry.setdefault("content_hash", h)
                for k in ("revision", "source"):
                    if k in obj:
                        entry.setdefault(k, obj[k])
    for v in obj.values():
        if isinstance(v, (Mapping, list)):
            find_provenance(v, bench, out, depth + 1)
    return out


def _outcome_fields(*places: Any) -> dict[str, Any] | None:
    """pred / method / outcome from the first mapping that has an ``outcome``."""
    for p in places:
        if isinstance(p, dict):
            oc = p.get("outcome")
            if isinstance(oc, str) and oc in _OUTCOMES:
                return {"pred": p.get("pred"), "method": p.get("method"), "outcome": oc}
            for v in p.values():
                if type(v) is dict and v.get("outcome") in _OUTCOMES:
                    return {"pred": v.get("pred"), "method": v.get("method"), "outcome": v["outcome"]}
    return None


def _rescore(text: str | None, doc: Mapping[str, Any], target: Any) -> dict[str, Any] | None:
    from lm_eval_medsplit.schema import RowError, coerce_options
    from lm_eval_medsplit.scoring import STYLES, score

    options = doc.get("options")
    gold = doc.get("answer_idx") or (target if isinstance(target, str) else None)
    if options is None or not gold:
        return None
    try:
        opts = coerce_options(options)
    except RowError:
        return None
    gold = str(gold).strip().upper()
    if gold not in opts:
        return None
    style = doc.get("style")
    s = score(text, opts, gold, style=style if style in STYLES else "cot")
    return {"pred": s.pred, "method": s.method, "outcome": s.outcome.value}


def _first_text(x: Any) -> str | None:
    while isinstance(x, list) and x:
        x = x[0]
    return x if isinstance(x, str) else None


def _row(meta: Mapping[str, Any], *, model: str, harness: str, task: str,
         fields: Mapping[str, Any], output: str | None, keep_outputs: str,
         prov: Mapping[str, Any] | None, repeat: int | None = None) -> SampleRow:
    """One :class:`SampleRow`; a ``ValueError`` names the field that is unusable."""
    adv = meta.get("adversarial") or None
    ti = meta.get("trace_index")
    prob = meta.get("reasoning_prob")
    keep = keep_outputs == "all" or (keep_outputs == "unparsed" and fields["outcome"] == "unparsed")
    subset = meta.get("subset")
    if subset is not None and not isinstance(subset, str):
        raise ValueError(f"field 'subset' is {type(subset).__name__}, expected a string")
    try:
        prob = None if prob is None else float(prob)
        ti = None if (ti is None or not adv) else int(ti)
    except (TypeError, ValueError, OverflowError):
        raise ValueError("field 'reasoning_prob' or 'trace_index' is not a number") from None
    return SampleRow(
        model=model, harness=harness, task=task, benchmark=_text(meta["benchmark"], "benchmark"),
        id=_text(meta["id"], "id"), subset=_opt_text(subset, "subset"),
        reasoning_prob=prob,
        record_hash=_opt_text(meta.get("record_hash"), "record_hash"),
        adversarial=_opt_text(adv, "adversarial"),
        trace_index=ti,
        pred=_opt_text(fields.get("pred"), "pred"), method=_opt_text(fields.get("method"), "method"),
        outcome=fields["outcome"],
        output=_safe_output(output) if keep else None,
        content_hash=(prov or {}).get("content_hash") or meta.get("content_hash"),
        revision=(prov or {}).get("revision") or meta.get("revision"),
        repeat=repeat,
    )


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
                prov = task_prov.get(str(meta["benchmark"])) or (next(iter(task_prov.values())) if len(task_prov) == 1 else None)
                ll = many[0].get("method") == LOGLIKELIHOOD
                try:
                    for j, f in enumerate(many):
                        by_filter.setdefault(flt, []).append(
                            _row(meta, model=f"{model} ({LOGLIKELIHOOD})" if ll else model, harness=LM_EVAL, task=task, fields=f,
                                 output=texts[j] if j < len(texts) else None, keep_outputs=keep_outputs,
                                 prov=prov, repeat=j))
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
            prov = task_prov.get(str(meta["benchmark"])) or (next(iter(task_prov.values())) if len(task_prov) == 1 else None)
            try:
                by_filter.setdefault(flt, []).append(
                    _row(meta, model=row_model, harness=LM_EVAL, task=task, fields=fields,
                         output=output, keep_outputs=keep_outputs, prov=prov))
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
                                 repeat=(s.epoch - 1) if epochs > 1 and s.epoch else None))
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
