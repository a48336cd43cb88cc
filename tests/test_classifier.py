"""The reasoning-vs-knowledge classifier: shipped embedded model, training, metrics, CLI,
and the transformer backend on a tiny local BERT. Real MedXpertQA data from shared/data;
only the split's train ids are ever fitted on."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lm_eval_medsplit.cli import main
from lm_eval_medsplit.schema import MCQRecord

SPLIT_NAME = "medxpertqa_classifier_split.json"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def split_file(shared_data) -> Path:
    p = shared_data / "splits" / SPLIT_NAME
    if not p.is_file():
        pytest.skip(f"{p} not found")
    return p


@pytest.fixture(scope="session")
def medx_train(raw_dir, split_file):
    from lm_eval_medsplit.classifier import load_labelled

    return load_labelled(raw_dir, split=split_file, part="train")


@pytest.fixture(scope="session")
def medx_test(raw_dir, split_file):
    from lm_eval_medsplit.classifier import load_labelled

    return load_labelled(raw_dir, split=split_file, part="test")


@pytest.fixture(scope="session")
def shipped():
    from lm_eval_medsplit.classifier import DEFAULT_EMBEDDED_MODEL
    from lm_eval_medsplit.classifier.embedded import EmbeddedModel

    return EmbeddedModel.load(DEFAULT_EMBEDDED_MODEL)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory, medx_train) -> Path:
    """A randomly initialised BERT (hidden 32, 2 layers) with a WordPiece tokenizer trained
    locally on 300 real training questions; saved with save_pretrained."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    from lm_eval_medsplit.classifier import classifier_texts

    path = tmp_path_factory.mktemp("tiny_bert")
    texts = classifier_texts(medx_train[0][:300])
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=1500, special_tokens=special,
                                                             show_progress=False))
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                   model_max_length=128)
    fast.save_pretrained(path)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(fast), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128, pad_token_id=fast.pad_token_id)
    BertForSequenceClassification(cfg).save_pretrained(path)
    return path


def _write_jsonl(path: Path, rows) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    return path


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]


# --------------------------------------------------------------------------- text + input errors


def test_classifier_text_one_format_for_records_and_dicts():
    from lm_eval_medsplit.classifier import classifier_text

    rec = MCQRecord(id="q1", benchmark="x", question="A 45-year-old man has chest pain. Diagnosis?",
                    options={"A": "Angina", "B": "Reflux\n disease"})
    text = classifier_text(rec)
    assert text == "A 45-year-old man has chest pain. Diagnosis?\nAnswer Choices: (A) Angina (B) Reflux disease"
    # a dict with a list of options and the HF-style suffix already in the question gives the same text
    d = {"id": "q1", "question": rec.question + "\nAnswer Choices: (A) Angina (B) Reflux disease",
         "options": ["Angina", "Reflux\n disease"]}
    assert classifier_text(d) == text


@pytest.mark.parametrize("row, field", [
    ({"id": "a", "question": "Which nerve?"}, "options"),
    ({"id": "a", "question": "   ", "options": {"A": "x", "B": "y"}}, "question"),
    ({"id": "a", "question": "Q?\nAnswer Choices: (A) x", "options": {"A": "x", "B": "y"}}, None),
    ({"id": "a", "options": {"A": "x"}}, "question"),
    ({"id": "a", "question": "Q?", "options": 7}, "options"),
    ({"id": "a", "question": "Q?", "options": {"A": "x", "B": " "}}, "options"),
])
def test_bad_records_give_named_errors(row, field):
    from lm_eval_medsplit.classifier import ClassifierInputError, predict_proba

    if field is None:
        assert predict_proba([row]).shape == (1,)
        return
    with pytest.raises(ClassifierInputError) as e:
        predict_proba([{"id": "ok", "question": "Fine?", "options": ["a", "b"]}, row])
    assert e.value.field == field
    assert "record 1" in str(e.value) and "'a'" in str(e.value)


def test_import_is_light():
    code = ("import sys, lm_eval_medsplit.classifier, lm_eval_medsplit.commands.classifier;"
            "heavy=[m for m in ('torch','transformers','sklearn','scipy','numpy') if m in sys.modules];"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# --------------------------------------------------------------------------- shipped embedded model


def test_shipped_model_is_small_pickle_free_and_trained_on_train_ids_only(shipped, split_file):
    from lm_eval_medsplit.classifier import DEFAULT_EMBEDDED_MODEL

    assert DEFAULT_EMBEDDED_MODEL.stat().st_size < 20 * 1024 * 1024
    with np.load(DEFAULT_EMBEDDED_MODEL, allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)
    split = json.loads(split_file.read_text())
    meta = shipped.meta
    assert meta["train_ids"] == sorted(split["train"])
    assert not set(meta["train_ids"]) & set(split["test"])
    assert meta["threshold_criterion"].startswith("maximise macro-F1")
    cv = meta["cv"]
    assert cv["folds"] == 5 and cv["at_threshold"]["threshold"] == shipped.threshold
    assert 0.8 < cv["at_threshold"]["roc_auc"] < 1 and 0.7 < cv["at_threshold"]["macro_f1"] < 1
    ident = shipped.identity()
    assert len(ident["sha256"]) == 64 and ident["threshold"] == shipped.threshold


def test_shipped_model_reproduces_its_recorded_training_data_and_predictions(shipped, medx_train):
    """Recomputes, from the raw data, the training-data hash and the predictions on every
    training id that the artefact recorded when it was made."""
    from lm_eval_medsplit.classifier import classifier_texts
    from lm_eval_medsplit.classifier.embedded import training_data_sha256
    from lm_eval_medsplit.classifier.metrics import binary_metrics

    records, labels = medx_train
    ids = [r.id for r in records]
    texts = classifier_texts(records)
    assert training_data_sha256(ids, texts, labels) == shipped.meta["training_data_sha256"]
    prob = shipped.predict_proba(texts)
    order = np.argsort(np.array(ids, dtype=object), kind="stable")
    np.testing.assert_allclose(prob[order], shipped.meta["train_predictions"], atol=2e-6)
    fit = binary_metrics(labels, prob, shipped.threshold)
    for k in ("accuracy", "macro_f1", "tp", "tn"):
        assert round(fit[k], 4) == shipped.meta["train_fit"][k]


def test_predict_proba_range_deterministic_and_batch_independent(raw_dir):
    from lm_eval_medsplit.classifier import get_classifier, predict_proba
    from lm_eval_medsplit.sources import load_benchmark

    records, _ = load_benchmark(raw_dir, "medqa")
    records = records[:300]
    p1 = predict_proba(records)
    assert p1.shape == (300,) and p1.dtype == np.float64
    assert np.all((p1 >= 0) & (p1 <= 1)) and p1.std() > 0.01
    p2 = predict_proba(list(reversed(records)))[::-1]
    np.testing.assert_array_equal(p1, p2)
    clf = get_classifier("embedded")
    single = np.array([clf.predict_proba([t])[0] for t in
                       [__import__("lm_eval_medsplit.classifier").classifier.classifier_text(r) for r in records[:20]]])
    np.testing.assert_allclose(single, p1[:20], rtol=0, atol=1e-12)
    # MedQA is USMLE vignettes: most should come out as reasoning questions
    assert (p1 >= clf.threshold).mean() > 0.6


def test_label_records_sets_fields_on_records_and_dicts(medx_test):
    from lm_eval_medsplit.classifier import classifier_identity, label_records

    recs = [MCQRecord(id=r.id, benchmark=r.benchmark, question=r.question, options=dict(r.options))
            for r in medx_test[0][:30]]
    out = label_records(recs)
    thr = classifier_identity()["threshold"]
    assert out is not recs and all(r.reasoning_threshold == thr for r in out)
    assert all(r.is_reasoning == (r.reasoning_prob >= thr) for r in out)
    dicts = [{"id": r.id, "question": r.question, "options": r.options, "keep": 1} for r in recs]
    label_records(dicts, threshold=0.0)
    assert all(d["is_reasoning"] is True and d["reasoning_threshold"] == 0.0 and d["keep"] == 1 for d in dicts)
    assert [d["reasoning_prob"] for d in dicts] == [r.reasoning_prob for r in out]
    with pytest.raises(ValueError):
        label_records(dicts, threshold=1.5)


def test_shipped_model_on_held_out_test_ids(medx_test, shipped):
    """A measurement only (nothing is tuned on it): the held-out agreement stays sane."""
    from lm_eval_medsplit.classifier import classifier_texts
    from lm_eval_medsplit.classifier.metrics import binary_metrics

    records, labels = medx_test
    m = binary_metrics(labels, shipped.predict_proba(classifier_texts(records)), shipped.threshold)
    assert m["n"] == 483 and m["accuracy"] > 0.78 and m["roc_auc"] > 0.8


# --------------------------------------------------------------------------- training


def test_train_embedded_small_is_deterministic_and_uses_train_ids_only(medx_train, split_file, tmp_path):
    from lm_eval_medsplit.classifier import classifier_texts
    from lm_eval_medsplit.classifier.embedded import EmbeddedModel, train_embedded

    records, labels = medx_train
    records, labels = records[:300], labels[:300]
    texts = classifier_texts(records)
    ids = [r.id for r in records]
    m1 = train_embedded(ids, texts, labels, folds=2)
    m2 = train_embedded(ids, texts, labels, folds=2)
    sha1 = m1.save(tmp_path / "a.npz")
    sha2 = m2.save(tmp_path / "b.npz")
    assert sha1 == sha2 and (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    cv = m1.meta["cv"]
    assert cv["at_threshold"]["roc_auc"] > 0.65
    assert 0.05 <= m1.threshold <= 0.95
    assert set(m1.meta["train_ids"]) == set(ids)
    assert not set(ids) & set(json.loads(split_file.read_text())["test"])
    loaded = EmbeddedModel.load(tmp_path / "a.npz")
    np.testing.assert_array_equal(loaded.predict_proba(texts[:50]), m1.predict_proba(texts[:50]))
    assert loaded.meta["hyperparameters"]["tfidf"]["ngram_range"] == [1, 2] and loaded.threshold == m1.threshold


def test_numpy_transform_equals_the_fitted_scikit_learn_pipeline(medx_train, medx_test, raw_dir, tmp_path):
    """The arrays the artefact keeps, applied with numpy, give the fitted Pipeline's
    predict_proba, before and after a save/load round trip, and rebuild the Pipeline."""
    from lm_eval_medsplit.classifier import classifier_texts
    from lm_eval_medsplit.classifier.embedded import EmbeddedModel, make_pipeline
    from lm_eval_medsplit.sources import load_benchmark

    train_texts, y = classifier_texts(medx_train[0][:400]), medx_train[1][:400]
    texts = classifier_texts(medx_test[0])
    for b in ("pubmedqa", "mmlu_health_biology", "medmcqa"):  # abstracts, unicode, short questions
        texts += classifier_texts(load_benchmark(raw_dir, b)[0][:150])
    texts += ["", "?? !!", "Ünïcode naïve café — 5 mg/dL?"]
    for params in ({}, {"ngram_range": (1, 3), "min_df": 1, "sublinear_tf": False}):
        pipe = make_pipeline(params).fit(train_texts, y)
        want = pipe.predict_proba(texts)[:, 1]
        model = EmbeddedModel.from_pipeline(pipe, 0.5, {"name": "t"})
        np.testing.assert_allclose(model.predict_proba(texts), want, rtol=0, atol=1e-12)
        model.save(tmp_path / "m.npz")
        loaded = EmbeddedModel.load(tmp_path / "m.npz")
        np.testing.assert_allclose(loaded.predict_proba(texts), want, rtol=0, atol=1e-12)
        np.testing.assert_allclose(loaded.to_pipeline().predict_proba(texts)[:, 1], want, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="does not support"):
        EmbeddedModel.from_pipeline(make_pipeline({"stop_words": "english"}).fit(train_texts, y))


def test_shipped_model_is_the_scikit_learn_fit_of_the_train_ids(shipped, medx_train):
    """Refitting the recorded pipeline on the train ids gives the shipped arrays."""
    from lm_eval_medsplit.classifier import classifier_texts
    from lm_eval_medsplit.classifier.embedded import EmbeddedModel, make_pipeline

    hp = shipped.meta["hyperparameters"]
    pipe = make_pipeline(hp["tfidf"], hp["lr"]).fit(classifier_texts(medx_train[0]), medx_train[1])
    refit = EmbeddedModel.from_pipeline(pipe)
    assert refit.vocabulary == shipped.vocabulary
    np.testing.assert_allclose(refit.idf, shipped.idf, rtol=0, atol=1e-12)
    np.testing.assert_allclose(refit.coef, shipped.coef, rtol=0, atol=1e-6)


def test_artefact_loads_without_pickle_and_names_the_file(shipped, tmp_path):
    from lm_eval_medsplit.classifier.embedded import EmbeddedModel

    arrays = shipped.arrays()
    bad = tmp_path / "pickled.npz"
    np.savez(bad, **{**arrays, "coef": np.array([{"x": 1}], dtype=object)})
    with pytest.raises(ValueError, match="not an embedded classifier artefact"):
        EmbeddedModel.load(bad)
    old = tmp_path / "old.npz"
    meta = json.loads(arrays["meta_json"].tobytes())
    meta["format_version"] = 1
    np.savez(old, **{**arrays, "meta_json": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)})
    with pytest.raises(ValueError, match="format version 1 is not 2; retrain"):
        EmbeddedModel.load(old)


def test_train_cli_embedded_and_errors(raw_dir, split_file, tmp_path, capsys):
    # labelled JSONL path: 120 train questions, a light CV
    from lm_eval_medsplit.classifier import load_labelled

    recs, labels = load_labelled(raw_dir, split=split_file, part="train")
    rows = [dict(r.to_dict()) for r in recs[:80]]
    data = _write_jsonl(tmp_path / "labelled.jsonl", rows)
    out = tmp_path / "m.npz"
    assert main(["classifier", "train", "--data", str(data), "--out", str(out), "--folds", "2"]) == 0
    captured = capsys.readouterr()
    info = json.loads(captured.out)
    assert info["sha256"] and out.is_file()
    assert "warning: no --split: training on all 80 questions" in captured.err
    assert main(["classifier", "info", "--model", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["n_train"] == 80
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a numpy archive")
    assert main(["classifier", "info", "--model", str(junk)]) == 2
    assert f"{junk}: not a valid .npz (zip) file" in capsys.readouterr().err
    # no labels -> a named error
    bare = _write_jsonl(tmp_path / "bare.jsonl", [{"id": "x", "question": "Q?", "options": ["a", "b"]}])
    assert main(["classifier", "train", "--data", str(bare), "--out", str(tmp_path / "n.npz")]) == 2
    assert "record 0" in capsys.readouterr().err
    # a split part that does not exist
    assert main(["classifier", "train", "--data", str(raw_dir), "--split", str(split_file),
                 "--part", "dev", "--out", str(tmp_path / "n.npz")]) == 2
    assert "no part 'dev'" in capsys.readouterr().err
    # --part without --split would be ignored: an error instead
    assert main(["classifier", "train", "--data", str(raw_dir), "--part", "train",
                 "--out", str(tmp_path / "n.npz")]) == 2
    assert "--part train needs --split FILE" in capsys.readouterr().err
    assert main(["classifier", "evaluate", "--labels", str(raw_dir), "--part", "test"]) == 2
    assert "--part test needs --split FILE" in capsys.readouterr().err
    assert not (tmp_path / "n.npz").exists()


# --------------------------------------------------------------------------- metrics + evaluate


def test_metrics_match_scikit_learn_and_bootstrap_is_seeded():
    from sklearn.metrics import cohen_kappa_score, f1_score, roc_auc_score

    from lm_eval_medsplit.classifier.metrics import _vector_metrics, bootstrap_metrics

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    p = np.clip(y * 0.3 + rng.random(300) * 0.7, 0, 1).round(2)  # ties on purpose
    v = _vector_metrics(y[None], p[None], (p >= 0.5).astype(int)[None])
    assert v["roc_auc"][0] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert v["macro_f1"][0] == pytest.approx(f1_score(y, p >= 0.5, average="macro"), abs=1e-12)
    assert v["kappa"][0] == pytest.approx(cohen_kappa_score(y, p >= 0.5), abs=1e-12)
    a = bootstrap_metrics(y, p, 0.5, n_boot=300, seed=1)
    b = bootstrap_metrics(y, p, 0.5, n_boot=300, seed=1)
    assert a == b
    for k in ("accuracy", "balanced_accuracy", "macro_f1", "kappa", "roc_auc"):
        lo, hi = a["ci"][k]
        assert lo <= a["point"][k] <= hi
    assert a["point"]["tp"] + a["point"]["fn"] == int(y.sum())
    # one gold class only: the point estimate and the bootstrap agree on how macro-F1 counts
    one = bootstrap_metrics([1] * 50, [0.9] * 50, 0.5, n_boot=100, seed=0)
    assert one["point"]["macro_f1"] == 0.5 and one["ci"]["macro_f1"] == [0.5, 0.5]


def test_evaluate_cli_on_raw_split_and_labelled_jsonl(raw_dir, split_file, tmp_path, capsys):
    js = tmp_path / "eval.json"
    assert main(["classifier", "evaluate", "--labels", str(raw_dir), "--split", str(split_file),
                 "--part", "test", "--n-boot", "200", "--json", str(js)]) == 0
    out = capsys.readouterr()
    for word in ("accuracy", "balanced_accuracy", "macro_f1", "kappa", "roc_auc", "confusion matrix",
                 "95% bootstrap interval", "gold reasoning"):
        assert word in out.out
    assert "not held-out" not in out.err
    res = json.loads(js.read_text())
    assert res["point"]["n"] == 483 and res["train_overlap"] == 0
    assert res["ci"]["accuracy"][0] < res["point"]["accuracy"] < res["ci"]["accuracy"][1]
    # a labelled JSONL with is_reasoning gold labels (ids of the test part), and a warning
    # when the evaluated ids overlap the classifier's training ids
    from lm_eval_medsplit.classifier import load_labelled

    recs, labels = load_labelled(raw_dir, split=split_file, part="train")
    rows = [{"id": r.id, "question": r.question, "options": r.options, "is_reasoning": bool(y)}
            for r, y in zip(recs[:40], labels[:40])]
    f = _write_jsonl(tmp_path / "gold.jsonl", rows)
    assert main(["classifier", "evaluate", "--labels", str(f), "--n-boot", "50"]) == 0
    out = capsys.readouterr()
    assert "n = 40" in out.out and "40 of these 40 questions were in the classifier's training set" in out.err


# --------------------------------------------------------------------------- classify CLI


def test_classify_cli_roundtrip_keeps_every_other_field(tmp_path, capsys):
    rows = [
        {"id": "q1", "question": "A 62-year-old woman presents with fever and a new murmur. "
                                 "What is the most appropriate next step in management?",
         "options": {"A": "Blood cultures", "B": "Echocardiography", "C": "Discharge"},
         "custom": {"nested": [1, 2, {"x": None}]}, "answer_idx": "A", "source_row": 17},
        {"id": 2, "question": "Which enzyme is deficient in classic galactosemia?",
         "options": ["GALT", "Galactokinase", "Aldolase B"], "reasoning_prob": 0.123, "zzz": "é"},
    ]
    src = _write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    assert main(["classify", str(src), "--out", str(out), "--no-progress"]) == 0
    assert "labelled 2 question(s)" in capsys.readouterr().out
    got = _read_jsonl(out)
    added = {"reasoning_prob", "is_reasoning", "reasoning_threshold"}
    for before, after in zip(rows, got):
        assert set(after) == set(before) | added
        for k, v in before.items():
            if k not in added:
                assert after[k] == v
        assert 0 <= after["reasoning_prob"] <= 1
        assert after["is_reasoning"] == (after["reasoning_prob"] >= after["reasoning_threshold"])
    assert got[0]["reasoning_prob"] > got[1]["reasoning_prob"]
    assert main(["classify", str(src), "--out", str(out), "--threshold", "1.0", "--no-progress"]) == 0
    assert [r["is_reasoning"] for r in _read_jsonl(out)] == [False, False]


def test_classify_cli_bad_lines_name_file_line_and_field(tmp_path, capsys):
    lines = [
        json.dumps({"id": "ok", "question": "Fine?", "options": ["a", "b"]}),
        json.dumps({"id": "no-opts", "question": "Which nerve?"}),
        json.dumps({"id": "empty-q", "question": "  ", "options": ["a", "b"]}),
        "{not json",
        json.dumps({"question": "No id?", "options": ["a", "b"]}),
    ]
    src = _write_jsonl(tmp_path / "bad.jsonl", lines)
    out = tmp_path / "out.jsonl"
    assert main(["classify", str(src), "--out", str(out), "--strict"]) == 2
    err = capsys.readouterr().err
    assert "4 invalid line(s), nothing written" in err
    assert f"{src}: line 2: field 'options': missing" in err
    assert f"{src}: line 3: field 'question': empty" in err
    assert f"{src}: line 4: field '<json>'" in err
    assert f"{src}: line 5: field 'id': missing" in err
    assert not out.exists()
    assert main(["classify", str(tmp_path / "nope.jsonl"), "--out", str(out)]) == 2
    assert "no such file" in capsys.readouterr().err


def test_classify_cli_source_and_benchmark(raw_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "mb.jsonl"
    monkeypatch.setenv("MEDSPLIT_SOURCE", str(raw_dir))  # the source every command defaults to
    assert main(["classify", "--benchmark", "medbullets_op4", "--out", str(out), "--no-progress"]) == 0
    rows = _read_jsonl(out)
    assert len(rows) == 308
    assert all(0 <= r["reasoning_prob"] <= 1 and isinstance(r["is_reasoning"], bool) for r in rows)
    assert all(r["benchmark"] == "medbullets_op4" and r["options"] for r in rows)


# --------------------------------------------------------------------------- transformer backend


def test_transformer_backend_trains_and_predicts_with_tiny_bert(tiny_bert, medx_train, tmp_path, capsys):
    from lm_eval_medsplit.classifier import classifier_identity, predict_proba
    from lm_eval_medsplit.classifier.transformer import META_FILE

    recs, labels = medx_train
    rows = [r.to_dict() for r in recs[:24]]
    data = _write_jsonl(tmp_path / "train.jsonl", rows)
    ckpt = tmp_path / "ckpt"
    assert main(["classifier", "train", "--backend", "transformer", "--base", str(tiny_bert),
                 "--data", str(data), "--out", str(ckpt), "--max-steps", "2", "--batch-size", "8",
                 "--max-length", "128"]) == 0
    capsys.readouterr()
    meta = json.loads((ckpt / META_FILE).read_text())
    assert meta["hyperparameters"]["steps"] == 2 and meta["n_train"] == 24
    assert (ckpt / "config.json").is_file()
    p = predict_proba(recs[:10], backend="transformer", model=ckpt, batch_size=4)
    assert p.shape == (10,) and np.all((p >= 0) & (p <= 1))
    np.testing.assert_allclose(p, predict_proba(recs[:10], backend="transformer", model=ckpt,
                                                batch_size=3), atol=1e-5)
    ident = classifier_identity("transformer", model=ckpt, batch_size=4)
    assert ident["backend"] == "transformer" and len(ident["sha256"]) == 64 and ident["threshold"] == 0.5
    # classify with the transformer backend
    src = _write_jsonl(tmp_path / "q.jsonl", [{"id": r.id, "question": r.question, "options": r.options,
                                               "extra": True} for r in recs[:5]])
    out = tmp_path / "q.out.jsonl"
    assert main(["classify", str(src), "--out", str(out), "--backend", "transformer",
                 "--model", str(ckpt), "--no-progress"]) == 0
    got = _read_jsonl(out)
    assert [g["extra"] for g in got] == [True] * 5
    np.testing.assert_allclose([g["reasoning_prob"] for g in got], p[:5], atol=1e-5)
    # a missing checkpoint is a user error, not a traceback
    assert main(["classify", str(src), "--out", str(out), "--backend", "transformer",
                 "--model", str(tmp_path / "missing")]) == 2


def test_reasoning_index_from_labels():
    from types import SimpleNamespace

    from lm_eval_medsplit.classifier.transformer import reasoning_index

    assert reasoning_index(SimpleNamespace(num_labels=2, id2label={0: "Reasoning", 1: "Knowledge"})) == 0
    assert reasoning_index(SimpleNamespace(num_labels=2, id2label={0: "knowledge", 1: "other"})) == 1
    assert reasoning_index(SimpleNamespace(num_labels=2, id2label={0: "LABEL_0", 1: "LABEL_1"})) == 1
    assert reasoning_index(SimpleNamespace(num_labels=1, id2label={0: "LABEL_0"})) is None


def test_classify_cli_source_with_only_bad_rows_writes_nothing(tmp_path, capsys):
    bad = _write_jsonl(tmp_path / "bad.jsonl", [{"id": "1", "question": " ", "options": ["a", "b"]},
                                                {"id": "2", "question": "Q?", "options": ["a"]}])
    out = tmp_path / "o.jsonl"
    assert main(["classify", "--source", str(bad), "--benchmark", "bad", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "2 invalid row(s) of bad skipped" in err and f"{bad}: line 1: field 'question': empty" in err
    assert "no valid records of bad" in err and not out.exists()
    assert main(["classify", str(bad), "--benchmark", "bad", "--out", str(out)]) == 2
    assert "not both" in capsys.readouterr().err


def test_classifier_info_prints_per_benchmark_reasoning_shares(raw_dir, tmp_path, capsys):
    from lm_eval_medsplit.classifier import label_records
    from lm_eval_medsplit.sources import load_benchmark

    rows = []
    for b in ("medqa", "medmcqa"):
        rows += [dict(r.to_dict(), benchmark=b) for r in load_benchmark(raw_dir, b)[0][:40]]
    src = _write_jsonl(tmp_path / "mine.jsonl", rows)
    assert main(["classifier", "info", "--source", str(src)]) == 0
    info = json.loads(capsys.readouterr().out)
    shares = info["reasoning_shares"]
    assert shares["threshold"] == info["threshold"] and shares["paper_reasoning_share_all_11"] == 0.328
    labelled = label_records([dict(r) for r in rows])
    for b in ("medqa", "medmcqa"):
        n_r = sum(r["is_reasoning"] for r in labelled if r["benchmark"] == b)
        assert shares["benchmarks"][b] == {"questions": 40, "reasoning": n_r, "reasoning_share": round(n_r / 40, 4)}
    assert shares["benchmarks"]["medqa"]["reasoning_share"] > shares["benchmarks"]["medmcqa"]["reasoning_share"]
    assert shares["all"]["questions"] == 80
    assert main(["classifier", "info", "--source", str(src), "--threshold", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["reasoning_shares"]["all"]["reasoning_share"] == 1.0
    assert main(["classifier", "info", "--source", str(tmp_path / "missing.jsonl")]) == 2


def test_published_transformer_classifier_is_loaded_at_a_pinned_revision(monkeypatch):
    """A hub load of the published classifier names one commit (issue 13); a user's own hub
    id keeps its default branch; $MEDSPLIT_CLASSIFIER_REVISION overrides both."""
    from lm_eval_medsplit.classifier import PUBLISHED_TRANSFORMER_MODEL
    from lm_eval_medsplit.classifier.transformer import PUBLISHED_TRANSFORMER_REVISION, hub_revision

    monkeypatch.delenv("MEDSPLIT_CLASSIFIER_REVISION", raising=False)
    assert re.fullmatch(r"[0-9a-f]{7,40}", PUBLISHED_TRANSFORMER_REVISION)
    assert hub_revision(PUBLISHED_TRANSFORMER_MODEL) == PUBLISHED_TRANSFORMER_REVISION
    assert hub_revision("someone/their-classifier") is None
    monkeypatch.setenv("MEDSPLIT_CLASSIFIER_REVISION", "0123abc")
    assert hub_revision(PUBLISHED_TRANSFORMER_MODEL) == "0123abc"
