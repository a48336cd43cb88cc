"""How long lm-eval takes to build every medsplit task, and what the automatic
registration adds to a plain `lm_eval` start.

    python benchmarks/bench_lm_eval_tasks.py                 # raw shared data (cached labels)
    python benchmarks/bench_lm_eval_tasks.py --source DIR    # any local source
    python benchmarks/bench_lm_eval_tasks.py --runs 5 --json

1. Task build: in a fresh process per run, ``TaskManager(include_path=<task folder>,
   include_defaults=False, metadata={"source": SRC})`` then ``.load()`` of every generative
   and multiple-choice group of the benchmarks the source has (all their tasks, docs
   materialised, provenance hashed). The source's labelled cache is warmed first and not
   timed. Target: < 3 s.
   Without ``--source``: ``../shared/data/raw`` when the embedded classifier can label it;
   otherwise a hub-layout copy of it (labels from a hash rule, offline traces) written to a
   temporary folder, which is the same kind of already-labelled local source.
2. Start-up: ``python -c "import lm_eval"`` with and without ``lm_eval_medsplit_tasks.pth``
   in a site directory (median of alternating runs); plus the extra indexing a
   ``TaskManager`` with default tasks does for our folder. Target: < 50 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RAW = Path(os.environ.get("MEDSPLIT_SHARED_DATA", REPO.parent / "shared" / "data")) / "raw"

_BUILD = r"""
import json, sys, time
t0 = time.perf_counter()
from lm_eval.tasks import TaskManager
from lm_eval_medsplit.sources import resolve_source
from lm_eval_medsplit.task_yaml import TASK_DIR
t1 = time.perf_counter()
src = sys.argv[1]
groups = [g for b in resolve_source(src).benchmarks()
          for g in (f"medsplit_{b}", f"medsplit_{b}_adversarial", f"medsplit_{b}_mc")]
tm = TaskManager(include_path=TASK_DIR, include_defaults=False, metadata={"source": src})
t2 = time.perf_counter()
loaded = tm.load(groups)
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "index_s": t2 - t1, "load_s": t3 - t2, "build_s": t3 - t1,
                  "tasks": len(loaded["tasks"]), "groups": len(loaded["groups"]),
                  "docs": sum(len(t.eval_docs) for t in loaded["tasks"].values())}))
"""


def _env() -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "LMEVAL_LOG_LEVEL": "ERROR"}
    env.pop("MEDSPLIT_LM_EVAL_AUTOREGISTER", None)
    return env


def _hub_copy(out: Path) -> Path:
    """A labelled hub-layout copy of the raw data (what `medsplit build` writes)."""
    from lm_eval_medsplit.adversarial import add_offline_traces
    from lm_eval_medsplit.registry import get_benchmark
    from lm_eval_medsplit.sources import resolve_source, write_jsonl

    src = resolve_source(RAW)
    for name in src.benchmarks():
        records, _ = src.load(name)
        for r in records:
            p = (int(r.content_hash()[:8], 16) % 1000) / 1000
            r.reasoning_prob, r.is_reasoning, r.reasoning_threshold = p, p >= 0.5, 0.5
        add_offline_traces(records)
        write_jsonl(records, out / get_benchmark(name).config / "test.jsonl")
    (out / "manifest.json").write_text(json.dumps({"revision": "bench"}))
    return out


def pick_source(arg: str | None, tmp: Path) -> tuple[str, str]:
    if arg:
        return arg, "given"
    try:
        from lm_eval_medsplit.dataset import load_eval_records

        load_eval_records("medbullets_op4", RAW)  # needs the embedded classifier
        return str(RAW), "raw (embedded classifier, cached)"
    except Exception as e:  # classifier artefact missing, ...
        print(f"# raw source not labellable here ({type(e).__name__}: {e}); "
              f"using a labelled hub-layout copy", file=sys.stderr)
        return str(_hub_copy(tmp / "hub")), "hub-layout copy of raw (rule labels, offline traces)"


def bench_build(source: str, runs: int) -> dict:
    env = _env()
    warm = subprocess.run([sys.executable, "-c", _BUILD, source], capture_output=True,
                          text=True, env=env)
    if warm.returncode != 0:
        raise SystemExit(warm.stderr[-3000:])
    rows = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", _BUILD, source], capture_output=True,
                             text=True, env=env, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    med = {k: statistics.median(r[k] for r in rows) for k in ("import_s", "index_s", "load_s", "build_s")}
    return {**rows[0], **med, "runs": [round(r["build_s"], 3) for r in rows]}


def bench_startup(runs: int, tmp: Path) -> dict:
    from lm_eval_medsplit._lm_eval_hook import PTH_LINE, PTH_NAME

    with_pth, without = tmp / "site_with", tmp / "site_without"
    with_pth.mkdir()
    without.mkdir()
    (with_pth / PTH_NAME).write_text(PTH_LINE)
    env = _env()

    def once(site_dir: Path, code: str) -> float:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import site; site.addsitedir({str(site_dir)!r}); {code}"],
                       env=env, check=True, capture_output=True)
        return time.perf_counter() - t

    out = {}
    for label, code in (("python", "pass"), ("import_lm_eval", "import lm_eval")):
        a, b = [], []
        for _ in range(runs):
            a.append(once(with_pth, code))
            b.append(once(without, code))
        out[label] = {"with_ms": 1000 * statistics.median(a), "without_ms": 1000 * statistics.median(b),
                      "added_ms": 1000 * (statistics.median(a) - statistics.median(b))}
    # the .pth line itself, timed inside fresh interpreters (what every start pays)
    code = ("import time, sys; t=time.perf_counter(); exec(sys.argv[1]); "
            "print(time.perf_counter()-t)")
    direct = [float(subprocess.run([sys.executable, "-c", code, PTH_LINE], env=env, check=True,
                                   capture_output=True, text=True).stdout.strip())
              for _ in range(runs)]
    out["pth_line_ms"] = {"median": 1000 * statistics.median(direct), "min": 1000 * min(direct)}
    # wrapping TaskManager.__init__ when lm_eval.tasks is imported
    code = ("import time, lm_eval.tasks.manager as m; from lm_eval_medsplit import _lm_eval_hook as h; "
            "t=time.perf_counter(); h.patch(m); print(time.perf_counter()-t)")
    out["patch_ms"] = 1000 * float(subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                                  capture_output=True, text=True).stdout.strip())
    # what a TaskManager with lm-eval's default tasks additionally indexes: our folder
    code = ("import time; from lm_eval.tasks._index import TaskIndex; from pathlib import Path; "
            "from lm_eval_medsplit.task_yaml import TASK_DIR; ts=[]\n"
            "for _ in range(5):\n t=time.perf_counter(); TaskIndex.build([Path(TASK_DIR)]); "
            "ts.append(time.perf_counter()-t)\nprint(sorted(ts)[2])")
    idx = float(subprocess.run([sys.executable, "-c", code], env=env, check=True,
                               capture_output=True, text=True).stdout.strip())
    out["index_our_yamls_ms"] = 1000 * idx
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", help="local source (default: shared raw data, see above)")
    p.add_argument("--runs", type=int, default=3, help="timed runs per measurement (median)")
    p.add_argument("--startup-runs", type=int, default=15)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        source, kind = pick_source(args.source, tmp)
        build = bench_build(source, args.runs)
        startup = bench_startup(args.startup_runs, tmp)
    result = {"source": source, "source_kind": kind, "build": build, "startup": startup,
              "cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0]}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    b = build
    print(f"source: {kind}")
    print(f"build every medsplit task: {b['build_s']:.2f} s median (runs {b['runs']}; target < 3 s) "
          f"= index {b['index_s']:.2f} s + load {b['load_s']:.2f} s; {b['tasks']} tasks, "
          f"{b['groups']} groups, {b['docs']:,} docs; `import lm_eval.tasks` {b['import_s']:.2f} s not counted")
    pl = startup["pth_line_ms"]
    print(f"the .pth line at start-up: {pl['median']:.1f} ms median, {pl['min']:.1f} ms min "
          f"(target < 50 ms); wrapping TaskManager on import of lm_eval.tasks: {startup['patch_ms']:.2f} ms")
    for label in ("python", "import_lm_eval"):
        r = startup[label]
        print(f"start-up A/B `{label}`: {r['without_ms']:.1f} ms -> {r['with_ms']:.1f} ms "
              f"(added {r['added_ms']:+.1f} ms, noisy on a shared machine)")
    print(f"TaskManager with default tasks also indexes our folder: "
          f"{startup['index_our_yamls_ms']:.0f} ms (on top of lm-eval's own ~14k YAMLs)")
    print(f"machine: {result['cpus']} cpus, load average {result['load_avg_1m']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
