"""Exports: CSV / JSON of every number, an lm-eval results file per model, and Hugging
Face ``.eval_results`` YAML and ``model-index`` blocks per model.

Accepts :class:`ReportData`; guarantees every file lands inside the chosen folder
(names taken from the logs go through :func:`safe_name` and :func:`inside`) and is
written whole or not at all (:mod:`lm_eval_medsplit.fileio`), CSV cells
that a spreadsheet would run as a formula are neutralised, and each export is shaped for
its consumer (tests feed them to ``huggingface_hub`` and ``lm_eval``).

lm-eval results (``lm_eval_results/<model>/results_medsplit.json`` and one
``samples_<task>_medsplit.jsonl`` per task, so ``medsplit report`` reads the folder back
and gives the same numbers). Tasks and groups carry the names the lm-eval tasks have
(see docs/lm_eval.md), with the metric keys a real run writes (``acc,score``,
``parsed,score``; ``acc,none`` for the log-likelihood ``_mc`` tasks) plus
``acc_ci_low`` / ``acc_ci_high`` (the report's interval):

- tasks ``medsplit_<benchmark>_<subset>`` (clean, chain of thought),
  ``..._<subset>_mc`` (log-likelihood), ``..._<subset>_adversarial`` (prefill traces; an
  Inspect-only trace mode ``m`` gets ``..._adversarial_<m>``, a name lm-eval has not);
- groups as lm-eval defines them: ``medsplit_<benchmark>`` (clean accuracy, both subsets),
  ``medsplit_<benchmark>_mc``, ``medsplit_<benchmark>_adversarial``,
  ``medsplit_knowledge`` / ``medsplit_reasoning`` (+ ``_mc`` / ``_adversarial``),
  ``medsplit_mc``, ``medsplit_adversarial``: each the question-weighted mean of its
  tasks, which is what lm-eval's ``weight_by_size`` mean gives for the same samples;
- gaps, drops, repeats (pass@k, maj@k), settings and provenance under ``medsplit_report``.

Hugging Face (``hf_eval_results/<model>/.eval_results/medsplit[_<condition>].yaml``): a
list of entries built with ``huggingface_hub.EvalResultEntry`` and written by
``eval_result_entries_to_yaml``: ``dataset.id`` (the hub dataset), ``dataset.task_id``
``<config>[_<subset>][_mc]``, ``dataset.revision`` only when the run recorded a 40-hex
commit (else the revision goes to ``notes``), ``value`` (percent) and ``notes`` (setting,
subset, trace mode, revision, classifier). No ``source`` (it would need a URL).
``model_index.yaml`` holds the same results as a model card's ``model-index`` block
(``huggingface_hub.ModelCardData`` with ``EvalResult`` entries).
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import json
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lm_eval_medsplit.fileio import atomic_path, write_text
from lm_eval_medsplit.registry import HUB_DATASET, find_benchmark
from lm_eval_medsplit.report import stats
from lm_eval_medsplit.report.analysis import ReportData
from lm_eval_medsplit.report.intervals import _r
from lm_eval_medsplit.report.read_common import LOGLIKELIHOOD, prompt_style_of
from lm_eval_medsplit.report.sample_table import CLEAN

_SHA_RE = re.compile(r"^[0-9a-f]{40}$")
GENERATIVE = "generative"
#: The adversarial mode the lm-eval tasks use: its tasks keep lm-eval's names.
LM_EVAL_MODE = "prefill"
FILTER = {GENERATIVE: "score", LOGLIKELIHOOD: "none"}
RESULTS_NAME = "results_medsplit.json"


def safe_name(name: str, max_len: int = 80) -> str:
    """A file or folder name from untrusted text: only ``[A-Za-z0-9._-]``, no leading
    dot or dash (so never ``.`` / ``..`` or a hidden file), at most ``max_len``
    characters (a hash of the full name keeps long ones distinct)."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "__", str(name)).lstrip("._-").rstrip("._-")
    if len(s) > max_len:
        s = s[:max_len - 9].rstrip("._-") + "-" + hashlib.sha256(str(name).encode("utf-8", "replace")).hexdigest()[:8]
    return s or "model"


def inside(root: Path, path: Path) -> Path:
    """``path`` if it resolves inside ``root``; a ``ValueError`` otherwise."""
    r = root.resolve()
    p = path.resolve()
    if p != r and r not in p.parents:
        raise ValueError(f"refusing to write {path}: outside {root}")
    return path


def model_dirs(models: Iterable[str]) -> dict[str, str]:
    """A folder name per model: :func:`safe_name`, plus a short hash of the name where two
    models would share a folder ("org/My Model" and "org My Model")."""
    models = sorted(set(models))
    names = {m: safe_name(m) for m in models}
    counts: dict[str, int] = {}
    for n in names.values():
        counts[n] = counts.get(n, 0) + 1
    return {m: n if counts[n] == 1 else f"{n}-{hashlib.sha256(m.encode('utf-8', 'replace')).hexdigest()[:8]}"
            for m, n in names.items()}


def split_setting(model: str) -> tuple[str, str]:
    """``("M", "loglikelihood")`` for the ``_mc`` rows' ``"M (loglikelihood)"``, else
    ``(model, "generative")``."""
    suffix = f" ({LOGLIKELIHOOD})"
    if model.endswith(suffix):
        return model[:-len(suffix)], LOGLIKELIHOOD
    return model, GENERATIVE


def base_models(d: ReportData) -> list[str]:
    return list(dict.fromkeys(split_setting(m)[0] for m in d.models))


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(v: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: strings starting with ``= + - @`` (or a tab
    / carriage return) get a leading ``'`` (OWASP's advice); numbers stay numbers."""
    if isinstance(v, str) and v.startswith(_FORMULA_START):
        return "'" + v
    return v


def _cell(v: Any) -> Any:
    if isinstance(v, (dict, list)):
        v = json.dumps(v, sort_keys=True, ensure_ascii=False)
    return "" if v is None else csv_safe(v)


def write_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: _cell(r.get(k)) for k in cols})
    return path


def write_tables(d: ReportData, out_dir: Path) -> list[Path]:
    """``report.json`` (every table) and one CSV per table."""
    paths = [out_dir / "report.json"]
    write_text(paths[0], json.dumps(d.as_dict(), indent=1, ensure_ascii=False, sort_keys=False))
    for name in d.TABLES:
        rows = getattr(d, name)
        if rows:
            paths.append(write_csv(rows, out_dir / "csv" / f"{name}.csv"))
    return paths


# --------------------------------------------------------------------------- lm-eval


def task_name(bench: str, subset: str | None, condition: str, setting: str) -> str:
    """The lm-eval task (``subset`` knowledge / reasoning) or group (``subset`` None /
    ``"all"``) name of a cell."""
    name = f"medsplit_{bench}" + ("" if subset in (None, "all") else f"_{subset}")
    if setting == LOGLIKELIHOOD:
        name += "_mc"
    if condition != CLEAN:
        name += "_adversarial" + ("" if condition == LM_EVAL_MODE else f"_{safe_name(condition)}")
    return name


def _suffix(condition: str, setting: str) -> str:
    return task_name("x", None, condition, setting)[len("medsplit_x"):]


def _pooled(cells: list[dict[str, Any]]) -> dict[str, float | None]:
    """Question-weighted accuracy of accuracy rows (lm-eval's ``weight_by_size`` mean),
    its standard error (independent cells) and the sample-weighted parse rate."""
    q = sum(c["questions"] for c in cells)
    n = sum(c["n"] for c in cells)
    if not q:
        return {"acc": None, "acc_stderr": None, "parsed": None}
    # exact where a cell is a plain proportion (its accuracy field is rounded)
    acc = sum((c["correct"] if c["questions"] == c["n"] else c["accuracy"] * c["questions"])
              for c in cells) / q
    ses = [c["stderr"] for c in cells]
    se = None if any(x is None for x in ses) else math.sqrt(sum((c["questions"] / q) ** 2 * c["stderr"] ** 2
                                                                  for c in cells))
    return {"acc": round(acc, 6), "acc_stderr": None if se is None else round(se, 6),
            "parsed": round(sum(c["parse_rate"] * c["n"] for c in cells) / n, 6) if n else None}


def _metrics(vals: dict[str, Any], flt: str) -> dict[str, Any]:
    """``"<metric>,<filter>"`` keys; a missing standard error is lm-eval's ``"N/A"``,
    other missing values are left out (make_table formats every value it finds)."""
    out = {}
    for k, v in vals.items():
        if v is None:
            if k.endswith("_stderr"):
                out[f"{k},{flt}"] = "N/A"
            continue
        out[f"{k},{flt}"] = v
    return out


def _meta_for(d: ReportData, bench: str, subset: str | None, condition: str, setting: str,
              repeats: int, style: str = "cot") -> dict[str, Any]:
    prov = dict(d.provenance.get(bench) or {})
    return {"benchmark": bench, "subset": subset or "all", "setting": setting,
            "prompt_style": "mc" if setting == LOGLIKELIHOOD else style,
            "adversarial": None if condition == CLEAN else condition,
            "repeats": repeats, "dataset": HUB_DATASET, **prov}


def lm_eval_results(d: ReportData, model: str, *, reference: dict[str, Any] | None = None,
                    rows: list[Any] | None = None) -> dict[str, Any]:
    """The lm-eval results document of ``model`` (both settings)."""
    from lm_eval_medsplit import __version__

    try:
        from importlib.metadata import version

        lm_eval_version = version("lm_eval")
    except Exception:  # lm-eval not installed: the file is still lm-eval-shaped
        lm_eval_version = None
    results: dict[str, dict[str, Any]] = {}
    groups: dict[str, dict[str, Any]] = {}
    subtasks: dict[str, list[str]] = {}
    configs: dict[str, dict[str, Any]] = {}
    hib: dict[str, dict[str, bool]] = {}
    n_samples: dict[str, dict[str, int]] = {}
    group_cells: dict[str, list[dict[str, Any]]] = {}
    repeats = _repeats_per_model(rows, model)
    mine = [r for r in d.accuracy if split_setting(r["model"])[0] == model]
    for r in mine:
        if r["subset"] == "all":
            continue
        setting = split_setting(r["model"])[1]
        flt = FILTER[setting]
        cond = r["condition"]
        task = task_name(r["benchmark"], r["subset"], cond, setting)
        vals = {"acc": r["accuracy"], "acc_stderr": r["stderr"],
                "acc_ci_low": r["ci_low"], "acc_ci_high": r["ci_high"]}
        if setting == GENERATIVE:
            vals.update({"parsed": r["parse_rate"], "parsed_stderr": _r(stats.binomial_stderr(r["parse_rate"], r["n"]))})
        results[task] = {"alias": task, **_metrics(vals, flt)}
        hib[task] = {"acc": True, "parsed": True, "acc_ci_low": True, "acc_ci_high": True}
        n_samples[task] = {"original": r["n"], "effective": r["n"]}
        configs[task] = {
            "task": task, "tag": ["medsplit"], "dataset_path": HUB_DATASET,
            "dataset_kwargs": {"benchmark": r["benchmark"], "subset": r["subset"],
                               "mode": "mc" if setting == LOGLIKELIHOOD else
                               ("cot" if cond == CLEAN else "adversarial")},
            "output_type": "loglikelihood" if setting == LOGLIKELIHOOD else "generate_until",
            "num_fewshot": 0, "repeats": repeats.get(task, 1),
            "filter_list": [{"name": flt}],
            "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}]
            + ([{"metric": "parsed", "aggregation": "mean", "higher_is_better": True}]
               if setting == GENERATIVE else []),
            "metadata": {"version": 1.0, "medsplit": _meta_for(d, r["benchmark"], r["subset"], cond, setting,
                                                               repeats.get(task, 1), prompt_style_of(model))},
        }
        sfx = _suffix(cond, setting)
        for g in (f"medsplit_{r['benchmark']}{sfx}", f"medsplit_{r['subset']}{sfx}"):
            group_cells.setdefault(g, []).append(r)
            subtasks.setdefault(g, []).append(task)
        top = "medsplit" + sfx if sfx else None  # "medsplit" alone is a tag in lm-eval, not a group
        if top:
            group_cells.setdefault(top, []).append(r)
    for g, cells in group_cells.items():
        setting = LOGLIKELIHOOD if "_mc" in g else GENERATIVE
        vals = _pooled(cells)
        flt = FILTER[setting]
        gv = {"acc": vals["acc"], "acc_stderr": vals["acc_stderr"]}
        if setting == GENERATIVE:
            gv["parsed"] = vals["parsed"]
        groups[g] = {"alias": g, **_metrics(gv, flt)}
        hib[g] = {"acc": True, "parsed": True}
    # the top groups hold the per-subset groups, as in the task YAMLs
    for g in list(group_cells):
        for sub in ("knowledge", "reasoning"):
            if g.startswith(f"medsplit_{sub}"):
                top = "medsplit" + g[len(f"medsplit_{sub}"):]
                if top in group_cells:
                    subtasks.setdefault(top, []).append(g)
    subtasks = {g: sorted(set(v)) for g, v in subtasks.items() if g in groups}
    for g in groups:
        subtasks.setdefault(g, [])
    both = {**results, **groups}
    extra = {
        "settings": d.settings, "provenance": d.provenance, "reference": reference or {},
        "package_version": __version__,
        "gaps": [r for r in d.gaps if split_setting(r["model"])[0] == model],
        "adversarial": [r for r in d.adversarial if split_setting(r["model"])[0] == model],
        "repeats": [r for r in d.repeats if split_setting(r["model"])[0] == model],
    }
    return {
        "results": dict(sorted(both.items())),
        "groups": dict(sorted(groups.items())),
        "group_subtasks": dict(sorted(subtasks.items())),
        "configs": dict(sorted(configs.items())),
        "versions": {t: 1.0 for t in sorted(both)},
        "n-shot": {t: 0 for t in sorted(both)},
        "higher_is_better": dict(sorted(hib.items())),
        "n-samples": dict(sorted(n_samples.items())),
        "config": {"model": "medsplit-report", "model_args": None, "model_name": model},
        "model_name": model,
        "model_name_sanitized": safe_name(model),
        "lm_eval_version": lm_eval_version,
        "medsplit_report": extra,
    }


def _repeats_per_model(rows: list[Any] | None, model: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows or ():
        base, setting = split_setting(r.model)
        if base == model and r.subset in ("knowledge", "reasoning"):
            t = task_name(r.benchmark, r.subset, r.adversarial or CLEAN, setting)
            out[t] = max(out.get(t, 1), (r.repeat or 0) + 1)
    return out


def _sample_lines(rows: list[Any], model: str) -> dict[str, list[str]]:
    """task -> JSONL lines, one per document (a question, or a question and trace), with
    the sample metadata and the scoring fields of each repeat in the doc."""
    docs: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        base, setting = split_setting(r.model)
        if base != model or r.subset not in ("knowledge", "reasoning"):
            continue
        task = task_name(r.benchmark, r.subset, r.adversarial or CLEAN, setting)
        key = (task, r.benchmark, r.id, r.adversarial, r.trace_index)
        e = docs.get(key)
        if e is None:
            e = docs[key] = {"task": task, "filter": FILTER[setting], "reps": [], "doc": {
                "id": r.id, "benchmark": r.benchmark, "record_hash": r.record_hash, "subset": r.subset,
                "reasoning_prob": r.reasoning_prob, "adversarial": r.adversarial,
                "trace_index": r.trace_index, "content_hash": r.content_hash, "revision": r.revision}}
        e["reps"].append(r)
    out: dict[str, list[str]] = {}
    for i, e in enumerate(docs.values()):
        reps = sorted(e["reps"], key=lambda r: r.repeat or 0)
        doc = dict(e["doc"], medsplit_scores=[{"pred": r.pred, "method": r.method, "outcome": r.outcome}
                                              for r in reps])
        line = {"doc_id": i, "doc": doc, "filter": e["filter"],
                "resps": [[r.output or "" for r in reps]],
                "filtered_resps": [r.pred or "[invalid]" for r in reps],
                "acc": sum(r.outcome == "correct" for r in reps) / len(reps)}
        out.setdefault(e["task"], []).append(json.dumps(line, ensure_ascii=False, sort_keys=True))
    return out


def write_lm_eval_results(d: ReportData, out_dir: Path, *, reference: dict[str, Any] | None = None,
                          rows: list[Any] | None = None) -> list[Path]:
    """One folder per model under ``out_dir``: ``results_medsplit.json`` and, given the
    report's ``rows``, a ``samples_<task>_medsplit.jsonl`` per task (what makes the folder
    readable by ``medsplit report`` again)."""
    paths = []
    models = base_models(d)
    dirs = model_dirs(models)
    by_model: dict[str, list[Any]] = {}  # one pass over the rows, not one per model
    for r in rows or ():
        by_model.setdefault(split_setting(r.model)[0], []).append(r)
    for m in models:
        mine = None if rows is None else by_model.get(m, [])
        doc = lm_eval_results(d, m, reference=reference, rows=mine)
        if not doc["results"]:
            continue
        folder = inside(out_dir, out_dir / dirs[m])
        if mine is not None:
            lines = _sample_lines(mine, m)
            for task, ls in sorted(lines.items()):
                doc["n-samples"][task] = {"original": len(ls), "effective": len(ls)}
                sp = inside(out_dir, folder / f"samples_{task}_medsplit.jsonl")
                write_text(sp, "\n".join(ls) + "\n")
                paths.append(sp)
        p = inside(out_dir, folder / RESULTS_NAME)
        write_text(p, json.dumps(doc, indent=2, sort_keys=False, ensure_ascii=False) + "\n")
        paths.append(p)
    return paths


# --------------------------------------------------------------------------- Hugging Face


def _notes(d: ReportData, bench: str, subset: str, condition: str, setting: str,
           revision: str | None, style: str = "cot") -> str:
    prov = d.provenance.get(bench) or {}
    parts = [f"setting: {'log-likelihood over the option letters' if setting == LOGLIKELIHOOD else 'generative chain of thought'}",
             *([f"prompt style: {style}"] if setting != LOGLIKELIHOOD else []),
             f"subset: {subset}",
             f"adversarial trace mode: {condition}" if condition != CLEAN else "clean (no adversarial trace)"]
    if revision and not _SHA_RE.match(str(revision)):
        parts.append(f"dataset revision: {revision}")
    if prov.get("content_hash"):
        parts.append(f"eval-set content hash: {prov['content_hash']}")
    if prov.get("labels_from"):
        lf = prov["labels_from"]
        parts.append("classifier: " + (json.dumps(lf, sort_keys=True) if not isinstance(lf, str) else lf))
    parts.append("lm-eval-medsplit report")
    return "; ".join(parts)


def hf_eval_results(d: ReportData, model: str, *, reference: dict[str, Any] | None = None,
                    date: str | None = None) -> dict[str, list[Any]]:
    """file name -> ``huggingface_hub.EvalResultEntry`` list for one model: clean results
    (both settings) in ``medsplit.yaml``, each adversarial mode in
    ``medsplit_adversarial_<mode>.yaml``."""
    from huggingface_hub import EvalResultEntry

    date = date or _dt.date.today().isoformat()
    files: dict[str, list[Any]] = {}
    for r in d.accuracy:
        base, setting = split_setting(r["model"])
        if base != model or r["accuracy"] is None:
            continue
        b = find_benchmark(r["benchmark"])
        if b is None:
            continue
        task_id = b.config + ("" if r["subset"] == "all" else f"_{r['subset']}") + \
            ("_mc" if setting == LOGLIKELIHOOD else "")
        rev = (reference or {}).get(r["benchmark"], {}).get("revision") or \
            (d.provenance.get(r["benchmark"]) or {}).get("revision")
        cond = r["condition"]
        e = EvalResultEntry(dataset_id=HUB_DATASET, task_id=task_id, value=round(100 * r["accuracy"], 2),
                            dataset_revision=rev if isinstance(rev, str) and _SHA_RE.match(rev) else None,
                            date=date, notes=_notes(d, r["benchmark"], r["subset"], cond, setting, rev,
                                         prompt_style_of(model)))
        fname = "medsplit.yaml" if cond == CLEAN else f"medsplit_adversarial_{safe_name(cond)}.yaml"
        files.setdefault(fname, []).append(e)
    return files


def model_index(d: ReportData, model: str, *, reference: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``model-index`` block of a model card (``ModelCardData(...).to_dict()``)."""
    from huggingface_hub import EvalResult, ModelCardData

    results = []
    for fname, entries in hf_eval_results(d, model, reference=reference, date="1970-01-01").items():
        for e in entries:
            results.append(EvalResult(
                task_type="multiple-choice", task_name=f"medsplit {e.task_id}"
                + ("" if fname == "medsplit.yaml" else f" ({fname[len('medsplit_'):-len('.yaml')]})"),
                dataset_type=HUB_DATASET, dataset_name=f"medsplit {e.task_id}", dataset_config=e.task_id,
                dataset_split="test", dataset_revision=e.dataset_revision,
                metric_type="accuracy", metric_value=e.value, metric_name="accuracy (%)",
                metric_config=e.notes))
    card = ModelCardData(model_name=model, eval_results=results)
    return {"model-index": card.to_dict()["model-index"]}


def write_hf_eval_results(d: ReportData, out_dir: Path, *, reference: dict[str, Any] | None = None,
                          date: str | None = None) -> list[Path]:
    import yaml
    from huggingface_hub import eval_result_entries_to_yaml

    paths = []
    models = base_models(d)
    dirs = model_dirs(models)
    for m in models:
        files = hf_eval_results(d, m, reference=reference, date=date)
        for fname, entries in files.items():
            p = inside(out_dir, out_dir / dirs[m] / ".eval_results" / fname)
            write_text(p, yaml.safe_dump(eval_result_entries_to_yaml(entries), sort_keys=False, allow_unicode=True))
            paths.append(p)
        if files:
            p = inside(out_dir, out_dir / dirs[m] / "model_index.yaml")
            write_text(p, yaml.safe_dump(model_index(d, m, reference=reference), sort_keys=False,
                                         allow_unicode=True))
            paths.append(p)
    return paths
