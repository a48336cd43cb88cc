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


# --------------------------------------------------------------------------- first hour of a new user


def _leaf_parsers():
    import argparse

    from lm_eval_medsplit.cli import build_parser

    def walk(p, name):
        yield name, p
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for n, sp in a.choices.items():
                    yield from walk(sp, f"{name} {n}")

    return list(walk(build_parser(), "medsplit"))


def test_every_command_help_shows_examples():
    parsers = _leaf_parsers()
    assert len(parsers) >= 20
    missing = [name for name, p in parsers if "example" not in p.format_help().lower()]
    assert not missing, f"--help without examples: {missing}"


def test_lm_eval_tasks_default_is_the_clean_tasks_and_says_so(raw_dir):
    names = run("lm-eval", "tasks", "--source", str(raw_dir)).stdout.strip().split(",")
    assert names and not [n for n in names if n.endswith(("_mc", "_adversarial"))], names
    every = run("lm-eval", "tasks", "--source", str(raw_dir), "--mode", "all").stdout.strip().split(",")
    assert len(every) == 3 * len(names)
    helptext = run("lm-eval", "tasks", "--help").stdout
    assert "cot (default)" in helptext and "--subset" in helptext and "--write DIR" in helptext


def test_lm_eval_tasks_write_gives_a_user_benchmark_real_tasks(tmp_path):
    """A JSONL whose benchmark is in no registry: the names printed come with YAMLs that
    lm-eval's own TaskManager indexes from --include_path, reading that source."""
    pytest.importorskip("lm_eval")
    src = tmp_path / "mine.jsonl"
    import shutil
    from pathlib import Path

    shutil.copy(Path(__file__).resolve().parents[1] / "examples" / "mine.jsonl", src)
    plain = run("lm-eval", "tasks", "--source", str(src))
    assert "not in the registry" in plain.stderr and "--write DIR" in plain.stderr
    p = run("lm-eval", "tasks", "--source", str(src), "--write", str(tmp_path / "tasks"))
    names = p.stdout.strip().split(",")
    assert names == ["medsplit_mine_reasoning", "medsplit_mine_knowledge"]
    assert "wrote 2 task YAMLs" in p.stderr
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=str(tmp_path / "tasks"), include_defaults=False)
    task = tm.load(["medsplit_mine_knowledge"])["tasks"]["medsplit_mine_knowledge"]
    docs = list(task.eval_docs)
    assert docs and {d["benchmark"] for d in docs} == {"mine"}
    assert task.config.metadata["medsplit"]["source"]["location"] == str(src)


def test_lm_eval_tasks_write_refuses_registry_only_sources(raw_dir, tmp_path):
    p = run("lm-eval", "tasks", "--source", str(raw_dir), "--write", str(tmp_path / "t"), check=False)
    assert p.returncode == 2 and "packaged tasks" in p.stderr
    assert not (tmp_path / "t").exists()


def _unreachable_hub_env():
    import os

    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "MEDSPLIT_SOURCE")}
    env["HF_ENDPOINT"] = "http://127.0.0.1:9"  # nothing listens: refused at once
    return env


def test_hub_error_in_the_cli_is_fast_and_names_the_flag():
    import time

    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "lm_eval_medsplit", "data", "validate", "-b", "medqa"],
                       capture_output=True, text=True, env=_unreachable_hub_env(), timeout=120)
    took = time.monotonic() - t0
    assert p.returncode == 2, p.stderr
    assert "cannot be reached" in p.stderr and "--source DIR" in p.stderr
    assert "HF_HUB_OFFLINE=1" in p.stderr and "--metadata" not in p.stderr
    assert took < 20, f"{took:.1f} s: the hub error should not wait for retries"


def test_hub_error_in_lm_eval_comes_before_the_model_in_its_syntax(tmp_path):
    """`lm_eval` with the default hub source and no network: one line, lm-eval's
    --metadata syntax, before the model loads (the model path does not even exist)."""
    pytest.importorskip("lm_eval")
    env = _unreachable_hub_env()
    from lm_eval_medsplit._lm_eval_hook import task_dir

    p = _lm_eval_cli(["--model", "hf", "--model_args", "pretrained=/no/such/model",
                      "--include_path", task_dir(), "--tasks", "medsplit_medqa_reasoning"], env, tmp_path)
    assert p.returncode == 2, p.stderr[-3000:]
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("lm_eval: medsplit source") and "Traceback" not in p.stderr
    assert "--metadata '{\"source\": \"DIR\"}'" in last and "HF_HUB_OFFLINE=1" in last
    assert "--source DIR" not in last


def test_inspect_task_errors_come_first_in_its_syntax(raw_dir, tmp_path):
    """A bad -T value and an unreachable hub: the first line names the parameter (Inspect
    prints its own traceback after it)."""
    pytest.importorskip("inspect_ai")
    import os
    from pathlib import Path

    inspect = Path(sys.executable).parent / "inspect"
    base = [str(inspect), "eval", "lm_eval_medsplit/medsplit_reasoning", "--model", "mockllm/model",
            "--log-dir", str(tmp_path / "logs"), "--display", "none"]
    p = subprocess.run(base + ["-T", "benchmarks=medqaa", "-T", f"source={raw_dir}"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"})
    first = (p.stdout + p.stderr).strip().splitlines()[0]
    assert p.returncode != 0 and "-T benchmarks=" in first and "unknown benchmark 'medqaa'" in first
    p = subprocess.run(base, capture_output=True, text=True, cwd=tmp_path, timeout=300,
                       env=_unreachable_hub_env())
    first = (p.stdout + p.stderr).strip().splitlines()[0]
    assert p.returncode != 0 and "-T source=DIR" in first and "HF_HUB_OFFLINE=1" in first


def test_sources_keep_the_path_the_user_typed(tmp_path):
    from lm_eval_medsplit.sources import resolve_source

    real = tmp_path / "real.jsonl"
    real.write_text(json.dumps({"id": "1", "question": "q?", "options": ["a", "b"], "answer_idx": "A"})
                    + "\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    assert resolve_source(str(link)).location == str(link)


def test_train_help_is_short_with_an_example_and_config():
    pytest.importorskip("trl")
    from pathlib import Path

    exe = Path(sys.executable).parent / "medsplit-train"
    for command in ("sft", "grpo"):
        out = subprocess.run([str(exe), command, "--help"], capture_output=True, text=True,
                             timeout=120).stdout
        assert len(out.splitlines()) < 120, len(out.splitlines())
        assert "example" in out and "--config" in out and "--help-all" in out
        assert f"--config {command}_cpu_smoke" in out


def _lm_eval_cli(args, env, cwd):
    """The `lm_eval` command with the registration hook installed (as the wheel's .pth does)."""
    code = ("import sys; from lm_eval_medsplit._lm_eval_hook import install; install(); "
            "sys.argv[0] = 'lm_eval'; from lm_eval.__main__ import cli_evaluate; cli_evaluate()")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


def test_lm_eval_generation_budget_is_checked_before_the_model(raw_dir, tmp_path):
    """A local model with a 4096-token context and the tasks' 4096-token budget: one line
    with the flag to set, before lm-eval loads anything (the folder holds no weights)."""
    pytest.importorskip("lm_eval")
    import os

    from lm_eval_medsplit._lm_eval_hook import task_dir

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "llama", "max_position_embeddings": 4096}))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    args = ["--model", "hf", "--model_args", f"pretrained={model}", "--include_path", task_dir(),
            "--tasks", "medsplit_medqa_reasoning", "--metadata", json.dumps({"source": str(raw_dir)})]
    p = _lm_eval_cli(args, env, tmp_path)
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert "4096-token context: add --gen_kwargs max_gen_toks=1024" in p.stderr.strip().splitlines()[-1]
    # with a budget set, the check lets lm-eval go on (and fail on the weightless folder)
    p = _lm_eval_cli(args + ["--gen_kwargs", "max_gen_toks=16"], env, tmp_path)
    assert p.returncode != 0 and "max_gen_toks=1024" not in p.stderr
