"""Exports: CSV / JSON of every number, an lm-eval-style results JSON per model, and a
Hugging Face ``.eval_results`` YAML per model for model cards.

lm-eval-style results (``lm_eval_results/<model>/results_medsplit.json``) use lm-eval's
``"<metric>,<filter>"`` keys with the filter ``none``, sorted keys and these task names:

- ``medsplit_<benchmark>_<subset>`` (subset ``knowledge`` | ``reasoning`` | ``all``):
  ``acc,none``, ``acc_stderr,none`` (``sqrt(p(1-p)/(n-1))`` as lm-eval's ``mean``),
  ``acc_ci_low,none`` / ``acc_ci_high,none`` (bootstrap), ``parse_rate,none``;
- ``medsplit_<benchmark>``: the above for all questions plus ``gap,none`` and its interval;
- ``medsplit_<benchmark>_<subset>_adversarial_<mode>``: accuracy, ``drop,none`` ...;
- groups ``medsplit_knowledge`` / ``medsplit_reasoning`` / ``medsplit``: size-weighted
  ``acc,none`` and macro ``acc_macro,none`` (and the gaps).

Hugging Face (``hf_eval_results/<model>/.eval_results/medsplit_<condition>.yaml``)
follows the Hub's Evaluation Results format (https://huggingface.co/docs/hub/eval-results):
a YAML list of entries with ``dataset.id`` (the hub dataset, required), ``dataset.task_id``,
optional ``dataset.revision`` (only when the run recorded a commit sha), ``value``
(accuracy in percent, required), ``date``, ``source`` and ``notes`` (set only for
non-default variants, here the adversarial conditions, which go to their own file as the
format asks for variants of one benchmark).
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lm_eval_medsplit.registry import HUB_DATASET, find_benchmark
from lm_eval_medsplit.report.analysis import CLEAN, ReportData
from lm_eval_medsplit.report.stats import binomial_stderr

_SHA_RE = re.compile(r"^[0-9a-f]{40}$")


def sanitize(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "__", name).strip("_") or "model"


def model_dirs(models: Iterable[str]) -> dict[str, str]:
    """A folder name per model: :func:`sanitize`, plus a short hash of the name where two
    models would share a folder ("org/My Model" and "org My Model")."""
    import hashlib

    models = sorted(set(models))
    names = {m: sanitize(m) for m in models}
    counts: dict[str, int] = {}
    for n in names.values():
        counts[n] = counts.get(n, 0) + 1
    return {m: n if counts[n] == 1 else f"{n}-{hashlib.sha256(m.encode()).hexdigest()[:8]}"
            for m, n in names.items()}


def _cell(v: Any) -> Any:
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True, ensure_ascii=False)
    return "" if v is None else v


def write_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: _cell(r.get(k)) for k in cols})
    return path


def write_tables(d: ReportData, out_dir: Path) -> list[Path]:
    """``report.json`` (every table) and one CSV per table."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "report.json"]
    paths[0].write_text(json.dumps(d.as_dict(), indent=1, ensure_ascii=False, sort_keys=False),
                        encoding="utf-8")
    for name in d.TABLES:
        rows = getattr(d, name)
        if rows:
            paths.append(write_csv(rows, out_dir / "csv" / f"{name}.csv"))
    return paths


# --------------------------------------------------------------------------- lm-eval style


def lm_eval_results(d: ReportData, model: str, *, reference: dict[str, Any] | None = None) -> dict[str, Any]:
    results: dict[str, dict[str, Any]] = {}
    n_samples: dict[str, dict[str, int]] = {}

    def put(task: str, alias: str, metrics: dict[str, Any], n: int) -> None:
        entry = results.setdefault(task, {"alias": alias})
        for k, v in metrics.items():
            entry[f"{k},none"] = v
        n_samples[task] = {"original": n, "effective": n}

    for r in d.accuracy:
        if r["model"] != model:
            continue
        cond = "" if r["condition"] == CLEAN else f"_adversarial_{r['condition']}"
        sub = "" if (r["subset"] == "all" and not cond) else f"_{r['subset']}"
        task = f"medsplit_{r['benchmark']}{sub}{cond}"
        alias = f"{r['benchmark']} ({r['subset']}{', ' + r['condition'] if cond else ''})"
        put(task, alias, {"acc": r["accuracy"], "acc_stderr": r["stderr"],
                          "acc_ci_low": r["ci_low"], "acc_ci_high": r["ci_high"],
                          "parse_rate": r["parse_rate"]}, r["n"])
    groups: dict[str, dict[str, Any]] = {}
    for r in d.gaps:
        if r["model"] != model:
            continue
        gap = {"gap": r["gap"], "gap_ci_low": r["gap_ci_low"], "gap_ci_high": r["gap_ci_high"]}
        if r["level"] == "benchmark":
            task = f"medsplit_{r['benchmark']}"
            results.setdefault(task, {"alias": r["benchmark"]}).update({f"{k},none": v for k, v in gap.items()})
            continue
        suffix = "_macro" if r["level"] == "macro" else ""
        for s in ("knowledge", "reasoning"):
            g = groups.setdefault(f"medsplit_{s}", {"alias": f"medsplit {s}"})
            g[f"acc{suffix},none"] = r[f"{s}_accuracy"]
            g[f"acc{suffix}_ci_low,none"] = r[f"{s}_ci_low"]
            g[f"acc{suffix}_ci_high,none"] = r[f"{s}_ci_high"]
            if not suffix:
                se = binomial_stderr(r[f"{s}_accuracy"], r[f"{s}_n"])
                g["acc_stderr,none"] = None if se is None else round(se, 6)
        g = groups.setdefault("medsplit", {"alias": "medsplit"})  # gap / gap_macro, like acc / acc_macro
        g.update({f"gap{suffix}{k[len('gap'):]},none": v for k, v in gap.items()})
    for r in d.adversarial:
        if r["model"] != model or r["trace"] != "mean" or r["level"] != "benchmark":
            continue
        task = f"medsplit_{r['benchmark']}_all_adversarial_{r['mode']}"
        results.setdefault(task, {"alias": f"{r['benchmark']} (all, {r['mode']})"}).update({
            "drop,none": r["drop"], "drop_ci_low,none": r["drop_ci_low"],
            "drop_ci_high,none": r["drop_ci_high"], "clean_acc,none": r["clean_accuracy"],
            "correct_to_wrong,none": r["correct_to_wrong"], "wrong_to_correct,none": r["wrong_to_correct"]})
    for r in d.adversarial:
        if r["model"] != model or r["level"] != "weighted" or r["trace"] != "mean":
            continue
        g = groups.setdefault(f"medsplit_adversarial_{r['mode']}", {"alias": f"medsplit adversarial {r['mode']}"})
        g.update({"acc,none": r["accuracy"], "acc_ci_low,none": r["ci_low"], "acc_ci_high,none": r["ci_high"],
                  "drop,none": r["drop"], "drop_ci_low,none": r["drop_ci_low"],
                  "drop_ci_high,none": r["drop_ci_high"]})
    return {
        "results": dict(sorted(results.items())),
        "groups": dict(sorted(groups.items())),
        "n-samples": dict(sorted(n_samples.items())),
        "versions": {t: 1 for t in sorted(results)},
        "model_name": model,
        "config": {"model_name": model},
        "medsplit_report": {"settings": d.settings, "reference": reference or {}},
    }


def write_lm_eval_results(d: ReportData, out_dir: Path, *, reference: dict[str, Any] | None = None) -> list[Path]:
    paths = []
    dirs = model_dirs(d.models)
    for m in d.models:
        doc = lm_eval_results(d, m, reference=reference)
        if not doc["results"]:
            continue
        p = out_dir / dirs[m] / "results_medsplit.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
        paths.append(p)
    return paths


# --------------------------------------------------------------------------- Hugging Face


def hf_eval_results(d: ReportData, model: str, *, reference: dict[str, Any] | None = None,
                    date: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """file name -> list of entries for one model (clean in ``medsplit.yaml``, each
    adversarial mode in ``medsplit_adversarial_<mode>.yaml``)."""
    date = date or _dt.date.today().isoformat()
    files: dict[str, list[dict[str, Any]]] = {}

    def entry(bench: str, task_id: str, value: float, notes: str | None) -> dict[str, Any] | None:
        b = find_benchmark(bench)
        if b is None:
            return None
        ds: dict[str, Any] = {"id": HUB_DATASET, "task_id": f"{b.config}_{task_id}" if task_id else b.config}
        rev = (reference or {}).get(bench, {}).get("revision")
        if isinstance(rev, str) and _SHA_RE.match(rev):
            ds["revision"] = rev
        e = {"dataset": ds, "value": round(100 * value, 2), "date": date,
             "source": {"name": "lm-eval-medsplit report"}}
        if notes:
            e["notes"] = notes
        return e

    for r in d.accuracy:
        if r["model"] != model or r["accuracy"] is None:
            continue
        if r["condition"] == CLEAN:
            e = entry(r["benchmark"], "" if r["subset"] == "all" else r["subset"], r["accuracy"], None)
            fname = "medsplit.yaml"
        else:
            e = entry(r["benchmark"], "" if r["subset"] == "all" else r["subset"], r["accuracy"],
                      f"Adversarial {r['condition']}: incorrect reasoning trace in the prompt")
            fname = f"medsplit_adversarial_{r['condition']}.yaml"
        if e is not None:
            files.setdefault(fname, []).append(e)
    return files


def write_hf_eval_results(d: ReportData, out_dir: Path, *, reference: dict[str, Any] | None = None,
                          date: str | None = None) -> list[Path]:
    import yaml

    paths = []
    dirs = model_dirs(d.models)
    for m in d.models:
        for fname, entries in hf_eval_results(d, m, reference=reference, date=date).items():
            p = out_dir / dirs[m] / ".eval_results" / fname
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(yaml.safe_dump(entries, sort_keys=False, allow_unicode=True), encoding="utf-8")
            paths.append(p)
    return paths
