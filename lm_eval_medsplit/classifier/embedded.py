"""The embedded (default) backend: TF-IDF word n-grams + logistic regression, fitted by
scikit-learn and shipped inside the wheel as plain arrays.

Accepts: classifier texts (:func:`lm_eval_medsplit.classifier.classifier_text`); an artefact
``.npz`` written by :meth:`EmbeddedModel.save`. Guarantees: :meth:`EmbeddedModel.predict_proba`
equals the fitted scikit-learn ``Pipeline.predict_proba(texts)[:, 1]`` (to float rounding,
``tests/test_classifier.py``); results are deterministic, in input order and independent of
batching; loading never unpickles anything (``np.load(..., allow_pickle=False)``).

Model
-----
``Pipeline([("tfidf", TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)),
("lr", LogisticRegression(C=4, class_weight="balanced"))])`` (:func:`make_pipeline`). The
hyper-parameters were chosen by 5-fold cross-validation on the 1,967 training ids of
``splits/medxpertqa_classifier_split.json`` only (the grid and its figures are in
docs/classifier.md; ``python benchmarks/bench_classifier.py --select`` reruns it).

Threshold: chosen on the out-of-fold probabilities of the whole pipeline (5-fold CV over the
training ids, seed 0): the grid value in 0.05..0.95 (step 0.01) maximising macro-F1; ties go
to the value closest to 0.5. The criterion and the CV figures are written in the artefact.

Artefact
--------
One ``.npz`` without pickles (zip entries with a fixed timestamp, so re-training gives
byte-identical files): ``vocabulary`` (the terms as UTF-8, joined by newlines, in column
order), ``idf``, ``coef``, ``intercept`` and ``meta_json`` (a JSON string: model name,
vectorizer and regression parameters, training ids and data sha256, CV figures, threshold and
criterion, rounded predictions on the training ids for self-checks). :func:`read_artefact` is
the one place the file is opened.

Prediction
----------
:class:`EmbeddedModel` applies the fitted transform with numpy alone (scikit-learn's token
pattern on the lower-cased text, word 1..n-grams, ``1 + ln(tf)`` x idf, L2 rows, then the
linear decision and the logistic function). It is kept instead of calling scikit-learn so that
labelling (``medsplit classify``, on-the-fly labels) needs numpy only and scikit-learn stays
in the ``classifier`` extra; it is also faster per call (measured by
``benchmarks/bench_classifier.py``). :meth:`EmbeddedModel.to_pipeline` rebuilds the
scikit-learn objects from the same arrays.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lm_eval_medsplit.fileio import write_bytes

MODEL_NAME = "medsplit-embedded-tfidf-lr"
FORMAT_VERSION = 2
THRESHOLD_CRITERION = ("maximise macro-F1 of the 5-fold out-of-fold probabilities on the training "
                       "ids (grid 0.05..0.95 step 0.01, ties to the value closest to 0.5)")

#: TfidfVectorizer parameters (the others stay at scikit-learn's defaults, which the numpy
#: transform reproduces: lowercase, token pattern ``(?u)\b\w\w+\b``, smooth idf, L2 norm).
DEFAULT_TFIDF = {"ngram_range": (1, 2), "min_df": 2, "sublinear_tf": True}
#: LogisticRegression parameters.
DEFAULT_LR = {"C": 4.0, "class_weight": "balanced"}

_TOKEN_RE = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's default token_pattern


def make_pipeline(tfidf: dict[str, Any] | None = None, lr: dict[str, Any] | None = None):
    """The scikit-learn pipeline the embedded model is (unfitted)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    t = {**DEFAULT_TFIDF, **(tfidf or {})}
    t["ngram_range"] = tuple(t["ngram_range"])
    return Pipeline([("tfidf", TfidfVectorizer(**t)),
                     ("lr", LogisticRegression(max_iter=5000, **{**DEFAULT_LR, **(lr or {})}))])


# --------------------------------------------------------------------------- artefact file


def read_artefact(path: str | Path) -> tuple[dict[str, np.ndarray], bytes]:
    """The arrays of an artefact ``.npz`` and its raw bytes: the one entry point that opens
    the file (``allow_pickle=False``; the declared sizes are checked before anything is
    decompressed, :func:`~lm_eval_medsplit.fileio.check_npz_sizes`). Raises
    ``FileNotFoundError`` / ``ValueError`` naming the file."""
    from lm_eval_medsplit.fileio import check_npz_sizes

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"embedded classifier artefact not found: {path}")
    check_npz_sizes(path)
    data = path.read_bytes()
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arr = {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:  # not an .npz
        raise ValueError(f"{path}: not an embedded classifier artefact written by "
                         f"`medsplit classifier train` ({type(e).__name__}: {e})") from None
    return arr, data


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, a in sorted(arrays.items()):
            entry = io.BytesIO()
            np.lib.format.write_array(entry, np.ascontiguousarray(a), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, entry.getvalue(), compresslevel=9)
    data = buf.getvalue()
    write_bytes(path, data)
    return data


# --------------------------------------------------------------------------- the model


class EmbeddedModel:
    """A loaded embedded classifier: ``predict_proba(texts)``, ``threshold``, ``meta``."""

    backend = "embedded"

    def __init__(self, vocabulary: Sequence[str], idf: np.ndarray, coef: np.ndarray, intercept: float,
                 threshold: float, meta: dict[str, Any], *, ngram_range: tuple[int, int] = (1, 2),
                 sublinear_tf: bool = True, sha256: str | None = None, path: str | None = None):
        self.vocabulary = list(vocabulary)
        self.index = {t: i for i, t in enumerate(self.vocabulary)}
        self.idf = np.asarray(idf, dtype=np.float64)
        self.coef = np.asarray(coef, dtype=np.float64)
        self.intercept = float(intercept)
        if not len(self.vocabulary) == len(self.idf) == len(self.coef):
            raise ValueError(f"vocabulary ({len(self.vocabulary)}), idf ({len(self.idf)}) and coef "
                             f"({len(self.coef)}) differ in length")
        self.ngram_range = (int(ngram_range[0]), int(ngram_range[1]))
        self.sublinear_tf = bool(sublinear_tf)
        self.threshold = float(threshold)
        self.meta = meta
        self.sha256 = sha256
        self.path = path

    # ------------------------------------------------------------ from / to scikit-learn
    @classmethod
    def from_pipeline(cls, pipe, threshold: float = 0.5, meta: dict[str, Any] | None = None) -> EmbeddedModel:
        """The arrays of a fitted :func:`make_pipeline` pipeline (refuses parameters the
        numpy transform does not reproduce)."""
        vec, lr = pipe.named_steps["tfidf"], pipe.named_steps["lr"]
        p = vec.get_params()
        default = {"analyzer": "word", "lowercase": True, "token_pattern": r"(?u)\b\w\w+\b",
                   "tokenizer": None, "preprocessor": None, "stop_words": None, "strip_accents": None,
                   "norm": "l2", "use_idf": True, "smooth_idf": True, "binary": False,
                   "vocabulary": None, "input": "content"}
        odd = {k: p[k] for k, v in default.items() if p[k] != v}
        if odd:
            raise ValueError(f"TfidfVectorizer parameters the embedded transform does not support: {odd}")
        if list(lr.classes_) != [0, 1]:
            raise ValueError(f"expected classes [0, 1], got {list(lr.classes_)}")
        return cls(vec.get_feature_names_out().tolist(), vec.idf_, lr.coef_.ravel(), float(lr.intercept_[0]),
                   threshold, dict(meta or {}), ngram_range=p["ngram_range"], sublinear_tf=p["sublinear_tf"])

    def to_pipeline(self):
        """A scikit-learn ``Pipeline`` with this model's fitted arrays (needs scikit-learn)."""
        pipe = make_pipeline({"ngram_range": self.ngram_range, "sublinear_tf": self.sublinear_tf,
                              "min_df": 1, "vocabulary": self.index}, {})
        vec, lr = pipe.named_steps["tfidf"], pipe.named_steps["lr"]
        vec.fit(self.vocabulary[:1] or [""])  # sets the fixed vocabulary_; idf_ replaced below
        vec.idf_ = self.idf.copy()
        lr.classes_ = np.array([0, 1])
        lr.coef_ = self.coef.reshape(1, -1).copy()
        lr.intercept_ = np.array([self.intercept])
        lr.n_features_in_ = len(self.vocabulary)
        return pipe

    # ------------------------------------------------------------ prediction
    def _ngrams(self, text: str) -> list[str]:
        toks = _TOKEN_RE.findall(text.lower())
        lo, hi = self.ngram_range
        out = list(toks) if lo == 1 else []
        for n in range(max(lo, 2), hi + 1):
            out.extend(map(" ".join, zip(*(toks[i:] for i in range(n)))))
        return out

    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        """The linear decision of each text (the log-odds of reasoning)."""
        get = self.index.get
        cols: list[int] = []
        lens: list[int] = []
        for t in texts:
            ids = [c for c in map(get, self._ngrams(t)) if c is not None]
            cols.extend(ids)
            lens.append(len(ids))
        n, v = len(lens), max(1, len(self.vocabulary))
        doc = np.repeat(np.arange(n, dtype=np.int64), lens)
        keys, counts = np.unique(doc * v + np.asarray(cols, dtype=np.int64), return_counts=True)
        d, c = keys // v, keys % v
        tf = 1.0 + np.log(counts) if self.sublinear_tf else counts.astype(np.float64)
        w = tf * self.idf[c]
        norm = np.sqrt(np.bincount(d, weights=w * w, minlength=n))
        norm[norm == 0] = 1.0
        return np.bincount(d, weights=w * self.coef[c], minlength=n) / norm + self.intercept

    def predict_proba(self, texts: Sequence[str], *, progress: bool | None = None,
                      batch_size: int = 2048) -> np.ndarray:
        """``reasoning_prob`` for each :func:`classifier_text` string."""
        texts = list(texts)
        out = np.zeros(len(texts), dtype=np.float64)
        show = len(texts) >= 20000 if progress is None else progress
        bar = None
        if show:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(texts), desc="reasoning classifier", unit="q")
        for s in range(0, len(texts), batch_size):
            chunk = texts[s:s + batch_size]
            out[s:s + len(chunk)] = 1.0 / (1.0 + np.exp(-self.decision_function(chunk)))
            if bar is not None:
                bar.update(len(chunk))
        if bar is not None:
            bar.close()
        return out

    def identity(self) -> dict[str, Any]:
        m = self.meta
        return {
            "backend": "embedded",
            "name": m.get("name", MODEL_NAME),
            "path": self.path,
            "sha256": self.sha256,
            "threshold": self.threshold,
            "threshold_criterion": m.get("threshold_criterion"),
            "training_data_sha256": m.get("training_data_sha256"),
            "n_train": m.get("n_train"),
            "cv": m.get("cv"),
            "hyperparameters": m.get("hyperparameters"),
            "package_version": m.get("package_version"),
        }

    # ------------------------------------------------------------ persistence
    def arrays(self) -> dict[str, np.ndarray]:
        meta = dict(self.meta)
        meta.update(format_version=FORMAT_VERSION, threshold=self.threshold,
                    ngram_range=list(self.ngram_range), sublinear_tf=self.sublinear_tf)
        meta_bytes = json.dumps(meta, sort_keys=True, ensure_ascii=False, indent=1).encode("utf-8")
        return {
            "vocabulary": np.frombuffer("\n".join(self.vocabulary).encode("utf-8"), dtype=np.uint8),
            "idf": self.idf,
            "coef": self.coef,
            "intercept": np.array([self.intercept]),
            "meta_json": np.frombuffer(meta_bytes, dtype=np.uint8),
        }

    def save(self, path: str | Path) -> str:
        """Write the artefact (deterministic bytes); returns its sha256."""
        data = _write_npz(Path(path), self.arrays())
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.path = str(path)
        return self.sha256

    @classmethod
    def load(cls, path: str | Path) -> EmbeddedModel:
        arr, data = read_artefact(path)
        try:
            meta = json.loads(arr["meta_json"].tobytes().decode("utf-8"))
            if meta.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"format version {meta.get('format_version')} is not {FORMAT_VERSION}; "
                                 f"retrain with this package version")
            raw = arr["vocabulary"].tobytes().decode("utf-8")
            return cls(raw.split("\n") if raw else [], arr["idf"], arr["coef"], float(arr["intercept"][0]),
                       float(meta["threshold"]), meta, ngram_range=tuple(meta["ngram_range"]),
                       sublinear_tf=bool(meta["sublinear_tf"]),
                       sha256=hashlib.sha256(data).hexdigest(), path=str(path))
        except (KeyError, ValueError, TypeError, IndexError, AttributeError) as e:
            raise ValueError(f"{path}: not an embedded classifier artefact written by "
                             f"`medsplit classifier train` ({type(e).__name__}: {e})") from None


# --------------------------------------------------------------------------- training


def training_data_sha256(ids: Sequence[str], texts: Sequence[str], labels: Sequence[int]) -> str:
    """sha256 over the training examples (id, classifier text, label) in id order."""
    h = hashlib.sha256()
    for i, t, y in sorted(zip(ids, texts, labels)):
        h.update(json.dumps([i, t, int(y)], ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def choose_threshold(y: np.ndarray, prob: np.ndarray) -> float:
    """The grid value (0.05..0.95, step 0.01) maximising macro-F1; ties -> closest to 0.5."""
    from sklearn.metrics import f1_score

    grid = np.round(np.arange(0.05, 0.9501, 0.01), 2)
    scores = np.array([f1_score(y, prob >= t, average="macro", zero_division=0) for t in grid])
    cands = grid[np.isclose(scores, scores.max(), rtol=0, atol=1e-12)]
    return float(cands[np.argmin(np.abs(cands - 0.5))])


def out_of_fold(texts: Sequence[str], y: Sequence[int], *, folds: int = 5, seed: int = 0,
                tfidf: dict[str, Any] | None = None, lr: dict[str, Any] | None = None) -> np.ndarray:
    """Out-of-fold reasoning probabilities of the pipeline (stratified ``folds``-fold CV)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return cross_val_predict(make_pipeline(tfidf, lr), list(texts), np.asarray(y, dtype=int), cv=cv,
                             method="predict_proba")[:, 1]


def train_embedded(ids: Sequence[str], texts: Sequence[str], labels: Sequence[int], *,
                   folds: int = 5, seed: int = 0, tfidf: dict[str, Any] | None = None,
                   lr: dict[str, Any] | None = None, data_description: Any = None,
                   log: Callable[[str], None] | None = None) -> EmbeddedModel:
    """Cross-validate the pipeline (``folds`` folds, seed ``seed``), choose the threshold on
    the out-of-fold probabilities (:data:`THRESHOLD_CRITERION`), fit the final pipeline on
    all the given examples and record everything in ``meta``. Deterministic: the same inputs
    give the same artefact."""
    from lm_eval_medsplit import __version__
    from lm_eval_medsplit.classifier.metrics import binary_metrics

    log = log or (lambda s: None)
    ids = [str(i) for i in ids]
    texts = list(texts)
    if len(set(ids)) != len(ids):
        raise ValueError("training ids must be unique")
    y = np.asarray(labels, dtype=int)
    if set(np.unique(y)) != {0, 1}:
        raise ValueError("training labels need both classes (1 reasoning, 0 knowledge)")
    tfidf = {**DEFAULT_TFIDF, **(tfidf or {})}
    lr = {**DEFAULT_LR, **(lr or {})}
    if folds >= 2:
        log(f"{folds}-fold cross-validation for the threshold")
        oof = out_of_fold(texts, y, folds=folds, seed=seed, tfidf=tfidf, lr=lr)
        threshold = choose_threshold(y, oof)
        cv = {
            "folds": folds, "seed": seed,
            "at_threshold": _rounded(binary_metrics(y, oof, threshold)),
            "at_0.5": _rounded(binary_metrics(y, oof, 0.5)),
            "oof_sha256": hashlib.sha256(np.round(oof, 6).tobytes()).hexdigest(),
        }
    else:
        threshold, cv = 0.5, None
    log("fitting the final model on all training examples")
    pipe = make_pipeline(tfidf, lr).fit(texts, y)
    model = EmbeddedModel.from_pipeline(pipe, threshold)
    train_prob = model.predict_proba(texts, progress=False)
    order = np.argsort(np.array(ids, dtype=object), kind="stable")
    import sklearn

    model.meta = {
        "name": MODEL_NAME,
        "package_version": __version__,
        "sklearn_version": sklearn.__version__,
        "label": "1 = Reasoning, 0 = Understanding (MedXpertQA question_type)",
        "classifier_text": "lm_eval_medsplit.classifier.classifier_text",
        "data": data_description,
        "n_train": int(len(y)),
        "n_reasoning": int(y.sum()),
        "train_ids": [ids[i] for i in order],
        "training_data_sha256": training_data_sha256(ids, texts, y),
        "hyperparameters": {"tfidf": {**tfidf, "ngram_range": list(tfidf["ngram_range"])}, "lr": lr,
                            "seed": seed},
        "cv": cv,
        "threshold_criterion": THRESHOLD_CRITERION if cv else "none (no cross-validation): 0.5",
        "train_fit": _rounded(binary_metrics(y, train_prob, threshold)),
        "train_predictions": [round(float(train_prob[i]), 6) for i in order],
    }
    return model


def _rounded(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()}
