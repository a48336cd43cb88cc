"""The embedded (default) reasoning classifier: held-out agreement and throughput.

    python benchmarks/bench_classifier.py [SHARED_DATA_DIR]

SHARED_DATA_DIR defaults to $MEDSPLIT_SHARED_DATA or ../shared/data. Prints, for the shipped
model, its cross-validated figures on the training ids (recorded in the artefact), its
agreement with MedXpertQA's expert labels on the held-out `test` ids of the fixed split
(accuracy, balanced accuracy, macro-F1, Cohen's kappa, ROC-AUC, each with a bootstrap 95%
interval; 2,000 resamples, seed 0), and its throughput in questions/s on this machine
(every local benchmark question, cold = first pass after loading, warm = second pass).

Targets: held-out accuracy >= 0.85 and macro-F1 >= 0.80; >= 1,000 questions/s.
The test ids are only measured here: nothing was fitted, selected or thresholded on them.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    shared = Path(sys.argv[1] if len(sys.argv) > 1 else
                  os.environ.get("MEDSPLIT_SHARED_DATA", REPO.parent / "shared" / "data"))
    raw = shared / "raw"
    split = shared / "splits" / "medxpertqa_classifier_split.json"

    t0 = time.perf_counter()
    from lm_eval_medsplit.classifier import (
        DEFAULT_EMBEDDED_MODEL,
        classifier_texts,
        get_classifier,
        load_labelled,
    )
    from lm_eval_medsplit.classifier.metrics import bootstrap_metrics, format_report

    clf = get_classifier("embedded")
    t_load = time.perf_counter() - t0
    ident = clf.identity()
    size = DEFAULT_EMBEDDED_MODEL.stat().st_size
    print(f"model {ident['name']}  sha256 {ident['sha256'][:16]}  {size / 1e6:.2f} MB  "
          f"threshold {ident['threshold']:.2f}  (import + load {t_load:.2f} s)")
    print(f"threshold criterion: {ident['threshold_criterion']}")
    cv = ident["cv"]["at_threshold"]
    print(f"5-fold CV on {ident['n_train']} train ids: ROC-AUC {cv['roc_auc']:.4f}  accuracy "
          f"{cv['accuracy']:.4f}  macro-F1 {cv['macro_f1']:.4f}  balanced acc "
          f"{cv['balanced_accuracy']:.4f}  kappa {cv['kappa']:.4f}")

    records, labels = load_labelled(raw, split=split, part="test")
    overlap = len(set(r.id for r in records) & set(clf.meta["train_ids"]))
    assert overlap == 0, f"{overlap} test ids in the training set"
    prob = clf.predict_proba(classifier_texts(records))
    res = bootstrap_metrics(labels, prob, clf.threshold, n_boot=2000, seed=0)
    print()
    print(format_report(res, f"held-out MedXpertQA test ids ({len(records)}), expert labels"))
    pt = res["point"]
    ok = pt["accuracy"] >= 0.85 and pt["macro_f1"] >= 0.80
    print(f"target accuracy >= 0.85 and macro-F1 >= 0.80: {'MET' if ok else 'NOT MET'} "
          f"(accuracy {pt['accuracy']:.4f}, macro-F1 {pt['macro_f1']:.4f})")
    at05 = bootstrap_metrics(labels, prob, 0.5, n_boot=0)["point"]
    print(f"(for reference, at threshold 0.50: accuracy {at05['accuracy']:.4f}, macro-F1 "
          f"{at05['macro_f1']:.4f}, balanced accuracy {at05['balanced_accuracy']:.4f})")

    # throughput on every local benchmark question (fresh model so the word cache is cold)
    from lm_eval_medsplit.classifier.embedded import EmbeddedModel
    from lm_eval_medsplit.sources import resolve_source

    src = resolve_source(raw)
    texts: list[str] = []
    for name in src.benchmarks():
        recs, _ = src.load(name)
        texts.extend(classifier_texts(recs))
    model = EmbeddedModel.load(DEFAULT_EMBEDDED_MODEL)
    t = time.perf_counter()
    model.predict_proba(texts, progress=False)
    cold = len(texts) / (time.perf_counter() - t)
    t = time.perf_counter()
    model.predict_proba(texts, progress=False)
    warm = len(texts) / (time.perf_counter() - t)
    t = time.perf_counter()
    for s in texts[:300]:
        model.predict_proba([s])
    single = 300 / (time.perf_counter() - t)
    print()
    print(f"throughput on {len(texts):,} questions of {len(src.benchmarks())} local benchmarks: "
          f"cold {cold:,.0f} q/s, warm {warm:,.0f} q/s, one-at-a-time {single:,.0f} q/s "
          f"(batches of 512, one process); target >= 1,000 q/s: {'MET' if min(cold, warm) >= 1000 else 'NOT MET'}")


if __name__ == "__main__":
    main()
