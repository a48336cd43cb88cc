"""Faults: every CLI command over a generated corpus of bad inputs, unusable output paths,
crafted files, dead endpoints and kill -9 in the middle of work.

Each bad input ends in exit 2 and one line (``medsplit: error: ...``) naming the file and,
for a row, its line and field, never a traceback; or, in lenient mode, success with every
skipped row counted. No file is written outside ``--out``; an earlier output survives a
failed or killed run, and no state is left that validates but differs from what its
manifest or output says. The kill loops over several seeds are marked ``slow``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lm_eval_medsplit import fileio
from lm_eval_medsplit.cli import main

ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0

GOOD = {"id": "q1", "question": "Which nerve?", "options": ["vagus", "facial", "optic"],
        "answer_idx": "A"}
GOOD2 = {"id": "q2", "question": "Which bone?", "options": ["femur", "tibia"], "answer_idx": "B"}
OUT_ROW = {"output": "Answer: A", "options": ["x", "y"], "answer_idx": "A"}


def cli(capsys, *args) -> tuple[int, str]:
    rc = main([str(a) for a in args])
    cap = capsys.readouterr()
    cli.out = cap.out
    return rc, cap.err


def assert_one_line_error(rc: int, err: str, *needles: str) -> str:
    """Exit 2, stderr starting with one ``medsplit: error:`` line holding every needle,
    no traceback and no fallback for an error the package did not name itself."""
    assert rc == 2, err
    assert "Traceback" not in err and "MEDSPLIT_DEBUG" not in err, err
    first = err.strip().splitlines()[0]
    assert first.startswith("medsplit: error: "), err
    for n in needles:
        assert n in first, f"{n!r} not in the first line: {first!r}"
    return first


def jl(*rows) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)


# --------------------------------------------------------------------------- the corpus

#: name -> (bytes of a whole file, the text the first error line must hold besides the name)
FILE_FAULTS = {
    "utf16": (jl(GOOD).encode("utf-16"), "UTF-16"),
    "latin1": (jl(GOOD).replace("Which", "Wh\u00efch").encode("latin-1"), ":1:"),
    "lone_surrogate_bytes": (jl(GOOD).encode() + b'{"id": "x\xed\xa0\x80"}\n', ":2:"),
}

#: name -> (one bad line, the field its error names); each file also holds a good line
ROW_FAULTS = {
    "huge_int": ('{"id": ' + "9" * 5000 + ', "question": "Q?", "options": ["a", "b"]}', "<json>"),
    "deep_nesting": ("[" * 50_000 + "]" * 50_000, "<json>"),
    "surrogate_escape": ('{"id": "x", "question": "Q\\ud800?", "options": ["a", "b"]}', "<json>"),
    "nan": ('{"id": "x", "question": "Q?", "options": ["a", "b"], "reasoning_prob": NaN}', "<json>"),
    "broken": ('{"id": "x", "question": "Unterminated', "<json>"),
    "not_object": ("[1, 2]", "<row>"),
    "int_question": (json.dumps({**GOOD2, "question": 7}), "question"),
    "dict_id": (json.dumps({**GOOD2, "id": {"a": 1}}), "id"),
    "none_option": (json.dumps({**GOOD2, "options": ["a", None]}), "options"),
    "answer_z": (json.dumps({**GOOD2, "answer_idx": "Z"}), "answer_idx"),
    "bool_answer": (json.dumps({**GOOD2, "answer_idx": True}), "answer_idx"),
    "one_option": (json.dumps({**GOOD2, "options": ["only"], "answer_idx": "A"}), "options"),
    "duplicate_id": (json.dumps({**GOOD, "question": "Again?"}), "id"),
}


def _row_file(tmp_path: Path, name: str, bad: str) -> Path:
    p = tmp_path / f"{name}.jsonl"
    p.write_text(json.dumps(GOOD) + "\n" + bad + "\n", encoding="utf-8")
    return p


def _score_row_file(tmp_path: Path, name: str, bad: str) -> Path:
    """The same faults in a scoring input (output, options, answer_idx)."""
    row = json.loads(bad) if bad.startswith("{") and name not in (
        "huge_int", "surrogate_escape", "nan", "broken") else None
    if row is not None:
        row = {"output": row.get("question") if name == "int_question" else "Answer: A",
               "options": row.get("options"), "answer_idx": row.get("answer_idx")}
        bad = json.dumps(row)
    p = tmp_path / f"{name}.outputs.jsonl"
    p.write_text(json.dumps(OUT_ROW) + "\n" + bad + "\n", encoding="utf-8")
    return p


SCORE_FIELDS = {"int_question": "output", "none_option": "options", "answer_z": "answer_idx",
                "bool_answer": "answer_idx", "one_option": "options"}


@pytest.mark.parametrize("name", sorted(FILE_FAULTS))
def test_every_command_names_a_badly_encoded_file(name, tmp_path, capsys):
    data, needle = FILE_FAULTS[name]
    bad = tmp_path / f"{name}.jsonl"
    bad.write_bytes(data)
    out = tmp_path / "out.jsonl"
    for args in (["score", bad], ["classify", bad, "--out", out],
                 ["data", "validate", "--source", bad],
                 ["adversarial", "generate", bad, "--out", out, "--offline"],
                 ["adversarial", "check", bad], ["lm-eval", "tasks", "--source", bad],
                 ["build", "--source", bad, "--out", tmp_path / "b", "--no-progress"]):
        rc, err = cli(capsys, *args)
        assert_one_line_error(rc, err, str(bad), needle)
    assert not out.exists() and not (tmp_path / "b").exists()


@pytest.mark.parametrize("name", sorted(ROW_FAULTS))
def test_every_row_fault_fails_strict_and_is_counted_lenient(name, tmp_path, capsys):
    bad_line, field = ROW_FAULTS[name]
    inp = _row_file(tmp_path, name, bad_line)
    out = tmp_path / "out.jsonl"
    where = f"{inp}: line 2: field {field!r}"
    for cmd in (["classify", inp, "--out", out], ["adversarial", "generate", inp, "--out", out, "--offline"],
                ["data", "validate", "--source", inp]):
        rc, err = cli(capsys, *cmd, "--strict")
        assert_one_line_error(rc, err, where)
        assert not out.exists()
        rc, err = cli(capsys, *cmd)  # lenient: the good row is kept, the bad one counted
        if cmd[0] == "data":
            rc, err = cli(capsys, *cmd, "--json")
            rep = json.loads(cli.out)
            assert rc == 0 and rep["records"] == 1 and rep["skipped"] == 1, err
            assert list(rep["skip_reasons"])[0].startswith(field)
            continue
        assert rc == 0, err
        assert "skipped 1 invalid" in err and where in err, err
        rows = [json.loads(x) for x in out.read_text().splitlines()]
        assert [r["id"] for r in rows] == ["q1"]
        out.unlink()
    # scoring reads the same faults in its own fields
    sinp = _score_row_file(tmp_path, name, bad_line)
    sfield = SCORE_FIELDS.get(name, "<json>" if field in ("<json>",) else None)
    rc, err = cli(capsys, "score", sinp, "--strict", "--out", out)
    if name in ("dict_id", "duplicate_id"):  # not a scoring field: scored as any row
        assert rc == 0, err
        out.unlink()
        return
    sfield = sfield or field
    assert_one_line_error(rc, err, f"{sinp}: line 2: field {sfield!r}")
    assert not out.exists()
    rc, err = cli(capsys, "score", sinp, "--json", "--out", out)
    assert rc == 0 and "skipped 1 invalid line(s)" in err, err
    text = out.read_text()
    assert "NaN" not in text and "Infinity" not in text and len(text.splitlines()) == 1


def test_score_summary_counts_skips_and_never_writes_nan(tmp_path, capsys):
    inp = tmp_path / "o.jsonl"
    inp.write_text(jl(OUT_ROW, '{"output": "Answer: B", "options": ["x", "y"], "score": Infinity}'))
    rc = main(["score", str(inp), "--json", "--out", str(tmp_path / "s.jsonl")])
    cap = capsys.readouterr()
    d = json.loads(cap.out)
    assert rc == 0 and d["n"] == 1 and d["skipped"] == 1
    assert list(d["skip_reasons"]) == ["<json>: broken JSON line at column 57: Infinity is not JSON"]
    assert "Infinity is not JSON" in cap.err


@pytest.mark.parametrize("cmd", ["score", "classify", "generate", "validate"])
def test_empty_input_is_an_error_strict_or_not(cmd, tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    out = tmp_path / "o.jsonl"
    args = {"score": ["score", empty], "classify": ["classify", empty, "--out", out],
            "generate": ["adversarial", "generate", empty, "--out", out, "--offline"],
            "validate": ["data", "validate", "--source", empty]}[cmd]
    for extra in ([], ["--strict"]):
        rc, err = cli(capsys, *args, *extra)
        assert rc == 2 and "Traceback" not in err and err.startswith("medsplit: error: "), err
    assert not out.exists()


def test_missing_directory_and_unreadable_inputs(tmp_path, capsys):
    d = tmp_path / "adir.jsonl"
    d.mkdir()
    for args in (["score", d], ["classify", d, "--out", tmp_path / "o.jsonl"],
                 ["adversarial", "generate", d, "--out", tmp_path / "o.jsonl", "--offline"]):
        rc, err = cli(capsys, *args)
        assert_one_line_error(rc, err, str(d), "is a directory")
    rc, err = cli(capsys, "score", tmp_path / "missing.jsonl")
    assert_one_line_error(rc, err, str(tmp_path / "missing.jsonl"), "no such file")


def _as_nobody(*args) -> tuple[int, str]:
    """Run ``medsplit ARGS`` in a forked child that has dropped root for ``nobody`` (root
    reads and writes everything, so a permission error needs another user): exit code and
    stderr. The child runs the interpreter and modules already loaded here."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (child)
        code = 3
        try:
            os.close(r)
            if ROOT_USER:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            err = io.StringIO()
            with redirect_stderr(err), redirect_stdout(io.StringIO()):
                rc = main([str(a) for a in args])
            os.write(w, json.dumps([rc, err.getvalue()]).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    assert status == 0 and data, f"the child failed (status {status})"
    rc, err = json.loads(data)
    return rc, err


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_permission_errors_are_one_line(tmp_path, capsys):
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="medsplit-perm-"))  # world-traversable, unlike tmp_path
    try:
        work.chmod(0o755)
        inp = work / "in.jsonl"
        inp.write_text(jl(OUT_ROW))
        inp.chmod(0o644)
        assert cli(capsys, "score", inp)[0] == 0  # warm: every module of the path is loaded
        inp.chmod(0)
        rc, err = _as_nobody("score", inp)
        assert_one_line_error(rc, err, str(inp), "ermission")
        inp.chmod(0o644)
        ro = work / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        rc, err = _as_nobody("score", inp, "--out", ro / "o.jsonl")
        assert_one_line_error(rc, err, str(ro), "permission denied")
    finally:
        for p in work.rglob("*"):
            p.chmod(0o755)
        shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------- output paths


@pytest.mark.parametrize("kind", ["directory", "file_parent"])
def test_unusable_out_is_refused_before_any_work(kind, tmp_path, capsys):
    inp = tmp_path / "q.jsonl"
    inp.write_text(jl(GOOD, GOOD2))
    blocker = tmp_path / "blocker"
    if kind == "directory":
        blocker.mkdir()
        out, needle = blocker, "is a directory"
    else:
        blocker.write_text("a file")
        out, needle = blocker / "sub" / "o.jsonl", "is a file, not a directory"
    for args in (["score", _score_row_file(tmp_path, "ok", json.dumps(OUT_ROW)), "--out", out],
                 ["classify", inp, "--out", out],
                 ["adversarial", "generate", inp, "--out", out, "--offline"]):
        rc, err = cli(capsys, *args)
        assert_one_line_error(rc, err, str(out), needle)
    # classifier train finds out before it reads or trains (it used to after 34 s): with
    # --data missing as well, the error is still the one about --out
    rc, err = cli(capsys, "classifier", "train", "--data", tmp_path / "missing.jsonl", "--out", out)
    assert_one_line_error(rc, err, str(out))
    assert "missing.jsonl" not in err
    if kind == "file_parent":
        rc, err = cli(capsys, "build", "--source", inp, "--out", blocker / "b")
        assert_one_line_error(rc, err, "is a file, not a directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["q.jsonl", "blocker", "ok.outputs.jsonl"])


def test_out_equal_to_input_is_refused_and_the_input_kept(tmp_path, capsys):
    inp = tmp_path / "q.jsonl"
    inp.write_text(jl(GOOD, GOOD2))
    before = inp.read_bytes()
    for args in (["adversarial", "generate", inp, "--out", inp, "--offline"],
                 ["adversarial", "generate", inp, "--out", inp, "--endpoint", "http://127.0.0.1:9/v1",
                  "--endpoint-model", "m", "--no-resume"],
                 ["classify", inp, "--out", inp]):
        rc, err = cli(capsys, *args)
        assert_one_line_error(rc, err, "is the input file")
        assert inp.read_bytes() == before
    sinp = _score_row_file(tmp_path, "s", json.dumps(OUT_ROW))
    rc, err = cli(capsys, "score", sinp, "--out", sinp)
    assert_one_line_error(rc, err, "is the input file")


def test_stale_temp_files_of_a_killed_run_are_removed_by_the_next(tmp_path, capsys):
    sinp = _score_row_file(tmp_path, "s", json.dumps(OUT_ROW))
    out = tmp_path / "scored.jsonl"
    stale = [tmp_path / f".scored.jsonl.tmp{99999990 + i}" for i in range(2)]
    for s in stale:
        s.write_text("half a file")
    (tmp_path / ".scored.jsonl.lock").write_text("12345")  # a killed run's lock file
    other = tmp_path / ".other.jsonl.tmp99999999"
    other.write_text("not ours")
    rc, err = cli(capsys, "score", sinp, "--out", out)
    assert rc == 0, err
    assert not any(s.exists() for s in stale) and other.exists()
    assert not (tmp_path / ".scored.jsonl.lock").exists()


def test_a_second_writer_is_refused_while_the_first_holds_the_lock(tmp_path):
    target = tmp_path / "x.jsonl"
    with fileio.locked(target):
        with pytest.raises(fileio.InputFileError, match="another medsplit run is writing it"):
            fileio.write_jsonl_rows(target, [{"a": 1}])
    fileio.write_jsonl_rows(target, [{"a": 1}])
    assert target.read_text() == '{"a": 1}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.jsonl"]


def test_debug_env_shows_the_traceback(tmp_path, monkeypatch):
    bad = tmp_path / "u.jsonl"
    bad.write_bytes(jl(GOOD).encode("utf-16"))
    env = {**os.environ, "MEDSPLIT_DEBUG": "1"}
    p = subprocess.run([sys.executable, "-m", "lm_eval_medsplit", "score", str(bad)],
                       capture_output=True, text=True, env=env)
    assert p.returncode != 0 and "Traceback" in p.stderr and "InputFileError" in p.stderr


# --------------------------------------------------------------------------- JSON and npz layer


def test_json_errors_name_line_and_column(tmp_path):
    p = tmp_path / "x.json"
    p.write_text('{\n  "a": [1,\n  2,,]\n}')
    with pytest.raises(fileio.InputFileError, match=r"x.json:3:5: not valid JSON: Expecting value$"):
        fileio.read_json(p)
    p.write_text('{"a": "unterminated')
    with pytest.raises(fileio.InputFileError) as e:
        fileio.read_json(p)
    assert "at at" not in str(e.value) and str(e.value).endswith("Unterminated string starting")
    p.write_text('{"a": ' + "1" * 5000 + "}")
    with pytest.raises(fileio.InputFileError, match=r"x.json:1:7: not valid JSON: a number is too long"):
        fileio.read_json(p)
    p.write_text('{"s": "[[[[", "a": ' + "[" * 5000 + "]" * 5000 + "}")
    with pytest.raises(fileio.InputFileError, match=r"x.json:1:219: not valid JSON: nested deeper than 200"):
        fileio.read_json(p)
    p.write_text('{"s": "' + "[" * 5000 + '"}')  # brackets inside a string are text
    assert fileio.read_json(p) == {"s": "[" * 5000}


def test_npz_declared_sizes_are_checked_before_loading(tmp_path, capsys):
    np = pytest.importorskip("numpy")
    bomb = tmp_path / "bomb.npz"
    np.savez_compressed(bomb, meta_json=np.zeros(8 << 20, dtype=np.uint8))  # 8 MB of zeros, ~8 KB
    assert bomb.stat().st_size < 100_000
    with pytest.raises(fileio.InputFileError, match="likely zip bomb"):
        fileio.check_npz_sizes(bomb)
    with pytest.raises(fileio.InputFileError, match="over the"):
        fileio.check_npz_sizes(bomb, max_bytes=1 << 20)
    inp = tmp_path / "q.jsonl"
    inp.write_text(jl(GOOD, GOOD2))
    rc, err = cli(capsys, "classify", inp, "--out", tmp_path / "o.jsonl", "--model", bomb)
    assert_one_line_error(rc, err, str(bomb), "zip bomb")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(os.urandom(2000))
    rc, err = cli(capsys, "classify", inp, "--out", tmp_path / "o.jsonl", "--model", junk)
    assert_one_line_error(rc, err, str(junk), "not a valid .npz")
    from lm_eval_medsplit.classifier import DEFAULT_EMBEDDED_MODEL

    assert fileio.check_npz_sizes(DEFAULT_EMBEDDED_MODEL)  # the shipped one passes


def test_corrupt_parquet_is_one_line(tmp_path, capsys):
    d = tmp_path / "src" / "medqa"
    d.mkdir(parents=True)
    (d / "test-00000-of-00001.parquet").write_bytes(b"PAR1" + os.urandom(500))
    rc, err = cli(capsys, "data", "validate", "--source", tmp_path / "src")
    assert_one_line_error(rc, err, "test-00000-of-00001.parquet", "not a readable parquet file")


# --------------------------------------------------------------------------- raw sources


def _raw_copy(raw_dir: Path, tmp_path: Path, config: str) -> Path:
    root = tmp_path / "raw"
    shutil.copytree(raw_dir / config, root / config)
    return root


def _with_blank_line_3(raw_dir: Path, tmp_path: Path, config: str, file: str, blank: str):
    """A copy of one raw config with a blank line inserted as line 3 of ``file``, loaded:
    ``(records of the untouched raw folder, copy root, edited file, records, report)``."""
    from lm_eval_medsplit.sources import resolve_source

    clean, _ = resolve_source(raw_dir).load(config)
    root = _raw_copy(raw_dir, tmp_path, config)
    path = root / config / file
    lines = path.read_text().splitlines(keepends=True)
    lines.insert(2, blank)
    path.write_text("".join(lines))
    got, rep = resolve_source(root).load(config)
    return clean, root, path, got, rep


def test_medmcqa_blank_line_shifts_no_id(raw_dir, tmp_path):
    from lm_eval_medsplit.sources import resolve_source

    clean, root, path, got, rep = _with_blank_line_3(raw_dir, tmp_path, "medmcqa", "validation.jsonl", "\n")
    assert rep.n_skipped == 1 and dict(rep.skip_reasons()) == {"<line>: blank line": 1}
    assert [(r.id, r.question, r.answer_idx) for r in got] == \
        [(r.id, r.question, r.answer_idx) for r in clean]
    assert str(rep.skipped[0]) == f"{path}: line 3: field '<line>': blank line"
    from lm_eval_medsplit.schema import RecordValidationError

    with pytest.raises(RecordValidationError, match="line 3: field '<line>': blank line"):
        resolve_source(root).load("medmcqa", strict=True)
    # answer: true is not an index (it used to read as B)
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    rows[0]["answer"] = True
    rows[1]["choices"][2] = None
    path.write_text(jl(*rows))
    got, rep = resolve_source(root).load("medmcqa")
    msgs = [str(p) for p in rep.skipped]
    assert any("line 1: field 'answer': expected an index 0..3, got True" in m for m in msgs)
    assert any("line 2: field 'choices': choice 2 must be text, got null" in m for m in msgs)
    assert [r.id for r in got] == [r.id for r in clean[2:]]


def test_medbullets_blank_line_shifts_no_id(raw_dir, tmp_path):
    clean, root, path, got, rep = _with_blank_line_3(raw_dir, tmp_path, "medbullets_op4",
                                                     "medbullets_op4.jsonl", "   \n")
    assert rep.n_skipped == 1
    assert [(r.id, r.question) for r in got] == [(r.id, r.question) for r in clean]


# --------------------------------------------------------------------------- harness adapters


def _bad_jsonl(tmp_path: Path) -> Path:
    p = tmp_path / "mine.jsonl"
    lab = {"is_reasoning": True, "reasoning_prob": 0.9}
    p.write_text(jl({**GOOD, **lab}, {**GOOD2, **lab}, {**GOOD2, **lab, "id": "q3", "answer_idx": "Z"}))
    return p


def test_lm_eval_tasks_warn_on_skipped_rows_and_take_strict_metadata(tmp_path, caplog):
    from lm_eval_medsplit import lm_eval_tasks

    src = _bad_jsonl(tmp_path)
    with caplog.at_level(logging.WARNING, logger="lm_eval_medsplit"):
        docs, _ = lm_eval_tasks.load_task_docs("mine", "reasoning", "cot", {"source": str(src)})
    assert len(docs) == 2
    msg = " ".join(r.getMessage() for r in caplog.records)
    assert "skipped 1 invalid row(s)" in msg and "line 3: field 'answer_idx'" in msg
    assert "--metadata '{\"strict\": true}'" in msg
    with pytest.raises(lm_eval_tasks.MedsplitTaskError, match=r"line 3: field 'answer_idx'"):
        lm_eval_tasks.load_task_docs("mine", "reasoning", "cot", {"source": str(src), "strict": True})


def test_inspect_dataset_warns_and_takes_strict(tmp_path, caplog):
    pytest.importorskip("inspect_ai")
    from lm_eval_medsplit.inspect_tasks.dataset import medsplit_dataset
    from lm_eval_medsplit.schema import RecordValidationError

    src = _bad_jsonl(tmp_path)
    with caplog.at_level(logging.WARNING, logger="lm_eval_medsplit"):
        ds = medsplit_dataset("mine", "reasoning", source=str(src))
    assert len(ds.dataset) == 2
    msg = " ".join(r.getMessage() for r in caplog.records)
    assert "skipped 1 invalid row(s)" in msg and "-T strict=true" in msg
    with pytest.raises(RecordValidationError, match="line 3: field 'answer_idx'"):
        medsplit_dataset("mine", "reasoning", source=str(src), strict=True)


def test_train_data_warns_on_skipped_rows_and_takes_dataset_strict(tmp_path):
    from lm_eval_medsplit.schema import RecordValidationError
    from lm_eval_medsplit.train.data import MedsplitTrainArguments, prepare_training_data

    src = _bad_jsonl(tmp_path)
    logged: list[str] = []
    args = MedsplitTrainArguments(dataset_source=str(src), reasoning_threshold=0.5,
                                  decontaminate_against="none")
    prepared = prepare_training_data(args, "grpo", log=logged.append)
    assert [r["id"] for r in prepared.rows] == ["q1", "q2"]
    warn = [m for m in logged if "skipped 1 invalid row(s)" in m]
    assert warn and "line 3: field 'answer_idx'" in warn[0] and "--dataset_strict true" in warn[0]
    args.dataset_strict = True
    with pytest.raises(RecordValidationError, match="line 3: field 'answer_idx'"):
        prepare_training_data(args, "grpo", log=logged.append)


# --------------------------------------------------------------------------- build


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _tree(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): _sha(p) for p in sorted(d.rglob("*")) if p.is_file()}


def assert_build_consistent(out: Path) -> dict:
    """``out`` holds exactly what its manifest lists, each file with the listed sha256."""
    m = json.loads((out / "manifest.json").read_text())
    listed = {f["path"]: f["sha256"] for e in m["configs"].values() for f in e["files"]}
    files = {k: v for k, v in _tree(out).items() if k != "manifest.json"
             and not k.startswith(".medsplit-traces")}
    assert files == listed
    return m


def test_build_refuses_same_or_nested_source_and_out(raw_dir, tmp_path, capsys):
    root = _raw_copy(raw_dir, tmp_path, "medbullets_op4")
    for out in (root, root / "inside", tmp_path):
        rc, err = cli(capsys, "build", "--source", root, "--out", out, "--no-progress")
        assert_one_line_error(rc, err, "same folder or one holds the other")
    assert sorted(p.name for p in root.iterdir()) == ["medbullets_op4"]


def test_crafted_manifest_cannot_make_build_delete_outside_out(raw_dir, tmp_path, capsys):
    root = _raw_copy(raw_dir, tmp_path, "medbullets_op4")
    victim = tmp_path / "victim"
    victim.mkdir()
    (tmp_path / "victim_file.parquet").write_text("keep me")
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"configs": {
        "../victim": {"files": [{"path": "../victim_file.parquet"}]},
        "/tmp": {"files": [{"path": str(tmp_path / "victim_file.parquet")}]}}}))
    rc, err = cli(capsys, "build", "--source", root, "--out", out, "--no-progress", "--json")
    assert rc == 0, err
    assert victim.is_dir() and (tmp_path / "victim_file.parquet").read_text() == "keep me"
    assert_build_consistent(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["raw", "victim", "victim_file.parquet", "out"])
    # a file the build did not write stops it instead of being deleted by the swap
    (out / "notes.txt").write_text("mine")
    rc, err = cli(capsys, "build", "--source", root, "--out", out, "--no-progress")
    assert_one_line_error(rc, err, "holds files a build did not write (notes.txt)")
    assert (out / "notes.txt").read_text() == "mine"


def _build_cmd(root: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "lm_eval_medsplit", "build", "--source", str(root), "--out",
            str(out), "--no-progress", "--json", *extra]


def _kill_after(cmd: list[str], delay: float) -> int:
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        p.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGKILL)
        p.wait()
    return p.returncode


def _kill_build_loop(raw_dir: Path, tmp_path: Path, seeds: list[int]) -> None:
    root = _raw_copy(raw_dir, tmp_path, "medbullets_op4")
    shutil.copytree(raw_dir / "medbullets_op5", root / "medbullets_op5")
    out = tmp_path / "out"
    first = subprocess.run(_build_cmd(root, out, "--n-traces", "2"), capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    t0 = time.perf_counter()
    full = subprocess.run(_build_cmd(root, tmp_path / "timing", "--n-traces", "3"), capture_output=True)
    took = time.perf_counter() - t0
    assert full.returncode == 0
    shutil.rmtree(tmp_path / "timing")
    old = _tree(out)
    for seed in seeds:
        rng = random.Random(seed)
        rc = _kill_after(_build_cmd(root, out, "--n-traces", "3"), rng.uniform(0.2, took * 1.1))
        m = assert_build_consistent(out)  # whatever the moment: old or new, never a mix
        assert m["traces"]["n_traces"] in (2, 3)
        if m["traces"]["n_traces"] == 2:
            assert _tree(out) == old
        else:
            assert rc == 0 or rc == -signal.SIGKILL
        # the next run cleans what the killed one left and rebuilds the old settings
        again = subprocess.run(_build_cmd(root, out, "--n-traces", "2"), capture_output=True, text=True)
        assert again.returncode == 0, again.stderr
        assert _tree(out) == old
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "raw"]


def test_kill_during_build_keeps_a_consistent_out(raw_dir, tmp_path):
    _kill_build_loop(raw_dir, tmp_path, [1])


@pytest.mark.slow
def test_kill_during_build_many_seeds(raw_dir, tmp_path):
    _kill_build_loop(raw_dir, tmp_path, list(range(2, 10)))


# --------------------------------------------------------------------------- adversarial generate


@pytest.fixture()
def ten_records(raw_source):
    recs, _ = raw_source.load("medqa")
    return copy.deepcopy(recs[:24])


def _write_records(path: Path, records) -> None:
    from lm_eval_medsplit.sources import write_jsonl

    write_jsonl(records, path)


def _gen_cmd(inp: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "lm_eval_medsplit", "adversarial", "generate", str(inp),
            "--out", str(out), "--no-progress", "--json", *extra]


def _assert_complete_output(out: Path, ids: list[str], n: int) -> None:
    from lm_eval_medsplit.adversarial import check_record_traces
    from lm_eval_medsplit.sources import load_jsonl_records

    recs, rep = load_jsonl_records(out, strict=True)
    assert [r.id for r in recs] == ids
    for r in recs:
        assert len(r.adversarial_traces) == n and all(ok for _, ok, _ in check_record_traces(r))


def test_dead_endpoint_stops_with_one_error_and_keeps_earlier_output(ten_records, tmp_path, capsys):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: every connection is refused
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write_records(inp, ten_records)
    out.write_text("an earlier finished output\n")
    t0 = time.perf_counter()
    rc, err = cli(capsys, "adversarial", "generate", inp, "--out", out, "--endpoint",
                  f"http://127.0.0.1:{port}/v1", "--endpoint-model", "m", "--http-retries", "0",
                  "--no-resume", "--no-progress")
    assert_one_line_error(rc, err, "calls in a row failed", "run the same command again to resume")
    assert time.perf_counter() - t0 < 30
    assert out.read_text() == "an earlier finished output\n"  # --no-resume never empties it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl", "out.jsonl.partial"]


def _kill_generate_loop(ten_records, tmp_path, seeds, *, endpoint: bool, resume: bool):
    from test_adversarial import CannedEndpoint

    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write_records(inp, ten_records)
    ids = [r.id for r in ten_records]
    srv = CannedEndpoint(ten_records, lambda i, k, c: "ok", delay=0.05) if endpoint else None
    if srv is not None:
        srv.__enter__()
    try:
        how = (["--endpoint", srv.url, "--endpoint-model", "m", "--concurrency", "2"]
               if endpoint else ["--offline"])
        first = subprocess.run(_gen_cmd(inp, out, *how, "--n", "2"), capture_output=True, text=True)
        assert first.returncode == 0, first.stderr
        old = out.read_bytes()
        for seed in seeds:
            rng = random.Random(seed)
            extra = [] if resume else ["--no-resume"]
            rc = _kill_after(_gen_cmd(inp, out, *how, "--n", "3", *extra), rng.uniform(0.3, 4.0))
            now = out.read_bytes()
            if now != old:  # the run replaced it (maybe killed just after): complete, in input order
                assert rc in (0, -signal.SIGKILL)
                _assert_complete_output(out, ids, 3)
            else:
                _assert_complete_output(out, ids, 2)
            part = out.with_name(out.name + ".partial")
            if part.exists():  # the resume file holds whole records, maybe a half last line
                lines = part.read_text().splitlines(keepends=True)
                assert all(json.loads(x) for x in lines if x.endswith("\n"))
            done = subprocess.run(_gen_cmd(inp, out, *how, "--n", "3"), capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
            _assert_complete_output(out, ids, 3)
            assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl"]
            subprocess.run(_gen_cmd(inp, out, *how, "--n", "2", "--no-resume"), check=True,
                           capture_output=True)
            assert out.read_bytes() == old
    finally:
        if srv is not None:
            srv.__exit__(None, None, None)


@pytest.mark.parametrize("endpoint,resume", [(False, True), (True, True), (True, False)])
def test_kill_during_generate_keeps_output_whole(ten_records, tmp_path, endpoint, resume):
    _kill_generate_loop(ten_records, tmp_path, [7], endpoint=endpoint, resume=resume)


@pytest.mark.slow
@pytest.mark.parametrize("endpoint,resume", [(False, False), (True, True), (True, False)])
def test_kill_during_generate_many_seeds(ten_records, tmp_path, endpoint, resume):
    _kill_generate_loop(ten_records, tmp_path, list(range(20, 26)), endpoint=endpoint, resume=resume)
