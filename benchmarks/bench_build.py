"""`medsplit build` of every local benchmark of a raw directory (7 configs, 11,057
questions), embedded classifier, offline traces.

    python benchmarks/bench_build.py [RAW_DIR] [--repeat N]

Each run is a fresh Python process (the ``medsplit build`` CLI, imports included, as a
user runs it) timed from outside; the child reports its own peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``). The second run writes to another
directory and the two are compared byte for byte. Target: < 60 s and < 1 GB RSS.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 60.0
TARGET_RSS_MB = 1024.0


def _hashes(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.rglob("*")) if p.is_file()}


def _one(raw: Path, out: Path) -> tuple[float, float]:
    """Run one build in a child process; return (wall seconds, peak RSS MB of that child)."""
    code = (
        "import resource, sys\n"
        "from lm_eval_medsplit.cli import main\n"
        "rc = main(sys.argv[1:])\n"
        "print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", code, "build", "--source", str(raw), "--out",
                        str(out), "--no-progress"], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"build failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    kb = next(int(line.split()[1]) for line in p.stderr.splitlines() if line.startswith("MAXRSS_KB"))
    print(p.stdout)
    return wall, kb / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("raw", nargs="?", type=Path, default=REPO.parent / "shared" / "data" / "raw")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        outs = []
        for i in range(max(1, args.repeat)):
            out = Path(tmp) / f"build{i}"
            wall, rss = _one(args.raw, out)
            outs.append(out)
            results.append((wall, rss))
            print(f"run {i + 1}: {wall:.2f} s wall (fresh process, imports included), "
                  f"peak RSS {rss:.0f} MB")
        m = json.loads((outs[0] / "manifest.json").read_text())
        identical = all(_hashes(o) == _hashes(outs[0]) for o in outs[1:])
    n = m["totals"]["records"]
    best = min(w for w, _ in results)
    peak = max(r for _, r in results)
    print(f"{n:,} questions in {m['totals']['configs']} configs; reasoning share "
          f"{100 * m['totals']['reasoning_share']:.1f}% (paper, all 11 on the hub: 32.8%)")
    print(f"best {best:.2f} s ({n / best:,.0f} questions/s), peak RSS {peak:.0f} MB; "
          f"byte-identical re-run: {identical}")
    ok = best < TARGET_S and peak < TARGET_RSS_MB and identical
    print(f"target < {TARGET_S:.0f} s and < {TARGET_RSS_MB:.0f} MB RSS, identical: "
          f"{'OK' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
