"""Benchmark: `medsplit report` over synthesised runs of 5 models x 11 benchmarks x
clean + adversarial, bootstrap included. Target: < 30 s and < 2 GB peak RSS.

The runs are written to disk in the adapters' formats -- four models as lm-eval output
directories (``results_<date>.json`` + ``samples_<task>_<date>.jsonl`` with the docs,
prompts, responses and ``score`` filter output the lm-eval tasks log) and one model as
Inspect ``.eval`` logs (sample metadata + scorer metadata as the Inspect tasks log) -- then
the whole report is timed in a fresh process: reading, joining, every number (2000
bootstrap replicates), terminal tables, Markdown, CSV/JSON, PNG plots, HTML, lm-eval-style
and Hugging Face exports. Peak RSS is ``resource.getrusage(RUSAGE_SELF).ru_maxrss``.

    python benchmarks/bench_report.py                 # ~180k samples (clean + 2 traces)
    python benchmarks/bench_report.py --traces 3      # ~240k samples
    python benchmarks/bench_report.py --keep DIR      # keep the synthesised runs in DIR
    python benchmarks/bench_report.py --inspect-models 5   # every model an Inspect run
    python benchmarks/bench_report.py --inspect-read LOG.eval   # summaries: public API vs zipfile
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Benchmark sizes: the local copies' record counts (shared/data README) and plausible
#: sizes for the four hub-only configs.
SIZES = {"medqa": 1273, "medmcqa": 4183, "pubmedqa": 1000, "medbullets_op4": 308,
         "medbullets_op5": 308, "medxpertqa": 2450, "mmlu_pro_health_biology": 1535,
         "gpqa_medical": 390, "hle_biomed": 147, "lancet": 120, "nejm": 180}
MODELS = (("org/model-a", 0.78), ("org/model-b", 0.70), ("org/model-c", 0.62),
          ("org/model-d", 0.55), ("vllm/org/model-e", 0.66))
WORDS = ("patient presents with fever cough dyspnea history of hypertension diabetes examination "
         "reveals tachycardia laboratory studies show elevated creatinine which of the following "
         "is the most likely diagnosis next best step in management mechanism of action").split()


def _text(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n_words))


def make_records(seed: int = 0):
    """Synthetic records with the real benchmarks' sizes and option counts."""
    from lm_eval_medsplit.adversarial import add_offline_traces
    from lm_eval_medsplit.registry import get_benchmark
    from lm_eval_medsplit.schema import LETTERS, MCQRecord, dataset_hash

    rng = random.Random(seed)
    out = {}
    for name, n in SIZES.items():
        b = get_benchmark(name)
        recs = []
        for i in range(n):
            k = b.n_options or rng.randint(4, b.max_options)
            opts = {LETTERS[j]: _text(rng, rng.randint(2, 6)) for j in range(k)}
            p = round(rng.random(), 4)
            recs.append(MCQRecord(id=f"{name}-{i}", benchmark=name, question=_text(rng, rng.randint(60, 160)),
                                  options=opts, answer_idx=rng.choice(list(opts)), reasoning_prob=p,
                                  is_reasoning=p >= 0.5, reasoning_threshold=0.5))
        add_offline_traces(recs)
        out[name] = (recs, dataset_hash(recs))
    return out


def _answer(rng: random.Random, rec, skill: float, adversarial: bool, wrong: str | None):
    p = skill - (0.12 if rec.is_reasoning else 0.0) - (0.18 if adversarial and rec.is_reasoning else
                                                        0.08 if adversarial else 0.0)
    u = rng.random()
    if u < 0.04:
        return None, "I am not sure which option fits best; several could apply here."
    if u < 0.04 + p:
        letter = rec.answer_idx
    else:
        letter = wrong or next(x for x in rec.options if x != rec.answer_idx)
    body = " ".join(_text(rng, 12) + "." for _ in range(8))
    return letter, f"Let me think step by step. {body}\nAnswer: {letter}"


def _fields(letter: str | None, gold: str) -> dict:
    """The scoring fields the adapters log (what ``score_fields(score(text, ...))`` gives
    for these synthetic texts, without running the extractor 180k times)."""
    outcome = "unparsed" if letter is None else "correct" if letter == gold else "incorrect"
    return {"pred": letter, "method": "none" if letter is None else "answer_phrase", "outcome": outcome,
            "correct": outcome == "correct", "parsed": letter is not None}


def write_lm_eval(out: Path, model: str, skill: float, data, traces: int, seed: int) -> None:
    from lm_eval_medsplit.adversarial import wrong_letter
    from lm_eval_medsplit.lm_eval_tasks import record_doc
    from lm_eval_medsplit.prompts import build_prompt

    rng = random.Random(f"{seed}-{model}")
    date = dt.datetime(2025, 1, 1).isoformat().replace(":", "-")
    d = out / model.replace("/", "__")
    d.mkdir(parents=True, exist_ok=True)
    configs, results, n_samples = {}, {}, {}
    for name, (recs, chash) in data.items():
        for subset in ("reasoning", "knowledge"):
            sub = [r for r in recs if r.subset == subset]
            for mode in ("", "_adversarial"):
                task = f"medsplit_{name}_{subset}{mode}"
                lines = []
                for r in sub:
                    ks = range(traces) if mode else [None]
                    prompt = build_prompt(r, "cot").user_text
                    for k in ks:
                        adv = "prefill" if mode else None
                        doc = record_doc(r, adversarial=adv, trace_index=k)
                        wrong = wrong_letter(r, k) if (mode and rng.random() < 0.5) else None
                        letter, text = _answer(rng, r, skill, bool(mode), wrong)
                        f = _fields(letter, r.answer_idx)
                        lines.append(json.dumps({
                            "doc_id": len(lines), "doc": doc, "target": r.answer_idx,
                            "arguments": {"gen_args_0": {"arg_0": prompt, "arg_1": {"max_gen_toks": 4096}}},
                            "resps": [[text]], "filtered_resps": [json.dumps(f, sort_keys=True)],
                            "filter": "score", "metrics": ["acc", "parsed"],
                            "doc_hash": hashlib.sha256(r.id.encode()).hexdigest(),
                            "prompt_hash": hashlib.sha256(prompt.encode()).hexdigest(),
                            "target_hash": hashlib.sha256(r.answer_idx.encode()).hexdigest(),
                            "acc": float(f["correct"]), "parsed": float(f["parsed"])}, ensure_ascii=False))
                (d / f"samples_{task}_{date}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
                configs[task] = {"task": task, "metadata": {"version": 1.0, "medsplit": {
                    "benchmark": name, "content_hash": chash, "revision": "bench-rev",
                    "source": {"kind": "hub", "location": "zou-lab/BioMed-R1-Eval", "revision": "bench-rev"}}}}
                results[task] = {"alias": task}
                n_samples[task] = {"original": len(lines), "effective": len(lines)}
    (d / f"results_{date}.json").write_text(json.dumps({
        "results": results, "configs": configs, "n-samples": n_samples, "model_name": model,
        "config": {"model": "hf", "model_args": f"pretrained={model}"}}, indent=1), encoding="utf-8")


def write_inspect(out: Path, model: str, skill: float, data, traces: int, seed: int) -> None:
    """One Inspect log per benchmark and condition (clean, trace 0, trace 1, ...), as
    ``inspect eval ... -T benchmarks=<b> -T trace=<k>`` writes them. (One log of ~40k
    samples would be as valid, but ``write_eval_log`` slows down quadratically with the
    number of samples in one log, which would make this set-up take ~20 minutes.)"""
    from inspect_ai.log import EvalConfig, EvalDataset, EvalLog, EvalSample, EvalSpec, write_eval_log
    from inspect_ai.model import ModelOutput
    from inspect_ai.scorer import Score

    from lm_eval_medsplit.adversarial import wrong_letter
    from lm_eval_medsplit.samples import sample_metadata

    rng = random.Random(f"{seed}-{model}")
    out.mkdir(parents=True, exist_ok=True)
    for name, (recs, chash) in data.items():
        for k in [None, *range(traces)]:
            adv = None if k is None else "reconsider"
            samples = []
            for r in recs:
                wrong = wrong_letter(r, k) if (adv and rng.random() < 0.5) else None
                letter, text = _answer(rng, r, skill, adv is not None, wrong)
                f = _fields(letter, r.answer_idx)
                meta = sample_metadata(r, adversarial=adv, trace_index=k)
                meta.update(content_hash=chash, revision="bench-rev", options=dict(r.options), style="cot")
                samples.append(EvalSample(
                    id=f"{name}/{r.id}" + ("" if k is None else f"#t{k}"), epoch=1,
                    input=r.question, target=r.answer_idx, metadata=meta,
                    scores={"medsplit_scorer": Score(value="C" if f["correct"] else "I", answer=letter,
                                                     metadata=f)},
                    output=ModelOutput.from_content(model=model, content=text)))
            task = "lm_eval_medsplit/medsplit" if adv is None else "lm_eval_medsplit/medsplit_adversarial"
            spec = EvalSpec(created=dt.datetime(2025, 1, 1).isoformat(), task=task,
                            dataset=EvalDataset(name=f"medsplit_{name}", samples=len(samples),
                                                sample_ids=[s.id for s in samples]),
                            model=model, config=EvalConfig(),
                            metadata={"content_hashes": {name: chash}, "revision": "bench-rev",
                                      "adversarial_mode": adv, "trace": k})
            cond = "clean" if k is None else f"t{k}"
            write_eval_log(EvalLog(eval=spec, status="success", samples=samples),
                           str(out / f"{name}_{cond}.eval"))


def synthesise(root: Path, traces: int, seed: int, inspect_models: int = 1) -> int:
    data = make_records(seed)
    n_lm = len(MODELS) - inspect_models
    for model, skill in MODELS[:n_lm]:
        write_lm_eval(root / "lm_eval", model, skill, data, traces, seed)
    for model, skill in MODELS[n_lm:]:
        write_inspect(root / "inspect" / model.replace("/", "__"), model, skill, data, traces, seed)
    n = sum(len(recs) for recs, _ in data.values()) * (1 + traces) * len(MODELS)
    return n


def measure(root: Path, out: Path) -> dict:
    """Run in a fresh process: the whole report, timed, with peak RSS."""
    t0 = time.perf_counter()
    from lm_eval_medsplit.report import build_report, write_report
    from lm_eval_medsplit.report.tables import all_tables, to_rich

    rep = build_report([p for p in (root / "lm_eval", root / "inspect") if p.is_dir()])
    t_build = time.perf_counter() - t0
    from rich.console import Console

    console = Console(file=open(os.devnull, "w"), width=160)
    for spec in all_tables(rep.data, terminal=True):
        console.print(to_rich(spec))
    written = write_report(rep, out)
    total = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    workers = min(8, os.cpu_count() or 1)
    return {"samples": len(rep.joined.rows), "models": len(rep.data.models),
            "benchmarks": len(rep.data.benchmarks), "flagged": len(rep.data.flagged),
            "build_s": round(t_build, 2), "total_s": round(total, 2), "peak_rss_mb": round(rss_mb),
            "reader_process_peak_rss_mb": round(child_mb), "reader_processes": workers,
            "peak_rss_all_processes_bound_mb": round(rss_mb + workers * child_mb),
            "files": sum(len(v) for v in written.values()),
            "bootstrap_replicates": rep.data.settings["bootstrap_replicates"]}


def inspect_read(log: Path) -> None:
    """Time reading the sample summaries of one ``.eval`` log three ways: Inspect's public
    ``read_eval_log_sample_summaries``, the report's ``zipfile`` + ``json`` path, and the
    private ``inspect_ai._util`` zip reader the report used before."""
    import json as _json

    from inspect_ai.log import read_eval_log_sample_summaries

    from lm_eval_medsplit.report.read_inspect import _fast_summaries

    def private():
        from inspect_ai._util._async import run_coroutine
        from inspect_ai._util.async_zip import AsyncZipReader
        from inspect_ai._util.asyncfiles import AsyncFilesystem

        async def read():
            async with AsyncFilesystem() as fs:
                return _json.loads(await AsyncZipReader(fs, str(log)).read_member_fully("summaries.json"))
        return run_coroutine(read())

    for name, fn in (("public read_eval_log_sample_summaries", lambda: read_eval_log_sample_summaries(str(log))),
                     ("zipfile + json (report)", lambda: _fast_summaries(log)),
                     ("private inspect_ai._util zip reader", private)):
        t = time.perf_counter()
        try:
            n = len(fn())
            print(f"{name}: {n:,} summaries in {time.perf_counter() - t:.3f} s")
        except Exception as e:  # the private names may be gone in another Inspect version
            print(f"{name}: failed ({type(e).__name__}: {e})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--traces", type=int, default=2, help="adversarial traces per question (default 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--inspect-models", type=int, default=1, choices=range(0, 6),
                    help="how many of the 5 models are Inspect logs (default 1; the rest lm-eval)")
    ap.add_argument("--keep", type=Path, help="write the runs here and keep them")
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--inspect-read", type=Path, metavar="LOG", help="time reading one .eval log's summaries")
    args = ap.parse_args(argv)
    if args.inspect_read:
        inspect_read(args.inspect_read)
        return 0
    if args.measure:  # child process
        print(json.dumps(measure(args.measure, args.measure / "report")))
        return 0
    tmp = None
    root = args.keep
    if root is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench_report_")
        root = Path(tmp.name)
    t = time.perf_counter()
    if not any((root / d).is_dir() for d in ("lm_eval", "inspect")):
        n = synthesise(root, args.traces, args.seed, args.inspect_models)
        print(f"synthesised {n:,} samples in {time.perf_counter() - t:.1f} s under {root}", flush=True)
    res = subprocess.run([sys.executable, __file__, "--measure", str(root)], capture_output=True, text=True)
    if res.returncode != 0:
        print(res.stderr[-4000:], file=sys.stderr)
        return res.returncode
    m = json.loads(res.stdout.strip().splitlines()[-1])
    ok = m["total_s"] < 30 and m["peak_rss_all_processes_bound_mb"] < 2048
    print(json.dumps(m))
    verdict = "OK" if ok else "OVER TARGET"
    print(f"{m['samples']:,} samples, {m['models']} models x {m['benchmarks']} benchmarks: "
          f"report in {m['total_s']:.1f} s (read+join+numbers {m['build_s']:.1f} s), "
          f"peak RSS {m['peak_rss_mb']:,} MB (+ {m['reader_processes']} reader processes of at most "
          f"{m['reader_process_peak_rss_mb']:,} MB each: bound {m['peak_rss_all_processes_bound_mb']:,} MB) "
          f"-> {verdict} (< 30 s, < 2 GB)")
    if tmp:
        tmp.cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
