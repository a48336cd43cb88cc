"""Accuracy and speed of the answer extractor on real model outputs, per model.

Reads the 1,535 GPT-4o chain-of-thought answers of MMLU-Pro health + biology
(``raw/mmlu_health_biology``) and the 19,955 answers of 13 more models to the same questions
(``extraction/mmlupro_dev_models.jsonl.gz``) from the shared data folder, and the hand labels
in ``tests/data/extraction_labels.jsonl`` (one line per answer a person read: the letter the
answer states, or null where it states no single answer, with the reason). Prints, per model:

- agreement with the official MMLU-Pro letter where a reader agrees that letter is the
  answer's single answer. Every disagreement must be labelled: a label equal to the official
  letter counts against the extractor, any other label removes the case from the
  denominator (the official reading was wrong); an official letter outside the record's
  options is removed without a label; an unlabelled disagreement counts against the
  extractor and is listed;
- on the hand-labelled official failures (the official regexes found nothing): how often
  the extractor is right (same letter, or unparsed where none is stated), how often it
  invents a letter where none is stated, and the official last-capital-letter fallback's
  rate on the same answers;
- then throughput on one core over all real answers and the worst time per output on
  inputs of up to 100 KB (pathological repetitions and real answers tiled to 100 KB), and
  on a record of 26 options of 100 KB each.

usage: python benchmarks/bench_extraction.py [DATA_DIR] [--seconds S] [--labels FILE]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lm_eval_medsplit.scoring import METHODS, extract_answer  # noqa: E402

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
MMLU_FILES = ("health_result.json", "biology_result.json")
MODELS_FILE = Path("extraction") / "mmlupro_dev_models.jsonl.gz"
LABELS = REPO / "tests" / "data" / "extraction_labels.jsonl"


def load(base: Path) -> list[dict]:
    """Every answer as ``{id, model, output, options, gold, official, l3}``."""
    rows = []
    mmlu = base / "raw" / "mmlu_health_biology"
    for name in MMLU_FILES:
        with open(mmlu / name, encoding="utf-8") as f:
            for r in json.load(f):
                rows.append(dict(id=f"gpt-4o/{r['category']}/{r['question_id']}", model="gpt-4o",
                                 output=r["response"] or "",
                                 options=dict(zip(LETTERS, r["options"])), gold=r["answer"],
                                 official=r["pred"], l3=None))
    with gzip.open(base / MODELS_FILE, "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            rows.append(dict(id=r["id"], model=r["model"], output=r["output"] or "",
                             options=r["options"], gold=r["answer_idx"],
                             official=r["official_pred"], l3=r["official_l3"]))
    return rows


def load_labels(path: Path) -> dict[str, dict]:
    with open(path, encoding="utf-8") as f:
        return {row["id"]: row for row in map(json.loads, f)}


def pct(a: int, b: int) -> str:
    return f"{a / b:.4f}" if b else "  n/a "


def accuracy_table(rows: list[dict], labels: dict[str, dict]) -> bool:
    per: dict[str, Counter] = defaultdict(Counter)
    unlabelled: list[str] = []
    methods: dict[str, Counter] = defaultdict(Counter)
    for r in rows:
        ex = extract_answer(r["output"], r["options"])
        c = per[r["model"]]
        methods[r["model"]][ex.method] += 1
        c["n"] += 1
        c["parsed"] += ex.letter is not None
        c["correct"] += ex.letter == r["gold"]
        lab = labels.get(r["id"])
        if r["official"] is not None:
            c["official"] += 1
            if r["official"] not in r["options"]:
                c["excluded"] += 1  # the official letter is not an option of this record
            elif lab is not None and lab["label"] != r["official"]:
                c["excluded"] += 1  # a reader says the official letter is not the answer
            elif ex.letter == r["official"]:
                c["agree"] += 1
            elif lab is None:
                unlabelled.append(r["id"])
        else:
            c["failures"] += 1
            if lab is not None:
                c["labelled"] += 1
                c["right"] += ex.letter == lab["label"]
                c["l3_right"] += r["l3"] == lab["label"]
                if lab["label"] is None:
                    c["none_stated"] += 1
                    c["invented"] += ex.letter is not None
    ok = True
    print("Agreement with the official letter where a reader agrees it is the answer, and the")
    print("hand-labelled official failures (right = same letter, or unparsed where none is stated)")
    print(f"{'model':<28}{'n':>6}{'parsed':>8}{'acc':>7}{'judged':>8}{'agree':>8}"
          f"{'fails':>7}{'lab':>5}{'right':>7}{'l3':>7}{'invent':>9}")
    tot: Counter = Counter()
    for model in sorted(per, key=str.lower):
        c = per[model]
        tot.update(c)
        judged = c["official"] - c["excluded"]
        agree = c["agree"] / judged if judged else 1.0
        right = c["right"] / c["labelled"] if c["labelled"] else 1.0
        ok &= agree >= 0.995 and right >= 0.90
        print(f"{model:<28}{c['n']:>6}{c['parsed'] / c['n']:>8.3f}{c['correct'] / c['n']:>7.3f}"
              f"{judged:>8}{agree:>8.4f}{c['failures']:>7}{c['labelled']:>5}"
              f"{pct(c['right'], c['labelled']):>7}{pct(c['l3_right'], c['labelled']):>7}"
              f"{c['invented']:>4}/{c['none_stated']:<4}")
    judged = tot["official"] - tot["excluded"]
    invented = tot["invented"] / tot["none_stated"] if tot["none_stated"] else 0.0
    ok &= invented <= 0.03
    print(f"{'all':<28}{tot['n']:>6}{tot['parsed'] / tot['n']:>8.3f}{tot['correct'] / tot['n']:>7.3f}"
          f"{judged:>8}{tot['agree'] / judged:>8.4f}{tot['failures']:>7}{tot['labelled']:>5}"
          f"{pct(tot['right'], tot['labelled']):>7}{pct(tot['l3_right'], tot['labelled']):>7}"
          f"{tot['invented']:>4}/{tot['none_stated']:<4}")
    print(f"invented letters where none is stated: {invented:.1%} of {tot['none_stated']} "
          "labelled answers")
    if unlabelled:
        ok = False
        print(f"{len(unlabelled)} disagreements have no label (counted against the extractor): "
              + ", ".join(unlabelled[:20]) + (" ..." if len(unlabelled) > 20 else ""))
    print()
    print("methods per model:")
    for model in sorted(methods, key=str.lower):
        print(f"  {model:<28}" + ", ".join(f"{m} {methods[model][m]}" for m in METHODS
                                            if methods[model][m]))
    return ok


def throughput(items, seconds: float) -> tuple[float, float]:
    """(outputs per wall-clock second, outputs per CPU second of this process)."""
    for text, options in items[:500]:  # warm-up (and the lazy rapidfuzz import)
        extract_answer(text, options)
    n = 0
    t0, c0 = time.perf_counter(), time.process_time()
    while True:
        for text, options in items:
            extract_answer(text, options)
        n += len(items)
        now = time.perf_counter()
        if now - t0 >= seconds:
            return n / (now - t0), n / max(time.process_time() - c0, 1e-9)


def worst_time(text: str, options, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):  # the least disturbed of a few runs
        t0 = time.process_time()
        extract_answer(text, options)
        best = min(best, time.process_time() - t0)
    return best


def tile(s: str, size: int) -> str:
    return (s * (size // max(len(s), 1) + 1))[:size]


def speed(rows: list[dict], seconds: float) -> bool:
    items = [(r["output"], r["options"]) for r in rows]
    chars = sum(len(t) for t, _ in items) / len(items)
    wall, cpu = throughput(items, seconds)
    print(f"throughput on {len(items):,} real answers (mean {chars:,.0f} chars), one core: "
          f"{cpu:,.0f} outputs per CPU second ({wall:,.0f} per wall-clock second)")
    size = 100_000
    opts10 = {k: f"option text {k} here" for k in LETTERS[:10]}
    patho = ["answer is ", "answer", "(", "A ", "is the correct ", "\\boxed{", "<answer>",
             "</think>", "the best option is ", "\\text{", "$", "#\n", "option text A here. ",
             "The answer is (B).\n", "\nQuestion: ", "Final Answer: ", "The answer is (A) and (B). ",
             "Therefore, the most likely cause is (C). ", "A. x\nB. y\n", "not ", "1/16 + "]
    worst = (0.0, "")
    for p in patho:
        t = worst_time(tile(p, size), opts10)
        worst = max(worst, (t, f"{p!r} x {size // len(p):,}"))
    longest = sorted(rows, key=lambda r: len(r["output"]), reverse=True)[:30]
    for r in longest + rows[:: max(1, len(rows) // 60)]:
        t = worst_time(tile(r["output"] + "\n", size), r["options"], repeat=1)
        worst = max(worst, (t, f"{r['id']} tiled to 100 KB"))
    print(f"worst time for an output of 100 KB: {worst[0] * 1000:.1f} ms ({worst[1]})")
    big = {k: tile(f"option {k} text ", size) for k in LETTERS}
    t26 = max(worst_time(tile(p, size), big, repeat=1)
              for p in ("The answer is Z.", "option A text ", "The answer is (Q) and (R). ", "x"))
    print(f"26 options of 100 KB each, 100 KB output: {t26 * 1000:.1f} ms")
    return cpu >= 20_000 and worst[0] <= 0.050 and t26 <= 0.100


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", nargs="?", help="shared data folder (default $MEDSPLIT_SHARED_DATA "
                                            "or ../shared/data next to the repository)")
    ap.add_argument("--seconds", type=float, default=5.0, help="time for the throughput run")
    ap.add_argument("--labels", type=Path, default=LABELS, help="hand labels (JSONL)")
    args = ap.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        except OSError:
            pass
    base = Path(args.data or os.environ.get("MEDSPLIT_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not (base / MODELS_FILE).is_file():
        raise SystemExit(f"{base / MODELS_FILE}: not found; pass the shared data folder")
    rows = load(base)
    labels = load_labels(args.labels)
    print(f"{len(rows):,} answers of {len({r['model'] for r in rows})} models from {base}; "
          f"{len(labels)} hand labels from {args.labels}; Python {platform.python_version()}")
    print()
    ok = accuracy_table(rows, labels)
    print()
    ok &= speed(rows, args.seconds)
    print()
    print("all targets met" if ok else "some target NOT met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
