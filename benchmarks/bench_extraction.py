"""Throughput of the answer extractor on real model outputs.

Loads the 1,535 GPT-4o chain-of-thought answers of MMLU-Pro health + biology from the
shared data folder and runs :func:`lm_eval_medsplit.scoring.extract_answer` over them
repeatedly for a few seconds on one core, with fuzzy matching on and off. Also times a
"no answer line" variant (every line containing "answer" removed) that forces the
fallback methods (final line, option text, fuzzy), and prints how often each method fired.

usage: python benchmarks/bench_extraction.py [DATA_DIR] [--seconds S]

DATA_DIR is the shared data folder (default ``$MEDSPLIT_SHARED_DATA`` or ``../shared/data``
next to the repository) or the ``raw/mmlu_health_biology`` folder itself.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lm_eval_medsplit.scoring import METHODS, extract_answer  # noqa: E402

FILES = ("health_result.json", "biology_result.json")


def find_dir(arg: str | None) -> Path:
    base = Path(arg or os.environ.get("MEDSPLIT_SHARED_DATA", REPO.parent / "shared" / "data"))
    for cand in (base, base / "raw" / "mmlu_health_biology", base / "mmlu_health_biology"):
        if all((cand / f).is_file() for f in FILES):
            return cand
    raise SystemExit(f"no {' / '.join(FILES)} under {base}; pass the shared data folder")


def load(folder: Path) -> list[tuple[str, list[str]]]:
    items = []
    for name in FILES:
        with open(folder / name, encoding="utf-8") as f:
            items.extend((r["response"] or "", r["options"]) for r in json.load(f))
    return items


def throughput(items, *, fuzzy: bool, seconds: float) -> tuple[float, float]:
    """(outputs per wall-clock second, outputs per CPU second of this process)."""
    for text, options in items[:200]:  # warm-up (and the lazy rapidfuzz import)
        extract_answer(text, options, fuzzy=fuzzy)
    n = 0
    t0, c0 = time.perf_counter(), time.process_time()
    deadline = t0 + seconds
    while True:
        for text, options in items:
            extract_answer(text, options, fuzzy=fuzzy)
        n += len(items)
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - t0), n / max(time.process_time() - c0, 1e-9)


def method_counts(items, *, fuzzy: bool) -> Counter:
    c = Counter({m: 0 for m in METHODS})
    for text, options in items:
        c[extract_answer(text, options, fuzzy=fuzzy).method] += 1
    return c


def without_answer_lines(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if "answer" not in line.lower())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", nargs="?", help="shared data folder (or the mmlu folder itself)")
    ap.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    args = ap.parse_args(argv)

    if hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        except OSError:
            pass
    folder = find_dir(args.data)
    items = load(folder)
    stripped = [(without_answer_lines(t), o) for t, o in items]
    chars = sum(len(t) for t, _ in items) / len(items)
    print(f"{len(items):,} outputs from {folder} (mean {chars:,.0f} chars); "
          f"Python {platform.python_version()} on {platform.machine()}, one core")
    print()
    print("outputs/s: per wall-clock second, and per CPU second of this process (the")
    print("one-core figure; it differs from wall-clock when other processes share the core)")
    print(f"{'corpus':<22}{'fuzzy':<7}{'wall outputs/s':>16}{'CPU outputs/s':>16}{'us/output':>11}")
    for label, data in (("real outputs", items), ("no 'answer' lines", stripped)):
        for fuzzy in (True, False):
            wall, cpu = throughput(data, fuzzy=fuzzy, seconds=args.seconds)
            print(f"{label:<22}{'on' if fuzzy else 'off':<7}{wall:>16,.0f}{cpu:>16,.0f}"
                  f"{1e6 / cpu:>11.1f}")
    print()
    for label, data in (("real outputs", items), ("no 'answer' lines", stripped)):
        for fuzzy in (True, False):
            c = method_counts(data, fuzzy=fuzzy)
            shown = ", ".join(f"{m} {c[m]:,}" for m in METHODS)
            print(f"methods, {label}, fuzzy {'on' if fuzzy else 'off'}: {shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
