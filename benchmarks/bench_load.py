"""Load + validate every local benchmark of a raw directory (about 11k records).

    python benchmarks/bench_load.py [RAW_DIR]

Target: < 5 s for all 7 local configs (8 files sets) on this machine. Prints the figures.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    raw = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared" / "data" / "raw"
    t0 = time.perf_counter()
    from lm_eval_medsplit.sources import resolve_source

    t_import = time.perf_counter() - t0
    src = resolve_source(raw)
    total = 0
    t1 = time.perf_counter()
    for name in src.benchmarks():
        t = time.perf_counter()
        records, rep = src.load(name, strict=True)
        total += len(records)
        print(f"{name:26s} {len(records):6,d} records  {time.perf_counter() - t:6.3f} s  {rep.content_hash[:12]}")
    dt = time.perf_counter() - t1
    print(f"import {t_import:.3f} s; loaded + validated + hashed {total:,} records in {dt:.3f} s "
          f"({total / dt:,.0f} records/s); target < 5 s: {'OK' if dt < 5 else 'MISSED'}")


if __name__ == "__main__":
    main()
