"""Tiny, randomly initialised Hugging Face models for tests (no hub access).

Plain functions, each ``make_*(path) -> path``: they train a small tokenizer locally
with the ``tokenizers`` library on real questions from ``shared/data`` (or a fallback
vocabulary when it is absent), build a random model of a few thousand parameters and
``save_pretrained`` both into ``path``. Call them from session-scoped fixtures.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MEDSPLIT_SHARED_DATA", REPO.parent / "shared" / "data"))

#: A minimal chat template (system / user / assistant turns) for the tiny tokenizers.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
SPECIAL_TOKENS = ["<pad>", "<unk>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>"]


def real_questions(n: int = 400) -> list[str]:
    """Up to ``n`` real question texts with their options (MedQA test file), or a short
    fallback corpus when the shared data is missing."""
    path = SHARED_DATA / "raw" / "medqa" / "test.jsonl"
    texts: list[str] = []
    if path.is_file():
        with open(path, encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                opts = row.get("options") or {}
                texts.append(row["question"] + " " + " ".join(f"{k}. {v}" for k, v in opts.items()))
                if len(texts) >= n:
                    break
    if not texts:
        texts = ["A 45-year-old man presents with chest pain. Which is the most likely diagnosis? "
                 "A. Angina B. Pneumonia C. Reflux D. Costochondritis"]
    texts.append("Answer: A B C D E F G H I J step by step the correct option is")
    return texts


def make_tiny_tokenizer(path: str | Path, *, vocab_size: int = 2000):
    """A byte-level BPE tokenizer trained on real questions, with a chat template;
    saved into ``path`` and returned."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    path = Path(path)
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(real_questions(), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", pad_token="<pad>")
    fast.chat_template = CHAT_TEMPLATE
    path.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(path)
    return fast


def make_tiny_causal_lm(path: str | Path, *, hidden: int = 32, layers: int = 2,
                        seed: int = 0) -> Path:
    """A random Llama (hidden ``hidden``, ``layers`` layers) with a locally trained
    tokenizer and chat template, saved with ``save_pretrained`` into ``path``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    tok = make_tiny_tokenizer(path)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=4096, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(path)
    return path
