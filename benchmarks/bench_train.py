"""Training entrypoint figures: reward throughput, decontamination, tiny-model GRPO on CPU.

    python benchmarks/bench_train.py [SHARED_DATA] [--seconds S] [--grpo-steps N] [--json OUT]

1. Reward throughput on one core (the process is pinned to one CPU): the accuracy reward
   (scoring core, fuzzy on) and the format reward over the 1,535 real GPT-4o answers of
   MMLU-Pro health + biology, as conversational completions, in batches of 64 for
   ``--seconds``. Target: >= 10,000 completions/s for the accuracy reward.
2. Decontamination: MedMCQA + MedXpertQA questions (6,633) as the "training set" against
   the five other raw benchmarks (4,424), exact + MinHash/rapidfuzz near duplicates.
3. GRPO on a tiny random Llama (hidden 32, 2 layers; tests/tiny_models.py) on CPU from real
   MedMCQA rows: ``medsplit-train grpo`` for N steps (2 prompts x 2 generations of 16 tokens,
   half the prompts adversarial prefills) in a child process; steps/s from the trainer's own
   ``train_runtime`` and the child's peak RSS (``ru_maxrss``).

SHARED_DATA defaults to ``$MEDSPLIT_SHARED_DATA`` or ``../shared/data`` next to the repository.
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
TARGET_REWARD_PER_S = 10_000


def _shared(arg: str | None) -> Path:
    p = Path(arg or os.environ.get("MEDSPLIT_SHARED_DATA") or REPO.parent / "shared" / "data")
    if not (p / "raw").is_dir():
        sys.exit(f"no raw/ folder under {p}; pass the shared data folder")
    return p


def bench_rewards(shared: Path, seconds: float) -> dict:
    from lm_eval_medsplit.train.rewards import AccuracyReward, FormatReward

    rows = []
    for name in ("health", "biology"):
        rows += json.loads((shared / "raw" / "mmlu_health_biology" / f"{name}_result.json").read_text())
    comps = [[{"role": "assistant", "content": r["response"]}] for r in rows]
    gold = [r["answer"] for r in rows]
    opts = [r["options"] for r in rows]
    batches = [(comps[i:i + 64], gold[i:i + 64], opts[i:i + 64]) for i in range(0, len(rows), 64)]
    out = {"n_outputs": len(rows), "mean_chars": round(sum(len(r["response"]) for r in rows) / len(rows))}
    for name, fn in (("accuracy", AccuracyReward(-0.5)), ("format", FormatReward())):
        fn(*batches[0][:1], answer_idx=batches[0][1], options=batches[0][2])  # warm-up
        n = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            for c, g, o in batches:
                fn(c, answer_idx=g, options=o)
                n += len(c)
        out[f"{name}_per_s"] = round(n / (time.perf_counter() - t0))
    out["accuracy_target_met"] = out["accuracy_per_s"] >= TARGET_REWARD_PER_S
    return out


def bench_decontamination(shared: Path) -> dict:
    from lm_eval_medsplit.train.decontamination import decontaminate, load_eval_sets

    t0 = time.perf_counter()
    sets, _ = load_eval_sets(str(shared / "raw"), "all")
    t_load = time.perf_counter() - t0
    train = sets.pop("medmcqa") + sets.pop("medxpertqa")
    t0 = time.perf_counter()
    kept, report = decontaminate(train, sets)
    dt = time.perf_counter() - t0
    return {"train_rows": len(train), "eval_rows": sum(map(len, sets.values())),
            "load_s": round(t_load, 2), "decontaminate_s": round(dt, 2),
            "rows_per_s": round(len(train) / dt), "removed": report.n_removed,
            "per_benchmark": report.per_benchmark()}


_CHILD = r"""
import json, resource, sys
from lm_eval_medsplit.train.cli import run
trainer = run("grpo", sys.argv[1:])
hist = trainer.state.log_history
summary = next(h for h in hist if "train_runtime" in h)
print("RESULT " + json.dumps({
    "steps": trainer.state.global_step, "train_runtime_s": summary["train_runtime"],
    "steps_per_s": trainer.state.global_step / summary["train_runtime"],
    "losses": [h["loss"] for h in hist if "loss" in h],
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def bench_grpo(shared: Path, steps: int, threads: int = 1) -> dict:
    sys.path.insert(0, str(REPO / "tests"))
    from tiny_models import make_tiny_causal_lm

    from lm_eval_medsplit.sources import resolve_source

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = make_tiny_causal_lm(tmp / "tiny")
        recs = resolve_source(shared / "raw").load("medmcqa")[0][:256]
        d = tmp / "train" / "biomed_r1"
        d.mkdir(parents=True)
        with open(d / "train.jsonl", "w", encoding="utf-8") as f:
            for r in recs:
                p = int(hashlib.sha256(r.id.encode()).hexdigest(), 16) % 1000 / 1000
                f.write(json.dumps({"question": r.question, "options": json.dumps(r.options),
                                    "answer_idx": r.answer_idx, "answer": r.options[r.answer_idx],
                                    "reasoning": "Short synthetic reasoning.", "reasoning_prob": p}) + "\n")
        args = ["--model_name_or_path", str(model), "--dataset_source", str(tmp / "train"),
                "--decontaminate_against", "none", "--adversarial_share", "0.5",
                "--output_dir", str(tmp / "out"), "--use_cpu", "true", "--bf16", "false",
                "--max_steps", str(steps), "--per_device_train_batch_size", "4",
                "--num_generations", "2", "--max_completion_length", "16", "--logging_steps", "1",
                "--report_to", "none", "--save_strategy", "no", "--disable_tqdm", "true"]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false"}
        env["OMP_NUM_THREADS"] = str(threads)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", _CHILD, *args], capture_output=True, text=True,
                              env=env, cwd=tmp)
        wall = time.perf_counter() - t0
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if proc.returncode or line is None:
            sys.exit(f"GRPO child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        out = json.loads(line[len("RESULT "):])
        out["process_wall_s"] = round(wall, 1)
        out["steps_per_s"] = round(out["steps_per_s"], 3)
        out["peak_rss_mb"] = round(out["peak_rss_mb"])
        out["torch_threads"] = env["OMP_NUM_THREADS"]
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("shared", nargs="?")
    ap.add_argument("--seconds", type=float, default=3.0, help="time per reward measurement")
    ap.add_argument("--grpo-steps", type=int, default=6)
    ap.add_argument("--skip-grpo", action="store_true")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (OMP_NUM_THREADS) of the GRPO run (default 1: "
                         "the tiny model is fastest on one thread)")
    ap.add_argument("--json", help="also write the figures to this file")
    a = ap.parse_args()
    shared = _shared(a.shared)
    results: dict = {}
    if hasattr(os, "sched_setaffinity"):
        cpu = sorted(os.sched_getaffinity(0))[0]
        os.sched_setaffinity(0, {cpu})
        results["reward_cpu"] = f"pinned to core {cpu}"
    results["rewards"] = r = bench_rewards(shared, a.seconds)
    print(f"rewards ({r['n_outputs']} GPT-4o answers, {r['mean_chars']} chars on average, one core):")
    print(f"  accuracy  {r['accuracy_per_s']:>9,} completions/s  (target >= {TARGET_REWARD_PER_S:,}: "
          f"{'met' if r['accuracy_target_met'] else 'NOT met'})")
    print(f"  format    {r['format_per_s']:>9,} completions/s")
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    results["decontamination"] = d = bench_decontamination(shared)
    print(f"decontamination: {d['train_rows']:,} training rows vs {d['eval_rows']:,} evaluation "
          f"questions in {d['decontaminate_s']} s ({d['rows_per_s']:,} rows/s; loading {d['load_s']} s); "
          f"removed {d['removed']}: {d['per_benchmark']}")
    if not a.skip_grpo:
        results["grpo_tiny_cpu"] = g = bench_grpo(shared, a.grpo_steps, a.threads)
        print(f"GRPO, tiny Llama on CPU: {g['steps']} steps in {g['train_runtime_s']:.1f} s = "
              f"{g['steps_per_s']} steps/s ({g['torch_threads']} torch thread(s)); peak RSS {g['peak_rss_mb']} MB; "
              f"process {g['process_wall_s']} s; "
              f"losses {[round(x, 4) for x in g['losses']]}")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
