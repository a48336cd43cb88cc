"""The TRL training entrypoint: data pipeline, rewards, SFT and GRPO on a tiny real model.

Training rows are written from real records of ``shared/data/raw`` into a local directory in
the BioMed-R1-Train layout (``question, options`` as JSON string, ``answer_idx, answer,
reasoning, reasoning_prob``; the reasoning is a short synthetic text), which goes through
the same ``datasets.load_dataset`` call as the hub id.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import random
from pathlib import Path

import pytest

from lm_eval_medsplit.schema import MCQRecord
from lm_eval_medsplit.scoring import Outcome, score

pytest.importorskip("trl")

N_ROWS = 60


def _prob(rec_id: str) -> float:
    return int(hashlib.sha256(rec_id.encode()).hexdigest(), 16) % 1000 / 1000


def _train_row(rec: MCQRecord, prob: float | None = None) -> dict:
    gold = rec.options[rec.answer_idx]
    return {"question": rec.question, "options": json.dumps(rec.options), "answer_idx": rec.answer_idx,
            "answer": gold, "reasoning": f"The findings point to {gold}; the other options do not fit.",
            "reasoning_prob": _prob(rec.id) if prob is None else prob}


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


@pytest.fixture(scope="session")
def medmcqa(raw_source):
    return raw_source.load("medmcqa")[0][:N_ROWS]


@pytest.fixture(scope="session")
def planted(raw_source):
    """An exact duplicate (case, spacing, option order changed) of a MedQA question and a
    near duplicate (a few words edited) of another MedQA and of a PubMedQA question."""
    medqa = raw_source.load("medqa")[0]
    pubmedqa = raw_source.load("pubmedqa")[0]
    exact = medqa[10]
    letters = list(exact.options)
    shuffled = dict(zip(letters, reversed(list(exact.options.values()))))
    gold_text = exact.options[exact.answer_idx]
    gold_letter = next(k for k, v in shuffled.items() if v == gold_text)
    exact_row = {"question": "  " + exact.question.upper().replace(" ", "  ") + " ",
                 "options": json.dumps(shuffled), "answer_idx": gold_letter, "answer": gold_text,
                 "reasoning": "Exact copy.", "reasoning_prob": 0.9}
    near = medqa[20]
    q = near.question.replace("year-old", "yr-old", 1).replace(" the ", " a ", 2)
    assert q != near.question
    near_row = {**_train_row(near, 0.9), "question": q + " Explain."}
    pm = pubmedqa[5]
    words = pm.question.split()
    words[len(words) // 2] = words[len(words) // 2] + "s"
    pm_row = {**_train_row(pm, 0.9), "question": " ".join(words)}
    return {"exact_medqa": (exact_row, exact.id), "near_medqa": (near_row, near.id),
            "near_pubmedqa": (pm_row, pm.id)}


@pytest.fixture(scope="session")
def train_dir(tmp_path_factory, medmcqa, planted):
    """``DIR/biomed_r1/train.jsonl`` (real MedMCQA rows) and ``DIR/m23k_clean/train.jsonl``
    (the same rows plus the planted duplicates, which get ids m23k_clean-0000NN)."""
    root = tmp_path_factory.mktemp("biomed_r1_train")
    rows = [_train_row(r) for r in medmcqa]
    _write_jsonl(root / "biomed_r1" / "train.jsonl", rows)
    extra = [planted[k][0] for k in ("exact_medqa", "near_medqa", "near_pubmedqa")]
    _write_jsonl(root / "m23k_clean" / "train.jsonl", rows + extra)
    return root


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The tiny model is 10x faster on one thread than on two contended ones."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def gpt4o_outputs(raw_dir):
    rows = []
    for name in ("health", "biology"):
        with open(raw_dir / "mmlu_health_biology" / f"{name}_result.json", encoding="utf-8") as f:
            rows += json.load(f)
    assert len(rows) == 1535
    return rows


# --------------------------------------------------------------------------- loading + selection


def test_local_layout_loads_through_load_dataset(train_dir, medmcqa):
    from lm_eval_medsplit.train.data import load_train_records, reasoning_text

    records, report = load_train_records(str(train_dir), "biomed_r1")
    assert len(records) == len(medmcqa) == report.n_records
    assert report.n_skipped == 0 and report.files[0].endswith(":biomed_r1")
    first = records[0]
    assert first.id == "biomed_r1-000000"
    assert first.options == medmcqa[0].options  # JSON string parsed back to letters -> texts
    assert first.answer_idx == medmcqa[0].answer_idx
    assert first.reasoning_prob == _prob(medmcqa[0].id)
    assert reasoning_text(first).startswith("The findings point to")


def test_invalid_rows_are_counted_not_dropped_silently(tmp_path, medmcqa):
    from lm_eval_medsplit.train.data import load_train_records

    rows = [_train_row(r) for r in medmcqa[:5]]
    rows[1]["answer_idx"] = "Z"
    rows[3]["options"] = "not json"
    _write_jsonl(tmp_path / "biomed_r1" / "train.jsonl", rows)
    records, report = load_train_records(str(tmp_path), "biomed_r1")
    assert [r.id for r in records] == ["biomed_r1-000000", "biomed_r1-000002", "biomed_r1-000004"]
    assert report.n_skipped == 2
    assert set(report.skip_reasons()) == {"answer_idx: 'Z' is not one of A, B, C, D",
                                          "options: not valid JSON"}


def test_selection_keeps_exactly_the_rows_over_the_threshold(train_dir):
    """At or above the threshold, the classifier's own ``is_reasoning`` rule."""
    from lm_eval_medsplit.train.data import load_train_records, select_reasoning

    records, _ = load_train_records(str(train_dir), "biomed_r1")
    threshold = 0.6
    records[0].reasoning_prob = threshold  # at the threshold: kept, as is_reasoning would be
    records[1].reasoning_prob = threshold - 1e-9
    expected = [r.id for r in records if r.reasoning_prob >= threshold]
    assert 0 < len(expected) < len(records)
    kept, info = select_reasoning(records, threshold)
    assert [r.id for r in kept] == expected
    assert records[0].id in {r.id for r in kept} and records[1].id not in {r.id for r in kept}
    assert info["reasoning"] == len(expected) and info["knowledge"] == 0
    assert all(r.is_reasoning is (r.reasoning_prob >= threshold) for r in records)

    mixed, info = select_reasoning(records, threshold, knowledge_ratio=0.25, seed=3)
    knowledge = [r for r in mixed if r.reasoning_prob < threshold]
    assert info["knowledge"] == len(knowledge) == round(len(expected) / 3)
    assert {r.id for r in mixed} >= set(expected)
    again, _ = select_reasoning(records, threshold, knowledge_ratio=0.25, seed=3)
    assert [r.id for r in again] == [r.id for r in mixed]


def test_pipeline_selection_and_rows(train_dir):
    from lm_eval_medsplit.train.data import MedsplitTrainArguments, load_train_records, prepare_training_data

    args = MedsplitTrainArguments(dataset_source=str(train_dir), dataset_config="biomed_r1",
                                  reasoning_threshold=0.5, decontaminate_against="none")
    prepared = prepare_training_data(args, "grpo", log=lambda m: None)
    records, _ = load_train_records(str(train_dir), "biomed_r1")
    assert [r["id"] for r in prepared.rows] == [r.id for r in records if r.reasoning_prob >= 0.5]
    row = prepared.rows[0]
    rec = next(r for r in records if r.id == row["id"])
    assert row["answer_idx"] == rec.answer_idx and row["options"] == list(rec.options.values())
    assert row["subset"] == "reasoning" and row["record_hash"] == rec.content_hash()
    assert row["prompt"][-1]["role"] == "user" and rec.question.strip() in row["prompt"][-1]["content"]
    assert prepared.report["steps"]["selection"]["reasoning"] == len(prepared.rows)


def test_hub_id_goes_through_load_dataset(monkeypatch, capsys, tiny_model):
    """The hub id takes the real ``datasets.load_dataset`` path (offline here: a named error)."""
    from lm_eval_medsplit.train.cli import main
    from lm_eval_medsplit.train.data import TrainDataError, load_train_records

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(TrainDataError, match=r"cannot load zou-lab/BioMed-R1-Train \(config 'm23k_clean'"):
        load_train_records("zou-lab/BioMed-R1-Train", "m23k_clean")
    assert main(["sft", "--model_name_or_path", str(tiny_model), "--decontaminate_against", "none",
                 "--use_cpu", "true"]) == 2
    assert "cannot load zou-lab/BioMed-R1-Train (config 'biomed_r1'" in capsys.readouterr().err
    assert main(["sft", "--adversarial_share", "1.5", "--use_cpu", "true"]) == 2
    assert "adversarial_share must be in [0, 1]" in capsys.readouterr().err


def _jsonl_records(medmcqa, *, probs: bool) -> list[MCQRecord]:
    import copy

    out = []
    for r in copy.deepcopy(medmcqa[:20]):
        r.extra["reasoning"] = f"Because {r.options[r.answer_idx]}."
        r.reasoning_prob = _prob(r.id) if probs else None
        out.append(r)
    return out


def test_canonical_jsonl_source(tmp_path, medmcqa):
    from lm_eval_medsplit.sources import write_jsonl
    from lm_eval_medsplit.train.data import MedsplitTrainArguments, prepare_training_data

    path = tmp_path / "mine.jsonl"
    records = _jsonl_records(medmcqa, probs=True)
    write_jsonl(records, path)
    args = MedsplitTrainArguments(dataset_source=str(path), reasoning_threshold=0.3,
                                  decontaminate_against="none")
    prepared = prepare_training_data(args, "sft", log=lambda m: None)
    assert [r["id"] for r in prepared.rows] == [r.id for r in records if r.reasoning_prob >= 0.3]
    assert prepared.rows[0]["completion"][0]["content"].endswith(
        f"</think>\n\nAnswer: {prepared.rows[0]['answer_idx']}")
    assert prepared.report["steps"]["selection"]["reasoning_prob_from"] == "source"


def test_jsonl_without_probs_is_labelled_by_the_classifier(tmp_path, medmcqa):
    classifier = pytest.importorskip("lm_eval_medsplit.classifier")
    if not classifier.DEFAULT_EMBEDDED_MODEL.is_file():
        pytest.skip("the embedded classifier artefact is not built in this checkout")
    from lm_eval_medsplit.sources import write_jsonl
    from lm_eval_medsplit.train.data import MedsplitTrainArguments, prepare_training_data

    path = tmp_path / "unlabelled.jsonl"
    write_jsonl(_jsonl_records(medmcqa, probs=False), path)
    args = MedsplitTrainArguments(dataset_source=str(path), reasoning_threshold=0.5,
                                  decontaminate_against="none")
    prepared = prepare_training_data(args, "grpo", log=lambda m: None)
    assert prepared.report["steps"]["selection"]["reasoning_prob_from"].startswith("classifier:")
    assert all(r["reasoning_prob"] >= 0.5 and r["is_reasoning"] for r in prepared.rows)


# --------------------------------------------------------------------------- decontamination


def test_decontamination_removes_planted_duplicates(train_dir, raw_dir, planted):
    from lm_eval_medsplit.train.data import MedsplitTrainArguments, prepare_training_data

    args = MedsplitTrainArguments(dataset_source=str(train_dir), dataset_config="m23k_clean",
                                  decontaminate_against=str(raw_dir),
                                  decontaminate_benchmarks="medqa,pubmedqa")
    prepared = prepare_training_data(args, "sft", log=lambda m: None)
    deco = prepared.decontamination
    ids = {f"m23k_clean-{N_ROWS + i:06d}": k for i, k in
           enumerate(("exact_medqa", "near_medqa", "near_pubmedqa"))}
    assert {train_id for _, train_id in deco.removed_keys} == set(ids) and deco.n_removed == 3
    by_train = {m.train_id: m for m in deco.matches}
    for train_id, key in ids.items():
        m = by_train[train_id]
        assert m.eval_id == planted[key][1]
        assert m.kind == ("exact" if key.startswith("exact") else "near")
        assert m.benchmark == ("pubmedqa" if key.endswith("pubmedqa") else "medqa")
        if m.kind == "near":
            assert 90 <= m.similarity < 100
    assert deco.per_benchmark() == {"medqa": {"exact": 1, "near": 1}, "pubmedqa": {"exact": 0, "near": 1}}
    assert len(prepared.rows) == N_ROWS and not set(ids) & {r["id"] for r in prepared.rows}
    assert prepared.report["decontamination"]["per_benchmark"]["medqa"] == {"exact": 1, "near": 1}
    assert prepared.report["decontamination"]["eval_records"] == {"medqa": 1273, "pubmedqa": 1000}


def test_near_duplicate_threshold_is_respected(raw_source):
    from rapidfuzz import fuzz

    from lm_eval_medsplit.train.data import decontaminate, match_text

    medqa = raw_source.load("medqa")[0][:200]
    rec = medqa[7]
    words = rec.question.split()
    rng = random.Random(0)
    for i in rng.sample(range(len(words)), k=len(words) // 2):  # letters swapped in half the words
        w = words[i]
        if len(w) > 3:
            words[i] = w[0] + w[2] + w[1] + w[3:]
    typo = MCQRecord("typo", "x", " ".join(words), dict(rec.options), rec.answer_idx)
    ratio = fuzz.ratio(match_text(typo), match_text(rec))
    assert 80 < ratio < 97
    kept, report = decontaminate([typo], {"medqa": medqa}, near_threshold=ratio + 0.5)
    assert kept == [typo] and not report.matches
    kept, report = decontaminate([typo], {"medqa": medqa}, near_threshold=ratio - 0.5)
    assert kept == [] and [(m.eval_id, m.kind) for m in report.matches] == [(rec.id, "near")]


def test_decontamination_containment_and_shared_vignettes(raw_source):
    from lm_eval_medsplit.train.data import decontaminate

    medqa = raw_source.load("medqa")[0]
    rec = medqa[20]
    words = rec.question.split()

    def copy_with(question, rid):
        return MCQRecord(rid, "medqa", question, dict(rec.options), rec.answer_idx)
    planted = [copy_with(rec.question + " Explain your reasoning step by step before answering.", "appended"),
               copy_with(" ".join(words[: int(len(words) * 0.8)]), "prefix80"),
               copy_with(rec.question.rsplit(".", 2)[0] + ".", "last-sentence-cut")]
    kept, report = decontaminate(planted, {"medqa": medqa[:100]})
    assert kept == [] and {m.train_id for m in report.matches} == {"appended", "prefix80", "last-sentence-cut"}
    assert all(m.eval_id == rec.id and m.kind == "near" for m in report.matches)
    # a third of the question is not a copy
    third = copy_with(" ".join(words[: len(words) // 3]), "a-third")
    assert decontaminate([third], {"medqa": medqa[:100]})[0] == [third]
    # conservative by design: a real MedXpertQA question that reuses a MedQA case with ten
    # options instead of four is removed, though its options differ
    xpert = {r.id: r for r in raw_source.load("medxpertqa")[0]}["Text-133"]
    medqa963 = next(r for r in medqa if r.id == "963")
    kept, report = decontaminate([xpert], {"medqa": [medqa963]})
    assert kept == [] and report.matches[0].kind == "near" and report.matches[0].similarity >= 90


def test_removed_rows_are_counted_by_benchmark_and_id(raw_source):
    from lm_eval_medsplit.train.data import decontaminate

    medqa = raw_source.load("medqa")[0][:5]
    medmcqa = raw_source.load("medmcqa")[0][:5]
    rows = [MCQRecord("0", "medqa", medqa[0].question, dict(medqa[0].options), medqa[0].answer_idx),
            MCQRecord("0", "medmcqa", medmcqa[0].question, dict(medmcqa[0].options), medmcqa[0].answer_idx)]
    kept, report = decontaminate(rows, {"medqa": medqa, "medmcqa": medmcqa})
    assert kept == [] and report.n_removed == 2 and report.removed_keys == {("medqa", "0"), ("medmcqa", "0")}


def test_selection_labels_rows_with_its_threshold_and_cap_keeps_the_mix():
    from lm_eval_medsplit.train.data import cap, select_reasoning

    rows = [MCQRecord(str(i), "b", f"question {i}?", {"A": "x", "B": "y"}, "A", reasoning_prob=i / 100,
                      is_reasoning=i / 100 >= 0.5, reasoning_threshold=0.5) for i in range(100)]
    out, sel = select_reasoning(rows, 0.7, knowledge_ratio=0.2, seed=0)
    assert sel["reasoning"] == 30 and sel["knowledge"] == round(30 * 0.2 / 0.8)
    assert all(r.is_reasoning == (r.reasoning_prob >= 0.7) and r.reasoning_threshold == 0.7 for r in out)
    capped = cap(out, 20, seed=0, stratum=lambda r: r.reasoning_prob >= 0.7)
    assert len(capped) == 20 and sum(r.reasoning_prob < 0.7 for r in capped) == round(20 * 8 / 38)
    assert capped == cap(out, 20, seed=0, stratum=lambda r: r.reasoning_prob >= 0.7)  # deterministic
    assert [r.id for r in capped] == sorted((r.id for r in capped), key=int)  # input order kept


# --------------------------------------------------------------------------- rewards


def _expected(s, penalty):
    return {Outcome.CORRECT: 1.0, Outcome.INCORRECT: 0.0, Outcome.UNPARSED: penalty}[s.outcome]


def test_accuracy_reward_equals_evaluation_score_on_gpt4o_outputs(gpt4o_outputs):
    from lm_eval_medsplit.train.rewards import AccuracyReward

    reward = AccuracyReward(unparsed_penalty=-0.5)
    rows = gpt4o_outputs
    completions = [[{"role": "assistant", "content": r["response"]}] for r in rows]
    gold = [r["answer"] for r in rows]
    options = [r["options"] for r in rows]
    metrics: dict[str, list[float]] = {}
    extra: dict[str, list] = {}
    got = reward(completions, answer_idx=gold, options=options,
                 log_metric=lambda k, v: metrics.setdefault(k, []).append(v),
                 log_extra=lambda k, v: extra.setdefault(k, []).extend(v))
    scores = [score(r["response"], r["options"], r["answer"]) for r in rows]
    assert got == [_expected(s, -0.5) for s in scores]
    outcomes = {o: sum(s.outcome is o for s in scores) for o in Outcome}
    assert outcomes[Outcome.CORRECT] > 1000 and outcomes[Outcome.UNPARSED] > 0  # a real mix
    assert extra["extraction_method"] == [s.method for s in scores]
    assert extra["pred"] == [s.pred for s in scores]
    assert sum(v[0] for k, v in metrics.items() if k.startswith("medsplit/method/")) == len(rows)
    assert metrics["medsplit/accuracy"] == [outcomes[Outcome.CORRECT] / len(rows)]
    # the same through string completions and hub-style JSON-string options
    as_text = reward([r["response"] for r in rows[:200]], answer_idx=gold[:200],
                     options=[json.dumps(o) for o in options[:200]])
    assert as_text == got[:200]


def test_accuracy_reward_is_none_where_gold_cannot_be_read(gpt4o_outputs):
    from lm_eval_medsplit.train.rewards import accuracy_reward

    r = gpt4o_outputs[0]
    out = accuracy_reward([r["response"]] * 4, answer_idx=[None, "Z", "", r["answer"]],
                          options=[r["options"]] * 4)
    assert out[:3] == [None, None, None]
    assert out[3] == _expected(score(r["response"], r["options"], r["answer"]), 0.0)


def test_format_reward():
    from lm_eval_medsplit.train.rewards import FormatReward, format_reward

    opts = [["a", "b", "c", "d"]]
    good = "<think>\nThe vignette suggests b.\n</think>\n\nAnswer: B"
    assert format_reward([good], options=opts) == [1.0]
    assert format_reward([[{"role": "assistant", "content": good}]], options=opts) == [1.0]
    bad = [
        "The vignette suggests b.\nAnswer: B",                     # no think block
        "<think>\nreasoning\n</think>\n\nThe answer is B.",        # no final-answer line
        "<think>\nreasoning\n</think>\nAnswer: B\n<think>more",    # a second think block
        "<think>\n\n</think>\nAnswer: B",                          # empty reasoning
        "<think>\nreasoning\n</think>\nAnswer: F",                 # not one of the options
        "<think>\nreasoning\nAnswer: B",                           # never closed
    ]
    assert format_reward(bad, options=opts * len(bad)) == [0.0] * len(bad)
    # the <think> may be opened by the prompt (adversarial prefill, text or chat form)
    cont = "\nOn reflection b fits.\n</think>\n\nAnswer: B"
    assert format_reward([cont], prompts=["<|assistant|>\n<think>\nwrong trace"], options=opts) == [1.0]
    chat_prompt = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "<think>\nwrong"}]
    assert format_reward([cont], prompts=[chat_prompt], options=opts) == [1.0]
    assert format_reward([cont], prompts=["<|assistant|>\n"], options=opts) == [0.0]
    assert FormatReward(think_opened_by_template=True)([cont], options=opts) == [1.0]
    # the dotted-path instance for `trl grpo` with such a template
    from lm_eval_medsplit.train.rewards import format_reward_think_opened

    user_only = [[{"role": "user", "content": "q"}]]
    assert format_reward([cont], prompts=user_only, options=opts) == [0.0]
    assert format_reward_think_opened([cont], prompts=user_only, options=opts) == [1.0]
    assert format_reward_think_opened([good], options=opts) == [1.0]  # an own opening tag is fine too


def test_sft_targets_earn_full_rewards(train_dir, tiny_model):
    """The SFT completion format is what the rewards (and the scoring core) read."""
    from transformers import AutoTokenizer

    from lm_eval_medsplit.train.data import MedsplitTrainArguments, prepare_training_data
    from lm_eval_medsplit.train.rewards import accuracy_reward, format_reward

    tok = AutoTokenizer.from_pretrained(str(tiny_model))
    args = MedsplitTrainArguments(dataset_source=str(train_dir), decontaminate_against="none",
                                  adversarial_share=0.5)
    rows = prepare_training_data(args, "sft", tokenizer=tok, log=lambda m: None).rows
    adv = [r for r in rows if r["adversarial"] == "prefill"]
    assert len(adv) == round(0.5 * len(rows))
    assert all(isinstance(r["prompt"], str) for r in rows)  # auto: text form with prefills
    for r in adv[:3]:
        assert "Wait, let me reconsider" in r["prompt"] and r["prompt"].rstrip().endswith("final answer.")
        assert r["adversarial_source"] == "offline-template" and r["trace_index"] is not None
    kw = {k: [r[k] for r in rows] for k in ("answer_idx", "options")}
    completions = [r["completion"] for r in rows]
    assert accuracy_reward(completions, **kw) == [1.0] * len(rows)
    assert format_reward(completions, prompts=[r["prompt"] for r in rows], **kw) == [1.0] * len(rows)


def test_rewards_resolve_by_dotted_path_like_trl_grpo():
    """What ``trl grpo --reward_funcs a.b.c`` does (trl/scripts/grpo.py) on our names."""
    from lm_eval_medsplit.train.rewards import AccuracyReward, FormatReward, resolve_reward

    for name, cls in (("lm_eval_medsplit.train.rewards.accuracy_reward", AccuracyReward),
                      ("lm_eval_medsplit.train.rewards.format_reward", FormatReward)):
        module_path, func_name = name.rsplit(".", 1)
        func = getattr(importlib.import_module(module_path), func_name)
        assert isinstance(func, cls) and callable(func) and func.__name__ == func_name
        assert resolve_reward(name) is func
        assert resolve_reward(name.replace(f".{func_name}", f":{func_name}")) is func
    import pickle

    restored = pickle.loads(pickle.dumps(AccuracyReward(-0.25)))
    assert restored.unparsed_penalty == -0.25


# --------------------------------------------------------------------------- configs + CLI


def test_packaged_configs_parse_and_cli_overrides_win():
    from lm_eval_medsplit.train import cli

    configs = cli.packaged_configs()
    assert {"sft_cpu_smoke", "grpo_cpu_smoke", "sft_1gpu", "sft_zero3", "grpo_1gpu",
            "grpo_vllm_colocate", "grpo_vllm_server", "accelerate_zero3"} <= set(configs)
    for name in configs:
        if name.startswith("accelerate"):
            continue
        command = name.split("_", 1)[0]
        data_args, training_args, model_args = cli.parse(
            command, ["--config", name, "--bf16", "false", "--use_cpu", "true", "--max_steps", "7"])
        assert training_args.max_steps == 7 and model_args.model_name_or_path
        assert data_args.dataset_config in ("biomed_r1", "m23k_clean")
    _, t, _ = cli.parse("grpo", ["--config", "grpo_vllm_server", "--bf16", "false", "--use_cpu", "true"])
    assert t.use_vllm and t.vllm_mode == "server"
    _, t, _ = cli.parse("grpo", ["--config", "grpo_vllm_colocate", "--bf16", "false", "--use_cpu", "true"])
    assert t.use_vllm and t.vllm_mode == "colocate"
    import yaml

    acc = yaml.safe_load(configs["accelerate_zero3"].read_text())
    assert acc["distributed_type"] == "DEEPSPEED" and acc["deepspeed_config"]["zero_stage"] == 3


def test_cli_main_errors_and_listing(capsys):
    from lm_eval_medsplit.train.cli import main

    assert main(["bogus"]) == 2
    assert main(["configs"]) == 0
    assert "grpo_vllm_colocate" in capsys.readouterr().out
    assert main(["configs", "--path", "accelerate_zero3"]) == 0
    assert capsys.readouterr().out.strip().endswith("accelerate_zero3.yaml")
    assert main(["configs", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: medsplit-train configs")
    with pytest.raises(SystemExit, match="neither a file nor a packaged config"):
        main(["sft", "--config", "no_such_config"])


def test_reward_funcs_take_commas_and_are_checked_before_any_data(capsys):
    from lm_eval_medsplit.train import cli

    base = ["--config", "grpo_cpu_smoke", "--bf16", "false", "--use_cpu", "true"]
    for given in (["accuracy,format,overlong"], ["accuracy", "format,overlong"],
                  ["accuracy", "format", "lm_eval_medsplit.train.rewards.accuracy_reward"]):
        data_args, _, _ = cli.parse("grpo", [*base, "--reward_funcs", *given])
        assert data_args.reward_funcs[:2] == ["accuracy", "format"] and len(data_args.reward_funcs) == 3
    # a bad name fails at parse time (the data source given does not exist and is never read)
    for bad, why in (("accuracyy", "unknown reward 'accuracyy'"), ("no_such_pkg.mod.fn", "No module named"),
                     ("lm_eval_medsplit.train.rewards.nope", "nope")):
        assert cli.main(["grpo", *base, "--dataset_source", "/no/such/data", "--reward_funcs", bad]) == 2
        err = capsys.readouterr().err
        assert f"medsplit-train: error: --reward_funcs {bad!r}: " in err and why in err
        assert "/no/such/data" not in err


# --------------------------------------------------------------------------- training on the tiny model

COMMON = ["--use_cpu", "true", "--bf16", "false", "--max_steps", "2", "--logging_steps", "1",
          "--report_to", "none", "--save_strategy", "no", "--disable_tqdm", "true", "--seed", "0"]


def _losses(trainer) -> list[float]:
    return [h["loss"] for h in trainer.state.log_history if "loss" in h]


@pytest.mark.parametrize("variant", ["conversational", "adversarial-text-packed"])
def test_sft_two_steps_on_cpu(tmp_path, train_dir, tiny_model, raw_dir, variant):
    from lm_eval_medsplit.train.cli import run

    out = tmp_path / "sft"
    extra = [] if variant == "conversational" else ["--adversarial_share", "0.5", "--packing", "true"]
    trainer = run("sft", ["--model_name_or_path", str(tiny_model), "--dataset_source", str(train_dir),
                          "--dataset_config", "m23k_clean", "--decontaminate_against", str(raw_dir),
                          "--decontaminate_benchmarks", "medqa,pubmedqa",
                          "--output_dir", str(out), "--per_device_train_batch_size", "2",
                          "--max_length", "384", *extra, *COMMON])
    losses = _losses(trainer)
    assert len(losses) == 2 and all(math.isfinite(x) and x > 0 for x in losses)
    assert (out / "model.safetensors").is_file()
    report = json.loads((out / "medsplit_data.json").read_text())
    assert report["steps"]["removed_contaminated"] == 3
    deco = json.loads((out / "decontamination.json").read_text())
    assert deco["per_benchmark"]["pubmedqa"] == {"exact": 0, "near": 1}
    tok = trainer.processing_class
    ex = trainer.train_dataset[0]
    kept = [t for t, lab in zip(ex["input_ids"], ex["labels"]) if lab != -100]
    masked = [t for t, lab in zip(ex["input_ids"], ex["labels"]) if lab == -100]
    text, prompt_text = tok.decode(kept), tok.decode(masked)
    if variant == "conversational":
        assert report["prompt_format"] == "conversational"
        # loss on the completion only: the unmasked tokens are exactly the assistant answer
        assert text.startswith("<think>") and "</think>" in text and "Answer: " in text
        assert "Think through the question" in prompt_text and "Think through" not in text
    else:
        assert report["prompt_format"] == "text" and report["steps"]["adversarial"] == N_ROWS // 2
        assert trainer.args.packing and len(ex["input_ids"]) > 200  # several rows in one sequence
        ds = trainer.train_dataset
        text = "".join(tok.decode([t for t, lab in zip(r["input_ids"], r["labels"]) if lab != -100])
                       for r in ds)
        prompt_text = "".join(tok.decode([t for t, lab in zip(r["input_ids"], r["labels"]) if lab == -100])
                              for r in ds)
        # the incorrect traces and the questions are never trained on, only the answers
        assert prompt_text.count("Wait, let me reconsider") >= N_ROWS // 4
        assert "Think through the question" in prompt_text and "Think through" not in text
        assert "Wait, let me reconsider" not in text and "The key finding here points" not in text
        assert text.count("</think>") >= N_ROWS // 2 and text.count("Answer: ") >= N_ROWS // 2


class Spy:
    """Records the keyword arguments TRL passes to a real reward function."""

    def __init__(self, func):
        self.func = func
        self.__name__ = func.__name__
        self.calls: list[dict] = []

    def __call__(self, completions, **kwargs):
        self.calls.append({"completions": completions, **kwargs})
        return self.func(completions, **kwargs)


def test_grpo_two_steps_on_cpu(tmp_path, train_dir, tiny_model):
    from lm_eval_medsplit.train.cli import run
    from lm_eval_medsplit.train.rewards import make_reward_funcs

    accuracy, fmt = (Spy(f) for f in make_reward_funcs(["accuracy", "format"], unparsed_penalty=-0.5))
    trainer = run("grpo", ["--model_name_or_path", str(tiny_model), "--dataset_source", str(train_dir),
                           "--decontaminate_against", "none", "--adversarial_share", "0.5",
                           "--max_train_samples", "16", "--output_dir", str(tmp_path / "grpo"),
                           "--per_device_train_batch_size", "2", "--num_generations", "2",
                           "--max_completion_length", "8", *COMMON],
                  reward_funcs=[accuracy, fmt])
    losses = _losses(trainer)
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
    assert len(accuracy.calls) == 2 and len(fmt.calls) == 2
    rows = {r["id"]: r for r in trainer.medsplit_data.rows}
    for call in accuracy.calls:
        n = len(call["completions"])
        assert n == 2
        for key in ("answer_idx", "options", "id", "benchmark", "adversarial", "record_hash"):
            assert len(call[key]) == n
        for i, rid in enumerate(call["id"]):
            assert call["answer_idx"][i] == rows[rid]["answer_idx"]
            assert call["options"][i] == rows[rid]["options"]
            assert call["prompts"][i] == rows[rid]["prompt"]
        assert "log_metric" in call and "trainer_state" in call
    last = [h for h in trainer.state.log_history if "loss" in h][-1]
    assert last["medsplit/unparsed_rate"] >= 0
    assert sum(last[f"medsplit/method/{m}"] for m in ("none", "truncated_think", "answer_phrase",
                                                     "final_line", "answer_tag", "boxed", "option_text",
                                                     "fuzzy_option_text")) == 2
    assert "rewards/accuracy_reward/mean" in last and "rewards/format_reward/mean" in last
    adversarial = sum(1 for r in rows.values() if r["adversarial"] == "prefill")
    assert adversarial == 8
