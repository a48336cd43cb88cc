"""The embedded (default) reasoning classifier: held-out agreement and throughput.

    python benchmarks/bench_classifier.py [SHARED_DATA_DIR] [--old REV] [--select]

SHARED_DATA_DIR defaults to $MEDSPLIT_SHARED_DATA or ../shared/data. Prints, for the shipped
model: its cross-validated figures on the training ids (recorded in the artefact); its
agreement with MedXpertQA's expert labels on the held-out `test` ids of the fixed split
(accuracy, balanced accuracy, macro-F1, Cohen's kappa, ROC-AUC, each with a paired bootstrap
95% interval from scipy.stats.bootstrap; 2,000 resamples, seed 0); and the questions/s of the
whole `medsplit classify` command (a fresh process reading a JSONL of every local benchmark
question and writing the labelled JSONL), plus the model's own prediction rate.

--old REV (default 8d4de10, the hand-written stacked model, when the git checkout has it) puts
that model's held-out figures and prediction rate beside the new one's. --select reruns the
hyper-parameter grid by 5-fold CV on the training ids (a few minutes).

Targets (issue 15): held-out accuracy and macro-F1 within 0.01 of the old model's (0.814 /
0.765), >= 1,000 questions/s for the whole classify command. The test ids are only measured
here: nothing was fitted, selected or thresholded on them.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OLD_REV = "8d4de10"


def _old_model(rev: str, tmp: Path):
    """The embedded model of git revision ``rev`` (its module and artefact), or None."""
    files = {}
    for rel in ("lm_eval_medsplit/classifier/embedded.py", "lm_eval_medsplit/classifier/embedded_model.npz"):
        r = subprocess.run(["git", "show", f"{rev}:{rel}"], cwd=REPO, capture_output=True)
        if r.returncode != 0:
            return None
        files[rel] = tmp / f"old_{Path(rel).name}"
        files[rel].write_bytes(r.stdout)
    spec = importlib.util.spec_from_file_location("medsplit_old_embedded", files[
        "lm_eval_medsplit/classifier/embedded.py"])
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod.EmbeddedModel.load(files["lm_eval_medsplit/classifier/embedded_model.npz"])


def _rate(model, texts) -> float:
    model.predict_proba(texts[:50], progress=False)
    t = time.perf_counter()
    model.predict_proba(texts, progress=False)
    return len(texts) / (time.perf_counter() - t)


def _select(texts, labels) -> None:
    import itertools

    from lm_eval_medsplit.classifier.embedded import choose_threshold, out_of_fold
    from lm_eval_medsplit.classifier.metrics import binary_metrics

    print("hyper-parameter grid, 5-fold CV on the training ids (seed 0), threshold chosen per row "
          "on its own out-of-fold probabilities:")
    print(f"{'C':>5} {'class_weight':>12} {'min_df':>6} {'ngrams':>6} {'ROC-AUC':>8} {'accuracy':>8} "
          f"{'macro-F1':>8} {'thr':>5}")
    for C, cw, min_df, ng in itertools.product((1.0, 4.0, 16.0), ("balanced", None), (1, 2), ((1, 2),)):
        oof = out_of_fold(texts, labels, tfidf={"ngram_range": ng, "min_df": min_df}, lr={"C": C, "class_weight": cw})
        t = choose_threshold(labels, oof)
        m = binary_metrics(labels, oof, t)
        print(f"{C:>5g} {cw or 'none':>12} {min_df:>6} {f'{ng[0]}-{ng[1]}':>6} {m['roc_auc']:>8.4f} "
              f"{m['accuracy']:>8.4f} {m['macro_f1']:>8.4f} {t:>5.2f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("shared", nargs="?", default=os.environ.get("MEDSPLIT_SHARED_DATA", REPO.parent / "shared" / "data"))
    ap.add_argument("--old", default=OLD_REV, help="git revision of the model to compare with ('' for none)")
    ap.add_argument("--select", action="store_true", help="rerun the hyper-parameter grid on the train ids")
    args = ap.parse_args()
    shared = Path(args.shared)
    raw = shared / "raw"
    split = shared / "splits" / "medxpertqa_classifier_split.json"

    t0 = time.perf_counter()
    from lm_eval_medsplit.classifier import (
        DEFAULT_EMBEDDED_MODEL,
        classifier_texts,
        get_classifier,
        load_labelled,
    )
    from lm_eval_medsplit.classifier.metrics import binary_metrics, bootstrap_metrics, format_report

    clf = get_classifier("embedded")
    t_load = time.perf_counter() - t0
    ident = clf.identity()
    size = DEFAULT_EMBEDDED_MODEL.stat().st_size
    print(f"model {ident['name']}  sha256 {ident['sha256'][:16]}  {size / 1e6:.2f} MB  "
          f"threshold {ident['threshold']:.2f}  (import + load {t_load:.2f} s)")
    print(f"hyper-parameters: {json.dumps(ident['hyperparameters'])}")
    print(f"threshold criterion: {ident['threshold_criterion']}")
    cv = ident["cv"]["at_threshold"]
    print(f"5-fold CV on {ident['n_train']} train ids: ROC-AUC {cv['roc_auc']:.4f}  accuracy "
          f"{cv['accuracy']:.4f}  macro-F1 {cv['macro_f1']:.4f}  balanced acc "
          f"{cv['balanced_accuracy']:.4f}  kappa {cv['kappa']:.4f}")

    if args.select:
        recs, labels = load_labelled(raw, split=split, part="train")
        _select(classifier_texts(recs), labels)

    records, labels = load_labelled(raw, split=split, part="test")
    overlap = len(set(r.id for r in records) & set(clf.meta["train_ids"]))
    assert overlap == 0, f"{overlap} test ids in the training set"
    test_texts = classifier_texts(records)
    prob = clf.predict_proba(test_texts)
    bootstrap_metrics(labels, prob, clf.threshold, n_boot=0)  # imports scikit-learn's metrics
    t = time.perf_counter()
    res = bootstrap_metrics(labels, prob, clf.threshold, n_boot=2000, seed=0)
    t_boot = time.perf_counter() - t
    print()
    print(format_report(res, f"held-out MedXpertQA test ids ({len(records)}), expert labels"))
    print(f"(bootstrap of {len(res['ci'])} metrics x 2,000 resamples: {t_boot:.2f} s)")

    from lm_eval_medsplit.sources import resolve_source

    src = resolve_source(raw)
    rows = []
    for name in src.benchmarks():
        recs, _ = src.load(name)
        rows.extend({"id": f"{name}/{r.id}", "question": r.question, "options": r.options} for r in recs)
    texts = classifier_texts(rows)
    new_rate = _rate(clf, texts)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        inp = tmp / "questions.jsonl"
        inp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "lm_eval_medsplit", "classify", str(inp), "--out",
                        str(tmp / "labelled.jsonl"), "--no-progress"], check=True, capture_output=True)
        wall = time.perf_counter() - t
        cmd_rate = len(rows) / wall
        old = _old_model(args.old, tmp) if args.old else None
        print()
        pt = res["point"]
        print(f"{'':<34}{'accuracy':>9}{'macro-F1':>9}{'ROC-AUC':>9}{'predict q/s':>13}")
        if old is not None:
            po = old.predict_proba(test_texts)
            mo = binary_metrics(labels, po, old.threshold)
            print(f"{'old (' + args.old + ', stacked)':<34}{mo['accuracy']:>9.4f}{mo['macro_f1']:>9.4f}"
                  f"{mo['roc_auc']:>9.4f}{_rate(old, texts):>13,.0f}")
        print(f"{'new (scikit-learn tfidf + LR)':<34}{pt['accuracy']:>9.4f}{pt['macro_f1']:>9.4f}"
              f"{pt['roc_auc']:>9.4f}{new_rate:>13,.0f}")
    print()
    print(f"`medsplit classify` on {len(rows):,} questions of {len(src.benchmarks())} local benchmarks "
          f"(fresh process: start, imports, load, read, label, write): {wall:.2f} s = {cmd_rate:,.0f} q/s; "
          f"target >= 1,000 q/s: {'MET' if cmd_rate >= 1000 else 'NOT MET'}")
    ok = abs(pt["accuracy"] - 0.814) <= 0.01 or pt["accuracy"] > 0.814
    ok &= abs(pt["macro_f1"] - 0.765) <= 0.01 or pt["macro_f1"] > 0.765
    print(f"held-out accuracy {pt['accuracy']:.4f} and macro-F1 {pt['macro_f1']:.4f} within 0.01 of "
          f"0.814 / 0.765 (or above): {'MET' if ok else 'NOT MET'}")


if __name__ == "__main__":
    main()
