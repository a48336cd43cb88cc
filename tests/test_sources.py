"""Raw loaders, hub-layout and hub paths, canonical JSONL, validation and hashes, on the
real files in ../shared/data."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import pytest

from lm_eval_medsplit import registry
from lm_eval_medsplit.schema import LETTERS, RecordValidationError, dataset_hash
from lm_eval_medsplit.sources import (
    Source,
    SourceError,
    load_jsonl_records,
    resolve_source,
    write_jsonl,
)


def _load(src, name, **kw):
    records, report = src.load(name, **kw)
    return records, report


def test_raw_source_is_detected_with_every_local_benchmark(raw_source):
    assert raw_source.kind == "raw_dir"
    assert raw_source.benchmarks() == ["medqa", "medmcqa", "pubmedqa", "medbullets_op4", "medbullets_op5",
                                "medxpertqa", "mmlu_pro_health_biology"]


def test_medqa_counts_and_gold(raw_source, raw_dir):
    records, rep = _load(raw_source, "medqa")
    assert rep.n_records == 1273 and rep.n_skipped == 0
    assert Counter(r.meta["meta_info"] for r in records)["step1"] == 679
    src = [json.loads(line) for line in open(raw_dir / "medqa" / "test.jsonl")]
    assert [r.answer_idx for r in records] == [s["answer_idx"] for s in src]
    assert all(len(r.options) == 4 and r.answer == r.options[r.answer_idx] for r in records)


def test_medmcqa_counts_gold_and_ids(raw_source, raw_dir):
    records, rep = _load(raw_source, "medmcqa")
    assert rep.n_records == 4183 and rep.n_skipped == 0
    src = [json.loads(line) for line in open(raw_dir / "medmcqa" / "validation.jsonl")]
    assert [r.answer_idx for r in records] == [LETTERS[s["answer"]] for s in src]
    ids = [json.loads(line)["id"] for line in open(raw_dir / "medmcqa" / "medmcqa_input.jsonl")]
    assert [r.id for r in records] == ids
    # "A. " prefixes stripped from the option texts
    assert records[0].options["A"].startswith("Impulse through myelinated")


def test_pubmedqa_all_and_official_test_split(raw_dir):
    records, rep = resolve_source(raw_dir).load("pubmedqa")
    assert rep.n_records == 1000
    gold = json.load(open(raw_dir / "pubmedqa" / "ori_pqal.json"))
    letter = {"yes": "A", "no": "B", "maybe": "C"}
    assert all(r.answer_idx == letter[gold[r.id]["final_decision"]] for r in records)
    assert Counter(r.answer for r in records) == {"yes": 552, "no": 338, "maybe": 110}
    test_records, _ = resolve_source(raw_dir, pubmedqa_split="test").load("pubmedqa")
    official = json.load(open(raw_dir / "pubmedqa" / "test_ground_truth.json"))
    assert len(test_records) == 500 and {r.id for r in test_records} == set(official)
    assert all(r.answer == official[r.id] for r in test_records)


@pytest.mark.parametrize("config,n_opts", [("medbullets_op4", 4), ("medbullets_op5", 5)])
def test_medbullets(raw_source, raw_dir, config, n_opts):
    records, rep = _load(raw_source, config)
    assert rep.n_records == 308 and rep.n_skipped == 0
    src = [json.loads(line) for line in open(raw_dir / config / f"{config}.jsonl")]
    assert [r.answer_idx for r in records] == [s["answer_idx"] for s in src]
    assert all(len(r.options) == n_opts for r in records)


def test_medxpertqa_keeps_question_type_and_strips_choices(raw_source, raw_dir):
    records, rep = _load(raw_source, "medxpertqa")
    assert rep.n_records == 2450 and rep.n_skipped == 0
    assert Counter(r.meta["question_type"] for r in records) == {"Reasoning": 1861, "Understanding": 589}
    assert not any("Answer Choices:" in r.question for r in records)
    assert [r.id for r in records[:3]] == ["Text-0", "Text-1", "Text-2"]
    gold = {}
    for sub in ("medxpertqa-r", "medxpertqa-u"):
        for line in open(raw_dir / "MedXpertQA" / sub / "test.jsonl"):
            row = json.loads(line)
            gold[row["realidx"]] = row["answer_idx"]
    assert all(r.answer_idx == gold[r.id] for r in records)


def test_mmlu_pro_ignores_model_outputs(raw_source, raw_dir):
    records, rep = _load(raw_source, "mmlu_pro_health_biology")
    assert rep.n_records == 1535
    assert Counter(r.meta["category"] for r in records) == {"health": 818, "biology": 717}
    src = json.load(open(raw_dir / "mmlu_health_biology" / "health_result.json"))
    by_id = {r.id: r for r in records}
    assert all(by_id[str(s["question_id"])].answer_idx == s["answer"] for s in src)
    keys = {k for r in records for k in (*r.to_dict(), *r.meta)}
    assert not keys & {"response", "pred", "cot_content"}


def test_hub_only_benchmarks_explain_themselves(raw_source):
    with pytest.raises(Exception, match="hub only|no raw copy"):
        raw_source.load("gpqa_medical")


def test_content_hash_stable_and_sensitive(raw_source):
    records, rep = _load(raw_source, "medbullets_op4")
    again, rep2 = _load(raw_source, "medbullets_op4")
    assert rep.content_hash == rep2.content_hash == dataset_hash(list(reversed(again)))
    again[17].question = again[17].question[:-1] + ("X" if again[17].question[-1] != "X" else "Y")
    assert dataset_hash(again) != rep.content_hash


# --------------------------------------------------------------------------- corruption


def _copy(raw_dir, tmp_path, config):
    dst = tmp_path / "raw"
    shutil.copytree(raw_dir / config, dst / config)
    return dst


def _rewrite_jsonl(path, edit):
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(edit(lines)) + "\n", encoding="utf-8")


def test_corrupted_jsonl_strict_names_file_line_field(raw_dir, tmp_path):
    root = _copy(raw_dir, tmp_path, "medqa")
    path = root / "medqa" / "test.jsonl"

    def edit(lines):
        rows = [json.loads(x) for x in lines[:6]]
        del rows[0]["question"]                 # line 1: missing field
        rows[1]["answer_idx"] = "Z"             # line 2: bad answer letter
        rows[3]["realidx"] = rows[2]["realidx"]  # line 4: duplicate id
        out = [json.dumps(r) for r in rows]
        out[4] = out[4][:40]                     # line 5: broken JSON
        return out + lines[6:]
    _rewrite_jsonl(path, edit)
    src = resolve_source(root)
    with pytest.raises(RecordValidationError) as e:
        src.load("medqa", strict=True)
    msg = str(e.value)
    assert f"{path}: line 1: field 'question': missing" in msg
    assert f"{path}: line 2: field 'answer_idx': 'Z' is not one of A, B, C, D" in msg
    assert f"{path}: line 4: field 'id': duplicate id" in msg
    assert f"{path}: line 5: field '<json>': broken JSON line" in msg
    assert len(e.value.problems) == 4
    records, rep = src.load("medqa")  # lenient
    assert rep.n_records == 1273 - 4 and rep.n_skipped == 4
    assert sum(rep.skip_reasons().values()) == 4


def test_corrupted_medmcqa_answer_index(raw_dir, tmp_path):
    root = _copy(raw_dir, tmp_path, "medmcqa")
    path = root / "medmcqa" / "validation.jsonl"

    def edit(lines):
        r = json.loads(lines[2])
        r["answer"] = 7
        lines[2] = json.dumps(r)
        return lines
    _rewrite_jsonl(path, edit)
    records, rep = resolve_source(root).load("medmcqa")
    assert rep.n_skipped == 1 and rep.n_records == 4182
    assert str(rep.skipped[0]).startswith(f"{path}: line 3: field 'answer': expected an index 0..3")


def test_corrupted_pubmedqa_key_and_broken_file(raw_dir, tmp_path):
    root = _copy(raw_dir, tmp_path, "pubmedqa")
    path = root / "pubmedqa" / "ori_pqal.json"
    data = json.loads(path.read_text())
    data["21645374"]["final_decision"] = "perhaps"
    del data[list(data)[5]]["QUESTION"]
    path.write_text(json.dumps(data))
    _, rep = resolve_source(root).load("pubmedqa")
    msgs = [str(p) for p in rep.skipped]
    assert f"{path}: key 21645374: field 'final_decision': expected yes/no/maybe, got 'perhaps'" in msgs
    assert any("field 'QUESTION': missing" in m for m in msgs) and rep.n_records == 998
    path.write_text(path.read_text()[:-10])
    with pytest.raises(ValueError, match=r"ori_pqal.json:1:\d+: not valid JSON: Unterminated string starting$"):
        resolve_source(root).load("pubmedqa")


def test_corrupted_mmlu_and_medxpertqa(raw_dir, tmp_path):
    root = _copy(raw_dir, tmp_path, "mmlu_health_biology")
    path = root / "mmlu_health_biology" / "biology_result.json"
    data = json.loads(path.read_text())
    data[3]["answer"] = "Q"
    data[4]["question_id"] = data[5]["question_id"]
    path.write_text(json.dumps(data))
    _, rep = resolve_source(root).load("mmlu_pro_health_biology")
    msgs = [str(p) for p in rep.skipped]
    assert any(m.startswith(f"{path}: item 3: field 'answer_idx': 'Q' is not one of") for m in msgs)
    assert any(m.startswith(f"{path}: item 5: field 'id': duplicate id") for m in msgs)

    root = _copy(raw_dir, tmp_path / "x", "MedXpertQA")
    path = root / "MedXpertQA" / "medxpertqa-u" / "test.jsonl"
    _rewrite_jsonl(path, lambda ls: ls[:2] + [json.dumps({**json.loads(ls[2]), "options": {"A": "x", "C": "y"}})] + ls[3:])
    _, rep = resolve_source(root).load("medxpertqa")
    assert str(rep.skipped[0]) == (
        f"{path}: line 3: field 'options': letters must be contiguous from A; got A, C")
    assert {(p.location, p.field) for p in rep.skipped} <= {("line 3", "options"), ("line 3", "answer_idx")}
    assert rep.n_skipped == 1 and rep.n_records == 2449


def test_duplicate_ids_across_files_name_both_places(raw_dir, tmp_path):
    root = _copy(raw_dir, tmp_path, "MedXpertQA")
    r_path = root / "MedXpertQA" / "medxpertqa-r" / "test.jsonl"
    u_path = root / "MedXpertQA" / "medxpertqa-u" / "test.jsonl"
    first = json.loads(r_path.read_text().splitlines()[1])
    _rewrite_jsonl(u_path, lambda ls: ls[:3] + [json.dumps({**json.loads(ls[3]), "realidx": first["realidx"]})]
                   + ls[4:])
    src = resolve_source(root)
    with pytest.raises(RecordValidationError) as e:
        src.load("medxpertqa", strict=True)
    assert [str(p) for p in e.value.problems] == [
        f"{u_path}: line 4: field 'id': duplicate id {first['realidx']!r} (first at {r_path}: line 2)"]
    assert src.load("medxpertqa")[1].n_records == 2449


def test_hub_layout_medqa_jsonl_is_not_mistaken_for_the_raw_file(raw_source, raw_dir, tmp_path):
    # raw MedQA is medqa/test.jsonl too; hub-layout rows are told apart by their id field
    records, _ = _load(raw_source, "medqa")
    _write_hub_layout(records[:5], tmp_path / "hub", "medqa", fmt="jsonl")
    src = resolve_source(tmp_path / "hub")
    assert src.kind == "hub_dir"
    got, _ = src.load("medqa")
    assert got[0].is_reasoning is True and got[0].adversarial_traces == ["t0", "t1", "t2"]
    assert resolve_source(raw_dir).kind == "raw_dir"


def test_duplicate_ids_across_hub_layout_shards(raw_source, tmp_path):
    records, _ = _load(raw_source, "medqa")
    _write_hub_layout(records[:5], tmp_path / "hub", "medqa", fmt="jsonl")
    shard0 = (tmp_path / "hub" / "medqa" / "test.jsonl").rename(tmp_path / "hub" / "medqa" / "test-00000.jsonl")
    shard1 = shard0.with_name("test-00001.jsonl")
    lines = shard0.read_text().splitlines()
    shard1.write_text("\n".join(lines[:3]) + "\n")  # the first three again, in a second shard
    src = resolve_source(tmp_path / "hub")
    got, rep = src.load("medqa")
    assert [r.id for r in got] == [r.id for r in records[:5]] and rep.n_skipped == 3
    assert str(rep.skipped[0]) == (f"{shard1}: line 1: field 'id': duplicate id "
                                   f"{records[0].id!r} (first at {shard0}: line 1)")
    with pytest.raises(RecordValidationError):
        src.load("medqa", strict=True)


# --------------------------------------------------------------------------- hub layouts


def _write_hub_layout(records, root, config, fmt="parquet"):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = []
    for r in records:
        rows.append({"id": r.id, "question": r.question, "options": json.dumps(r.options),
                     "answer": r.options[r.answer_idx], "answer_idx": r.answer_idx,
                     "dataset_name": config, "reasoning_prob": 0.7, "is_reasoning": True,
                     "reasoning_threshold": 0.5, "adversarial_trace_0": "t0",
                     "adversarial_trace_1": "t1", "adversarial_trace_2": "t2"})
    d = root / config
    d.mkdir(parents=True)
    if fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), d / "test-00000-of-00001.parquet")
    else:
        with open(d / "test.jsonl", "w") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")


def test_hub_layout_directory_and_hub_code_path(raw_source, tmp_path):
    records, _ = _load(raw_source, "medbullets_op5")
    _write_hub_layout(records[:40], tmp_path / "hub", "medbullets_op5")
    _write_hub_layout(records[40:60], tmp_path / "hub", "medqa", fmt="jsonl")
    src = resolve_source(tmp_path / "hub")
    assert src.kind == "hub_dir" and src.benchmarks() == ["medqa", "medbullets_op5"]
    got, rep = src.load("medbullets_op5")
    assert rep.n_records == 40 and got[0].options == records[0].options
    assert got[0].adversarial_traces == ["t0", "t1", "t2"] and got[0].adversarial_source == "hub"
    assert got[0].subset == "reasoning" and got[0].meta["dataset_name"] == "medbullets_op5"
    # the real hub code path (datasets.load_dataset) pointed at the same layout
    hub = Source("hub", str(tmp_path / "hub"), revision=None)
    via_datasets, rep2 = hub.load("medbullets_op5")
    assert rep2.content_hash == rep.content_hash
    assert resolve_source("hub").location == registry.HUB_DATASET
    assert resolve_source("hub").revision == registry.HUB_REVISION


def test_unreachable_hub_is_a_clear_source_error():
    # offline here (conftest); online the repo does not exist: a SourceError either way
    src = Source("hub", "zou-lab/no-such-dataset-medsplit-test", revision="0" * 40)
    with pytest.raises(SourceError, match=r"zou-lab/no-such-dataset-medsplit-test \(config medqa, "
                                          r"revision 0{40}\): could not load from the Hugging Face hub"):
        src.load("medqa")


def test_hub_revision_is_a_pinned_commit(monkeypatch):
    """The default hub revision is a full commit sha (a branch would move under users),
    passed through unresolved; an override wins over it."""
    import re

    from lm_eval_medsplit.sources import resolve_hub_revision

    monkeypatch.delenv("MEDSPLIT_REVISION", raising=False)
    assert re.fullmatch(r"[0-9a-f]{40}", registry.HUB_REVISION)
    assert resolve_hub_revision(registry.HUB_DATASET, registry.HUB_REVISION) == registry.HUB_REVISION
    monkeypatch.setenv("MEDSPLIT_REVISION", "main")
    assert resolve_source("hub").revision == "main"


def test_source_from_environment(raw_dir, monkeypatch):
    monkeypatch.setenv("MEDSPLIT_SOURCE", str(raw_dir))
    assert resolve_source().kind == "raw_dir"
    monkeypatch.setenv("MEDSPLIT_SOURCE", "/nonexistent/path")
    with pytest.raises(SourceError, match="neither 'hub' nor an existing"):
        resolve_source()


def test_canonical_jsonl_keeps_unknown_fields(tmp_path):
    path = tmp_path / "mine.jsonl"
    rows = [
        {"id": "q1", "question": "Which vitamin?", "options": ["B12", "C"], "answer_idx": "a",
         "source_url": "http://x", "nested": {"k": [1, 2]}, "dataset_name": "my_set"},
        {"id": "q2", "question": "Pick", "options": {"A": "x", "B": "y", "C": "z"},
         "benchmark": "other", "is_reasoning": True, "reasoning_prob": 0.9},
        {"id": "q3", "question": "   ", "options": ["x", "y"]},
        {"id": "q1", "question": "dup", "options": ["x", "y"]},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    records, rep = load_jsonl_records(path)
    assert [r.id for r in records] == ["q1", "q2"]
    assert records[0].benchmark == "mine" and records[0].answer_idx == "A"
    assert records[0].extra == {"source_url": "http://x", "nested": {"k": [1, 2]}, "dataset_name": "my_set"}
    assert [str(p) for p in rep.skipped] == [
        f"{path}: line 3: field 'question': empty",
        f"{path}: line 4: field 'id': duplicate id 'q1' (first at line 1)",
    ]
    with pytest.raises(RecordValidationError):
        load_jsonl_records(path, strict=True)
    out = tmp_path / "out.jsonl"
    write_jsonl(records, out)
    back = [json.loads(line) for line in open(out)]
    assert back[0]["source_url"] == "http://x" and back[0]["nested"] == {"k": [1, 2]}
    assert back[0]["dataset_name"] == "my_set"
    assert back[1]["benchmark"] == "other"
    src = resolve_source(path)
    assert src.kind == "jsonl" and src.benchmarks() == ["mine", "other"]
    assert [r.id for r in src.load("other")[0]] == ["q2"]


def test_empty_trace_column_keeps_trace_positions():
    from lm_eval_medsplit.prompts import MissingTraceError, build_prompt
    from lm_eval_medsplit.schema import record_from_row

    row = {"id": "1", "question": "q", "options": '{"A": "x", "B": "y"}', "answer_idx": "A",
           "adversarial_trace_0": "t0", "adversarial_trace_1": None, "adversarial_trace_2": "t2",
           "adversarial_trace_3": ""}
    rec = record_from_row(row, "b")
    assert rec.adversarial_traces == ["t0", "", "t2"]
    assert build_prompt(rec, adversarial="prefill", trace_index=2).prefill.startswith("t2")
    with pytest.raises(MissingTraceError, match="trace 1 is needed"):
        build_prompt(rec, adversarial="prefill", trace_index=1)


def test_offline_traces_only_for_data_that_carries_none(tmp_path, monkeypatch):
    from lm_eval_medsplit.dataset import load_eval_records
    from lm_eval_medsplit.prompts import MissingTraceError, build_prompt

    monkeypatch.setenv("MEDSPLIT_CACHE", str(tmp_path / "cache"))
    base = {"question": "Which vitamin deficiency causes scurvy?", "is_reasoning": False,
            "options": ["Vitamin B12", "Vitamin C", "Vitamin D"], "answer_idx": "B"}
    partly = tmp_path / "partly.jsonl"
    partly.write_text(json.dumps({**base, "id": "a"}) + "\n"
                      + json.dumps({**base, "id": "b", "adversarial_traces": ["t0", "t1", "t2"]}) + "\n")
    es = load_eval_records("partly", str(partly))
    assert [r.adversarial_traces for r in es.records] == [[], ["t0", "t1", "t2"]]
    assert es.traces_from == "none"
    with pytest.raises(MissingTraceError, match="record 'a' of partly has 0 adversarial trace"):
        build_prompt(es.records[0], adversarial="prefill", trace_index=0)

    none = tmp_path / "none.jsonl"
    none.write_text(json.dumps({**base, "id": "a"}) + "\n" + json.dumps({**base, "id": "b"}) + "\n")
    es = load_eval_records("none", str(none))
    assert es.traces_from == "offline-template"
    assert all(len(r.adversarial_traces) == 3 for r in es.records)
