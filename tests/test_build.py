"""`medsplit build`: hub layout + manifest, byte-identical re-runs, round trip through
the source loaders, model traces with resume, named errors."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest

from lm_eval_medsplit import __version__, registry
from lm_eval_medsplit.adversarial import OFFLINE_SOURCE, check_record_traces, offline_trace
from lm_eval_medsplit.build import (
    DATA_FILE,
    MANIFEST,
    BuildError,
    arrow_schema,
    build,
    records_to_table,
    write_parquet,
)
from lm_eval_medsplit.cli import main
from lm_eval_medsplit.schema import RecordValidationError
from lm_eval_medsplit.sources import Source, resolve_source

LOCAL = {"medqa": 1273, "medmcqa": 4183, "pubmedqa": 1000, "medbullets_op4": 308,
         "medbullets_op5": 308, "medxpertqa": 2450, "mmlu_pro_health_biology": 1535}
HUB_COLUMNS = ["id", "question", "options", "answer", "answer_idx", "dataset_name",
               "reasoning_prob", "is_reasoning", "reasoning_threshold", "adversarial_trace_0",
               "adversarial_trace_1", "adversarial_trace_2", "adversarial_source", "meta"]


def rule_label(r, threshold=0.3):
    """A stand-in label for a labelled source: any deterministic rule will do."""
    r.reasoning_prob = round(min(1.0, len(r.question) / 2000), 6)
    r.is_reasoning = r.reasoning_prob >= threshold
    r.reasoning_threshold = threshold


def file_hashes(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.rglob("*")) if p.is_file()}



@pytest.fixture(scope="module")
def labelled_dir(raw_source, tmp_path_factory):
    """A labelled hub-layout source (labels from a rule, no traces) made from the real
    raw records of every local benchmark."""
    root = tmp_path_factory.mktemp("labelled")
    for name in raw_source.benchmarks():
        recs, _ = raw_source.load(name)
        for r in recs:
            rule_label(r)
        b = registry.get_benchmark(name)
        write_parquet(records_to_table(recs, b.config, 0), root / b.config / "test.parquet")
    return root


@pytest.fixture(scope="module")
def built(labelled_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("build") / "out"
    return build(labelled_dir, out, progress=False)


def test_build_layout_and_manifest(built, labelled_dir):
    m = built.manifest
    out = built.out
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [MANIFEST] + [registry.get_benchmark(n).config for n in LOCAL])
    assert {c: e["records"] for c, e in ((e["name"], e) for e in m["configs"].values())} == LOCAL
    assert m["totals"]["records"] == 11057 and m["package_version"] == __version__
    assert m["revision"].startswith("build:") and len(m["build_hash"]) == 64
    assert m["traces"] == {"n_traces": 3, "generator": OFFLINE_SOURCE, "style": "cot",
                           "sources": {OFFLINE_SOURCE: 11057}}
    e = m["configs"]["medqa"]
    assert all(x["traces"]["style"] == "cot" for x in m["configs"].values())
    assert e["labels"]["from"] == "source" and e["labels"]["threshold"] == 0.3
    assert e["traces"]["sources"] == {OFFLINE_SOURCE: 1273}
    assert e["source_files"] == [{"path": "medqa/test.parquet", "bytes": (labelled_dir / "medqa/test.parquet").stat().st_size,
                                  "sha256": hashlib.sha256((labelled_dir / "medqa/test.parquet").read_bytes()).hexdigest()}]
    f = out / "medqa" / DATA_FILE
    assert e["files"] == [{"path": f"medqa/{DATA_FILE}", "bytes": f.stat().st_size,
                           "sha256": hashlib.sha256(f.read_bytes()).hexdigest()}]
    shares = [x["reasoning_share"] for x in m["configs"].values()]
    assert all(0 <= s <= 1 for s in shares) and len(set(shares)) > 3
    assert m["totals"]["reasoning"] == sum(x["reasoning"] for x in m["configs"].values())

    import pyarrow.parquet as pq

    t = pq.read_table(f)
    assert t.schema.names == HUB_COLUMNS and t.schema == arrow_schema(3)
    row = t.slice(0, 1).to_pylist()[0]
    assert json.loads(row["options"]) == built.configs[0].records[0].options
    assert row["dataset_name"] == "medqa" and row["adversarial_source"] == OFFLINE_SOURCE
    assert json.loads(row["meta"])["meta_info"] in ("step1", "step2&3")
    # medmcqa has no answer text in the raw file; the hub field is filled from the gold option
    mm = pq.read_table(out / "medmcqa" / DATA_FILE).slice(0, 5).to_pylist()
    assert all(r["answer"] == json.loads(r["options"])[r["answer_idx"]] for r in mm)


def test_round_trip_through_every_loader(built):
    src = resolve_source(built.out)
    assert src.kind == "hub_dir" and src.revision == built.revision
    assert src.benchmarks() == list(LOCAL)
    for c in built.configs:
        got, rep = src.load(c.name, strict=True)
        assert [g.to_dict() for g in got] == [r.to_dict() for r in c.records]
        assert rep.content_hash == c.entry["content_hash"]
    # the real hub code path (datasets.load_dataset) on the same directory
    via_hub, rep = Source("hub", str(built.out)).load("medbullets_op5")
    assert rep.content_hash == built.manifest["configs"]["medbullets_op5"]["content_hash"]
    # and what the adapters use: labels and traces come from the source
    from lm_eval_medsplit.dataset import load_eval_records

    es = load_eval_records("pubmedqa", built.out)
    assert es.labels_from == "source" and es.traces_from == "source"
    assert es.source.revision == built.revision and len(es.subset("reasoning")) == \
        built.manifest["configs"]["pubmedqa"]["reasoning"]
    from lm_eval_medsplit.prompts import build_prompt

    r = es.records[0]
    assert build_prompt(r, adversarial="prefill", trace_index=2).prefill.startswith(offline_trace(r, 2))


def test_rebuild_is_byte_identical(built, labelled_dir, tmp_path):
    again = build(labelled_dir, tmp_path / "again", progress=False)
    assert file_hashes(again.out) == file_hashes(built.out)
    assert again.revision == built.revision
    # building from the build keeps labels and traces: same records, same data files
    rebuilt = build(built.out, tmp_path / "from_build", progress=False)
    for a, b in zip(rebuilt.configs, built.configs):
        assert a.entry["content_hash"] == b.entry["content_hash"]
        assert a.entry["files"][0]["sha256"] == b.entry["files"][0]["sha256"]
        assert a.entry["traces"]["sources"] == b.entry["traces"]["sources"]
    assert rebuilt.revision == built.revision
    assert rebuilt.manifest["traces"]["generator"] is None  # every trace kept from the source
    assert rebuilt.manifest["traces"]["sources"] == built.manifest["traces"]["sources"]


def test_style_paper_build_records_style_and_reruns_identically(built, labelled_dir, tmp_path,
                                                                capsys):
    """`medsplit build --style paper`: traces end in \\boxed{X}, the manifest says paper
    (overall and per config), a re-run is byte-identical; a build from it keeps the style
    or names the mismatch; used as a source with another evaluation style it scores the
    model's continuation only."""
    from lm_eval_medsplit import scoring
    from lm_eval_medsplit.adversarial import wrong_letters
    from lm_eval_medsplit.dataset import load_eval_records
    from lm_eval_medsplit.prompts import build_prompt

    out = tmp_path / "paper"
    args = ["build", "--source", str(labelled_dir), "--out", str(out), "-b", "medqa,pubmedqa",
            "--style", "paper", "--no-progress"]
    assert main(args) == 0
    assert "made with offline-template (paper style)" in " ".join(capsys.readouterr().out.split())
    m = json.loads((out / MANIFEST).read_text())
    assert m["traces"]["style"] == "paper" and m["traces"]["generator"] == OFFLINE_SOURCE
    assert {c: e["traces"]["style"] for c, e in m["configs"].items()} == {"medqa": "paper",
                                                                         "pubmedqa": "paper"}
    recs = resolve_source(out).load("medqa", strict=True)[0]
    assert all(t.splitlines()[-1] == f"The final answer is \\boxed{{{x}}}."
               for r in recs for t, x in zip(r.adversarial_traces, wrong_letters(r)))
    # the data differ from the cot build's only in the traces: another content hash
    assert m["configs"]["medqa"]["content_hash"] != built.manifest["configs"]["medqa"]["content_hash"]
    first = file_hashes(out)
    assert main(args + ["--json"]) == 0
    assert json.loads(capsys.readouterr().out) == m and file_hashes(out) == first
    # a build from it: without --style the traces (and their style) are kept ...
    kept = build(out, tmp_path / "kept", progress=False)
    assert kept.manifest["traces"]["style"] is None and kept.manifest["traces"]["generator"] is None
    assert kept.configs[0].entry["traces"]["style"] == "paper" and kept.revision == m["revision"]
    # ... asking for another style names the mismatch; --retrace makes new ones
    with pytest.raises(BuildError, match="--style cot but 1,273 record.s. keep the source's "
                                         "paper-style traces; add --retrace"):
        build(out, tmp_path / "x", benchmarks="medqa", style="cot", progress=False)
    re_cot = build(out, tmp_path / "cot", benchmarks="medqa", style="cot", retrace=True, progress=False)
    assert re_cot.configs[0].entry["traces"]["style"] == "cot"
    assert re_cot.configs[0].entry["content_hash"] == built.manifest["configs"]["medqa"]["content_hash"]
    with pytest.raises(BuildError, match="unknown prompt style 'boxed'"):
        build(out, tmp_path / "y", style="boxed", progress=False)
    # evaluated in the cot style: the prefill is the paper trace, the continuation is scored
    r = load_eval_records("medqa", out).records[0]
    p = build_prompt(r, "cot", adversarial="prefill", trace_index=0)
    assert p.prefill.startswith(r.adversarial_traces[0]) and "\\boxed{" in p.prefill
    assert scoring.score(f"On reflection the answer is {r.answer_idx}.\nAnswer: {r.answer_idx}",
                         r.options, r.answer_idx, style="cot").outcome == scoring.Outcome.CORRECT


def test_subset_rebuild_removes_stale_configs(labelled_dir, tmp_path):
    out = tmp_path / "b"
    build(labelled_dir, out, benchmarks="medbullets_op4,medbullets_op5,pubmedqa", progress=False)
    assert resolve_source(out).benchmarks() == ["pubmedqa", "medbullets_op4", "medbullets_op5"]
    res = build(labelled_dir, out, benchmarks=["MedBullets_op5", "medbullets_op4"], progress=False)
    assert list(res.manifest["configs"]) == ["medbullets_op4", "medbullets_op5"]  # registry order
    assert not (out / "pubmedqa").exists()
    assert resolve_source(out).benchmarks() == ["medbullets_op4", "medbullets_op5"]


def test_named_errors(labelled_dir, tmp_path, raw_dir):
    with pytest.raises(BuildError, match="unknown benchmark 'nope'"):
        build(labelled_dir, tmp_path / "x", benchmarks="nope", progress=False)
    with pytest.raises(BuildError, match="'gpqa_medical' is not in source"):
        build(labelled_dir, tmp_path / "x", benchmarks="gpqa_medical", progress=False)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(BuildError, match="holds files a build did not write"):
        build(labelled_dir, foreign, benchmarks="medqa", progress=False)
    with pytest.raises(BuildError, match="neither 'hub' nor an existing"):
        build(tmp_path / "missing", tmp_path / "x", progress=False)
    mine = tmp_path / "mine.jsonl"
    mine.write_text('{"id": "1", "benchmark": "my_set", "question": "Q?", "options": ["a", "b"], '
                    '"answer_idx": "A", "is_reasoning": true, "reasoning_prob": 0.9}\n')
    with pytest.raises(BuildError, match="registry"):
        build(mine, tmp_path / "x", progress=False)
    with pytest.raises(BuildError, match="n_traces"):
        build(labelled_dir, tmp_path / "x", n_traces=0, progress=False)
    with pytest.raises(BuildError, match="unknown classifier backend 'foo'"):
        build(labelled_dir, tmp_path / "x", backend="foo", progress=False)
    with pytest.raises(BuildError, match=r"threshold must be in \[0, 1\], got 1.5"):
        build(labelled_dir, tmp_path / "x", threshold=1.5, progress=False)
    # an option the kept labels / traces would silently ignore is an error naming the fix
    with pytest.raises(BuildError, match="medqa: --threshold .* 1,273 record.s. keep the source's labels; add --relabel"):
        build(labelled_dir, tmp_path / "x", benchmarks="medqa", threshold=0.9, progress=False)


def test_more_traces_than_the_source_has_needs_retrace(built, tmp_path):
    with pytest.raises(BuildError, match="--n-traces 5 but 308 record.s. keep the source's 3 trace.s. .* --retrace"):
        build(built.out, tmp_path / "x", benchmarks="medbullets_op4", n_traces=5, progress=False)
    res = build(built.out, tmp_path / "y", benchmarks="medbullets_op4", n_traces=5, retrace=True,
                progress=False)
    got = resolve_source(res.out).load("medbullets_op4")[0]
    assert all(len(r.adversarial_traces) == 5 and all(r.adversarial_traces) for r in got)
    assert res.manifest["traces"] == {"n_traces": 5, "generator": OFFLINE_SOURCE, "style": "cot",
                                      "sources": {OFFLINE_SOURCE: 308}}


def test_bad_rows_are_counted_or_fatal(raw_source, tmp_path, capsys):
    recs = copy.deepcopy(raw_source.load("medqa")[0][:6])
    for r in recs:
        rule_label(r)
    rows = [dict(r.to_dict(), benchmark="medqa") for r in recs]
    rows[1]["question"] = "  "
    del rows[3]["options"]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(x) + "\n" for x in rows))
    res = build(src, tmp_path / "o", progress=False)
    e = res.manifest["configs"]["medqa"]
    assert e["records"] == 4 and e["skipped"] == 2
    assert e["skip_reasons"] == {"options: missing": 1, "question: empty": 1}
    with pytest.raises(RecordValidationError, match="field 'question': empty"):
        build(src, tmp_path / "o2", strict=True, progress=False)
    # the command says so too, not only the manifest
    assert main(["build", "--source", str(src), "--out", str(tmp_path / "o3"), "--no-progress"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "medqa: 2 invalid source row(s) skipped (options: missing x1; question: empty x1)" in out


def test_cli_build_table_and_json(labelled_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["build", "--source", str(labelled_dir), "--out", str(out), "--benchmarks",
            "medqa,medxpertqa", "--no-progress"]
    assert main(args) == 0
    text = capsys.readouterr().out
    for word in ("medqa", "MedXpertQA", "reasoning share", "32.8%", "all", "3,723", "build:"):
        assert word in text
    assert main(args + ["--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["totals"]["records"] == 3723 and m == json.loads((out / MANIFEST).read_text())
    assert main(["build", "--source", str(labelled_dir), "--out", str(out), "-b", "nejm"]) == 2
    assert "not in source" in capsys.readouterr().err
    assert main(["data", "validate", "--source", str(out), "--json"]) == 0
    reps = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(r["benchmark"], r["records"], r["skipped"]) for r in reps] == [
        ("medqa", 1273, 0), ("medxpertqa", 2450, 0)]


# --------------------------------------------------------------------------- model traces


def test_build_with_endpoint_traces_resumes_and_is_deterministic(raw_source, tmp_path):
    from test_adversarial import CannedEndpoint

    from lm_eval_medsplit.trace_generation import EndpointGenerator

    recs = copy.deepcopy(raw_source.load("medqa")[0][:8])
    for r in recs:
        rule_label(r)
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in recs))
    # record 0: trace 2 always concludes with the gold letter -> offline template in its slot
    beh = lambda i, k, c: "gold" if (i == 0 and k == 2) else "ok"  # noqa: E731
    out = tmp_path / "model_build"
    with CannedEndpoint(recs, beh) as srv:
        gen = EndpointGenerator(srv.url, concurrency=4)
        res = build(src, out, traces=gen, max_attempts=2, progress=False)
        n_calls = len(srv.log)
        first = file_hashes(out)
        res2 = build(src, out, traces=gen, max_attempts=2, progress=False)
        gen.close()
        second_calls = srv.log[n_calls:]
    e = res.manifest["configs"]["medqa"]
    assert res.manifest["traces"]["generator"] == gen.source
    assert e["traces"]["sources"] == {gen.source: 7, f"{gen.source}+{OFFLINE_SOURCE}": 1}
    g = res.configs[0].run_stats
    assert g["requested"] == 24 and g["accepted"] == 23 and g["rejected"] == 1
    assert g["fallback_offline"] == 1 and g["attempts"] == 25
    assert n_calls == 25
    assert e["traces"]["generation"] == {
        "generators": [gen.source], "model_traces": 23, "offline_fallback": 1, "empty": 0,
        "attempts": 25, "fallback_reasons": {"concludes with the gold": 1}}
    assert e["traces"]["style"] == "cot" and res.manifest["traces"]["style"] == "cot"
    assert res2.configs[0].run_stats["resumed"] == 7 and res2.configs[0].run_stats["partial"] == 1
    built_recs = resolve_source(out).load("medqa", strict=True)[0]
    assert [r.adversarial_source for r in built_recs][:2] == [f"{gen.source}+{OFFLINE_SOURCE}", gen.source]
    assert built_recs[0].adversarial_traces[2] == offline_trace(built_recs[0], 2)
    assert all(ok for r in built_recs for _, ok, _ in check_record_traces(r))
    assert built_recs[0].meta["adversarial_generation"]["status"] == ["ok", "ok", "offline"]
    # re-run: finished records come from the resume file; only the rejected slot is asked again
    assert set(second_calls) == {(0, 2)} and len(second_calls) == 2
    assert file_hashes(out) == first
    assert res2.revision == res.revision


# --------------------------------------------------------------------------- real classifier


def test_build_raw_with_classifier_deterministic_round_trip(raw_dir, tmp_path, monkeypatch):
    classifier = pytest.importorskip("lm_eval_medsplit.classifier")
    a = build(raw_dir, tmp_path / "a", progress=False)
    # a second build (of two configs, to keep the test fast: the full-manifest byte
    # identity is checked above on the labelled source) gives the same bytes and entries
    b = build(raw_dir, tmp_path / "b", benchmarks="medqa,mmlu_pro_health_biology", progress=False)
    ha, hb = file_hashes(a.out), file_hashes(b.out)
    assert {k: ha[k] for k in hb if k != MANIFEST} == {k: v for k, v in hb.items() if k != MANIFEST}
    assert all(b.manifest["configs"][c] == a.manifest["configs"][c] for c in b.manifest["configs"])
    m = a.manifest
    assert {e["name"]: e["records"] for e in m["configs"].values()} == LOCAL
    ident = classifier.classifier_identity()
    assert m["classifier"]["sha256"] == ident["sha256"]
    assert m["threshold"] == ident["threshold"]
    for e in m["configs"].values():
        assert e["labels"]["from"] == "classifier" and e["labels"]["threshold"] == ident["threshold"]
        assert 0 < e["reasoning_share"] < 1
        assert all(f["sha256"] and len(f["sha256"]) == 64 for f in e["source_files"])
    assert m["configs"]["MedXpertQA"]["source_files"][0]["path"] == "MedXpertQA/medxpertqa-r/test.jsonl"
    src = resolve_source(a.out)
    for c in a.configs:
        got, _ = src.load(c.name, strict=True)
        assert [g.to_dict() for g in got] == [r.to_dict() for r in c.records]
        assert all(r.reasoning_threshold == ident["threshold"] for r in got)
        assert all(r.is_reasoning == (r.reasoning_prob >= ident["threshold"]) for r in got)
    # the build agrees with what adapters compute on the fly from the raw source
    from lm_eval_medsplit.dataset import load_eval_records

    monkeypatch.setenv("MEDSPLIT_CACHE", str(tmp_path / "cache"))
    fly = load_eval_records("medbullets_op5", raw_dir)
    built = next(c for c in a.configs if c.name == "medbullets_op5").records
    assert [(r.id, r.reasoning_prob, r.is_reasoning, r.adversarial_traces) for r in fly.records] == \
        [(r.id, r.reasoning_prob, r.is_reasoning, r.adversarial_traces) for r in built]
    # a build made from this build keeps the labels and says which classifier made them
    again = build(b.out, tmp_path / "c", progress=False)
    assert again.manifest["classifier"] == m["classifier"] and again.manifest["threshold"] == m["threshold"]
    for c, e in again.manifest["configs"].items():
        assert e["labels"]["from"] == "source"
        assert e["labels"]["classifier"] == m["configs"][c]["labels"]["classifier"]
