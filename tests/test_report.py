"""`medsplit report` on runs made here: lm-eval (`simple_evaluate` with an in-process
`@register_model` LM, outputs written the way the `lm_eval` CLI writes them) and Inspect
(`inspect_ai.eval` with an in-process `@modelapi` provider), both answering a known
pattern on real records. Every reported number is checked against a hand computation
from what the pattern model answered; intervals, McNemar, revision flagging, errors,
exports and the HTML are checked too."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
import shutil
from collections import defaultdict
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import yaml
from hub_layout import write_hub_dir

from lm_eval_medsplit.adversarial import wrong_letter
from lm_eval_medsplit.report import InputError, build_report, stats
from lm_eval_medsplit.report.analysis import SWEEP_THRESHOLDS, analyse
from lm_eval_medsplit.report.readers import read_inputs
from lm_eval_medsplit.samples import SampleRow

REPO = Path(__file__).resolve().parents[1]
BENCHES = ("medqa", "pubmedqa", "medbullets_op5")
N = 30
LM_MODEL = "pattern-lm"
INSPECT_MODEL = "medsplit_report/pattern-inspect"
B = 400  # bootstrap replicates in tests (the default is 2000)
UNPARSED_TEXT = "Unable to decide."


# --------------------------------------------------------------------------- the pattern


def _h(*parts) -> int:
    return int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:12], 16)


def clean_letter(tag: str, rec) -> str | None:
    """What the pattern model answers on a clean prompt: gold more often on knowledge
    questions, a wrong letter or nothing otherwise."""
    u = _h(tag, rec.benchmark, rec.id) % 100
    if u < (35 if rec.is_reasoning else 60):
        return rec.answer_idx
    if u < 88:
        return next(x for x in rec.options if x != rec.answer_idx)
    return None


def adv_letter(tag: str, rec, k: int) -> str | None:
    """Adversarial: follow trace k (its wrong letter) more often on reasoning questions,
    sometimes answer the gold letter, else answer as on the clean prompt. Traces arguing for the same letter are the same
    text (e.g. traces 0 and 2 of a 3-option question), so the choice depends on the
    letter, not on k."""
    wrong = wrong_letter(rec, k)
    u = _h(tag, rec.benchmark, rec.id, wrong, "adv") % 100
    if u < (50 if rec.is_reasoning else 25):
        return wrong
    if u >= 90:  # reconsidering sometimes fixes a clean mistake (wrong -> correct flips)
        return rec.answer_idx
    return clean_letter(tag, rec)


def stubborn_letter(tag: str, rec) -> str | None:
    """A model the traces never move (tags starting ``stubborn``): the gold letter on every
    MedQA and every knowledge question, the clean pattern elsewhere, on clean and
    adversarial prompts alike; so every question's drop is 0 and many cells are all right,
    where a percentile bootstrap has zero width."""
    if rec.benchmark == "medqa" or not rec.is_reasoning:
        return rec.answer_idx
    return clean_letter(tag, rec)


def mc_letter(tag: str, rec) -> str:
    """Log-likelihood tasks: the most likely option (the clean answer, or the last letter)."""
    return clean_letter(tag, rec) or list(rec.options)[-1]


def answer_text(letter: str | None) -> str:
    return UNPARSED_TEXT if letter is None else f"Let me think it through.\nAnswer: {letter}"


# --------------------------------------------------------------------------- data


def _label(records) -> None:
    for r in records:
        r.reasoning_prob = round((_h("prob", r.benchmark, r.id) % 1000) / 1000, 3)
        r.reasoning_threshold = 0.5
        r.is_reasoning = r.reasoning_prob >= 0.5


def _revise_medqa(name, records) -> None:
    """Another data revision: the question of MedQA's first record changed."""
    if name == "medqa":
        records[0].question += " (revised)"


@pytest.fixture(scope="session")
def env(tmp_path_factory):
    import os

    old = {k: os.environ.get(k) for k in ("MEDSPLIT_CACHE", "MEDSPLIT_SOURCE")}
    os.environ["MEDSPLIT_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.environ.pop("MEDSPLIT_SOURCE", None)
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def hub_dir(raw_dir, tmp_path_factory, env) -> Path:
    return write_hub_dir(raw_dir, tmp_path_factory.mktemp("hub"), BENCHES, label=_label, revision="rev-1",
                         limit=N)


@pytest.fixture(scope="session")
def hub_dir_rev2(raw_dir, tmp_path_factory, env) -> Path:
    return write_hub_dir(raw_dir, tmp_path_factory.mktemp("hub_rev2"), BENCHES, label=_label, revision="rev-2",
                         limit=N, edit=_revise_medqa)


@pytest.fixture(scope="session")
def records(hub_dir):
    from lm_eval_medsplit.dataset import load_eval_records

    recs = {b: load_eval_records(b, str(hub_dir)).records for b in BENCHES}
    for b, rs in recs.items():
        assert {r.subset for r in rs} == {"reasoning", "knowledge"}, b
        for r in rs:  # the unparsed text is unparsed for every real record here
            from lm_eval_medsplit.scoring import extract_answer

            assert extract_answer(UNPARSED_TEXT, r.options).letter is None
    return recs


# --------------------------------------------------------------------------- lm-eval run


def _register_lm():
    from lm_eval.api.model import LM
    from lm_eval.api.registry import MODEL_REGISTRY, register_model

    if "medsplit-report-pattern" in MODEL_REGISTRY:
        return

    @register_model("medsplit-report-pattern")
    class PatternLM(LM):
        """Answers from the logged doc: the pattern of :func:`clean_letter` /
        :func:`adv_letter` for the model tag given as ``pretrained=``."""

        def __init__(self, pretrained: str = LM_MODEL, **kwargs):
            super().__init__()
            self.tag = pretrained

        def generate_until(self, requests):
            from lm_eval_medsplit.lm_eval_tasks import doc_record

            out = []
            for inst in requests:
                doc = inst.doc
                rec = doc_record(doc)
                rec.is_reasoning = doc["is_reasoning"]
                if self.tag.startswith("stubborn"):
                    out.append(answer_text(stubborn_letter(self.tag, rec)))
                elif doc.get("adversarial"):
                    out.append(answer_text(adv_letter(self.tag, rec, doc["trace_index"])))
                else:
                    out.append(answer_text(clean_letter(self.tag, rec)))
            return out

        def loglikelihood(self, requests):
            from lm_eval_medsplit.lm_eval_tasks import doc_record

            out = []
            for inst in requests:
                rec = doc_record(inst.doc)
                rec.is_reasoning = inst.doc["is_reasoning"]
                chosen = mc_letter(self.tag, rec)
                out.append((0.0 if inst.args[1].strip() == chosen else -5.0, False))
            return out

        def loglikelihood_rolling(self, requests):
            raise NotImplementedError


def run_lm_eval(hub: Path, out: Path, tag: str = LM_MODEL, benches=BENCHES,
                modes=("", "_adversarial"), limit: int | None = None, style: str | None = None) -> Path:
    """Evaluate clean and adversarial tasks and write results + samples exactly as the
    ``lm_eval --output_path OUT --log_samples [--limit N]`` CLI does (lm-eval 0.4.13 run.py)."""
    import lm_eval
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager

    _register_lm()
    tasks = [f"medsplit_{b}_{s}{m}" for b in benches for s in ("reasoning", "knowledge")
             for m in modes]
    tm = TaskManager(include_path=str(REPO / "task_yaml"), include_defaults=False,
                     metadata={"source": str(hub), **({"style": style} if style else {})})
    tracker = EvaluationTracker(output_path=str(out))
    results = lm_eval.simple_evaluate(model="medsplit-report-pattern", model_args=f"pretrained={tag}",
                                      tasks=tasks, task_manager=tm, log_samples=True,
                                      evaluation_tracker=tracker, limit=limit)
    samples = results.pop("samples")
    tracker.save_results_aggregated(results=results, samples=samples)
    for task in results["configs"]:
        tracker.save_results_samples(task_name=task, samples=samples[task])
    return out


@pytest.fixture(scope="session")
def lm_run(hub_dir, tmp_path_factory) -> Path:
    return run_lm_eval(hub_dir, tmp_path_factory.mktemp("lm_eval_out"))


@pytest.fixture(scope="session")
def lm_run_rev2(hub_dir_rev2, tmp_path_factory) -> Path:
    return run_lm_eval(hub_dir_rev2, tmp_path_factory.mktemp("lm_eval_rev2"), tag="pattern-lm-rev2",
                       benches=("medqa", "pubmedqa"))


# --------------------------------------------------------------------------- Inspect run

_BY_PROMPT: dict[str, object] = {}


def _register_provider():
    from inspect_ai.model import ModelAPI, ModelOutput, ModelUsage, modelapi

    if getattr(_register_provider, "done", False):
        return

    @modelapi(name="medsplit_report")
    class PatternAPI(ModelAPI):
        """Looks the record up by its question prompt; a trace in the conversation makes
        it an adversarial sample of that trace's index."""

        def __init__(self, model_name, base_url=None, api_key=None, config=None, **kw):
            from inspect_ai.model import GenerateConfig

            super().__init__(model_name=model_name, base_url=base_url, api_key=api_key,
                             config=config or GenerateConfig())

        async def generate(self, input, tools, tool_choice, config):
            first_user = next(m for m in input if m.role == "user")
            rec = _BY_PROMPT[first_user.text]
            trace = next((m.text for m in input if m.role == "assistant"), None)
            if trace is None:
                letter = clean_letter(self.model_name, rec)
            else:
                k = next(i for i, t in enumerate(rec.adversarial_traces) if t.strip() in trace)
                letter = adv_letter(self.model_name, rec, k)
            out = ModelOutput.from_content(model=self.model_name, content=answer_text(letter))
            out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
            return out

    _register_provider.done = True


def run_inspect(hub: Path, log_dir: Path, records) -> list[Path]:
    from inspect_ai import eval as inspect_eval

    from lm_eval_medsplit.inspect_tasks.tasks import medsplit, medsplit_adversarial
    from lm_eval_medsplit.prompts import build_prompt

    _register_provider()
    for recs in records.values():
        for r in recs:
            _BY_PROMPT[build_prompt(r, "cot").user_text] = r
    benches = ",".join(BENCHES)
    logs = inspect_eval([medsplit(benchmarks=benches, source=str(hub)),
                         medsplit_adversarial(benchmarks=benches, source=str(hub),
                                              adversarial_mode="reconsider", trace="all")],
                        model=INSPECT_MODEL, log_dir=str(log_dir), display="none",
                        max_samples=400, max_tasks=2)
    assert all(log.status == "success" for log in logs), [log.error for log in logs]
    return [Path(log.location) for log in logs]


@pytest.fixture(scope="session")
def inspect_run(hub_dir, records, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("inspect_logs")
    run_inspect(hub_dir, d, records)
    return d


@pytest.fixture(scope="session")
def report(lm_run, inspect_run):
    return build_report([lm_run, inspect_run], b=B)


# --------------------------------------------------------------------------- hand computation


def expected_samples(records, tag: str, mode: str) -> list[dict]:
    """What the pattern model produced, scored by hand (gold letter comparison)."""
    out = []
    for b, recs in records.items():
        for r in recs:
            base = {"model": tag, "benchmark": b, "id": r.id, "subset": r.subset,
                    "prob": r.reasoning_prob}
            letter = clean_letter(tag.split("/")[-1] if "/" in tag else tag, r)
            out.append({**base, "cond": "clean", "trace": None, "correct": letter == r.answer_idx,
                        "parsed": letter is not None})
            for k in range(len(r.adversarial_traces)):
                letter = adv_letter(tag.split("/")[-1] if "/" in tag else tag, r, k)
                out.append({**base, "cond": mode, "trace": k, "correct": letter == r.answer_idx,
                            "parsed": letter is not None})
    return out


def mean(xs) -> float:
    xs = list(xs)
    return sum(xs) / len(xs)


def hand_numbers(samples: list[dict]) -> dict:
    """Accuracy, gaps, averages, adversarial drops and flips computed with plain Python."""
    clean = [s for s in samples if s["cond"] == "clean"]
    adv = [s for s in samples if s["cond"] != "clean"]
    out: dict = {"acc": {}, "gap": {}, "parse": {}, "adv": {}, "advsub": {}}
    benches = sorted({s["benchmark"] for s in clean})
    for b in benches:
        for sub in ("knowledge", "reasoning"):
            out["acc"][(b, sub)] = mean(s["correct"] for s in clean if s["benchmark"] == b and s["subset"] == sub)
        out["gap"][b] = out["acc"][(b, "knowledge")] - out["acc"][(b, "reasoning")]
        out["parse"][b] = mean(s["parsed"] for s in clean if s["benchmark"] == b)
    for sub in ("knowledge", "reasoning"):
        out["acc"][("macro", sub)] = mean(out["acc"][(b, sub)] for b in benches)
        out["acc"][("all", sub)] = mean(s["correct"] for s in clean if s["subset"] == sub)
    for lvl in ("macro", "all"):
        out["gap"][lvl] = out["acc"][(lvl, "knowledge")] - out["acc"][(lvl, "reasoning")]
    cmap = {(s["benchmark"], s["id"]): s["correct"] for s in clean}
    for scope in benches + ["all"]:
        rows = [s for s in adv if scope == "all" or s["benchmark"] == scope]
        for k in sorted({s["trace"] for s in rows}):
            tr = [s for s in rows if s["trace"] == k]
            c2w = sum(cmap[(s["benchmark"], s["id"])] and not s["correct"] for s in tr)
            w2c = sum(not cmap[(s["benchmark"], s["id"])] and s["correct"] for s in tr)
            cc = sum(cmap[(s["benchmark"], s["id"])] and s["correct"] for s in tr)
            ww = len(tr) - c2w - w2c - cc
            out["adv"][(scope, str(k))] = {
                "accuracy": mean(s["correct"] for s in tr),
                "clean": mean(cmap[(s["benchmark"], s["id"])] for s in tr),
                "c2w": c2w, "w2c": w2c, "table": [[cc, c2w], [w2c, ww]]}
        per_q = defaultdict(list)
        for s in rows:
            per_q[(s["benchmark"], s["id"], s["subset"])].append(s["correct"])
        qmean = {q: mean(v) for q, v in per_q.items()}
        out["adv"][(scope, "mean")] = {
            "accuracy": mean(qmean.values()),
            "clean": mean(cmap[q[:2]] for q in qmean),
            "c2w": sum(v["c2w"] for (sc, t), v in out["adv"].items() if sc == scope and t != "mean"),
            "w2c": sum(v["w2c"] for (sc, t), v in out["adv"].items() if sc == scope and t != "mean")}
        for sub in ("knowledge", "reasoning"):
            out["advsub"][(scope, sub)] = mean(cmap[q[:2]] - m for q, m in qmean.items() if q[2] == sub)
    return out


def _close(a, b, tol=1e-6):
    assert a is not None and b is not None and abs(a - b) <= tol, (a, b)


def check_numbers(data, model: str, samples: list[dict], mode: str) -> int:
    """Compare every number of ``model`` in the report with the hand computation; returns
    how many numbers were checked."""
    hand = hand_numbers(samples)
    n = 0
    gaps = {r["benchmark"]: r for r in data.gaps if r["model"] == model}
    assert set(gaps) == set(BENCHES) | {"macro", "all"}
    for b, r in gaps.items():
        for sub in ("knowledge", "reasoning"):
            _close(r[f"{sub}_accuracy"], hand["acc"][(b, sub)])
            assert r[f"{sub}_ci_low"] <= r[f"{sub}_accuracy"] <= r[f"{sub}_ci_high"]
            n += 1
        _close(r["gap"], hand["gap"][b])
        assert r["gap_ci_low"] <= r["gap"] <= r["gap_ci_high"]
        n += 1
        if b in BENCHES:
            _close(r["parse_rate"], hand["parse"][b])
            assert r["knowledge_n"] + r["reasoning_n"] == N
            n += 1
    adv = [r for r in data.adversarial if r["model"] == model and r["mode"] == mode]
    for r in adv:
        if r["level"] == "macro":
            per_b = [x for x in adv if x["level"] == "benchmark" and x["trace"] == r["trace"]]
            _close(r["drop"], mean(x["drop"] for x in per_b))
            n += 1
            continue
        h = hand["adv"][(r["benchmark"], r["trace"])]
        _close(r["accuracy"], h["accuracy"])
        _close(r["clean_accuracy"], h["clean"])
        _close(r["drop"], h["clean"] - h["accuracy"])
        assert (r["correct_to_wrong"], r["wrong_to_correct"]) == (h["c2w"], h["w2c"])
        assert r["ci_low"] <= r["accuracy"] <= r["ci_high"]
        assert r["drop_ci_low"] <= r["drop"] <= r["drop_ci_high"]
        n += 5
        if r["trace"] != "mean":
            from statsmodels.stats.contingency_tables import mcnemar

            _close(r["mcnemar_p"], mcnemar(h["table"], exact=True).pvalue, 1e-9)
            n += 1
    assert {r["trace"] for r in adv} == {"0", "1", "2", "mean"}
    assert all(r["wrong_to_correct"] > 0 and r["correct_to_wrong"] > 0 for r in adv
               if r["trace"] == "mean" and r["level"] == "weighted")
    for r in data.adversarial_subsets:
        if r["model"] != model or r["mode"] != mode:
            continue
        for sub in ("knowledge", "reasoning"):
            _close(r[f"{sub}_drop"], hand["advsub"][(r["benchmark"], sub)])
            n += 1
        _close(r["difference"], r["reasoning_drop"] - r["knowledge_drop"])
        assert r["larger_drop"] == ("reasoning" if r["difference"] > 0 else "knowledge")
    return n


# --------------------------------------------------------------------------- tests: runs


def test_lm_eval_run_every_number_matches_hand_computation(report, records):
    n = check_numbers(report.data, LM_MODEL, expected_samples(records, LM_MODEL, "prefill"), "prefill")
    assert n > 100
    # the pattern makes reasoning questions harder and more fragile
    overall = next(r for r in report.data.gaps if r["model"] == LM_MODEL and r["benchmark"] == "all")
    assert overall["gap"] > 0


def test_inspect_run_every_number_matches_hand_computation(report, records):
    n = check_numbers(report.data, INSPECT_MODEL, expected_samples(records, "pattern-inspect", "reconsider"),
                      "reconsider")
    assert n > 100
    runs = {r["harness"] for r in report.data.runs}
    assert runs == {"lm-eval", "inspect"}
    assert all(r["status"] == "joined" for r in report.data.runs)
    assert not report.data.flagged


def test_readers_give_one_row_per_sample_with_scoring_fields(lm_run, inspect_run, records):
    res = read_inputs([lm_run, inspect_run])
    by = {run.harness: run for run in res.runs if run.model == LM_MODEL} | {
        "inspect": [run for run in res.runs if run.harness == "inspect"]}
    lm = by["lm-eval"]
    n_rec = sum(len(v) for v in records.values())
    assert len(lm.rows) == n_rec * 4  # clean + 3 prefill traces
    assert {r.adversarial for r in lm.rows} == {None, "prefill"}
    assert set(lm.provenance) == set(BENCHES)
    inspect_rows = [r for run in by["inspect"] for r in run.rows]
    assert len(inspect_rows) == n_rec * 4
    recs = {(b, r.id): r for b, rs in records.items() for r in rs}
    for row in lm.rows[:50] + inspect_rows[:50]:
        rec = recs[(row.benchmark, row.id)]
        assert row.record_hash == rec.content_hash()
        assert row.subset == rec.subset and row.reasoning_prob == rec.reasoning_prob
        assert row.content_hash and row.revision == "rev-1"
        # unparsed outputs keep their text for the gallery, others do not
        assert (row.output == UNPARSED_TEXT) == (row.outcome == "unparsed")


def test_lm_eval_loglikelihood_tasks_are_their_own_setting(hub_dir, records, lm_run, tmp_path):
    mc = run_lm_eval(hub_dir, tmp_path / "mc", benches=("medqa", "pubmedqa"), modes=("_mc",))
    rep = build_report([lm_run, mc], b=B)
    name = f"{LM_MODEL} (loglikelihood)"
    assert rep.data.models == [LM_MODEL, name]  # not merged with the generative run
    for r in (g for g in rep.data.gaps if g["model"] == name and g["level"] == "benchmark"):
        for sub in ("knowledge", "reasoning"):
            recs = [x for x in records[r["benchmark"]] if x.subset == sub]
            _close(r[f"{sub}_accuracy"], mean(mc_letter(LM_MODEL, x) == x.answer_idx for x in recs))
        assert r["parse_rate"] == 1.0
    assert {g["benchmark"] for g in rep.data.gaps if g["model"] == name} == {"medqa", "pubmedqa", "macro", "all"}
    assert not any("duplicate" in n or "already read" in n for n in rep.data.notes)
    # --rename keeps the two settings apart: NEW and NEW (loglikelihood)
    renamed = build_report([lm_run, mc], b=B, rename={LM_MODEL: "X"})
    assert renamed.data.models == ["X", "X (loglikelihood)"]
    assert len(renamed.joined.rows) == len(rep.joined.rows)
    assert not any("duplicate" in n for n in renamed.data.notes)
    assert build_report([mc], b=B, rename={name: "Y"}).data.models == ["Y"]  # the full name
    from lm_eval_medsplit.report import RenameError

    with pytest.raises(RenameError, match=r"--rename typo: no model of that name .*they have: "):
        build_report([mc], b=B, rename={"typo": "Z"})


def test_parallel_reading_gives_the_same_rows_and_errors(lm_run, inspect_run, tmp_path):
    one = read_inputs([lm_run, inspect_run], workers=1)
    two = read_inputs([lm_run, inspect_run], workers=2)
    assert [r.path for r in one.runs] == [r.path for r in two.runs]
    assert [[x.as_dict() for x in r.rows] for r in one.runs] == [[x.as_dict() for x in r.rows] for r in two.runs]
    bad = tmp_path / "bad"
    shutil.copytree(lm_run, bad)
    rf = _results_file(bad)
    rf.write_text("{", encoding="utf-8")
    with pytest.raises(InputError) as e:
        read_inputs([bad, inspect_run], workers=2)
    assert e.value.path == str(rf.resolve()) and "not valid JSON" in str(e.value)


def test_inspect_fast_summaries_equal_the_public_api(inspect_run):
    from lm_eval_medsplit.report.read_inspect import _fast_summaries, read_inspect_log

    for log in sorted(Path(inspect_run).glob("*.eval")):
        assert _fast_summaries(log) is not None  # the fast path is taken with this Inspect
        fast = read_inspect_log(log)
        slow = read_inspect_log(log, fast=False)
        assert [r.as_dict() for r in fast.rows] == [r.as_dict() for r in slow.rows]
        assert fast.provenance == slow.provenance and len(fast.rows) > 0


def test_inspect_json_logs_read_like_eval_logs(inspect_run, tmp_path):
    from inspect_ai.log import read_eval_log, write_eval_log

    from lm_eval_medsplit.report.read_inspect import read_inspect_log

    src = sorted(Path(inspect_run).glob("*.eval"))[0]
    dst = tmp_path / "logs" / "log.json"
    write_eval_log(read_eval_log(str(src)), str(dst), format="json")
    a = sorted((r.as_dict() for r in read_inspect_log(src).rows), key=lambda d: str(d))
    b = sorted((r.as_dict() for r in read_inputs([tmp_path / "logs"]).runs[0].rows), key=lambda d: str(d))
    assert a == b and len(a) > 0


def test_threshold_sweep_and_bins_match_hand_computation(report, records):
    samples = [s for s in expected_samples(records, LM_MODEL, "prefill") if s["cond"] == "clean"]
    sweep = {r["threshold"]: r for r in report.data.threshold_sweep if r["model"] == LM_MODEL}
    assert set(sweep) == set(SWEEP_THRESHOLDS)
    for th, r in sweep.items():
        hi = [s["correct"] for s in samples if s["prob"] >= th]
        lo = [s["correct"] for s in samples if s["prob"] < th]
        assert (r["reasoning_n"], r["knowledge_n"]) == (len(hi), len(lo))
        _close(r["gap"], mean(lo) - mean(hi))
        assert r["gap_ci_low"] <= r["gap"] <= r["gap_ci_high"]
    # at the labelling threshold the sweep equals the labelled split
    labelled = next(r for r in report.data.gaps if r["model"] == LM_MODEL and r["benchmark"] == "all")
    _close(sweep[0.5]["gap"], labelled["gap"])
    bins = [r for r in report.data.prob_bins if r["model"] == LM_MODEL and r["benchmark"] == "all"]
    assert sum(r["n"] for r in bins) == len(samples)
    for r in bins:
        inb = [s["correct"] for s in samples if r["bin_low"] <= s["prob"] < r["bin_high"]
               or (r["bin_high"] == 1.0 and s["prob"] == 1.0)]
        assert r["n"] == len(inb)
        _close(r["accuracy"], mean(inb))


def test_parse_table_and_gallery(report, records):
    samples = expected_samples(records, LM_MODEL, "prefill")
    rows = [r for r in report.data.parse if r["model"] == LM_MODEL]
    for r in rows:
        exp = [s for s in samples if s["benchmark"] == r["benchmark"] and s["cond"] == r["condition"]]
        assert r["n"] == len(exp)
        assert r["unparsed"] == sum(not s["parsed"] for s in exp)
        assert sum(r["methods"].values()) == r["n"]
    g = next(g for g in report.data.gallery if g["model"] == LM_MODEL)
    assert g["unparsed"] == sum(not s["parsed"] for s in samples)
    assert g["shown"] and all(s["output"] == UNPARSED_TEXT for s in g["shown"])


# --------------------------------------------------------------------------- statistics


def test_bootstrap_means_is_the_index_bootstrap():
    rng = np.random.default_rng(1)
    v = rng.choice([0.0, 1 / 3, 2 / 3, 1.0], size=300, p=[0.2, 0.3, 0.3, 0.2])
    fast = stats.bootstrap_means(v, np.random.default_rng(2), 20000)
    idx = np.random.default_rng(3).integers(0, v.size, size=(20000, v.size))
    slow = v[idx].mean(axis=1)
    assert abs(fast.mean() - slow.mean()) < 0.002
    assert abs(fast.std() - slow.std()) < 0.002
    for q in (0.025, 0.5, 0.975):
        assert abs(np.quantile(fast, q) - np.quantile(slow, q)) < 0.01
    # many distinct values take the chunked index path
    w = rng.normal(size=500)
    d = stats.bootstrap_means(w, np.random.default_rng(4), 3000)
    assert abs(d.std() - w.std() / math.sqrt(w.size)) < 0.005


def _rows(n_per_subset: int, copies: int = 1) -> list[SampleRow]:
    rows = []
    for c in range(copies):
        for sub, p_ok in (("knowledge", 0.7), ("reasoning", 0.4)):
            for i in range(n_per_subset):
                ok = (i % 10) < p_ok * 10
                qid = f"{sub}-{i}-{c}"
                rows.append(SampleRow("m", "lm-eval", "t", "medqa", qid, sub, 0.3 if sub == "knowledge" else 0.8,
                                      "h", None, None, "A", "answer_phrase", "correct" if ok else "incorrect"))
                for k in range(3):
                    adv_ok = ok and (i + k) % 3 != 0
                    rows.append(SampleRow("m", "lm-eval", "t", "medqa", qid, sub, 0.5, "h", "prefill", k,
                                          "B", "answer_phrase", "correct" if adv_ok else "incorrect"))
    return rows


def test_aggregate_gaps_compare_only_benchmarks_with_both_subsets():
    def rows(bench, sub, n, n_ok):
        return [SampleRow("m", "lm-eval", "t", bench, f"{bench}-{sub}-{i}", sub, 0.5, "h", None, None,
                          "A", "answer_phrase", "correct" if i < n_ok else "incorrect") for i in range(n)]
    data = analyse(rows("medqa", "knowledge", 10, 8) + rows("medqa", "reasoning", 10, 5)
                   + rows("pubmedqa", "knowledge", 20, 10), b=200)  # pubmedqa has no reasoning part
    macro = next(r for r in data.gaps if r["benchmark"] == "macro")
    weighted = next(r for r in data.gaps if r["level"] == "weighted")
    assert macro["knowledge_accuracy"] == pytest.approx((0.8 + 0.5) / 2)  # every benchmark
    assert macro["knowledge_benchmarks"] == 2 and macro["reasoning_benchmarks"] == 1
    assert macro["gap"] == pytest.approx(0.8 - 0.5) and weighted["gap"] == pytest.approx(0.8 - 0.5)
    assert macro["gap_benchmarks"] == weighted["gap_benchmarks"] == 1
    assert any("gaps cover the 1 benchmark(s) with both subsets; pubmedqa lack(s) one" in n for n in data.notes)


def test_adversarial_accuracy_is_one_estimator_in_every_table():
    # q1 kept all three traces and got them right; q2 kept one and got it wrong (a partial
    # run): per question (1 + 0) / 2, not per sample 3 / 4
    def row(qid, cond, k, outcome):
        return SampleRow("m", "lm-eval", "t", "medqa", qid, "reasoning", 0.8, "h", cond, k, "A",
                         "answer_phrase", outcome)
    rows = [row("q1", None, None, "correct"), row("q2", None, None, "correct")]
    rows += [row("q1", "prefill", k, "correct") for k in range(3)] + [row("q2", "prefill", 0, "incorrect")]
    data = analyse(rows, b=200)
    acc = next(r for r in data.accuracy if r["condition"] == "prefill" and r["subset"] == "reasoning")
    mean = next(r for r in data.adversarial if r["benchmark"] == "medqa" and r["trace"] == "mean")
    assert acc["accuracy"] == mean["accuracy"] == 0.5 and acc["correct"] == 3 and acc["n"] == 4
    assert acc["questions"] == 2 and acc["stderr"] == pytest.approx(0.5)  # sd of (1, 0) over sqrt(2)
    clean = next(r for r in data.accuracy if r["condition"] == "clean" and r["subset"] == "reasoning")
    assert clean["stderr"] is not None and clean["questions"] == clean["n"] == 2
    assert mean["clean_accuracy"] - mean["drop"] == pytest.approx(mean["accuracy"])


def test_intervals_contain_the_estimate_and_shrink_with_more_samples():
    small = analyse(_rows(40), b=1000)
    large = analyse(_rows(40, copies=9), b=1000)

    def width(d, table, key, lo, hi, **match):
        r = next(r for r in getattr(d, table) if all(r[k] == v for k, v in match.items()))
        assert r[lo] <= r[key] <= r[hi]
        return r[key], r[hi] - r[lo]

    for table, key, lo, hi, match in [
        ("gaps", "knowledge_accuracy", "knowledge_ci_low", "knowledge_ci_high", {"benchmark": "medqa"}),
        ("gaps", "gap", "gap_ci_low", "gap_ci_high", {"benchmark": "medqa"}),
        ("adversarial", "drop", "drop_ci_low", "drop_ci_high", {"benchmark": "medqa", "trace": "mean"}),
        ("adversarial", "accuracy", "ci_low", "ci_high", {"benchmark": "medqa", "trace": "1"}),
        ("adversarial_subsets", "difference", "difference_ci_low", "difference_ci_high", {"benchmark": "medqa"}),
    ]:
        est_s, w_s = width(small, table, key, lo, hi, **match)
        est_l, w_l = width(large, table, key, lo, hi, **match)
        assert est_s == pytest.approx(est_l, abs=1e-9)  # same proportions, 9x the questions
        assert w_l < 0.5 * w_s, (table, key, w_s, w_l)  # ~1/3 expected


def test_mcnemar_matches_statsmodels_on_many_tables():
    from statsmodels.stats.contingency_tables import mcnemar

    rng = np.random.default_rng(0)
    bs, cs = rng.integers(0, 60, 200), rng.integers(0, 60, 200)
    got = stats.mcnemar_exact(bs, cs)
    for b, c, p in zip(bs, cs, got):
        assert p == pytest.approx(mcnemar([[5, b], [c, 7]], exact=True).pvalue, abs=1e-12)
    assert stats.mcnemar_exact(0, 0) == 1.0


def test_results_do_not_depend_on_row_order():
    rows = _rows(30)
    a = analyse(rows, b=300).as_dict()
    b = analyse(list(reversed(rows)), b=300).as_dict()
    assert a == b


# --------------------------------------------------------------------------- revisions


def test_run_from_another_data_revision_is_flagged_not_merged(lm_run, inspect_run, lm_run_rev2, report):
    rep = build_report([lm_run, inspect_run, lm_run_rev2], b=B)
    flagged = rep.data.flagged
    # medqa was edited in rev 2: its part is flagged; pubmedqa is unchanged and joins
    assert [(f["model"], f["benchmark"]) for f in flagged] == [("pattern-lm-rev2", "medqa")]
    assert "another data revision" in flagged[0]["reason"]
    assert flagged[0]["content_hash"] != flagged[0]["reference_content_hash"]
    assert not any(r.model == "pattern-lm-rev2" and r.benchmark == "medqa" for r in rep.joined.rows)
    assert any(r.model == "pattern-lm-rev2" and r.benchmark == "pubmedqa" for r in rep.joined.rows)
    status = {r["model"]: r["status"] for r in rep.data.runs}
    assert status["pattern-lm-rev2"] == "partly flagged"
    # the other models' numbers are unchanged by the flagged run
    for model in (LM_MODEL, INSPECT_MODEL):
        assert [r for r in rep.data.gaps if r["model"] == model] == \
               [r for r in report.data.gaps if r["model"] == model]


def test_source_pins_the_reference(lm_run_rev2, lm_run, hub_dir, hub_dir_rev2):
    # against rev 2 as the source, the rev-1 run is the one flagged
    rep = build_report([lm_run, lm_run_rev2], source=str(hub_dir_rev2), b=B)
    assert {(f["model"], f["benchmark"]) for f in rep.data.flagged} == {(LM_MODEL, "medqa")}
    assert "differs from the source" in rep.data.flagged[0]["reason"]
    assert rep.joined.reference["medqa"]["revision"] == "rev-2"
    # the join takes labels from the source records
    rep1 = build_report([lm_run], source=str(hub_dir), b=B)
    assert not rep1.data.flagged and len(rep1.joined.rows) == len(BENCHES) * N * 4


def test_all_parts_flagged_error_gives_the_reasons(lm_run, raw_dir, tmp_path, capsys):
    from lm_eval_medsplit.cli import main

    def revise_all(name, records):
        records[0].question += " (revised)"
    other = write_hub_dir(raw_dir, tmp_path / "rev3", BENCHES, label=_label, revision="rev-3", limit=N,
                          edit=revise_all)
    assert main(["report", str(lm_run), "--source", str(other), "--format", "none",
                 "--bootstrap", str(B)]) == 2
    err = capsys.readouterr().err
    assert f"no samples to report: all {len(BENCHES)} run part(s) were flagged:" in err
    for b in BENCHES:
        assert f"[{b}]: " in err
    assert err.count("differs from the source") == len(BENCHES)


def test_run_on_a_raw_source_joins_to_the_classifier_labels(raw_dir, tmp_path):
    """The real path for a raw directory: the tasks label records with the embedded
    classifier; the report, given the same source, joins to the same labels."""
    from lm_eval_medsplit.dataset import load_eval_records

    out = run_lm_eval(raw_dir, tmp_path / "raw_run", tag="pattern-raw", benches=("medbullets_op4",))
    rep = build_report([out], source=str(raw_dir), b=B)
    assert not rep.data.flagged
    recs = load_eval_records("medbullets_op4", str(raw_dir)).records
    assert rep.joined.reference["medbullets_op4"]["content_hash"] == load_eval_records(
        "medbullets_op4", str(raw_dir)).content_hash
    g = next(r for r in rep.data.gaps if r["benchmark"] == "medbullets_op4")
    for sub in ("knowledge", "reasoning"):
        chosen = [r for r in recs if r.subset == sub]
        assert g[f"{sub}_n"] == len(chosen) > 0
        _close(g[f"{sub}_accuracy"], mean(clean_letter("pattern-raw", r) == r.answer_idx for r in chosen))


def test_rename_merges_models_and_duplicates_are_counted(lm_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(lm_run, copy)
    rep = build_report([lm_run, copy], b=B)
    assert len(rep.data.models) == 1
    assert any("already read from" in n for n in rep.data.notes)
    assert len(rep.joined.rows) == len(BENCHES) * N * 4


# --------------------------------------------------------------------------- errors


def _results_file(d: Path) -> Path:
    return next(d.rglob("results_*.json"))


def test_unreadable_and_partial_inputs_name_the_file(lm_run, inspect_run, tmp_path):
    # truncated per-sample file
    bad = tmp_path / "trunc"
    shutil.copytree(lm_run, bad)
    sfile = sorted(bad.rglob("samples_medsplit_medqa_reasoning_*.jsonl"))[0]
    text = sfile.read_text(encoding="utf-8")
    sfile.write_text(text[: len(text) - 200], encoding="utf-8")
    with pytest.raises(InputError) as e:
        build_report([bad], b=B)
    assert sfile.name in str(e.value) and "line" in str(e.value)

    # a missing per-sample file
    miss = tmp_path / "missing"
    shutil.copytree(lm_run, miss)
    victim = sorted(miss.rglob("samples_medsplit_pubmedqa_knowledge_*.jsonl"))[0]
    victim.unlink()
    with pytest.raises(InputError) as e:
        build_report([miss], b=B)
    assert "medsplit_pubmedqa_knowledge" in str(e.value) and "--log_samples" in str(e.value)

    # fewer sample lines than the results file reports: partial unless allowed
    part = tmp_path / "partial"
    shutil.copytree(lm_run, part)
    sfile = sorted(part.rglob("samples_medsplit_medqa_knowledge_*.jsonl"))[0]
    lines = sfile.read_text(encoding="utf-8").splitlines(keepends=True)
    sfile.write_text("".join(lines[:-2]), encoding="utf-8")
    with pytest.raises(InputError) as e:
        build_report([part], b=B)
    assert sfile.name in str(e.value) and "partial" in str(e.value)
    rep = build_report([part], b=B, allow_partial=True)
    assert len(rep.joined.rows) == len(BENCHES) * N * 4 - 2

    # broken results JSON
    broken = tmp_path / "broken"
    shutil.copytree(lm_run, broken)
    rf = _results_file(broken)
    rf.write_text(rf.read_text(encoding="utf-8")[:100], encoding="utf-8")
    with pytest.raises(InputError) as e:
        build_report([broken], b=B)
    assert rf.name in str(e.value)

    # a truncated Inspect log
    log = sorted(Path(inspect_run).glob("*.eval"))[0]
    cut = tmp_path / log.name
    cut.write_bytes(log.read_bytes()[:2000])
    with pytest.raises(InputError) as e:
        build_report([cut], b=B)
    assert cut.name in str(e.value)

    # a path that does not exist
    with pytest.raises(InputError, match="no such file"):
        build_report([tmp_path / "nope"], b=B)


def test_samples_without_medsplit_metadata_before_others_are_an_error(lm_run, inspect_run, tmp_path):
    from inspect_ai.log import read_eval_log, write_eval_log

    d = tmp_path / "mixed"
    shutil.copytree(lm_run, d)
    sfile = sorted(d.rglob("samples_medsplit_medqa_reasoning_*.jsonl"))[0]
    lines = sfile.read_text(encoding="utf-8").splitlines(keepends=True)
    first = json.loads(lines[0])
    first["doc"] = {"question": "not a medsplit doc"}
    sfile.write_text(json.dumps(first) + "\n" + "".join(lines[1:]), encoding="utf-8")
    with pytest.raises(InputError, match="line 1: the doc has no medsplit sample metadata .* unlike line 2"):
        build_report([d], b=B)

    src = sorted(Path(inspect_run).glob("*.eval"))[0]
    log = read_eval_log(str(src))
    log.samples[0].metadata = {}
    dst = tmp_path / "mixed.eval"
    write_eval_log(log, str(dst))
    with pytest.raises(InputError, match=f"sample {log.samples[0].id!r}: no medsplit sample metadata unlike"):
        build_report([dst], b=B)


def test_cancelled_inspect_log_is_partial(inspect_run, tmp_path):
    from inspect_ai.log import read_eval_log, write_eval_log

    src = sorted(Path(inspect_run).glob("*.eval"))[0]
    log = read_eval_log(str(src))
    log.status = "cancelled"
    log.samples = log.samples[:5]
    dst = tmp_path / "cancelled.eval"
    write_eval_log(log, str(dst))
    with pytest.raises(InputError) as e:
        build_report([dst], b=B)
    assert "cancelled" in str(e.value) and dst.name in str(e.value)
    rep = build_report([dst], b=B, allow_partial=True)
    assert len(rep.joined.rows) == 5
    assert any("cancelled" in n for n in rep.data.notes)


def test_inspect_log_of_a_limited_run_is_partial_and_said_so(inspect_run, tmp_path):
    from inspect_ai.log import read_eval_log, write_eval_log

    src = sorted(Path(inspect_run).glob("*.eval"))[0]
    log = read_eval_log(str(src))
    n_all = log.eval.dataset.samples
    log.eval.config.limit = 5  # as `inspect eval ... --limit 5` writes it
    log.samples = log.samples[:5]
    dst = tmp_path / "limited.eval"
    write_eval_log(log, str(dst))
    with pytest.raises(InputError) as e:
        build_report([dst], b=B)
    assert f"was run on 5 of {n_all} samples (--limit)" in str(e.value)
    assert "--allow-partial" in str(e.value) and dst.name in str(e.value)
    rep = build_report([dst], b=B, allow_partial=True)
    assert len(rep.joined.rows) == 5
    assert any(f"5 of {n_all} samples (--limit)" in n for n in rep.data.notes)

    log.samples = log.samples[:3]  # fewer than even the limit: partial, said so when allowed
    write_eval_log(log, str(dst))
    with pytest.raises(InputError, match=r"3 samples in the log, 5 expected: partial log \(use --allow-partial"):
        build_report([dst], b=B)
    notes = build_report([dst], b=B, allow_partial=True).data.notes
    assert any("3 samples in the log, 5 expected" in n for n in notes)


def test_responses_without_scoring_fields_are_rescored_and_said_so(lm_run, tmp_path):
    """A task whose filter list was replaced (``take_first``): the logged response is
    scored with the scoring core, and the notes say so."""
    d = tmp_path / "rescore"
    shutil.copytree(lm_run, d)
    sfile = sorted(d.rglob("samples_medsplit_medqa_reasoning_2*.jsonl"))[0]
    lines = []
    for line in sfile.read_text(encoding="utf-8").splitlines():
        s = json.loads(line)
        s["filter"] = "take_first"
        s["filtered_resps"] = [s["resps"][0][0]]
        for k in ("medsplit_scores", "medsplit_score"):  # the score filter fills these; take_first does not
            s["doc"].pop(k, None)
        lines.append(json.dumps(s))
    sfile.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows = {(r.benchmark, r.id, r.adversarial, r.trace_index): r for r in build_report([lm_run], b=B).joined.rows}
    rep = build_report([d], b=B)
    assert any("re-scored" in n and "medsplit_medqa_reasoning" in n for n in rep.data.notes)
    for r in rep.joined.rows:  # same outcomes as the score filter gave
        o = rows[(r.benchmark, r.id, r.adversarial, r.trace_index)]
        assert (r.outcome, r.pred) == (o.outcome, o.pred)


def test_non_medsplit_files_are_listed_not_dropped(lm_run, tmp_path):
    d = tmp_path / "mixed"
    shutil.copytree(lm_run, d)
    (d / "notes.json").write_text('{"hello": 1}')
    rep = build_report([d], b=B)
    assert any("notes.json" in n and "skipped" in n for n in rep.data.notes)


# --------------------------------------------------------------------------- outputs + CLI


class _Checker(HTMLParser):
    VOID = {"meta", "img", "br", "hr", "link", "input", "col", "source", "wbr", "area", "base"}

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.refs: list[str] = []
        self.imgs: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        for k, v in attrs:
            if k in ("src", "href", "srcset", "action", "data", "poster") and v is not None:
                self.refs.append(v)
            if k == "style" and v and "url(" in v:
                self.refs.append(v)
        if tag == "img":
            self.imgs.append(dict(attrs).get("src", ""))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> (open: {self.stack[-3:]})")
        else:
            self.stack.pop()


def test_cli_writes_every_output(lm_run, inspect_run, tmp_path, capsys):
    from lm_eval_medsplit.cli import main

    out = tmp_path / "rep"
    rc = main(["report", str(lm_run), str(inspect_run), "--out", str(out), "--bootstrap", str(B)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "Knowledge vs reasoning" in printed and LM_MODEL in printed and "McNemar" in printed
    for f in ("report.md", "report.html", "report.json", "plots/knowledge_vs_reasoning.png",
              "plots/gap_forest.png", "plots/clean_vs_adversarial.png",
              "plots/accuracy_vs_reasoning_prob.png", "csv/gaps.csv", "csv/adversarial.csv",
              "csv/threshold_sweep.csv"):
        assert (out / f).is_file() and (out / f).stat().st_size > 100, f
    for png in (out / "plots").glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    data = json.loads((out / "report.json").read_text())
    api = build_report([lm_run, inspect_run], b=B).data.as_dict()
    for key in ("gaps", "adversarial", "adversarial_subsets", "threshold_sweep", "prob_bins", "accuracy"):
        assert data[key] == json.loads(json.dumps(api[key])), key
    # the CSV holds the same numbers as the JSON
    with open(out / "csv" / "gaps.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(data["gaps"])
    for r, j in zip(rows, data["gaps"]):
        assert float(r["gap"]) == pytest.approx(j["gap"], abs=1e-9)

    # markdown: one line per gap row
    md = (out / "report.md").read_text()
    assert md.count(f"| {LM_MODEL} |") >= len([g for g in data["gaps"] if g["model"] == LM_MODEL])

    # lm-eval results: lm-eval's task and group names and metric keys, the report's values
    lmres = json.loads((out / "lm_eval_results" / LM_MODEL / "results_medsplit.json").read_text())
    g = next(r for r in data["gaps"] if r["model"] == LM_MODEL and r["benchmark"] == "medqa")
    assert lmres["results"]["medsplit_medqa_reasoning"]["acc,score"] == g["reasoning_accuracy"]
    w = next(r for r in data["gaps"] if r["model"] == LM_MODEL and r["benchmark"] == "all")
    assert lmres["groups"]["medsplit_knowledge"]["acc,score"] == pytest.approx(w["knowledge_accuracy"], abs=1e-6)
    assert "medsplit" not in lmres["groups"]  # a tag in lm-eval, no aggregate
    assert lmres["medsplit_report"]["gaps"][0]["model"] == LM_MODEL
    assert set(lmres["results"]) >= {f"medsplit_{b}_{s}" for b in BENCHES for s in ("knowledge", "reasoning")}
    assert "medsplit_medqa_knowledge_adversarial" in lmres["results"]
    assert not any("prefill" in k for k in lmres["results"])

    # Hugging Face eval results: a YAML list of {dataset: {id, task_id}, value, notes}
    hf = out / "hf_eval_results" / LM_MODEL / ".eval_results"
    entries = yaml.safe_load((hf / "medsplit.yaml").read_text())
    assert isinstance(entries, list) and entries
    for e in entries:
        assert e["dataset"]["id"] == "zou-lab/BioMed-R1-Eval" and isinstance(e["value"], float)
        assert "source" not in e
    e = next(e for e in entries if e["dataset"]["task_id"] == "medqa_reasoning")
    assert e["value"] == round(100 * g["reasoning_accuracy"], 2)
    adv = yaml.safe_load((hf / "medsplit_adversarial_prefill.yaml").read_text())
    assert all("adversarial trace mode: prefill" in e["notes"] for e in adv)

    # HTML: well formed, every plot embedded, no external resource
    html = (out / "report.html").read_text()
    chk = _Checker()
    chk.feed(html)
    chk.close()
    assert not chk.errors and chk.stack == []
    assert len(chk.imgs) == 4 and all(s.startswith("data:image/png;base64,") for s in chk.imgs)
    assert all(r.startswith(("data:", "#")) for r in chk.refs), [r[:60] for r in chk.refs if not r.startswith(("data:", "#"))]
    assert "http://" not in html and "https://" not in html and "@import" not in html
    assert "<script" not in html
    assert UNPARSED_TEXT in html and "t-gaps" in html and "t-adversarial" in html


def test_cli_errors(lm_run, tmp_path, capsys, monkeypatch):
    from lm_eval_medsplit.cli import main

    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["report", str(lm_run), "--format", "pdf"]) == 2
    assert "unknown --format" in capsys.readouterr().err
    # without the report extra, the error says how to install it
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["report", str(lm_run), "--out", str(tmp_path / "o"), "--format", "html"]) == 2
    assert 'pip install "lm-eval-medsplit[report]"' in capsys.readouterr().err
    # text formats need none of it
    assert main(["report", str(lm_run), "--out", str(tmp_path / "o"), "--format", "md,csv,json,lm-eval,hf",
                 "--quiet", "--bootstrap", "200"]) == 0
    assert (tmp_path / "o" / "report.md").is_file() and not (tmp_path / "o" / "report.html").exists()


def test_exports_never_share_a_folder_and_old_outputs_are_cleared(lm_run, inspect_run, tmp_path):
    from lm_eval_medsplit.report import write_report
    from lm_eval_medsplit.report.export import model_dirs

    assert model_dirs(["org/My Model", "org My Model", "solo"]) == {
        "org/My Model": "org__My__Model-" + hashlib.sha256(b"org/My Model").hexdigest()[:8],
        "org My Model": "org__My__Model-" + hashlib.sha256(b"org My Model").hexdigest()[:8],
        "solo": "solo"}
    out = tmp_path / "out"
    both = build_report([lm_run, inspect_run], b=B, rename={LM_MODEL: "org/My Model", INSPECT_MODEL: "org My Model"})
    written = write_report(both, out, formats=("lm-eval", "hf", "csv", "json"))
    assert len({p.parent for p in written["lm-eval"]}) == 2
    assert len(set(written["lm-eval"])) == len(written["lm-eval"])
    assert len(set(written["hf"])) == len(written["hf"])
    # a second report into the same folder leaves nothing of the first behind
    (out / "mine.txt").write_text("the user's own file")
    one = build_report([lm_run], b=B)
    written = write_report(one, out, formats=("lm-eval", "hf", "csv", "json"))
    files = {p for p in out.rglob("*") if p.is_file()}
    assert files == {out / "mine.txt", *(p for ps in written.values() for p in ps)}


def test_cli_json_output(lm_run, capsys, tmp_path):
    from lm_eval_medsplit.cli import main

    assert main(["report", str(lm_run), "--json", "--format", "none", "--bootstrap", "200",
                 "--rename", f"{LM_MODEL}=renamed"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["models"] == ["renamed"] and d["gaps"][0]["model"] == "renamed"
    assert d["settings"]["bootstrap_replicates"] == 200


def test_model_rows_are_separated_by_model():
    """Tables keyed by model draw a separator after the last row of each model, in all
    three renderers; tables of files (runs) draw none."""
    from lm_eval_medsplit.report.tables import TableSpec, to_html, to_rich

    t = TableSpec("k", "title", ["model", "x"])
    for row in (["m1", "a"], ["m1", "b"], ["m2", "c"], ["m3", "d"], ["m3", "e"]):
        t.add_model_row(row)
    assert t.sections == [1, 2]
    assert [r[1] for r in t.rows] == ["a", "b", "c", "d", "e"]
    assert to_html(t).count('<tr class="sep">') == 2
    assert [r.end_section for r in to_rich(t).rows] == [False, True, True, False, False]


# --------------------------------------------------------------------------- exports and their consumers


def _export_report(hub_dir, lm_run, inspect_run, tmp_path):
    from lm_eval_medsplit.report import write_report

    mc = run_lm_eval(hub_dir, tmp_path / "mc", benches=("medqa", "pubmedqa"), modes=("_mc",))
    rep = build_report([lm_run, mc, inspect_run], b=B)
    out = tmp_path / "out"
    write_report(rep, out, formats=("lm-eval", "hf", "md", "csv", "json"), date="2026-01-02")
    return rep, out


def check_hf_exports(folder: Path, rep) -> None:
    """Every ``.eval_results`` file parses with huggingface_hub and round-trips; the
    model-index block loads into ModelCardData with the same values."""
    from huggingface_hub import ModelCardData, eval_result_entries_to_yaml, parse_eval_result_entries

    files = sorted(folder.glob(".eval_results/*.yaml"))
    assert files
    n = 0
    for f in files:
        data = yaml.safe_load(f.read_text(encoding="utf-8"))
        entries = parse_eval_result_entries(data)
        assert eval_result_entries_to_yaml(entries) == data
        ids = [e.task_id for e in entries]
        assert len(ids) == len(set(ids)), f"{f.name}: two results on one task id"
        for e in entries:
            assert e.dataset_revision is None or re.fullmatch(r"[0-9a-f]{40}", e.dataset_revision)
            assert "setting: " in e.notes and "subset: " in e.notes
            assert ("clean" in e.notes) == (f.name == "medsplit.yaml")
        n += len(entries)
    card = ModelCardData(**yaml.safe_load((folder / "model_index.yaml").read_text(encoding="utf-8")))
    assert len(card.eval_results) == n
    assert all(r.dataset_type == "zou-lab/BioMed-R1-Eval" and r.metric_type == "accuracy"
               for r in card.eval_results)


def check_lm_eval_export(folder: Path) -> dict:
    """lm-eval's own table renders the file with its hierarchy; the keys a run writes."""
    from lm_eval.utils import make_table

    res = json.loads((folder / "results_medsplit.json").read_text(encoding="utf-8"))
    for key in ("results", "groups", "group_subtasks", "configs", "versions", "n-shot",
                "higher_is_better", "n-samples", "lm_eval_version"):
        assert key in res, key
    tasks = make_table(res)
    groups = make_table(res, "groups")
    assert "|score |" in tasks.replace("| score  |", "|score |") or "score" in tasks
    assert "↑" in tasks
    for g, subs in res["group_subtasks"].items():
        for s in subs:
            assert f"- {s}" in tasks, (g, s)
    assert "medsplit_knowledge" in groups
    for task, cfg in res["configs"].items():
        meta = cfg["metadata"]["medsplit"]
        assert {"setting", "subset", "adversarial", "revision", "content_hash"} <= set(meta), task
        flt = "none" if task.endswith("_mc") else "score"
        assert f"acc,{flt}" in res["results"][task]
    assert not any("prefill" in k or k == "medsplit" for k in res["results"])
    return res


def test_exports_are_accepted_by_their_consumers_and_read_back(hub_dir, lm_run, inspect_run, tmp_path):
    rep, out = _export_report(hub_dir, lm_run, inspect_run, tmp_path)
    folder = out / "hf_eval_results" / LM_MODEL
    check_hf_exports(folder, rep)
    # the log-likelihood results sit on their own task ids, beside the generative ones
    clean = yaml.safe_load((folder / ".eval_results" / "medsplit.yaml").read_text())
    ids = {e["dataset"]["task_id"] for e in clean}
    assert {"medqa_knowledge", "medqa_knowledge_mc", "medqa", "medqa_mc"} <= ids
    # the hub dir's revision "rev-1" is not a commit: not in dataset.revision, said in notes
    assert all("revision" not in e["dataset"] and "dataset revision: rev-1" in e["notes"] for e in clean)
    res = check_lm_eval_export(out / "lm_eval_results" / LM_MODEL)
    assert res["results"]["medsplit_medqa_knowledge_mc"]["acc,none"] == next(
        r["accuracy"] for r in rep.data.accuracy if r["model"] == f"{LM_MODEL} (loglikelihood)"
        and r["benchmark"] == "medqa" and r["subset"] == "knowledge")
    # a group with lm-eval's name holds lm-eval's number: its tasks' mean weighted by size
    def leaves(g):
        return [x for s in res["group_subtasks"].get(g, []) for x in (leaves(s) if s in res["groups"] else [s])]

    for g in ("medsplit_medqa", "medsplit_knowledge", "medsplit_medqa_adversarial", "medsplit_mc",
              "medsplit_adversarial"):
        flt = "none" if g.endswith("_mc") else "score"
        ts = leaves(g)
        sizes = [res["n-samples"][t]["effective"] for t in ts]
        want = sum(res["results"][t][f"acc,{flt}"] * n for t, n in zip(ts, sizes)) / sum(sizes)
        assert ts and res["groups"][g][f"acc,{flt}"] == pytest.approx(want, abs=2e-6), g
    # a revision that is a commit goes to dataset.revision
    from lm_eval_medsplit.report.export import hf_eval_results

    sha = "0123456789abcdef0123456789abcdef01234567"
    ents = hf_eval_results(rep.data, LM_MODEL, reference={"medqa": {"revision": sha}})["medsplit.yaml"]
    assert {e.dataset_revision for e in ents if e.task_id.startswith("medqa")} == {sha}
    # medsplit report reads its own lm-eval export back, to the same numbers
    again = build_report([out / "lm_eval_results"], b=B)
    def key(r):
        return (r["model"], r["benchmark"], r["subset"], r["condition"])
    before = {key(r): r for r in rep.data.accuracy if r["model"].startswith(LM_MODEL)}
    after = {key(r): r for r in again.data.accuracy if r["model"].startswith(LM_MODEL)}
    assert before.keys() == after.keys()
    for k, r in before.items():
        assert (after[k]["accuracy"], after[k]["n"], after[k]["ci_low"]) == (r["accuracy"], r["n"], r["ci_low"]), k


def test_small_cells_get_wilson_intervals_never_zero_width():
    from statsmodels.stats.proportion import proportion_confint

    rows = []
    for i in range(8):  # 8 of 8 knowledge right, 0 of 6 reasoning right
        rows.append(SampleRow("m", "lm-eval", "t", "medqa", f"k{i}", "knowledge", 0.1, "h", None, None,
                              "A", "x", "correct"))
    for i in range(6):
        rows.append(SampleRow("m", "lm-eval", "t", "medqa", f"r{i}", "reasoning", 0.9, "h", None, None,
                              "B", "x", "incorrect"))
        for k in range(3):  # every trace right on every question
            rows.append(SampleRow("m", "lm-eval", "t", "medqa", f"r{i}", "reasoning", 0.9, "h", "prefill", k,
                                  "A", "x", "correct"))
    d = analyse(rows, b=B)
    acc = {(r["subset"], r["condition"]): r for r in d.accuracy}
    lo, hi = proportion_confint(8, 8, method="wilson")
    assert (acc[("knowledge", "clean")]["ci_low"], acc[("knowledge", "clean")]["ci_high"]) == (
        pytest.approx(lo, abs=1e-6), pytest.approx(hi, abs=1e-6))
    for r in d.accuracy + d.prob_bins + [a for a in d.adversarial if a["ci_low"] is not None]:
        assert r["ci_low"] < r["ci_high"], r
    g = next(r for r in d.gaps if r["level"] == "benchmark")
    assert g["gap"] == 1.0 and g["gap_ci_low"] < 1.0  # Newcombe where the bootstrap cannot vary


def _intervals(obj, where: str = "") -> list[tuple[str, float, float]]:
    """Every ``...ci_low`` / ``...ci_high`` pair (lm-eval's ``acc_ci_low,score`` too) with
    both ends set, anywhere in a report's JSON, as (where, low, high)."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(k, str) and "ci_low" in k and isinstance(v, (int, float)) and not isinstance(v, bool):
                hi = obj.get(k.replace("ci_low", "ci_high"))
                if isinstance(hi, (int, float)):
                    out.append((f"{where}/{k} {({x: obj[x] for x in ('benchmark', 'subset', 'trace', 'threshold') if x in obj})}",
                                float(v), float(hi)))
            out += _intervals(v, f"{where}/{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _intervals(v, f"{where}[{i}]")
    return out


def test_newcombe_paired_interval_matches_the_published_example():
    # Cavo et al. 2012 in Fagerland, Lydersen & Laake (2017), ch. 8: -0.0621 (-0.1186 to -0.0046)
    lo, hi = stats.newcombe_paired(59, 6, 16, 80)
    assert (round(lo, 4), round(hi, 4)) == (-0.1186, -0.0046)
    # no discordant pair, half right: the uncorrected correlation of 1 would give [0, 0]
    for table in ((5, 0, 0, 5), (10, 0, 0, 0), (0, 0, 0, 7), (0, 4, 0, 0)):
        lo, hi = stats.newcombe_paired(*table)
        d = (table[1] - table[2]) / sum(table)
        assert -1 <= lo <= d <= hi <= 1 and lo < hi, table
    # fractional shares (a question's traces) keep both marginal means
    a, b, c, d = stats.paired_table(np.array([1, 1, 0, 1.0]), np.array([1 / 3, 1, 0, 0]))
    assert (a + b) / 4 == pytest.approx(0.75) and (a + c) / 4 == pytest.approx(1 / 3) and d == pytest.approx(1)
    assert stats.mover_diff(0.5, (0.3, 0.7), 0.2, (0.1, 0.4)) == pytest.approx(
        (0.3 - math.hypot(0.2, 0.2), 0.3 + math.hypot(0.2, 0.1)))


def test_all_correct_cells_have_an_interval_of_width_in_every_table():
    """Every question right, clean and adversarial, two samples each: every bootstrap in the
    report is constant, and every table still shows an interval of positive width."""
    rows = []
    for bench in ("medqa", "pubmedqa"):
        for sub in ("knowledge", "reasoning"):
            for i in range(6):
                prob = (0.1 if sub == "knowledge" else 0.55) + 0.07 * i
                for rep in range(2):
                    rows.append(SampleRow("m", "lm-eval", "t", bench, f"{bench}-{sub}-{i}", sub, prob, "h",
                                          None, None, "A", "x", "correct", repeat=rep))
                    rows += [SampleRow("m", "lm-eval", "t", bench, f"{bench}-{sub}-{i}", sub, prob, "h",
                                       "prefill", k, "A", "x", "correct", repeat=rep) for k in range(3)]
    d = analyse(rows, b=B).as_dict()
    found = _intervals(d)
    tables = {w.split("[")[0] for w, _, _ in found}
    assert tables == {"/accuracy", "/gaps", "/adversarial", "/adversarial_subsets", "/prob_bins",
                      "/threshold_sweep", "/repeats"}
    assert not [(w, lo, hi) for w, lo, hi in found if not lo < hi]
    assert all(r["drop"] == 0 and r["correct_to_wrong"] == r["wrong_to_correct"] == 0
               for r in d["adversarial"] if r["benchmark"] != "macro")  # a constant bootstrap
    for r in [r for r in d["gaps"] + d["threshold_sweep"] if r["gap"] is not None]:
        assert r["gap_ci_low"] < r["gap"] == 0 < r["gap_ci_high"]


def test_partial_run_report_has_no_zero_width_interval_below_30_questions(hub_dir, tmp_path):
    """Done-when of issue 12: an lm-eval run with ``--limit`` (partial, so only with
    --allow-partial) of a model the traces never move; every interval in every export
    (JSON tables, CSV, Markdown, the lm-eval results) of a cell under 30 questions has width."""
    from lm_eval_medsplit.report import write_report

    run = run_lm_eval(hub_dir, tmp_path / "lm", tag="stubborn-lm", benches=("medqa", "pubmedqa"), limit=6)
    with pytest.raises(InputError, match="--allow-partial"):
        build_report([run], b=B)
    rep = build_report([run], b=B, allow_partial=True)
    assert any("(--limit)" in n for n in rep.data.notes)
    # every cell of the report is small: 6 questions per task, 24 in all
    assert len({(r.benchmark, r.id) for r in rep.joined.rows}) < 30
    d = rep.data
    assert any(r["benchmark"] == "medqa" and r["accuracy"] == 1.0 for r in d.accuracy)  # all right
    assert any(r["drop"] == 0 and r["correct_to_wrong"] == r["wrong_to_correct"] == 0 for r in d.adversarial)
    out = tmp_path / "out"
    write_report(rep, out, formats=("json", "csv", "md", "lm-eval"))
    found = _intervals(json.loads((out / "report.json").read_text(encoding="utf-8")))
    assert {w.split("[")[0] for w, _, _ in found} >= {"/accuracy", "/gaps", "/adversarial",
                                                      "/adversarial_subsets", "/prob_bins", "/threshold_sweep"}
    for f in sorted((out / "lm_eval_results").rglob("results_medsplit.json")):
        found += [(f"{f.name}{w}", lo, hi) for w, lo, hi in
                  _intervals(json.loads(f.read_text(encoding="utf-8")))]
    assert any("acc_ci_low,score" in w for w, _, _ in found)
    for f in sorted((out / "csv").glob("*.csv")):
        with open(f, encoding="utf-8", newline="") as fh:
            for i, row in enumerate(csv.DictReader(fh)):
                found += [(f"{f.name}:{i}:{k}", float(v), float(row[k.replace("ci_low", "ci_high")]))
                          for k, v in row.items() if "ci_low" in k and v and row[k.replace("ci_low", "ci_high")]]
    zero = [(w, lo, hi) for w, lo, hi in found if not lo < hi]
    assert not zero, zero[:10]
    # Markdown shows "x [lo, hi]": never an interval of one value
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "\\[" in md and not re.search(r"\\\[([-+]?[\d.]+), \1\\\]", md)


def test_repeated_samples_give_question_means_maj_and_pass_at_k():
    from lm_eval_medsplit.report.stats import pass_at_k

    rows = []
    answers = {"q0": "AAB", "q1": "ABB", "q2": "BCD", "q3": "CCC", "q4": "A.A"}  # gold A; "." unparsed
    for q, preds in answers.items():
        for j, p in enumerate(preds):
            rows.append(SampleRow("m", "inspect", "t", "medqa", q, "knowledge", 0.2, "h", None, None,
                                  None if p == "." else p, "x",
                                  "unparsed" if p == "." else "correct" if p == "A" else "incorrect", repeat=j))
    d = analyse(rows, b=B)
    acc = next(r for r in d.accuracy if r["subset"] == "knowledge")
    per_q = [2 / 3, 1 / 3, 0, 0, 2 / 3]
    assert acc["accuracy"] == pytest.approx(np.mean(per_q)) and acc["questions"] == 5 and acc["n"] == 15
    assert acc["stderr"] == pytest.approx(np.std(per_q, ddof=1) / math.sqrt(5), abs=1e-6)
    rep = next(r for r in d.repeats if r["subset"] == "knowledge")
    assert rep["k"] == 3 and rep["questions"] == 5
    assert rep["pass@1"] == pytest.approx(np.mean(per_q))
    assert rep["maj@k"] == pytest.approx(np.mean([1, 0, 0, 0, 1]))
    assert rep["pass@k"] == pytest.approx(np.mean([1, 1, 0, 0, 1]))
    assert pass_at_k(np.array([3]), np.array([1]), 1)[0] == pytest.approx(1 / 3)
    assert rep["maj@k_ci_low"] < rep["maj@k"] < rep["maj@k_ci_high"]


def test_one_model_one_name_across_harnesses(lm_run, tmp_path):
    from lm_eval_medsplit.report.join import canonical_model

    p = tmp_path / "model"
    p.mkdir()
    assert canonical_model(f"hf/{p}", "inspect") == str(p.resolve())
    assert canonical_model(f"{p}/", "lm-eval") == str(p.resolve())
    assert canonical_model("hf/Qwen/Qwen3-8B", "inspect") == "Qwen/Qwen3-8B"
    assert canonical_model("openai-api/together/m1", "inspect") == "m1"
    assert canonical_model("Qwen/Qwen3-8B", "lm-eval") == "Qwen/Qwen3-8B"
    assert canonical_model(f"hf/{p} (loglikelihood)", "inspect") == f"{p.resolve()} (loglikelihood)"
    # an lm-eval run logged under the path, joined with itself logged under hf//path
    a = tmp_path / "a"
    shutil.copytree(lm_run, a)
    rf = _results_file(a)
    res = json.loads(rf.read_text())
    res["model_name"] = str(p) + "/"
    rf.write_text(json.dumps(res))
    rep = build_report([a], b=B)
    assert rep.data.models == [str(p.resolve())]
    assert any(n.startswith(f"model {str(p.resolve())!r}: joined") for n in rep.data.notes)


def test_names_from_logs_never_steer_a_path_outside_out(lm_run, tmp_path, capsys):
    from lm_eval_medsplit.cli import main

    bad = tmp_path / "bad"
    shutil.copytree(lm_run, bad)
    rf = _results_file(bad)
    res = json.loads(rf.read_text())
    res["model_name"] = ".."
    rf.write_text(json.dumps(res))
    for sfile in bad.rglob("samples_*_adversarial_*.jsonl"):
        lines = [json.loads(x) for x in sfile.read_text().splitlines()]
        for s in lines:
            s["doc"]["adversarial"] = "x/../../../../tmp/ABS_ESCAPE"
        sfile.write_text("\n".join(json.dumps(s) for s in lines) + "\n")
    out = tmp_path / "deep" / "out"
    before = {p for p in tmp_path.rglob("*")}
    escape = Path("/tmp/ABS_ESCAPE.yaml")
    escape.unlink(missing_ok=True)
    assert main(["report", str(bad), "--out", str(out), "--format", "md,csv,json,lm-eval,hf",
                 "--quiet", "--bootstrap", "200"]) == 0
    new = {p for p in tmp_path.rglob("*")} - before
    assert new and all(p == out or out in p.parents or p == out.parent for p in new)
    assert not escape.exists()


def test_markdown_and_csv_neutralise_strings_from_logs(lm_run, tmp_path):
    from lm_eval_medsplit.report import write_report

    evil = '=HYPERLINK("http://x")<script>alert(1)</script>'
    rep = build_report([lm_run], b=B, rename={LM_MODEL: evil})
    out = tmp_path / "out"
    write_report(rep, out, formats=("md", "csv"))
    md = (out / "report.md").read_text()
    assert "<script>" not in md and "\\<script\\>" in md
    with open(out / "csv" / "accuracy.csv", newline="") as f:
        cells = [r["model"] for r in csv.DictReader(f)]
    assert cells and all(c == "'" + evil for c in cells)


@pytest.mark.parametrize("case", ["utf16", "latin1", "configs_list", "deep", "huge_int", "surrogate",
                                  "sample_utf16", "sample_surrogate_id", "sample_deep"])
def test_bad_results_and_sample_files_give_one_line_errors(lm_run, tmp_path, capsys, case):
    from lm_eval_medsplit.cli import main

    d = tmp_path / case
    shutil.copytree(lm_run, d)
    rf = _results_file(d)
    sfile = sorted(d.rglob("samples_medsplit_medqa_knowledge_*.jsonl"))[0]
    text = rf.read_text(encoding="utf-8")
    target = rf
    if case == "utf16":
        rf.write_bytes(text.encode("utf-16"))
    elif case == "latin1":
        rf.write_bytes(text.replace('"model_name"', '"mod\u00e9l"').encode("latin-1", "replace"))
    elif case == "configs_list":
        res = json.loads(text)
        res["configs"] = list(res["configs"])
        rf.write_text(json.dumps(res))
    elif case == "deep":
        rf.write_text('{"configs": ' + "[" * 100000 + "]" * 100000 + "}")
    elif case == "huge_int":
        rf.write_text(text.replace('"configs"', '"big": ' + "9" * 5000 + ', "configs"', 1))
    elif case == "surrogate":
        res = json.loads(text)
        res["model_name"] = "\ud800"
        rf.write_text(json.dumps(res))
    else:
        target = sfile
        lines = sfile.read_text(encoding="utf-8").splitlines()
        if case == "sample_utf16":
            sfile.write_bytes("\n".join(lines).encode("utf-16"))
        elif case == "sample_surrogate_id":
            s = json.loads(lines[0])
            s["doc"]["id"] = "\udc80"
            sfile.write_text("\n".join([json.dumps(s)] + lines[1:]) + "\n")
        else:
            sfile.write_text("[" * 100000 + "]" * 100000 + "\n" + "\n".join(lines[1:]) + "\n")
    rc = main(["report", str(d), "--out", str(tmp_path / "o"), "--format", "md", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert target.name in err, err


def test_tiny_model_through_lm_eval_and_inspect_with_two_samples_feeds_every_consumer(
        tiny_model, hub_dir, tmp_path):
    """The done-when run: a real (tiny) model through lm-eval's ``hf`` backend with
    ``repeats: 2`` and through Inspect's ``hf/`` provider with ``epochs=2``; the report joins
    the two logged names into one model, computes pass@1 / maj@k / pass@k, and each export
    is accepted by the library that consumes it."""
    import lm_eval
    import lm_eval.models.huggingface  # noqa: F401  (registers "hf" beside the pattern model)
    from inspect_ai import eval as inspect_eval
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager

    from lm_eval_medsplit.inspect_tasks.tasks import medsplit
    from lm_eval_medsplit.report import write_report

    tm = TaskManager(include_path=str(REPO / "task_yaml"), include_defaults=False,
                     metadata={"source": str(hub_dir)})
    names = ["medsplit_pubmedqa_knowledge", "medsplit_pubmedqa_reasoning", "medsplit_pubmedqa_reasoning_adversarial"]
    tasks = tm.load_task_or_group(names)
    for t in tasks.values():  # lm-eval's `repeats`, set without editing the task YAML
        t.set_config(key="repeats", value=2)
    lm_out = tmp_path / "lm"
    tracker = EvaluationTracker(output_path=str(lm_out))
    res = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={tiny_model},dtype=float32", device="cpu",
                                  tasks=list(tasks.values()), limit=3, apply_chat_template=True,
                                  gen_kwargs="max_gen_toks=6,do_sample=True,temperature=1.0", batch_size=6,
                                  log_samples=True, evaluation_tracker=tracker, random_seed=1, numpy_random_seed=1,
                                  torch_random_seed=1)
    samples = res.pop("samples")
    tracker.save_results_aggregated(results=res, samples=samples)
    for name in res["configs"]:
        tracker.save_results_samples(task_name=name, samples=samples[name])
    (log,) = inspect_eval(medsplit(benchmarks="pubmedqa", source=str(hub_dir)), model=f"hf/{tiny_model}",
                          epochs=2, limit=4, max_tokens=6, log_dir=str(tmp_path / "inspect"), display="none")
    assert log.status == "success" and log.eval.model == f"hf/{tiny_model}"

    rep = build_report([lm_out, tmp_path / "inspect"], b=B, allow_partial=True)
    canon = str(Path(tiny_model).resolve())
    assert rep.data.models == [canon]
    assert any(n.startswith(f"model {canon!r}: joined") and "inspect" in n and "lm-eval" in n
               for n in rep.data.notes)
    # both runs are one model: the runs table lists both, and samples of one question in both
    # harnesses are counted once (the notes say so)
    assert {r["harness"] for r in rep.data.runs} == {"lm-eval", "inspect"}
    assert {r["model"] for r in rep.data.runs} == {canon}
    assert any("already read from" in n for n in rep.data.notes)
    assert {r.repeat for r in rep.joined.rows} == {0, 1}
    rows = [r for r in rep.data.repeats if r["subset"] == "all"]
    assert rows and rows[0]["k"] == 2 and 0 <= rows[0]["maj@k"] <= rows[0]["pass@k"] <= 1
    acc = next(r for r in rep.data.accuracy if r["subset"] == "knowledge" and r["condition"] == "clean")
    assert acc["n"] == 2 * acc["questions"]  # two samples a question, intervals over questions
    assert acc["ci_low"] < acc["ci_high"]

    out = tmp_path / "report"
    write_report(rep, out, formats=("lm-eval", "hf", "md", "csv", "json"))
    (folder,) = (out / "hf_eval_results").iterdir()
    check_hf_exports(folder, rep)
    (lm_folder,) = (out / "lm_eval_results").iterdir()
    res = check_lm_eval_export(lm_folder)
    assert res["configs"]["medsplit_pubmedqa_knowledge"]["repeats"] == 2
    again = build_report([out / "lm_eval_results"], b=B)
    assert [r["accuracy"] for r in again.data.accuracy] == [r["accuracy"] for r in rep.data.accuracy]


def test_runs_in_another_prompt_style_are_separate_models_said_and_exported(hub_dir, lm_run, tmp_path):
    """Issue 16: the report never averages runs made with different prompts. A paper-style
    run of the same model is its own row ("M (paper)"), the notes say so, and the lm-eval
    export and the HF notes carry the style."""
    paper = run_lm_eval(hub_dir, tmp_path / "paper", benches=("medqa",), modes=("",), style="paper")
    rep = build_report([lm_run, paper], b=B)
    models = set(rep.data.models)
    assert {LM_MODEL, f"{LM_MODEL} (paper)"} <= models, models
    assert any("prompt style" in n and f"{LM_MODEL} (paper)" in n for n in rep.data.notes)
    cot_rows = [r for r in rep.joined.rows if r.model == LM_MODEL and r.benchmark == "medqa" and not r.adversarial]
    paper_rows = [r for r in rep.joined.rows if r.model == f"{LM_MODEL} (paper)"]
    assert paper_rows and len(paper_rows) == len(cot_rows)  # nothing merged or dropped as a duplicate
    from lm_eval_medsplit.report import write_report

    out = tmp_path / "report"
    write_report(rep, out, formats=("json", "lm-eval", "hf"))
    exported = [json.loads(p.read_text()) for p in out.rglob("results_medsplit.json")]
    styles = {cfg["metadata"]["medsplit"]["prompt_style"]
              for res in exported for cfg in res["configs"].values()
              if cfg["metadata"]["medsplit"]["setting"] != "loglikelihood"}
    assert styles == {"cot", "paper"}, styles
    assert any("prompt style: paper" in p.read_text() for p in out.rglob("*.yaml"))
