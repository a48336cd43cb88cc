"""The `medsplit` command line, run as a user runs it (subprocess) and in-process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lm_eval_medsplit.cli import main
from lm_eval_medsplit.registry import BENCHMARKS


def run(*args, check=True):
    p = subprocess.run([sys.executable, "-m", "lm_eval_medsplit", *args],
                       capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"exit {p.returncode}\nstdout:{p.stdout}\nstderr:{p.stderr}")
    return p


def test_help_lists_commands_and_sources():
    out = run("--help").stdout
    for word in ("benchmarks", "data", "score", "MEDSPLIT_SOURCE", "hub"):
        assert word in out


def test_benchmarks_json_is_the_registry(capsys):
    assert main(["benchmarks", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["config"] for r in rows] == [b.config for b in BENCHMARKS]
    assert rows[5] == {**rows[5], "config": "MedXpertQA", "name": "medxpertqa", "n_options": 10}
    table = run("benchmarks").stdout
    assert "mmlu_pro_health_biology" in table and "GPQA_Medical_test" in table


def test_data_validate_raw(raw_dir, capsys):
    assert main(["data", "validate", "--source", str(raw_dir), "--json"]) == 0
    reps = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["benchmark"]: r["records"] for r in reps} == {
        "medqa": 1273, "medmcqa": 4183, "pubmedqa": 1000, "medbullets_op4": 308,
        "medbullets_op5": 308, "medxpertqa": 2450, "mmlu_pro_health_biology": 1535}
    assert all(r["skipped"] == 0 and len(r["content_hash"]) == 64 for r in reps)
    p = run("data", "validate", "--source", str(raw_dir), "-b", "medbullets_op4", "--strict")
    assert "308" in p.stdout and "0 row(s) skipped" in p.stdout
    assert "not in this source" not in p.stdout  # only asked for one


def test_data_validate_names_the_benchmarks_a_source_lacks(raw_dir, tmp_path):
    out = " ".join(run("data", "validate", "--source", str(raw_dir)).stdout.split())
    # the shared raw folder has SOURCE.md-only folders for the hub-only benchmarks, none for HLE
    assert "not in this source: nejm (NEJM/ has no raw loader: withheld" in out
    assert "not in this source: hle_biomed (no folder hle_biomed/)" in out
    assert "not in this source: medqa" not in out
    hub_dir = tmp_path / "hub"
    (hub_dir / "medqa").mkdir(parents=True)
    (hub_dir / "pubmedqa").mkdir()
    (hub_dir / "pubmedqa" / "test.jsonl").write_text(json.dumps(
        {"id": "1", "question": "q?", "options": json.dumps({"A": "yes", "B": "no", "C": "maybe"}),
         "answer_idx": "A", "answer": "yes"}) + "\n")
    from lm_eval_medsplit.sources import resolve_source

    absent = resolve_source(hub_dir).absent()
    assert absent["medqa"] == "medqa/ has no .parquet or .jsonl file"
    assert absent["nejm"] == "no folder NEJM/" and "pubmedqa" not in absent and len(absent) == 10


def test_data_validate_strict_failure_names_everything(tmp_path):
    bad = tmp_path / "mine.jsonl"
    bad.write_text('{"id": "1", "question": "q", "options": ["a", "b"], "answer_idx": "C"}\n'
                   '{"id": "2", "question": "q2"}\n')
    p = run("data", "validate", "--source", str(bad), "--strict", check=False)
    assert p.returncode == 2 and "records" not in p.stdout  # no empty table before the error
    assert f"{bad}: line 1: field 'answer_idx': 'C' is not one of A, B" in p.stderr
    assert f"{bad}: line 2: field 'options': missing" in p.stderr
    p = run("data", "validate", "--source", str(bad))
    assert "2 row(s) skipped" in p.stdout


def test_data_show_prints_records_and_prompt(raw_dir):
    p = run("data", "show", "--source", str(raw_dir), "-b", "medqa", "--n", "1", "--prompt")
    assert '"id": "0"' in p.stdout and "--- user ---" in p.stdout and 'Answer: X' in p.stdout


def test_unknown_source_is_a_clear_error():
    p = run("data", "validate", "--source", "/no/such/dir", check=False)
    assert p.returncode == 2 and "neither 'hub' nor an existing file or directory" in p.stderr


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_score_writes_pred_method_correct(tmp_path, capsys):
    inp, out = tmp_path / "outs.jsonl", tmp_path / "scored.jsonl"
    _write(inp, [
        {"output": "Reasoning...\nAnswer: B", "options": ["x", "y", "z"], "answer_idx": "B", "keep": 1},
        {"output": "The answer is (A).", "options": {"A": "x", "B": "y"}, "answer_idx": "B"},
        {"output": "I am not sure.", "options": ["x", "y"], "answer_idx": "A"},
        {"output": "<think>long", "options": ["x", "y"]},
    ])
    assert main(["score", str(inp), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n"] == 4 and summary["with_gold"] == 3 and summary["correct"] == 1
    assert summary["accuracy"] == pytest.approx(1 / 3)
    assert summary["parse_rate"] == pytest.approx(2 / 4)
    assert summary["accuracy_when_parsed"] == pytest.approx(1 / 2)
    rows = [json.loads(line) for line in open(out)]
    assert [r["pred"] for r in rows] == ["B", "A", None, None]
    assert [r["correct"] for r in rows] == [True, False, False, None]
    assert rows[0]["keep"] == 1 and rows[3]["method"] == "truncated_think"
    assert sum(summary["methods"].values()) == 4


def test_score_bad_line_names_line_and_field(tmp_path):
    inp = tmp_path / "outs.jsonl"
    _write(inp, [{"output": "Answer: A", "options": ["x", "y"]}, {"options": ["x"]}])
    p = run("score", str(inp), "--strict", check=False)
    assert p.returncode == 2 and f"{inp}: line 2: field 'output': missing" in p.stderr
    _write(inp, [{"output": "Answer: A", "options": ["x", "y"], "answer_idx": "Q"}])
    p = run("score", str(inp), "--strict", check=False)
    assert f"{inp}: line 1: field 'answer_idx': 'Q' is not one of A, B" in p.stderr
    inp.write_text('{"output": "Answer: A", "options": ["x", "y"]}\n{"output": \n[1, 2]\n')
    p = run("score", str(inp), "--strict", check=False)
    assert p.returncode == 2 and f"{inp}: line 2: field '<json>': broken JSON line" in p.stderr
    assert "3 invalid line(s)" not in p.stderr and "2 invalid line(s)" in p.stderr  # line 3 too


def test_score_names_every_bad_line_and_writes_nothing(tmp_path):
    inp, out = tmp_path / "outs.jsonl", tmp_path / "scored.jsonl"
    out.write_text("an earlier run\n")
    rows = [{"output": "Answer: A", "options": ["x", "y"]}] * 3 + [
        {"options": ["x"]}, {"output": "Answer: A", "options": 5},
        {"output": "Answer: A", "options": ["x", "y"], "answer_idx": "Q"}] + [{"output": 1}] * 30
    _write(inp, rows)
    p = run("score", str(inp), "--out", str(out), "--strict", check=False)
    assert p.returncode == 2
    assert "33 invalid line(s)" in p.stderr and "... and 13 more" in p.stderr
    for where in ("line 4: field 'output': missing", "line 5: field 'options'",
                  "line 6: field 'answer_idx': 'Q' is not one of A, B",
                  "line 7: field 'output': expected a string"):
        assert f"{inp}: {where}" in p.stderr
    assert f"nothing written to {out}" in p.stderr
    assert out.read_text() == "an earlier run\n"  # the earlier file is kept whole
    assert sorted(tmp_path.iterdir()) == sorted([inp, out])  # and no temporary file is left


def test_score_on_real_gpt4o_outputs(shared_data, tmp_path):
    src = json.load(open(shared_data / "raw" / "mmlu_health_biology" / "health_result.json"))
    inp = tmp_path / "gpt4o.jsonl"
    _write(inp, [{"output": r["response"], "options": r["options"], "answer_idx": r["answer"]} for r in src])
    p = run("score", str(inp), "--json")
    s = json.loads(p.stdout)
    official = sum(r["pred"] == r["answer"] for r in src) / len(src)
    assert s["n"] == 818 and s["parse_rate"] > 0.95
    assert s["accuracy"] >= official - 0.005  # never worse than the official extractor
