"""One source of truth: the lm-eval tasks, the Inspect scorer and the TRL accuracy
reward give the same score as the scoring core on the same outputs, in every prompt
style that scores differently: ``cot`` and ``paper`` (lm-eval through
``--metadata '{"style": "paper"}'``, Inspect through ``-T style=paper``, TRL through the
rows' ``style`` column).

Outputs are real GPT-4o answers to MMLU-Pro questions, plus variants that exercise
every outcome (a closed <think> block, a truncated one, an answer negated, a bare
final line; in the paper style \\boxed{} holding the letter, ``X. text`` or the option
text). Each harness runs end to end on the same records; per question, the three
outcomes must equal ``scoring.score(output, record.options, record.answer_idx, style=...)``.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

pytest.importorskip("lm_eval")
pytest.importorskip("inspect_ai")
pytest.importorskip("trl")

import lm_eval.models  # noqa: E402,F401  (built-in backends before registering ours)
from lm_eval.api.model import LM  # noqa: E402
from lm_eval.api.registry import register_model  # noqa: E402

from lm_eval_medsplit import lm_eval_tasks as lt  # noqa: E402
from lm_eval_medsplit import scoring  # noqa: E402
from lm_eval_medsplit.dataset import load_eval_records  # noqa: E402
from lm_eval_medsplit.prompts import build_prompt  # noqa: E402

BENCH = "mmlu_pro_health_biology"
LIMIT = 60  # docs per lm-eval task (reasoning and knowledge)


def _variants(text: str, record, i: int, style: str = "cot") -> str:
    """Deterministic rewrites of a real answer so every outcome and several methods occur."""
    wrong = next(x for x in record.options if x != record.answer_idx)
    if style == "paper":
        kind = i % 8
        gold = record.answer_idx
        if kind == 5:
            return f"{text}\n\nThe final answer is \\boxed{{{record.options[gold]}}}."
        if kind == 6:
            return f"Step by step.\n\\boxed{{{wrong}. {record.options[wrong]}}}"
        if kind == 7:  # an <answer> tag wins in cot, the box in paper (docs/scoring.md)
            return f"<answer>{wrong}</answer>\nOn reflection, the answer is \\boxed{{{gold}}}"
    kind = i % 6
    if kind == 1:
        return f"<think>\nThe answer is {wrong}.\n</think>\n{text}"
    if kind == 2:
        return f"<think>\n{text}"  # truncated reasoning: unparsed
    if kind == 3:
        return f"{text}\n\nTo be clear, the answer is not {record.answer_idx}."
    if kind == 4:
        return f"Reasoning omitted.\n{record.answer_idx}. {record.options[record.answer_idx]}"
    return text


@pytest.fixture(scope="module")
def evalset(raw_dir, tmp_path_factory):
    import os

    os.environ["MEDSPLIT_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    return load_eval_records(BENCH, str(raw_dir))


@pytest.fixture(scope="module", params=["cot", "paper"])
def style(request):
    return request.param


@pytest.fixture(scope="module")
def outputs(raw_dir, evalset, style):
    """user prompt text -> output (identical prompts get one output)."""
    rows = json.loads((raw_dir / "mmlu_health_biology" / "health_result.json").read_text())
    rows += json.loads((raw_dir / "mmlu_health_biology" / "biology_result.json").read_text())
    response = {str(r["question_id"]): r["response"] for r in rows}
    out = {}
    for i, r in enumerate(evalset.records):
        out.setdefault(build_prompt(r, style).user_text, _variants(response[r.id], r, i, style))
    return out


@register_model("medsplit-parity-replay")
class ReplayLM(LM):
    outputs: dict[str, str] = {}

    def generate_until(self, requests, disable_tqdm: bool = False):
        return [self.outputs[build_prompt(lt.doc_record(req.doc), req.doc["style"]).user_text]
                for req in requests]

    def loglikelihood(self, requests, disable_tqdm: bool = False):  # pragma: no cover
        raise NotImplementedError

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):  # pragma: no cover
        raise NotImplementedError


@pytest.fixture(scope="module")
def lm_eval_outcomes(raw_dir, evalset, outputs, style):
    import lm_eval
    from lm_eval.tasks import TaskManager

    ReplayLM.outputs = outputs
    tm = TaskManager(include_path=lt.task_yaml_dir(), include_defaults=False,
                     metadata={"source": str(raw_dir), "style": style})
    tasks = [f"medsplit_{BENCH}_reasoning", f"medsplit_{BENCH}_knowledge"]
    res = lm_eval.simple_evaluate(model=ReplayLM(), tasks=tasks, task_manager=tm, limit=LIMIT,
                                  log_samples=True, bootstrap_iters=0)
    got = {}
    for task in tasks:
        samples = res["samples"][task]
        assert len(samples) == LIMIT
        for s in samples:
            fields = s["doc"][lt.SCORE_KEY]
            assert fields["style"] == style and s["filtered_resps"] == [fields["pred"] or lt.INVALID]
            assert s["acc"] == (1.0 if fields["correct"] else 0.0)
            got[s["doc"]["id"]] = (fields["outcome"], fields["pred"], fields["method"])
    return got


def test_lm_eval_inspect_and_trl_score_alike(evalset, outputs, lm_eval_outcomes, style, tmp_path):
    import inspect_mock_provider as mock
    from inspect_ai import eval as inspect_eval

    from lm_eval_medsplit.inspect_tasks.tasks import medsplit
    from lm_eval_medsplit.train.data import build_rows
    from lm_eval_medsplit.train.rewards import AccuracyReward

    by_id = {r.id: r for r in evalset.records}
    ids = sorted(lm_eval_outcomes)
    records = [by_id[i] for i in ids]
    texts = {r.id: outputs[build_prompt(r, style).user_text] for r in records}
    core = {r.id: scoring.score(texts[r.id], r.options, r.answer_idx, style=style) for r in records}
    expected = {i: (c.outcome.value, c.pred, c.method) for i, c in core.items()}
    kinds = Counter(c.outcome.value for c in core.values())
    assert min(kinds.values()) >= 5 and len(kinds) == 3, kinds  # every outcome exercised
    assert len({c.method for c in core.values()}) >= 3
    if style == "paper":  # the paper's \\boxed{} forms are read, and differently from cot
        assert sum(c.method == "boxed" for c in core.values()) >= 10
        cot = {r.id: scoring.score(texts[r.id], r.options, r.answer_idx) for r in records}
        assert any(cot[i].outcome != core[i].outcome for i in ids)

    # lm-eval, end to end through simple_evaluate
    assert lm_eval_outcomes == expected

    # Inspect, end to end through inspect_ai.eval with a replaying provider
    mock.REPLAY.clear()
    mock.REPLAY.update(outputs)
    (log,) = inspect_eval(medsplit(benchmarks=BENCH, subset="all", style=style,
                                   source=evalset.source.location),
                          model="medsplit_test_replay/gpt-4o", log_dir=str(tmp_path / "logs"),
                          display="none", sample_id=[f"{BENCH}/{i}" for i in ids])
    assert log.status == "success" and len(log.samples) == len(ids)
    letter = {"C": "correct", "I": "incorrect", "N": "unparsed"}
    inspect_outcomes = {}
    for s in log.samples:
        sc = s.scores["medsplit_scorer"]
        inspect_outcomes[s.metadata["id"]] = (letter[sc.value], sc.answer, sc.metadata["method"])
    assert inspect_outcomes == expected

    # TRL, the accuracy reward over GRPO rows built from the same records
    rows = build_rows(records, "grpo", style=style)
    assert rows[0]["prompt"][-1]["content"] == build_prompt(records[0], style).user_text
    reward = AccuracyReward(unparsed_penalty=-0.5)
    rewards = reward([texts[row["id"]] for row in rows],
                     answer_idx=[row["answer_idx"] for row in rows],
                     options=[row["options"] for row in rows],
                     style=[row["style"] for row in rows])
    value = {"correct": 1.0, "incorrect": 0.0, "unparsed": -0.5}
    assert rewards == [value[expected[row["id"]][0]] for row in rows]
    assert reward.method_counts == Counter(e[2] for e in expected.values())

    # and the three accuracies agree
    acc = kinds["correct"] / len(ids)
    assert sum(o[0] == "correct" for o in lm_eval_outcomes.values()) / len(ids) == acc
    assert sum(1 for r in rewards if r == 1.0) / len(ids) == acc
