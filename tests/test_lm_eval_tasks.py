"""lm-evaluation-harness tasks: generated YAMLs, docs and provenance, exact accuracies
with an in-process LM of known behaviour, log-likelihood requests, the adversarial
prefill, and `lm_eval` end to end on a tiny local HF model over real data."""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lm_eval")

import lm_eval.models  # noqa: E402,F401  (built-in backends first: a registry that is not empty is not filled lazily)
from hub_layout import write_hub_dir  # noqa: E402
from lm_eval.api.model import LM  # noqa: E402
from lm_eval.api.registry import register_model  # noqa: E402

from lm_eval_medsplit import lm_eval_tasks as lt  # noqa: E402
from lm_eval_medsplit._lm_eval_hook import PTH_LINE, PTH_NAME, augment_include_path  # noqa: E402
from lm_eval_medsplit.adversarial import N_TRACES, add_offline_traces  # noqa: E402
from lm_eval_medsplit.dataset import select  # noqa: E402
from lm_eval_medsplit.prompts import RECONSIDER_CUE, build_prompt  # noqa: E402
from lm_eval_medsplit.samples import METADATA_KEYS, score_fields  # noqa: E402
from lm_eval_medsplit.schema import dataset_hash  # noqa: E402
from lm_eval_medsplit.scoring import score  # noqa: E402
from lm_eval_medsplit.sources import resolve_source, write_jsonl  # noqa: E402
from lm_eval_medsplit.task_yaml import TASK_DIR, all_task_names  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = ("medqa", "pubmedqa", "mmlu_pro_health_biology")
REVISION = "test-rev"


def rule_label(record) -> None:
    """A deterministic stand-in for the classifier: probability from the content hash."""
    p = (int(record.content_hash()[:8], 16) % 1000) / 1000
    record.reasoning_prob, record.is_reasoning, record.reasoning_threshold = p, p >= 0.5, 0.5


def rule_labels(records) -> None:
    for r in records:
        rule_label(r)


@pytest.fixture(scope="session")
def hub_dir(raw_dir, tmp_path_factory) -> Path:
    return write_hub_dir(raw_dir, tmp_path_factory.mktemp("hub"), BENCHMARKS, label=rule_labels,
                         revision=REVISION)


@pytest.fixture(scope="session")
def source_records(hub_dir):
    """The records as the tasks should see them, read independently of the adapter."""
    src = resolve_source(hub_dir)
    return {b: src.load(b)[0] for b in BENCHMARKS}


@pytest.fixture(scope="session")
def task_manager(hub_dir):
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=TASK_DIR, include_defaults=False,
                       metadata={"source": str(hub_dir)})


# --------------------------------------------------------------------------- LMs


def _silent(doc_id: str) -> bool:
    """PatternLM's rule for refusing to answer: a fixed quarter of the ids."""
    return int(hashlib.sha256(doc_id.encode()).hexdigest()[0], 16) < 4


@register_model("medsplit-pattern")
class PatternLM(LM):
    """Answers 'Answer: A' after a line of reasoning, except for a fixed quarter of the
    questions where it gives no answer; for log-likelihood it prefers the letter A."""

    def __init__(self, **kwargs):
        super().__init__()
        self.contexts: list[tuple[dict, str]] = []

    def generate_until(self, requests, disable_tqdm: bool = False):
        out = []
        for req in requests:
            ctx, _ = req.args
            self.contexts.append((req.doc, ctx))
            out.append("I am not sure about this one." if _silent(str(req.doc["id"]))
                       else "Looking at the findings step by step.\nAnswer: A")
        return out

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        self.contexts.extend((req.doc, req.args[0]) for req in requests)
        return [(0.0 if req.args[1].strip() == "A" else -5.0, False) for req in requests]

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        return [0.0 for _ in requests]


def _expected_generation(records, subset: str, limit: int, adversarial: bool):
    """acc/parsed (and per-trace acc) PatternLM must get on the first ``limit`` docs."""
    recs = select(records, subset)
    units = [(r, k) for r in recs for k in range(N_TRACES)] if adversarial else [(r, None) for r in recs]
    units = units[:limit]
    correct = [(not _silent(r.id)) and r.answer_idx == "A" for r, _ in units]
    out = {"n": len(units), "acc": sum(correct) / len(units),
           "parsed": sum(not _silent(r.id) for r, _ in units) / len(units), "correct": sum(correct)}
    if adversarial:
        for k in range(N_TRACES):
            ck = [c for c, (_, kk) in zip(correct, units) if kk == k]
            out[f"acc_trace{k}"] = sum(ck) / len(ck)
    return out


# --------------------------------------------------------------------------- YAMLs


def test_generated_yamls_are_fresh():
    sys.path.insert(0, str(REPO / "task_yaml"))
    try:
        import _generate_configs as gen
    finally:
        sys.path.pop(0)
    assert gen.stale(Path(TASK_DIR)) == [], "run `python task_yaml/_generate_configs.py`"
    names = set(gen.render())
    assert {f"{t}.yaml" for t in all_task_names()} <= names
    assert len(all_task_names()) == 11 * 6


def test_index_has_every_task_and_group(task_manager):
    tasks = set(task_manager.all_subtasks)
    assert tasks == set(all_task_names())
    groups = set(task_manager.all_groups)
    for g in ("medsplit_reasoning", "medsplit_knowledge", "medsplit_adversarial",
              "medsplit_reasoning_adversarial", "medsplit_knowledge_adversarial", "medsplit_mc",
              "medsplit_reasoning_mc", "medsplit_knowledge_mc", "medsplit_medqa",
              "medsplit_medqa_adversarial", "medsplit_gpqa_medical", "medsplit_nejm_mc"):
        assert g in groups, g
    # collections of clean and adversarial tasks are tags: no aggregate
    tags = set(task_manager.all_tags)
    assert {"medsplit", "medsplit_medqa_all"} <= tags and "medsplit" not in groups


def _yaml_configs() -> dict[str, dict]:
    """Every generated YAML of task_yaml/, parsed (``!function`` tags read as strings)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))
    return {p.name: yaml.load(p.read_text(), Loader=Loader) for p in Path(TASK_DIR).glob("*.yaml")}


def test_no_group_aggregates_clean_and_adversarial_docs_together():
    configs = _yaml_configs()
    tasks = {c["task"]: c for c in configs.values() if "task" in c and isinstance(c["task"], str)}
    groups = {c["group"]: c for c in configs.values() if "group" in c}
    assert len(tasks) == 11 * 6 and len(groups) >= 11 * 3

    def leaves(name: str) -> set[str]:
        if name in tasks:
            return {name}
        return set().union(*(leaves(m) for m in groups[name]["task"]))

    kinds = {}
    for g, cfg in groups.items():
        modes = {tasks[t]["dataset_kwargs"]["mode"] for t in leaves(g)}
        assert cfg.get("aggregate_metric_list"), g
        assert len(modes) == 1, (g, modes)  # clean, adversarial or log-likelihood: never mixed
        kinds[g] = modes.pop()
    assert kinds["medsplit_medqa"] == "cot" and kinds["medsplit_medqa_adversarial"] == "adversarial"
    assert kinds["medsplit_reasoning"] == "cot" and kinds["medsplit_adversarial"] == "adversarial"
    # the mixed collections are tags on the tasks themselves
    tagged = {t for t, c in tasks.items() if "medsplit" in (c.get("tag") or [])}
    assert tagged == set(all_task_names(modes=("cot", "adversarial")))
    # the per-trace accuracies are plain means, so lm-eval gives them a standard error
    adv = tasks["medsplit_medqa_reasoning_adversarial"]
    assert {m["metric"]: m["aggregation"] for m in adv["metric_list"]}["acc_trace2"] == "mean"


def test_generation_stops_at_end_of_turn_markers(task_manager):
    task = task_manager.load_task_or_group(["medsplit_medqa_reasoning_adversarial"])
    (t,) = task.values()
    kw = t.config.generation_kwargs
    assert {"<|im_end|>", "<|eot_id|>", "<｜end▁of▁sentence｜>"} <= set(kw["until"])
    assert kw["do_sample"] is False and kw["max_gen_toks"] == 4096
    assert "\n\n" not in kw["until"]  # a step-by-step answer has paragraphs


def test_every_group_builds_and_weights_its_leaf_tasks(raw_dir, tmp_path):
    """All 11 benchmarks (the four hub-only ones filled with real questions borrowed from
    local benchmarks): `medsplit` and `medsplit_mc` build with every task once, and the
    top group's acc is the size-weighted mean of its leaf tasks."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    from lm_eval_medsplit.registry import BENCHMARKS

    src = resolve_source(raw_dir)
    local = src.benchmarks()
    out = tmp_path / "all11"
    for i, b in enumerate(BENCHMARKS):
        records, _ = src.load(b.name if b.name in local else local[i % len(local)])
        records = [r for r in records if len(r.options) <= b.max_options][:12]
        for r in records:
            r.benchmark = b.name
            rule_label(r)
        add_offline_traces(records)
        write_jsonl(records, out / b.config / "test.jsonl")
    (out / "manifest.json").write_text(json.dumps({"revision": REVISION}))
    tm = TaskManager(include_path=TASK_DIR, include_defaults=False, metadata={"source": str(out)})
    res = lm_eval.simple_evaluate(
        model=PatternLM(), tasks=["medsplit_reasoning", "medsplit_knowledge", "medsplit_adversarial",
                                  "medsplit_mc"],
        task_manager=tm, limit=4, bootstrap_iters=0)
    gen = all_task_names(modes=("cot", "adversarial"))
    assert set(gen) | set(all_task_names(modes=("mc",))) == {
        k for k in res["results"] if k not in res.get("groups", {})}
    for g in ("medsplit_reasoning", "medsplit_knowledge", "medsplit_adversarial",
              "medsplit_reasoning_adversarial", "medsplit_mc", "medsplit_knowledge_mc"):
        assert g in res["groups"], g
    for g, mode in (("medsplit_reasoning", "cot"), ("medsplit_adversarial", "adversarial")):
        leaves = [res["results"][t] for t in all_task_names(modes=(mode,))
                  if g == "medsplit_adversarial" or t.endswith("_reasoning")]
        weighted = sum(r["acc,score"] * r["sample_len"] for r in leaves) / sum(r["sample_len"] for r in leaves)
        assert res["groups"][g]["acc,score"] == pytest.approx(weighted, abs=1e-12), g
    assert "acc_trace2,score" in res["groups"]["medsplit_adversarial"]
    # the `medsplit` tag runs every generative task and adds no aggregate row
    tagged = lm_eval.simple_evaluate(model=PatternLM(), tasks=["medsplit"], task_manager=tm, limit=1,
                                     bootstrap_iters=0)
    assert set(tagged["results"]) == set(gen) and not tagged.get("groups")


# --------------------------------------------------------------------------- docs


def test_docs_carry_the_sample_contract_and_provenance(task_manager, source_records, hub_dir):
    from lm_eval_medsplit.dataset import load_eval_records

    loaded = task_manager.load(["medsplit_medqa_reasoning", "medsplit_medqa_knowledge_adversarial"])
    # the process-wide cached set the docs were built from is left untouched
    shared = load_eval_records("medqa", resolve_source(hub_dir), shared=True)
    assert all("content_hash" not in vars(r) for r in shared.records)
    clean = loaded["tasks"]["medsplit_medqa_reasoning"]
    recs = select(source_records["medqa"], "reasoning")
    assert [d["id"] for d in clean.eval_docs] == [r.id for r in recs]
    d0, r0 = clean.eval_docs[0], recs[0]
    assert set(METADATA_KEYS) | set(lt.DOC_FIELDS) <= set(d0)
    assert d0["record_hash"] == r0.content_hash() and d0["subset"] == "reasoning"
    assert d0["adversarial"] is None and d0["trace_index"] is None
    assert clean.doc_to_text(d0) == build_prompt(r0, "cot").user_text
    assert "<|im_end|>" in clean.config.generation_kwargs["until"]  # end-of-turn markers only
    prov = clean.config.metadata["medsplit"]
    assert prov["source"]["location"] == str(resolve_source(prov["source"]["location"]).location)
    assert prov["revision"] == REVISION
    assert prov["source_content_hash"] == dataset_hash(source_records["medqa"])
    assert prov["content_hash"] == dataset_hash(source_records["medqa"])  # labels came with the data
    assert prov["labels_from"] == "source" and prov["n_docs"] == len(recs)

    adv = loaded["tasks"]["medsplit_medqa_knowledge_adversarial"]
    krecs = select(source_records["medqa"], "knowledge")
    assert len(adv.eval_docs) == N_TRACES * len(krecs)
    for d in adv.eval_docs[: 2 * N_TRACES]:
        r = next(x for x in krecs if x.id == d["id"])
        assert d["adversarial"] == "prefill" and d["adversarial_source"] == "offline-template"
        assert d["prefill"] == build_prompt(r, adversarial="prefill", trace_index=d["trace_index"]).prefill
    assert [d["trace_index"] for d in adv.eval_docs[:6]] == [0, 1, 2, 0, 1, 2]


def test_raw_source_is_labelled_and_traced_on_the_fly(raw_dir, tmp_path, monkeypatch):
    pytest.importorskip("lm_eval_medsplit.classifier")
    monkeypatch.setenv("MEDSPLIT_CACHE", str(tmp_path / "cache"))
    try:
        docs, prov = lt.load_task_docs("medbullets_op4", "knowledge", "adversarial",
                                       {"source": str(raw_dir)})
    except FileNotFoundError as e:  # classifier artefact not built in this checkout
        pytest.skip(str(e))
    assert prov["source"]["kind"] == "raw_dir" and prov["labels_from"].startswith("classifier:")
    assert prov["traces_from"] == "offline-template"
    assert prov["n_records"] == 308 and len(docs) == N_TRACES * prov["n_subset_records"]
    assert all(d["subset"] == "knowledge" and d["is_reasoning"] is False for d in docs)


def test_source_from_metadata_wins_over_environment(hub_dir, raw_dir, tmp_path, monkeypatch):
    small = write_hub_dir(raw_dir, tmp_path / "small", ("pubmedqa",), label=rule_labels,
                          revision=REVISION, limit=40)
    monkeypatch.setenv("MEDSPLIT_SOURCE", str(small))
    docs, prov = lt.load_task_docs("pubmedqa", "knowledge", "cot", {})
    assert prov["source"]["location"] == str(small.resolve()) and prov["n_records"] == 40
    docs, prov = lt.load_task_docs("pubmedqa", "knowledge", "cot", {"source": str(hub_dir)})
    assert prov["source"]["location"] == str(hub_dir.resolve()) and prov["n_records"] == 1000


def test_record_without_its_trace_is_an_error_naming_it(raw_dir, tmp_path):
    victim = {}

    def strip_traces(name, records):
        r = next(x for x in records if x.is_reasoning)
        r.adversarial_traces = r.adversarial_traces[:1]
        victim["id"] = r.id

    src = write_hub_dir(raw_dir, tmp_path / "hub", ("pubmedqa",), label=rule_labels,
                        revision=REVISION, limit=30, edit=strip_traces)
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=TASK_DIR, include_defaults=False, metadata={"source": str(src)})
    with pytest.raises(ValueError) as e:
        tm.load(["medsplit_pubmedqa_reasoning_adversarial"])
    assert repr(victim["id"]) in str(e.value) and "trace 1" in str(e.value)
    # the clean tasks of the same source are unaffected
    assert len(tm.load(["medsplit_pubmedqa_reasoning"])["tasks"]["medsplit_pubmedqa_reasoning"].eval_docs) > 0


def test_benchmark_missing_from_a_local_source_is_a_clear_error(task_manager):
    with pytest.raises(lt.MedsplitTaskError, match="no 'gpqa_medical' benchmark.*medsplit lm-eval tasks"):
        task_manager.load(["medsplit_gpqa_medical_reasoning"])


# --------------------------------------------------------------------------- exact accuracies


def test_pattern_lm_exact_accuracy_for_a_task_and_a_group(task_manager, source_records):
    import lm_eval

    limit = 20
    lm = PatternLM()
    # num_fewshot is ignored (num_fewshot: 0 in the YAMLs): the contexts checked below have no shots
    res = lm_eval.simple_evaluate(model=lm, tasks=["medsplit_pubmedqa", "medsplit_pubmedqa_adversarial"],
                                  task_manager=task_manager, limit=limit, log_samples=True,
                                  bootstrap_iters=100, num_fewshot=3)
    recs = source_records["pubmedqa"]
    totals = {False: [0, 0, 0.0], True: [0, 0, 0.0]}  # correct, n, parsed
    for subset in ("reasoning", "knowledge"):
        for adv in (False, True):
            name = f"medsplit_pubmedqa_{subset}" + ("_adversarial" if adv else "")
            exp = _expected_generation(recs, subset, limit, adv)
            got = res["results"][name]
            assert got["acc,score"] == pytest.approx(exp["acc"], abs=1e-12), name
            assert got["parsed,score"] == pytest.approx(exp["parsed"], abs=1e-12), name
            if adv:
                for k in range(N_TRACES):
                    assert got[f"acc_trace{k},score"] == pytest.approx(exp[f"acc_trace{k}"], abs=1e-12)
                    # a real standard error: the per-trace docs are one per question
                    vals = [s["acc"] for s in res["samples"][name] if s["doc"]["trace_index"] == k]
                    assert [s.get(f"acc_trace{k}") for s in res["samples"][name]
                            if s["doc"]["trace_index"] == k] == vals
                    assert got[f"acc_trace{k}_stderr,score"] == pytest.approx(
                        statistics.stdev(vals) / len(vals) ** 0.5, abs=1e-12)
            totals[adv][0] += exp["correct"]
            totals[adv][1] += exp["n"]
            totals[adv][2] += exp["parsed"] * exp["n"]
            # every logged sample: the extracted letter in filtered_resps, and the scoring
            # core's verdict on that very output in the doc
            for s in res["samples"][name]:
                text = s["resps"][0][0]
                doc = s["doc"]
                expected = score_fields(score(text, dict(zip(doc["letters"], doc["options"])),
                                              doc["answer_idx"]))
                assert doc[lt.SCORE_KEY] == {**expected, "style": "cot"} == doc[lt.SCORES_KEY][0]
                assert s["filtered_resps"] == [expected["pred"] or lt.INVALID]
                assert s["acc"] == (1.0 if expected["correct"] else 0.0)
                assert set(METADATA_KEYS) <= set(doc)
    for g, adv in (("medsplit_pubmedqa", False), ("medsplit_pubmedqa_adversarial", True)):
        group = res["groups"][g]
        correct, n, parsed = totals[adv]
        assert group["acc,score"] == pytest.approx(correct / n, abs=1e-12)
        assert group["parsed,score"] == pytest.approx(parsed / n, abs=1e-12)
        assert isinstance(group["acc_stderr,score"], float)
    assert set(res["group_subtasks"]["medsplit_pubmedqa"]) == {
        "medsplit_pubmedqa_reasoning", "medsplit_pubmedqa_knowledge"}
    assert set(res["group_subtasks"]["medsplit_pubmedqa_adversarial"]) == {
        "medsplit_pubmedqa_reasoning_adversarial", "medsplit_pubmedqa_knowledge_adversarial"}
    assert isinstance(res["groups"]["medsplit_pubmedqa_adversarial"]["acc_trace1_stderr,score"], float)
    # provenance is in the results
    prov = res["configs"]["medsplit_pubmedqa_reasoning_adversarial"]["metadata"]["medsplit"]
    assert prov["revision"] == REVISION and prov["content_hash"] == dataset_hash(recs)
    # without a chat template the adversarial context is the user turn, then the prefill
    adv_ctx = [(d, c) for d, c in lm.contexts if d["adversarial"]]
    assert adv_ctx
    for doc, ctx in adv_ctx:
        rec = next(r for r in recs if r.id == doc["id"])
        p = build_prompt(rec, adversarial="prefill", trace_index=doc["trace_index"])
        assert ctx == p.user_text + "\n\n" + p.prefill
        assert ctx.endswith(RECONSIDER_CUE)


def test_mc_tasks_request_every_option_and_score_exactly(task_manager, source_records):
    import lm_eval

    limit = 25
    lm = PatternLM()
    res = lm_eval.simple_evaluate(model=lm, tasks=["medsplit_mmlu_pro_health_biology_mc"],
                                  task_manager=task_manager, limit=limit, log_samples=True,
                                  bootstrap_iters=0)
    recs = source_records["mmlu_pro_health_biology"]
    n_correct = n = 0
    for subset in ("reasoning", "knowledge"):
        name = f"medsplit_mmlu_pro_health_biology_{subset}_mc"
        first = select(recs, subset)[:limit]
        exp = sum(r.answer_idx == "A" for r in first) / len(first)
        assert res["results"][name]["acc,none"] == pytest.approx(exp, abs=1e-12)
        assert res["results"][name]["acc_norm,none"] == pytest.approx(exp, abs=1e-12)
        n_correct += sum(r.answer_idx == "A" for r in first)
        n += len(first)
        for s in res["samples"][name]:
            rec = next(r for r in first if r.id == s["doc"]["id"])
            conts = [a[1] for a in s["arguments"]]
            assert conts == [f" {x}" for x in rec.options]  # one request per option
            assert all(a[0].endswith("\nAnswer:") and rec.question.strip()[:40] in a[0]
                       for a in s["arguments"])
    assert len({len(r.options) for r in recs}) > 1  # option counts vary in this benchmark
    assert res["groups"]["medsplit_mmlu_pro_health_biology_mc"]["acc,none"] == pytest.approx(
        n_correct / n, abs=1e-12)


class BoxedLM(LM):
    """Answers in the paper's form: ``\\boxed{<option text>}`` of option B, or of the gold
    option for a fixed quarter of the ids; records every context. With ``repeats`` it
    alternates letter answers A / B call by call."""

    def __init__(self, alternate: bool = False):
        super().__init__()
        self.contexts: list[str] = []
        self.alternate = alternate
        self.calls = 0

    def generate_until(self, requests, disable_tqdm: bool = False):
        out = []
        for req in requests:
            self.contexts.append(req.args[0])
            self.calls += 1
            doc = req.doc
            if self.alternate:
                out.append(f"Answer: {'AB'[self.calls % 2]}")
                continue
            letter = doc["answer_idx"] if _silent(str(doc["id"])) else "B"
            text = doc["options"][doc["letters"].index(letter)]
            out.append(f"Reasoning step by step.\nThe final answer is \\boxed{{{text}}}.")
        return out

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError


def test_paper_style_through_metadata(hub_dir, source_records):
    import lm_eval
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=TASK_DIR, include_defaults=False,
                     metadata={"source": str(hub_dir), "style": "paper"})
    lm = BoxedLM()
    name = "medsplit_medqa_knowledge"
    res = lm_eval.simple_evaluate(model=lm, tasks=[name], task_manager=tm, limit=16,
                                  log_samples=True, bootstrap_iters=0)
    recs = {r.id: r for r in source_records["medqa"]}
    samples = res["samples"][name]
    assert len(samples) == 16
    for s, ctx in zip(samples, lm.contexts):
        r = recs[s["doc"]["id"]]
        assert ctx == build_prompt(r, "paper").user_text  # the paper's prompt, options once
        assert ctx.endswith("within \\boxed{}.") and ctx.count("\nA. ") == 1
        expected = score_fields(score(s["resps"][0][0], r.options, r.answer_idx, style="paper"))
        assert s["doc"][lt.SCORE_KEY] == {**expected, "style": "paper"}
        assert expected["parsed"] and expected["method"] == "boxed"
        assert s["acc"] == (1.0 if expected["correct"] else 0.0)
    assert 0 < sum(s["acc"] for s in samples) < len(samples)
    prov = res["configs"][name]["metadata"]["medsplit"]
    assert prov["prompt_style"] == "paper" and "style='paper'" in prov["scorer"]
    # an unknown style is refused in --metadata syntax
    bad = TaskManager(include_path=TASK_DIR, include_defaults=False,
                      metadata={"source": str(hub_dir), "style": "boxed"})
    with pytest.raises(lt.MedsplitTaskError, match=r"""--metadata '\{"style": "boxed"\}'.*"paper"""):
        bad.load([name])


def test_repeats_through_metadata_reach_every_logged_sample(hub_dir):
    import lm_eval
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=TASK_DIR, include_defaults=False,
                     metadata={"source": str(hub_dir), "repeats": 2})
    lm = BoxedLM(alternate=True)
    name = "medsplit_pubmedqa_reasoning_adversarial"
    res = lm_eval.simple_evaluate(model=lm, tasks=[name], task_manager=tm, limit=6,
                                  log_samples=True, bootstrap_iters=0)
    assert lm.calls == 12 and res["configs"][name]["repeats"] == 2
    assert res["configs"][name]["metadata"]["medsplit"]["repeats"] == 2
    keys = set()
    for s in res["samples"][name]:
        doc = s["doc"]
        keys.add((doc["benchmark"], doc["id"], doc["trace_index"]))  # the question (and trace) id
        assert len(s["resps"][0]) == 2 and sorted(s["filtered_resps"][0]) == ["A", "B"]
        scores = doc[lt.SCORES_KEY]  # one entry per repeat, in repeat order
        assert [f["pred"] for f in scores] == s["filtered_resps"][0]
        assert s["acc"] == pytest.approx(sum(f["correct"] for f in scores) / 2)
    assert len(keys) == 6
    with pytest.raises(lt.MedsplitTaskError, match="repeats must be a whole number"):
        TaskManager(include_path=TASK_DIR, include_defaults=False,
                    metadata={"source": str(hub_dir), "repeats": "two"}).load([name])


class ThinkingLM(LM):
    """A reasoning model behind a template whose generation prompt opens <think> (as R1
    distills do): its outputs start inside the block. Odd ids run out of tokens mid-think."""

    tokenizer_name = "opens-think"

    def __init__(self):
        super().__init__()
        self.contexts: list[str] = []

    def apply_chat_template(self, chat_history, add_generation_prompt=True) -> str:
        turns = "".join(f"<|{m['role']}|>{m['content']}" for m in chat_history)
        return turns + ("<|assistant|><think>\n" if add_generation_prompt else "")

    def generate_until(self, requests, disable_tqdm: bool = False):
        out = []
        for req in requests:
            self.contexts.append(req.args[0])
            odd = int(hashlib.sha256(str(req.doc["id"]).encode()).hexdigest(), 16) % 2
            out.append("Hmm, the answer is A. Wait, let me check the" if odd
                       else "The answer is A.\n</think>\n\nAnswer: A")
        return out

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError


def test_a_think_opened_by_the_template_and_left_unfinished_is_unparsed(task_manager, source_records):
    import lm_eval

    lm = ThinkingLM()
    res = lm_eval.simple_evaluate(model=lm, tasks=["medsplit_pubmedqa_reasoning"], task_manager=task_manager,
                                  limit=12, log_samples=True, bootstrap_iters=0, apply_chat_template=True)
    assert all(c.endswith("<|assistant|><think>\n") for c in lm.contexts)
    samples = res["samples"]["medsplit_pubmedqa_reasoning"]
    for s in samples:
        fields = s["doc"][lt.SCORE_KEY]
        finished = "</think>" in s["resps"][0][0]
        assert s["doc"][lt.THINK_OPENED] is True
        assert fields["parsed"] is finished and fields["method"] == ("answer_phrase" if finished else "truncated_think")
    assert 0 < sum("</think>" in s["resps"][0][0] for s in samples) < len(samples)
    # without a template nothing is opened for the model: the same text is read as it is
    plain = lm_eval.simple_evaluate(model=ThinkingLM(), tasks=["medsplit_pubmedqa_reasoning"],
                                    task_manager=task_manager, limit=12, log_samples=True, bootstrap_iters=0)
    assert all(s["doc"][lt.THINK_OPENED] is False and s["doc"][lt.SCORE_KEY]["parsed"]
               and s["filtered_resps"] == ["A"] for s in plain["samples"]["medsplit_pubmedqa_reasoning"])


def test_score_filter_and_process_results_directly():
    doc = {"adversarial": "prefill", "trace_index": 1, "letters": ["A", "B"], "options": ["x", "y"],
           "answer_idx": "B"}
    out = lt.process_results(doc, ["so the answer is B"])  # raw text: scored here
    assert out == {"acc": 1.0, "parsed": 1.0, "acc_trace1": 1.0}  # only its own trace's key
    # the score filter: the letter (or [invalid]) per doc, a list of letters for repeats
    one, many = {**doc}, {**doc}
    (a,), (b,) = lt.ScoreFilter().apply([["Answer: A"]], [one]), lt.ScoreFilter().apply(
        [["Answer: B", "no idea", "Answer: A"]], [many])
    assert a == "A" and isinstance(a, lt.Answer) and one[lt.SCORE_KEY]["method"] == "answer_phrase"
    assert b == ["B", lt.INVALID, "A"] and [f["outcome"] for f in many[lt.SCORES_KEY]] == [
        "correct", "unparsed", "incorrect"]
    assert lt.process_results(one, [a]) == {"acc": 0.0, "parsed": 1.0, "acc_trace1": 0.0}
    assert lt.process_results(many, [b]) == pytest.approx({"acc": 1 / 3, "parsed": 2 / 3, "acc_trace1": 1 / 3})
    assert lt.trace_mean([None, 1.0, 0.0, None, 1.0]) == pytest.approx(2 / 3)  # older YAMLs
    # reasoning models: only the text after </think> counts; an unfinished think is unparsed
    clean = {**doc, "adversarial": None, "trace_index": None}
    assert lt.process_results(clean, ["<think>maybe the answer is A</think>\nAnswer: B"]) == {
        "acc": 1.0, "parsed": 1.0}
    assert lt.process_results(clean, ["<think>so the answer is B, but"]) == {"acc": 0.0, "parsed": 0.0}


# --------------------------------------------------------------------------- registration


def test_include_path_augmentation():
    assert augment_include_path(None, include_defaults=False) is None
    assert augment_include_path(None) == [TASK_DIR]
    assert augment_include_path("/mine") == [TASK_DIR, "/mine"]  # user tasks still win
    assert augment_include_path([TASK_DIR]) == [TASK_DIR]


@pytest.mark.parametrize("switch", [None, "0"])
def test_pth_hook_patches_task_manager_unless_switched_off(tmp_path, switch):
    (tmp_path / PTH_NAME).write_text(PTH_LINE)
    env = {k: v for k, v in os.environ.items() if k != "MEDSPLIT_LM_EVAL_AUTOREGISTER"}
    if switch:
        env["MEDSPLIT_LM_EVAL_AUTOREGISTER"] = switch
    code = ("import site, sys; site.addsitedir(sys.argv[1]); import lm_eval.tasks as t; "
            "print(getattr(t.TaskManager.__init__, '_medsplit_autoregister', False))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                         text=True, check=True, env=env, cwd=tmp_path)
    assert out.stdout.strip() == ("False" if switch else "True"), out.stderr


def test_command_path_tasks_register_unregister(tmp_path, hub_dir):
    from lm_eval_medsplit.cli import main

    def run(*argv):
        return subprocess.run([sys.executable, "-m", "lm_eval_medsplit.cli", *argv],
                              capture_output=True, text=True, check=True).stdout.strip()

    assert run("lm-eval", "path") == TASK_DIR
    names = run("lm-eval", "tasks", "--source", str(hub_dir), "--mode", "cot").split(",")
    assert names == all_task_names(list(BENCHMARKS), modes=("cot",))
    assert main(["lm-eval", "register", "--site-packages", str(tmp_path)]) == 0
    assert (tmp_path / PTH_NAME).read_text() == PTH_LINE
    assert main(["lm-eval", "unregister", "--site-packages", str(tmp_path)]) == 0
    assert not (tmp_path / PTH_NAME).exists()


# --------------------------------------------------------------------------- lm_eval + tiny HF model


def test_lm_eval_hf_backend_on_a_tiny_model_with_chat_template(tiny_model, task_manager, tmp_path,
                                                              source_records):
    """The real `hf` backend, run the way `lm_eval --log_samples --output_path` runs it
    (simple_evaluate + EvaluationTracker); the CLI itself is exercised, with no
    --include_path, by tests/test_lm_eval_install.py."""
    import lm_eval
    from lm_eval.loggers import EvaluationTracker

    tasks = ["medsplit_pubmedqa_reasoning", "medsplit_pubmedqa_reasoning_adversarial"]
    out = tmp_path / "out"
    tracker = EvaluationTracker(output_path=str(out))
    results = lm_eval.simple_evaluate(
        model="hf", model_args=f"pretrained={tiny_model},dtype=float32", device="cpu",
        tasks=tasks, task_manager=task_manager, limit=3, apply_chat_template=True,
        gen_kwargs="max_gen_toks=8", batch_size=3, log_samples=True,
        evaluation_tracker=tracker)
    samples_by_task = results.pop("samples")
    tracker.save_results_aggregated(results=results, samples=samples_by_task)
    for name in tasks:
        tracker.save_results_samples(task_name=name, samples=samples_by_task[name])
    (results_file,) = out.rglob("results_*.json")
    results = json.loads(results_file.read_text())
    for name in tasks:
        prov = results["configs"][name]["metadata"]["medsplit"]
        assert prov["revision"] == REVISION
        assert prov["content_hash"] == dataset_hash(source_records["pubmedqa"])
        assert results["configs"][name]["generation_kwargs"]["max_gen_toks"] == 8
        (samples_file,) = [p for p in out.rglob(f"samples_{name}_*.jsonl")
                           if p.name[len(f"samples_{name}_"):][:1].isdigit()]
        samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
        assert len(samples) == 3
        for s in samples:
            doc = s["doc"]
            text = s["resps"][0][0]
            expected = score_fields(score(text, dict(zip(doc["letters"], doc["options"])), doc["answer_idx"]))
            assert doc[lt.SCORE_KEY] == {**expected, "style": "cot"}
            assert s["filtered_resps"] == [expected["pred"] or lt.INVALID]
            assert s["acc"] == (1.0 if expected["correct"] else 0.0)
            assert s["parsed"] == (1.0 if expected["parsed"] else 0.0)
            prompt = s["arguments"]["gen_args_0"]["arg_0"]
            assert build_prompt(doc_rec := lt.doc_record(doc)).user_text in prompt, doc_rec.id
            if doc["adversarial"]:
                # the trace opens the assistant turn, which the model continues
                assert "<|assistant|>\n" + doc["prefill"] in prompt
                assert prompt.endswith(doc["prefill"]) and doc["prefill"].endswith(RECONSIDER_CUE)
            else:
                assert prompt.endswith("<|assistant|>\n")
        assert results["results"][name]["acc,score"] == pytest.approx(
            sum(s["acc"] for s in samples) / len(samples))
