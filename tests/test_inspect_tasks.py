"""The Inspect adapter end to end on real data: `inspect eval` (CLI) and `inspect_ai.eval`
(Python) with an offline pattern model whose accuracy is known exactly, a tiny local HF
model (`hf/PATH`), adversarial turns, the prefill rule, and scorer parity with the
scoring core on real GPT-4o outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import inspect_mock_provider as mock  # noqa: E402  (registers the test providers)
from hub_layout import write_hub_dir  # noqa: E402
from inspect_ai import eval as inspect_eval  # noqa: E402
from inspect_ai.log import read_eval_log  # noqa: E402

from lm_eval_medsplit import scoring  # noqa: E402
from lm_eval_medsplit.dataset import load_eval_records  # noqa: E402
from lm_eval_medsplit.inspect_tasks import dataset as ids  # noqa: E402
from lm_eval_medsplit.inspect_tasks.record_to_sample import record_to_sample  # noqa: E402
from lm_eval_medsplit.inspect_tasks.solver import prefill_support  # noqa: E402
from lm_eval_medsplit.inspect_tasks.tasks import (  # noqa: E402
    medsplit,
    medsplit_adversarial,
    medsplit_knowledge,
    medsplit_reasoning,
)
from lm_eval_medsplit.prompts import (  # noqa: E402
    RECONSIDER_REQUEST,
    MissingTraceError,
    build_prompt,
    prefill_text,
)
from lm_eval_medsplit.samples import sample_metadata  # noqa: E402
from lm_eval_medsplit.sources import resolve_source  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
BENCHES = ("medqa", "pubmedqa", "medbullets_op5")
N_PER_BENCH = 20
INSPECT = str(Path(sys.executable).with_name("inspect"))


def _label(records):
    """A simple deterministic labelling rule (the classifier is tested elsewhere): the
    longer half of a benchmark's questions is "reasoning"."""
    median = sorted(len(r.question) for r in records)[len(records) // 2]
    for r in records:
        r.reasoning_prob = round(min(1.0, 0.5 * len(r.question) / median), 4)
        r.reasoning_threshold = 0.5
        r.is_reasoning = len(r.question) >= median


@pytest.fixture(scope="session")
def hub_dir(raw_dir, tmp_path_factory) -> Path:
    return write_hub_dir(raw_dir, tmp_path_factory.mktemp("inspect_hub"), BENCHES, label=_label,
                         revision="test-rev-1", limit=N_PER_BENCH)


@pytest.fixture(scope="session")
def records(hub_dir):
    """Sample-id-free view: benchmark -> records, loaded the way the tasks load them."""
    return {b: load_eval_records(b, str(hub_dir)).records for b in BENCHES}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDSPLIT_CACHE", str(tmp_path / "cache"))


def expected_correct(record) -> bool:
    """What the pattern model's answer scores, derived without the scoring core."""
    kind = mock.pattern_kind(build_prompt(record, "cot").user_text)
    return mock.PATTERN_LETTERS[kind] == record.answer_idx


def expected_metrics(recs) -> dict[str, float]:
    groups: dict[str, list[bool]] = defaultdict(list)
    for r in recs:
        ok = expected_correct(r)
        groups["accuracy"].append(ok)
        groups[f"{r.benchmark}_accuracy"].append(ok)
        groups[f"{r.subset}_accuracy"].append(ok)
    return {k: sum(v) / len(v) for k, v in groups.items()}


def metrics_of(log) -> dict[str, float]:
    return {k: v.value for k, v in log.results.scores[0].metrics.items()}


def run_eval(task, model="medsplit_test/pattern", tmp_path=None, **kw):
    (log,) = inspect_eval(task, model=model, log_dir=str(tmp_path / "logs"), display="none", **kw)
    assert log.status == "success", log.error
    return log


# --------------------------------------------------------------------------- samples


def test_record_to_sample_carries_the_contract(records):
    r = records["medqa"][3]
    s = record_to_sample(r, style="cot", content_hash="abc", revision="rev")
    assert s.id == f"medqa/{r.id}"
    # inspect_evals' medqa form: option texts as choices, the letter as target
    assert s.target == r.answer_idx and s.choices == list(r.options.values())
    md = s.metadata
    for k, v in sample_metadata(r).items():
        assert md[k] == v, k
    assert md["content_hash"] == "abc" and md["revision"] == "rev"
    assert md["options"] == r.options and list(md["options"]) == list(r.options)
    want = build_prompt(r, "cot").messages
    assert [(m.role, m.text) for m in s.input] == [(m["role"], m["content"]) for m in want]

    rc = record_to_sample(r, adversarial="reconsider", trace_index=2)
    assert [m.role for m in rc.input] == ["user", "assistant", "user"]
    assert rc.input[1].text == r.adversarial_traces[2].rstrip()
    assert rc.input[2].text == RECONSIDER_REQUEST
    assert rc.metadata["trace_index"] == 2 and rc.metadata["adversarial"] == "reconsider"
    assert rc.metadata["adversarial_source"] == "offline-template"
    assert rc.id == f"medqa/{r.id}#t2"

    pf = record_to_sample(r, adversarial="prefill", trace_index=1, style="direct")
    assert [m.role for m in pf.input] == ["user", "assistant"]
    assert pf.input[-1].text == prefill_text(r.adversarial_traces[1])
    assert pf.input[0].text == build_prompt(r, "direct").user_text

    unlabelled = type(r)(id="x", benchmark="medqa", question="q?", options={"A": "a", "B": "b"})
    with pytest.raises(ValueError, match="no gold"):
        record_to_sample(unlabelled)


def test_dataset_provenance_and_subsets(hub_dir, records):
    ds = ids.medsplit_dataset("medqa,pubmedqa", "knowledge", source=str(hub_dir))
    want = [r for b in ("medqa", "pubmedqa") for r in records[b] if r.subset == "knowledge"]
    assert 0 < len(want) < 2 * N_PER_BENCH
    assert sorted(s.id for s in ds.dataset) == sorted(f"{r.benchmark}/{r.id}" for r in want)
    assert all(s.metadata["subset"] == "knowledge" for s in ds.dataset)
    md = ds.metadata
    assert md["revision"] == "test-rev-1" and md["source"]["kind"] == "hub_dir"
    assert md["benchmarks"] == ["medqa", "pubmedqa"]
    for b in ("medqa", "pubmedqa"):
        es = load_eval_records(b, str(hub_dir))
        assert md["content_hashes"][b] == es.content_hash
        assert md["provenance"][b]["source_content_hash"] == es.report.content_hash
    assert {s.metadata["content_hash"] for s in ds.dataset if s.metadata["benchmark"] == "medqa"} \
        == {md["content_hashes"]["medqa"]}
    # hub config names and list values (what `-T benchmarks=a,b` gives) work too
    src = resolve_source(str(hub_dir))
    assert ids.resolve_benchmarks(["mmlu_health_biology", "MedXpertQA"], src) == \
        ["mmlu_pro_health_biology", "medxpertqa"]
    assert ids.resolve_benchmarks("all", src) == src.benchmarks() == list(BENCHES)
    assert len(ids.medsplit_dataset(["medbullets_op5"], "all", source=str(hub_dir)).dataset) \
        == N_PER_BENCH


def test_dataset_trace_all_and_shuffle(hub_dir, records):
    ds = ids.medsplit_dataset("pubmedqa", "all", adversarial="reconsider", trace="all",
                              source=str(hub_dir))
    assert len(ds.dataset) == 3 * N_PER_BENCH
    assert {s.metadata["trace_index"] for s in ds.dataset} == {0, 1, 2}
    plain = [s.id for s in ids.medsplit_dataset("medqa", source=str(hub_dir)).dataset]
    a = [s.id for s in ids.medsplit_dataset("medqa", source=str(hub_dir), shuffle_seed=7).dataset]
    b = [s.id for s in ids.medsplit_dataset("medqa", source=str(hub_dir), shuffle_seed=7).dataset]
    assert a == b and a != plain and sorted(a) == sorted(plain)


def test_dataset_rejects_bad_parameters(hub_dir):
    with pytest.raises(ValueError, match="unknown benchmark"):
        ids.medsplit_dataset("medqa,nosuch", source=str(hub_dir))
    with pytest.raises(ValueError, match="subset"):
        ids.medsplit_dataset("medqa", "hard", source=str(hub_dir))
    with pytest.raises(ValueError, match="style"):
        ids.medsplit_dataset("medqa", style="fewshot", source=str(hub_dir))
    with pytest.raises(ValueError, match="adversarial_mode"):
        ids.medsplit_dataset("medqa", adversarial="gaslight", source=str(hub_dir))
    with pytest.raises(ValueError, match="trace"):
        ids.medsplit_dataset("medqa", adversarial="prefill", trace="first", source=str(hub_dir))
    with pytest.raises(MissingTraceError):
        ids.medsplit_dataset("medqa", adversarial="prefill", trace=5, source=str(hub_dir))
    with pytest.raises(ValueError, match="adversarial_mode"):
        medsplit_adversarial(source=str(hub_dir), adversarial_mode="none")


# --------------------------------------------------------------------------- Python API


def test_python_eval_pattern_model_exact_accuracy(hub_dir, records, tmp_path):
    log = run_eval(medsplit(source=str(hub_dir)), tmp_path=tmp_path)
    all_recs = [r for b in BENCHES for r in records[b]]
    assert len(log.samples) == len(all_recs)
    got = metrics_of(log)
    want = expected_metrics(all_recs)
    assert 0 < want["accuracy"] < 1
    for k, v in want.items():
        assert got[k] == pytest.approx(v, abs=1e-12), k
    assert {"stderr", "medqa_stderr", "reasoning_stderr", "knowledge_stderr"} <= set(got)

    by_id = {f"{r.benchmark}/{r.id}": r for r in all_recs}
    outcomes = defaultdict(int)
    for s in log.samples:
        r = by_id[s.id]
        sc = s.scores["medsplit_scorer"]
        kind = mock.pattern_kind(build_prompt(r, "cot").user_text)
        if kind == 2:
            assert sc.value == "N" and sc.answer is None and sc.metadata["method"] == "none"
            assert sc.metadata["outcome"] == "unparsed"
        else:
            assert sc.answer == mock.PATTERN_LETTERS[kind]
            assert sc.value == ("C" if sc.answer == r.answer_idx else "I")
            assert sc.metadata["method"] == "answer_phrase"
        outcomes[sc.value] += 1
        assert s.metadata["content_hash"] == log.eval.metadata["content_hashes"][r.benchmark]
        assert s.metadata["record_hash"] == r.content_hash()
        assert s.metadata["revision"] == "test-rev-1"
    assert set(outcomes) == {"C", "I", "N"}
    md = log.eval.metadata
    assert md["revision"] == "test-rev-1" and md["source"]["location"] == str(hub_dir.resolve())
    assert set(md["content_hashes"]) == set(BENCHES)


def test_paper_style_and_epochs_reach_every_sample(hub_dir, records, tmp_path):
    """``style=paper`` renders the paper's prompt and scores \\boxed{} answers; with
    ``epochs=2`` each question is logged twice under one id with its epoch; the options
    travel as the sample's choices."""
    mock.REPLAY.clear()
    recs = records["medbullets_op5"]
    for i, r in enumerate(recs):
        letter = r.answer_idx if i % 2 else next(x for x in r.options if x != r.answer_idx)
        mock.REPLAY[build_prompt(r, "paper").user_text] = (
            f"Step by step.\nThe final answer is \\boxed{{{letter}. {r.options[letter]}}}.")
    log = run_eval(medsplit(benchmarks="medbullets_op5", style="paper", source=str(hub_dir)),
                   model="medsplit_test_replay/m", tmp_path=tmp_path, epochs=2)
    assert log.eval.metadata["style"] == "paper" and "style='paper'" in log.eval.metadata["scoring"]
    assert len(log.samples) == 2 * len(recs)
    by_id = {f"{r.benchmark}/{r.id}": r for r in recs}
    seen = defaultdict(list)
    for s in log.samples:
        r = by_id[s.id]
        seen[s.id].append(s.epoch)
        assert s.metadata["style"] == "paper" and s.metadata["id"] == r.id
        assert s.choices == list(r.options.values()) and s.target == r.answer_idx
        assert s.input[0].text == build_prompt(r, "paper").user_text
        sc = s.scores["medsplit_scorer"]
        assert sc.metadata["method"] == "boxed" and sc.metadata["style"] == "paper"
        assert sc.value == ("C" if sc.answer == r.answer_idx else "I")
    assert all(sorted(v) == [1, 2] for v in seen.values()) and len(seen) == len(recs)
    assert metrics_of(log)["accuracy"] == pytest.approx(
        sum(i % 2 for i in range(len(recs))) / len(recs), abs=1e-12)


def test_reasoning_and_knowledge_tasks_split_the_records(hub_dir, records, tmp_path):
    recs = records["medbullets_op5"] + records["pubmedqa"]
    for task_fn, subset in ((medsplit_reasoning, "reasoning"), (medsplit_knowledge, "knowledge")):
        log = run_eval(task_fn(benchmarks="medbullets_op5,pubmedqa", source=str(hub_dir)),
                       tmp_path=tmp_path)
        want = [r for r in recs if r.subset == subset]
        assert len(log.samples) == len(want) > 0
        assert {s.metadata["subset"] for s in log.samples} == {subset}
        got = metrics_of(log)
        for k, v in expected_metrics(want).items():
            assert got[k] == pytest.approx(v, abs=1e-12), k


def test_adversarial_reconsider_puts_trace_in_assistant_turn(hub_dir, records, tmp_path):
    log = run_eval(medsplit_adversarial(benchmarks="medqa", trace=1, source=str(hub_dir)),
                   tmp_path=tmp_path)
    by_id = {f"medqa/{r.id}#t1": r for r in records["medqa"]}
    assert len(log.samples) == N_PER_BENCH
    for s in log.samples:
        r = by_id[s.id]
        roles = [m.role for m in s.messages]
        assert roles == ["user", "assistant", "user", "assistant"]
        assert s.messages[0].text == build_prompt(r, "cot").user_text
        assert s.messages[1].text == r.adversarial_traces[1].rstrip()
        assert s.messages[2].text == RECONSIDER_REQUEST
        assert s.metadata["adversarial"] == "reconsider" and s.metadata["trace_index"] == 1
        assert s.output.metadata["roles"] == ["user", "assistant", "user"]
    got = metrics_of(log)
    assert got["accuracy"] == pytest.approx(expected_metrics(records["medqa"])["accuracy"])


def test_adversarial_prefill_continued_where_supported(hub_dir, records, tmp_path):
    """With force_prefill (a provider that continues), the input ends with the assistant
    prefill and the model continues it; every trace of `trace=all` is used once."""
    log = run_eval(medsplit_adversarial(benchmarks="pubmedqa", adversarial_mode="prefill",
                                        trace="all", force_prefill=True, source=str(hub_dir)),
                   tmp_path=tmp_path)
    by_id = {r.id: r for r in records["pubmedqa"]}
    assert len(log.samples) == 3 * N_PER_BENCH
    for s in log.samples:
        r = by_id[s.metadata["id"]]
        k = s.metadata["trace_index"]
        assert s.id == f"pubmedqa/{r.id}#t{k}"
        assert [m.role for m in s.messages] == ["user", "assistant", "assistant"]
        assert s.messages[1].text == prefill_text(r.adversarial_traces[k])
        assert s.output.metadata["continued_assistant"] is True
        assert s.metadata["adversarial"] == "prefill"
        assert s.metadata["adversarial_requested"] == "prefill"
        assert s.metadata["adversarial_reason"] == "forced with force_prefill"
        # the continuation alone is scored, as in the lm-eval tasks
        sc = s.scores["medsplit_scorer"]
        assert sc.metadata == {**sc.metadata, **_fields(s.output.completion, r)}


def _fields(text, r):
    res = scoring.score(text, r.options, r.answer_idx)
    return {"pred": res.pred, "method": res.method, "outcome": res.outcome.value}


def test_prefill_falls_back_to_reconsider_when_provider_cannot_continue(hub_dir, records, tmp_path):
    log = run_eval(medsplit_adversarial(benchmarks="medbullets_op5", adversarial_mode="prefill",
                                        trace=2, source=str(hub_dir)), tmp_path=tmp_path)
    by_id = {f"medbullets_op5/{r.id}#t2": r for r in records["medbullets_op5"]}
    for s in log.samples:
        r = by_id[s.id]
        assert s.metadata["adversarial_requested"] == "prefill"
        assert s.metadata["adversarial"] == "reconsider"
        assert "does not continue" in s.metadata["adversarial_reason"]
        assert [m.role for m in s.messages] == ["user", "assistant", "user", "assistant"]
        assert s.messages[1].text == r.adversarial_traces[2].rstrip()
        assert s.messages[2].text == RECONSIDER_REQUEST
        assert s.scores["medsplit_scorer"].metadata["adversarial"] == "reconsider"


def test_prefill_rule():
    trace = "Step 1: the findings suggest B.\nAnswer: B"
    assert prefill_support("vllm/Qwen/Qwen3-8B", trace)[0]
    assert prefill_support("sglang/x", trace)[0]
    assert prefill_support("anthropic/claude-sonnet-4-5", trace)[0]
    assert not prefill_support("anthropic/claude-sonnet-4-5", trace, extended_thinking=True)[0]
    for model in ("hf/Qwen/Qwen3-0.6B", "openai/gpt-4o", "openai-api/together/x", "ollama/llama3"):
        ok, reason = prefill_support(model, trace)
        assert not ok and "does not continue" in reason
    ok, reason = prefill_support("vllm/deepseek-ai/DeepSeek-R1", "<think>B fits</think>\nAnswer: B")
    assert not ok and "<think>" in reason
    assert prefill_support("hf/x", trace, force=True)[0]


def test_raw_source_is_labelled_by_the_embedded_classifier(raw_dir, tmp_path):
    """`-T source=<raw dir>`: records labelled on the fly by the embedded classifier, with
    offline traces; the run's metadata says where the labels came from."""
    try:
        from lm_eval_medsplit.classifier import classifier_identity

        classifier_identity()
    except (ImportError, FileNotFoundError) as e:  # the classifier artefact is built elsewhere
        pytest.skip(f"embedded classifier not available: {e}")
    es = load_eval_records("medbullets_op4", str(raw_dir))
    want = [r for r in es.records if r.subset == "reasoning"]
    log = run_eval(medsplit_reasoning(benchmarks="medbullets_op4", source=str(raw_dir)),
                   tmp_path=tmp_path)
    prov = log.eval.metadata["provenance"]["medbullets_op4"]
    assert prov["labels_from"].startswith("classifier:")
    assert prov["content_hash"] == es.content_hash
    assert len(log.samples) == len(want) > 0
    got = metrics_of(log)
    for k, v in expected_metrics(want).items():
        assert got[k] == pytest.approx(v, abs=1e-12), k


# --------------------------------------------------------------------------- parity with the core


def test_scorer_equals_scoring_core_on_real_gpt4o_outputs(raw_dir, tmp_path):
    """Replay 200 real GPT-4o answers (MMLU-Pro health) through an Inspect run: every
    sample scores exactly as scoring.score(output, record.options, record.answer_idx)."""
    rows = json.loads((raw_dir / "mmlu_health_biology" / "health_result.json").read_text())
    responses = {str(r["question_id"]): r["response"] for r in rows}
    hub = write_hub_dir(raw_dir, tmp_path / "hub", ("mmlu_pro_health_biology",), label=_label,
                        revision="test-rev-1", limit=200)
    recs = load_eval_records("mmlu_pro_health_biology", str(hub)).records
    mock.REPLAY.clear()
    for r in recs:
        mock.REPLAY[build_prompt(r, "cot").user_text] = responses[r.id]
    log = run_eval(medsplit(benchmarks="mmlu_pro_health_biology", source=str(hub)),
                   model="medsplit_test_replay/gpt-4o", tmp_path=tmp_path)
    by_id = {f"mmlu_pro_health_biology/{r.id}": r for r in recs}
    assert len(log.samples) == len(recs) == 200
    values = {"correct": "C", "incorrect": "I", "unparsed": "N"}
    seen = defaultdict(int)
    for s in log.samples:
        r = by_id[s.id]
        # (a few MMLU-Pro questions are duplicated with identical prompts: one answer each)
        text = mock.REPLAY[build_prompt(r, "cot").user_text]
        assert s.output.completion == text
        core = scoring.score(text, r.options, r.answer_idx)
        sc = s.scores["medsplit_scorer"]
        assert sc.value == values[core.outcome.value]
        assert sc.answer == core.pred
        assert sc.metadata["method"] == core.method
        seen[core.outcome.value] += 1
    assert seen["correct"] > 100 and seen["incorrect"] > 0
    n_correct = seen["correct"]
    assert metrics_of(log)["accuracy"] == pytest.approx(n_correct / 200)


# --------------------------------------------------------------------------- CLI


def _env(tmp_path) -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               HF_DATASETS_OFFLINE="1", MEDSPLIT_CACHE=str(tmp_path / "cache"),
               INSPECT_DISPLAY="plain")
    env.pop("MEDSPLIT_SOURCE", None)
    return env


def _one_log(log_dir: Path):
    (path,) = list(log_dir.glob("*.json"))
    return read_eval_log(str(path))


def mock_provider_env(tmp_path: Path, env: dict[str, str]) -> dict[str, str]:
    """Environment in which any Python started (the real `inspect` executable included)
    registers the offline test providers: a sitecustomize on PYTHONPATH imports them."""
    site = tmp_path / "sitecustomize_dir"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text("import inspect_mock_provider\n")
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(TESTS)])
    return env


def test_cli_inspect_eval_resolves_entry_point_with_pattern_model(hub_dir, records, tmp_path):
    """The real `inspect eval lm_eval_medsplit/medsplit_reasoning` (entry point lookup,
    `-T` parsing) with the offline pattern model: accuracy exact overall and per group."""
    log_dir = tmp_path / "cli_logs"
    proc = subprocess.run(
        [INSPECT, "eval", "lm_eval_medsplit/medsplit_reasoning",
         "--model", "medsplit_test/pattern", "-T", f"source={hub_dir}",
         "-T", "benchmarks=medqa,pubmedqa", "-T", "shuffle_seed=3",
         "--log-dir", str(log_dir), "--log-format", "json"],
        cwd=tmp_path, env=mock_provider_env(tmp_path, _env(tmp_path)), capture_output=True,
        text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = _one_log(log_dir)
    assert log.status == "success", log.error
    assert log.eval.task_registry_name == "lm_eval_medsplit/medsplit_reasoning"
    assert log.eval.task_args["benchmarks"] == ["medqa", "pubmedqa"]
    want = [r for b in ("medqa", "pubmedqa") for r in records[b] if r.subset == "reasoning"]
    assert len(log.samples) == len(want)
    got = metrics_of(log)
    for k, v in expected_metrics(want).items():
        assert got[k] == pytest.approx(v, abs=1e-12), k
    assert "knowledge_accuracy" not in got


def test_cli_inspect_eval_tiny_hf_model(hub_dir, tiny_model, tmp_path):
    """The real `inspect` executable with a tiny local HF model (`hf/PATH`): the run
    succeeds (log status, not exit code), and prefill falls back to reconsider for `hf`."""
    log_dir = tmp_path / "hf_logs"
    proc = subprocess.run(
        [INSPECT, "eval", "lm_eval_medsplit/medsplit_adversarial", "--model", f"hf/{tiny_model}",
         "-T", f"source={hub_dir}", "-T", "benchmarks=pubmedqa", "-T", "adversarial_mode=prefill",
         "--limit", "2", "--max-tokens", "8", "--log-dir", str(log_dir), "--log-format", "json"],
        cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = _one_log(log_dir)
    assert log.status == "success", log.error
    assert log.eval.model == f"hf/{tiny_model}"
    assert len(log.samples) == 2
    for s in log.samples:
        assert s.metadata["adversarial"] == "reconsider"
        assert s.metadata["adversarial_requested"] == "prefill"
        assert [m.role for m in s.messages] == ["user", "assistant", "user", "assistant"]
        assert s.messages[2].text == RECONSIDER_REQUEST
        assert s.output.usage.output_tokens <= 8
        sc = s.scores["medsplit_scorer"]
        assert sc.metadata == {**sc.metadata, **_fields(s.output.completion,
                                                         _record(hub_dir, s.metadata))}


def _record(hub_dir, md):
    return next(r for r in load_eval_records(md["benchmark"], str(hub_dir)).records
                if r.id == md["id"])


def test_python_eval_tiny_hf_model(hub_dir, tiny_model, tmp_path):
    log = run_eval(medsplit_knowledge(benchmarks="medqa,pubmedqa", style="direct",
                                      source=str(hub_dir)),
                   model=f"hf/{tiny_model}", tmp_path=tmp_path, limit=2, max_tokens=4)
    assert len(log.samples) == 2
    for s in log.samples:
        assert s.messages[0].text == build_prompt(_record(hub_dir, s.metadata), "direct").user_text
        assert s.scores["medsplit_scorer"].value in ("C", "I", "N")
        assert 0 < s.output.usage.output_tokens <= 4  # max_tokens overrides the task's 4096
    assert "accuracy" in metrics_of(log)
    assert medsplit_knowledge(benchmarks="medqa", source=str(hub_dir)).config.max_tokens == 4096
