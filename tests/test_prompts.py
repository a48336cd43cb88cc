"""Prompt styles and options a question already lists: every style lists a record's
options exactly once, whether the question carries them (as the hub's ``question`` field
may) or not (as the raw files do). Built from every raw config in ``shared/data/raw``."""

from __future__ import annotations

import dataclasses
import re

import pytest

from lm_eval_medsplit.prompts import (
    PAPER_INSTRUCTION,
    STYLES,
    build_prompt,
    format_options,
    listed_options,
    user_prompt,
)
from lm_eval_medsplit.schema import MCQRecord


def _ws(text: str) -> str:
    return " ".join(text.split())


def answer_choices(record: MCQRecord) -> str:
    """MedXpertQA's own layout: the stem, then one ``Answer Choices: (A) .. (B) ..`` line."""
    return record.question + "\nAnswer Choices: " + " ".join(
        f"({k}) {' '.join(v.split())}" for k, v in record.options.items())


def option_lines(record: MCQRecord) -> str:
    """The other common layout: the stem, a blank line, one ``A. text`` line per option."""
    return record.question + "\n\n" + format_options(record)


LAYOUTS = {"answer_choices": answer_choices, "option_lines": option_lines}


@pytest.fixture(scope="module")
def raw_records(raw_source):
    out = {}
    for b in raw_source.benchmarks():
        out[b] = raw_source.load(b)[0]
    assert len(out) >= 7
    return out


def test_no_style_lists_options_twice_in_either_layout(raw_records):
    checked = 0
    for bench, records in raw_records.items():
        for r in records:
            assert listed_options(r.question, r.options) is None, (bench, r.id)  # raw: stem only
            bare = {s: _ws(user_prompt(r, s)) for s in STYLES}
            for layout, make in LAYOUTS.items():
                q = make(r)
                assert listed_options(q, r.options) is not None, (bench, r.id, layout)
                embedded = dataclasses.replace(r, question=q)
                for style in STYLES:
                    body = user_prompt(embedded, style)
                    got = _ws(body)
                    if style != "paper":
                        # the embedded listing is replaced: the prompt is the bare one,
                        # which lists the options once (test_bare_questions_...)
                        assert got == bare[style], (bench, r.id, layout, style)
                        continue
                    # the question verbatim, no second listing, then the instruction
                    assert got == _ws(q) + " " + PAPER_INSTRUCTION, (bench, r.id, layout)
                    # one listing: with it cut out, no listing of the options remains
                    span = listed_options(body, r.options)
                    assert span is not None, (bench, r.id, layout, style)
                    rest = body[:span[0]] + body[span[1]:]
                    assert listed_options(rest, r.options) is None, (bench, r.id, layout, style)
                checked += 1
    assert checked > 20000


def test_bare_questions_get_their_options_in_every_style(raw_records):
    for bench, records in raw_records.items():
        for r in records[:50]:
            for style in STYLES:
                text = user_prompt(r, style)
                span = listed_options(text, r.options)
                assert span is not None, (bench, r.id, style)
                rest = text[:span[0]] + text[span[1]:]
                assert listed_options(rest, r.options) is None, (bench, r.id, style)
    r = raw_records["medqa"][0]
    paper = user_prompt(r, "paper")
    assert paper.startswith(r.question.strip() + "\nA. ")
    assert paper.endswith("\n" + PAPER_INSTRUCTION)


def _rec(question: str) -> MCQRecord:
    return MCQRecord(id="x", benchmark="t", question=question,
                     options={"A": "Aspirin", "B": "Heparin", "C": "Warfarin"}, answer_idx="B")


@pytest.mark.parametrize("question", [
    "Which drug?\nAnswer Choices: (A) aspirin (B) Heparin. (C) Warfarin",
    "Which drug?\n(A) Aspirin\n(B) Heparin\n(C) Warfarin",
    "Which drug?\nA) Aspirin\n\nB) Heparin\nC) Warfarin\n",
    "Which drug?\nOptions:\nA. Aspirin\nB. Heparn\nC. Warfarin",  # a typo still matches
])
def test_listing_forms_detected(question):
    r = _rec(question)
    assert listed_options(r.question, r.options) is not None
    for style in STYLES:
        text = user_prompt(r, style)
        assert len(re.findall(r"Warfarin", text)) == 1, (style, text)


@pytest.mark.parametrize("question", [
    "Which drug?\n(A) Aspirin\n(B) Heparin",  # letters missing
    "Which drug?\nA. Ibuprofen\nB. Heparin\nC. Warfarin",  # another text
    "Compare A. Aspirin with the others. Which drug?",
])
def test_other_listings_are_not_the_records(question):
    r = _rec(question)
    assert listed_options(r.question, r.options) is None
    assert user_prompt(r, "cot").count("\nA. Aspirin") == 1  # the record's own options, once


def test_listing_in_the_middle_is_kept_verbatim():
    q = "Which drug?\nA. Aspirin\nB. Heparin\nC. Warfarin\nConsider renal function."
    r = _rec(q)
    assert user_prompt(r, "cot").startswith(q + "\n\nThink through")
    assert user_prompt(r, "paper") == q + "\n" + PAPER_INSTRUCTION


def test_paper_style_reconsider_and_answer_form():
    r = dataclasses.replace(_rec("Which drug?"), adversarial_traces=["It is A.\nAnswer: A"])
    p = build_prompt(r, "paper", adversarial="reconsider")
    assert p.messages[-1]["content"].endswith(PAPER_INSTRUCTION)
    assert "Answer: X" not in p.messages[-1]["content"]
    with pytest.raises(ValueError, match="cot, direct, paper"):
        user_prompt(r, "boxed")


def test_paper_style_in_training_rows_rewards_and_traces(raw_records):
    """medsplit-train and trace generation in the paper style: prompts from the prompt
    builder, SFT targets ending in \\boxed{X} that both rewards accept, traces that end in
    the style's answer form and still pass the trace check."""
    from lm_eval_medsplit.adversarial import check_trace, offline_trace, wrong_letter
    from lm_eval_medsplit.prompts import trace_generation_messages
    from lm_eval_medsplit.train.data import build_rows, sft_completion
    from lm_eval_medsplit.train.rewards import AccuracyReward, FormatReward

    records = raw_records["medbullets_op5"][:20]
    rows = build_rows(records, "grpo", style="paper")
    assert all(row["style"] == "paper" for row in rows)
    assert rows[0]["prompt"][-1]["content"] == user_prompt(records[0], "paper")
    targets = [sft_completion(r, style="paper") for r in records]
    assert all(c.rstrip().endswith(f"\\boxed{{{r.answer_idx}}}.") for c, r in zip(targets, records))
    # (these raw rows carry no worked reasoning: give the think block some)
    completions = [c.replace("<think>\n", "<think>\nThe findings point one way.", 1) for c in targets]
    kw = {"answer_idx": [row["answer_idx"] for row in rows], "options": [row["options"] for row in rows],
          "style": [row["style"] for row in rows]}
    assert AccuracyReward()(completions, **kw) == [1.0] * len(rows)
    assert FormatReward()(completions, **kw) == [1.0] * len(rows)
    # a cot-style answer line is not the paper format
    cot = [sft_completion(r).replace("<think>\n", "<think>\nThe findings point one way.", 1)
           for r in records]
    assert FormatReward()(cot, **kw) == [0.0] * len(rows)

    r = records[0]
    k_letter = wrong_letter(r, 0)
    trace = offline_trace(r, 0, style="paper")
    assert trace.endswith(f"\\boxed{{{k_letter}}}.") and check_trace(r, trace, k_letter) == (True, "ok")
    msgs = trace_generation_messages(r, k_letter, "paper")
    assert f"\\boxed{{{k_letter}}}" in msgs[-1]["content"] and "Answer: " not in msgs[-1]["content"]
