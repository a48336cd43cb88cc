"""Adversarial traces from a local ``transformers`` causal LM.

Accepts: a model path or hub id (a hub id needs the hub or its cache), batch size,
sampling settings, device and dtype. Guarantees: prompts go through the tokenizer's chat
template (or plain ``role: content`` lines without one); sampling is seeded from the
jobs, so a re-run reproduces its traces; a failed ``generate`` (out of memory, bad
config) fails only its batch, as :class:`GenerationError` results. torch and transformers
(the ``train`` extra) load when a generator is made.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from lm_eval_medsplit.trace_generation.jobs import GenerationError, TraceJob


class TransformersGenerator:
    """Traces from a local ``transformers`` causal LM (a path, or a hub id loaded the
    usual way, which needs the hub or its cache).

    Prompts go through the tokenizer's chat template (``add_generation_prompt=True``; a
    template that rejects the system role gets it folded into the user turn; a tokenizer
    without a template gets plain ``role: content`` lines). Jobs are sorted by prompt
    length and generated ``batch_size`` at a time with left padding. Sampling
    (``temperature > 0``, default 0.7) is seeded per batch from the jobs, so a re-run
    reproduces its traces; retries always sample.
    """

    def __init__(self, model: str, *, batch_size: int = 8, max_new_tokens: int = 1024,
                 temperature: float = 0.7, top_p: float = 0.95, device: str | None = None,
                 dtype: str = "auto", trust_remote_code: bool = False):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model_id = str(model)
        self.source = f"model:{self.model_id}"
        self.batch_size = max(1, batch_size)
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_id, trust_remote_code=trust_remote_code)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        kw: dict[str, Any] = {"trust_remote_code": trust_remote_code}
        if dtype != "auto" or self.device != "cpu":
            kw["dtype"] = getattr(torch, dtype) if dtype != "auto" else "auto"
        self.model = AutoModelForCausalLM.from_pretrained(self.model_id, **kw).to(self.device)
        self.model.eval()
        self._counts: Counter[str] = Counter()

    def counters(self) -> dict[str, int]:
        return dict(self._counts)

    def render(self, messages: list[dict[str, str]]) -> str:
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            try:
                return tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            except Exception:  # noqa: BLE001 - templates that refuse a system turn
                merged = [{"role": "user", "content": "\n\n".join(m["content"] for m in messages)}]
                return tok.apply_chat_template(merged, add_generation_prompt=True, tokenize=False)
        return "\n\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\n\nassistant:"

    def generate(self, jobs: Sequence[TraceJob]) -> list[str | BaseException]:
        import torch

        prompts = [self.render(j.messages) for j in jobs]
        order = sorted(range(len(jobs)), key=lambda i: len(prompts[i]))
        out: list[str | BaseException] = [""] * len(jobs)
        for s in range(0, len(order), self.batch_size):
            idx = order[s: s + self.batch_size]
            batch = [prompts[i] for i in idx]
            enc = self.tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False)
            enc = {k: v.to(self.device) for k, v in enc.items()}
            sample = self.temperature > 0 or any(jobs[i].attempt for i in idx)
            gen_kw: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "do_sample": sample,
                                      "pad_token_id": self.tokenizer.pad_token_id}
            if sample:
                gen_kw.update(temperature=self.temperature if self.temperature > 0 else 0.7,
                              top_p=self.top_p)
                torch.manual_seed(min(jobs[i].seed for i in idx))
            try:
                with torch.no_grad():
                    ids = self.model.generate(**enc, **gen_kw)
            except (RuntimeError, ValueError) as e:  # OOM, bad config: fail this batch only
                self._counts["generate_errors"] += 1
                for i in idx:
                    out[i] = GenerationError(f"{self.source}: generate failed: {e}")
                continue
            self._counts["batches"] += 1
            new = ids[:, enc["input_ids"].shape[1]:]
            for i, row in zip(idx, new):
                out[i] = self.tokenizer.decode(row, skip_special_tokens=True)
        return out

    def close(self) -> None:
        pass

