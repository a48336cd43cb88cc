"""The transformer backend: a fine-tuned BERT-family encoder (``transformers``).

Inference works with any sequence-classification checkpoint, by hub id or local path:
the published BioMed-R1 classifier ``zou-lab/BioMedBERT-Knowledge-vs-Reasoning`` (the
default; needs the hub or a local copy) or one fine-tuned here. The reasoning class is found
from ``config.id2label`` (a label containing "reason"; else the one that is not
"knowledge"/"understanding"; else index 1); a one-logit head is read with a sigmoid.

Fine-tuning (:func:`train_transformer`, ``medsplit classifier train --backend transformer``)
starts from ``microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract-fulltext`` (PubMedBERT, as
in the paper) or any local path, on :func:`~lm_eval_medsplit.classifier.classifier_text`
with class-weighted cross-entropy, AdamW and a linear warm-up/decay schedule, seeded. It
saves the model and tokenizer with ``save_pretrained`` plus ``medsplit_classifier.json``
(base, hyper-parameters, training ids and data hash, threshold 0.5: no threshold is tuned
for this backend, as that would need a further cross-validation of the fine-tuning).
torch and transformers are imported only inside these functions.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_BASE = "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract-fulltext"
META_FILE = "medsplit_classifier.json"
#: The commit of the published classifier that a hub load pins: the latest commit of
#: zou-lab/BioMedBERT-Knowledge-vs-Reasoning's main as its model page shows it ("Update
#: README.md", May 2025; weights unchanged since "added files"). The hub resolves a commit
#: prefix like a full sha (huggingface_hub#197, fixed server-side); the full 40-hex form
#: could not be read offline. $MEDSPLIT_CLASSIFIER_REVISION overrides it.
PUBLISHED_TRANSFORMER_REVISION: str = "1a0d6b3"
ID2LABEL = {0: "Knowledge", 1: "Reasoning"}


def _device(device: str | None) -> str:
    import torch

    if device:
        return device
    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def reasoning_index(config: Any) -> int | None:
    """Index of the reasoning logit from ``config.id2label`` (``None``: one-logit head)."""
    n = int(getattr(config, "num_labels", 2))
    if n == 1:
        return None
    labels = {int(k): str(v).lower() for k, v in (getattr(config, "id2label", None) or {}).items()}
    for i, name in labels.items():
        if "reason" in name:
            return i
    if n == 2:
        for i, name in labels.items():
            if "knowledge" in name or "understand" in name:
                return 1 - i
    return 1


def _weights_sha256(path: Path) -> str | None:
    files = sorted(p for p in path.glob("*") if p.suffix in (".safetensors", ".bin") and p.is_file())
    if not files:
        return None
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def hub_revision(model_id: str) -> str | None:
    """The revision a hub load of ``model_id`` pins: $MEDSPLIT_CLASSIFIER_REVISION, else
    :data:`PUBLISHED_TRANSFORMER_REVISION` for the published classifier, else None (the
    user's own hub id loads its default branch)."""
    from lm_eval_medsplit.classifier import PUBLISHED_TRANSFORMER_MODEL

    return os.environ.get("MEDSPLIT_CLASSIFIER_REVISION") or (
        PUBLISHED_TRANSFORMER_REVISION if model_id == PUBLISHED_TRANSFORMER_MODEL else None)


class TransformerClassifier:
    """A sequence-classification checkpoint used as the reasoning classifier."""

    backend = "transformer"

    def __init__(self, model: str | Path, *, device: str | None = None, batch_size: int = 32,
                 max_length: int = 512, threshold: float | None = None):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.model_id = str(model)
        local = Path(self.model_id)
        self.is_local = local.is_dir()
        kw = {"local_files_only": True} if self.is_local else {}
        rev = None if self.is_local else hub_revision(self.model_id)
        if rev:
            kw["revision"] = rev
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.model_id, **kw)
            self.model = AutoModelForSequenceClassification.from_pretrained(self.model_id, **kw)
        except OSError as e:
            raise OSError(f"cannot load transformer classifier {self.model_id!r} (a local "
                          f"checkpoint directory or a reachable hub id): {e}") from None
        self.device = _device(device)
        self.model.to(self.device)
        self.model.eval()
        self.batch_size = int(batch_size)
        self.max_length = int(min(max_length, getattr(self.tokenizer, "model_max_length", max_length) or max_length))
        self.index = reasoning_index(self.model.config)
        self.meta: dict[str, Any] = {}
        if self.is_local and (local / META_FILE).is_file():
            self.meta = json.loads((local / META_FILE).read_text(encoding="utf-8"))
        self.threshold = float(threshold if threshold is not None else self.meta.get("threshold", 0.5))

    def predict_proba(self, texts: Sequence[str], *, progress: bool | None = None) -> np.ndarray:
        """``reasoning_prob`` per text, batched (longest first), on GPU when there is one."""
        import torch
        from tqdm.auto import tqdm

        texts = list(texts)
        out = np.zeros(len(texts), dtype=np.float64)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        show = len(texts) > self.batch_size if progress is None else progress
        with torch.inference_mode(), tqdm(total=len(texts), desc="reasoning classifier",
                                          unit="q", disable=not show) as bar:
            for s in range(0, len(order), self.batch_size):
                idx = order[s:s + self.batch_size]
                enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                     max_length=self.max_length, return_tensors="pt")
                enc = {k: v.to(self.device) for k, v in enc.items()}
                logits = self.model(**enc).logits.float()
                if self.index is None:
                    p = torch.sigmoid(logits[:, 0])
                else:
                    p = torch.softmax(logits, dim=-1)[:, self.index]
                out[idx] = p.cpu().numpy()
                bar.update(len(idx))
        return out

    def identity(self) -> dict[str, Any]:
        revision = getattr(self.model.config, "_commit_hash", None)
        return {
            "backend": "transformer",
            "name": self.model_id,
            "path": self.model_id if self.is_local else None,
            "hub_revision": revision,
            "sha256": _weights_sha256(Path(self.model_id)) if self.is_local else None,
            "threshold": self.threshold,
            "threshold_criterion": self.meta.get("threshold_criterion", "fixed 0.5"),
            "training_data_sha256": self.meta.get("training_data_sha256"),
            "base": self.meta.get("base"),
            "package_version": self.meta.get("package_version"),
        }


def train_transformer(ids: Sequence[str], texts: Sequence[str], labels: Sequence[int], *,
                      out: str | Path, base: str | Path = DEFAULT_BASE, epochs: float = 3.0,
                      lr: float = 2e-5, batch_size: int = 16, max_length: int = 512,
                      max_steps: int | None = None, warmup_ratio: float = 0.1,
                      weight_decay: float = 0.01, seed: int = 0, device: str | None = None,
                      progress: bool = True, log: Callable[[str], None] | None = None) -> Path:
    """Fine-tune ``base`` on (text, label) pairs and save it to ``out``; returns ``out``."""
    import torch
    from tqdm.auto import tqdm
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        get_linear_schedule_with_warmup,
    )

    from lm_eval_medsplit import __version__
    from lm_eval_medsplit.classifier.embedded import training_data_sha256

    log = log or (lambda s: None)
    y = np.asarray(labels, dtype=int)
    if len(y) != len(texts) or len(y) == 0:
        raise ValueError("need as many labels as texts, and at least one")
    out = Path(out)
    base_s = str(base)
    kw = {"local_files_only": True} if Path(base_s).is_dir() else {}
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    dev = _device(device)
    tok = AutoTokenizer.from_pretrained(base_s, **kw)
    model = AutoModelForSequenceClassification.from_pretrained(
        base_s, num_labels=2, id2label=ID2LABEL, label2id={v: k for k, v in ID2LABEL.items()},
        **kw)
    model.to(dev)
    model.train()
    max_len = int(min(max_length, getattr(tok, "model_max_length", max_length) or max_length,
                      getattr(model.config, "max_position_embeddings", max_length) or max_length))
    steps_per_epoch = math.ceil(len(y) / batch_size)
    total = int(max_steps) if max_steps else max(1, int(math.ceil(epochs * steps_per_epoch)))
    counts = np.bincount(y, minlength=2).astype(float)
    weights = torch.tensor(len(y) / (2 * np.maximum(counts, 1)), dtype=torch.float32, device=dev)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights)
    no_decay = ("bias", "LayerNorm.weight", "layer_norm", "norm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)],
         "weight_decay": weight_decay},
        {"params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)],
         "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=lr)
    sched = get_linear_schedule_with_warmup(opt, int(warmup_ratio * total), total)
    step = 0
    losses: list[float] = []
    with tqdm(total=total, desc="fine-tuning", unit="step", disable=not progress) as bar:
        while step < total:
            perm = rng.permutation(len(y))
            for s in range(0, len(perm), batch_size):
                if step >= total:
                    break
                idx = perm[s:s + batch_size]
                enc = tok([texts[i] for i in idx], padding=True, truncation=True,
                          max_length=max_len, return_tensors="pt")
                enc = {k: v.to(dev) for k, v in enc.items()}
                logits = model(**enc).logits
                loss = loss_fn(logits, torch.tensor(y[idx], device=dev))
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
                opt.zero_grad()
                step += 1
                losses.append(float(loss.detach().cpu()))
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.4f}")
    log(f"fine-tuned {step} steps; last loss {losses[-1]:.4f}")
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    meta = {
        "name": f"medsplit-transformer:{base_s}",
        "base": base_s,
        "package_version": __version__,
        "label": "1 = Reasoning, 0 = Understanding (MedXpertQA question_type)",
        "n_train": int(len(y)),
        "train_ids": sorted(str(i) for i in ids),
        "training_data_sha256": training_data_sha256([str(i) for i in ids], list(texts), y),
        "hyperparameters": {"epochs": epochs, "lr": lr, "batch_size": batch_size,
                            "max_length": max_len, "max_steps": max_steps, "steps": step,
                            "warmup_ratio": warmup_ratio, "weight_decay": weight_decay,
                            "seed": seed, "class_weights": weights.cpu().tolist()},
        "losses": [round(v, 5) for v in losses[-50:]],
        "threshold": 0.5,
        "threshold_criterion": "fixed 0.5 (not tuned for the transformer backend)",
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return out
