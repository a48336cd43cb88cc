"""Settings of ``medsplit-train``'s data pipeline and the error it raises.

Accepts: values from ``TrlParser`` (a YAML ``--config`` file and command-line overrides) or
keyword arguments. Guarantees: a :class:`MedsplitTrainArguments` that exists has a known
``prompt_format``, ``adversarial_share`` in [0, 1], ``knowledge_ratio`` in [0, 1) (and a
``reasoning_threshold`` when it is above 0), and ``reward_funcs`` split into names that
each resolve; anything else raises :class:`TrainDataError` naming the flag. Imports only
the standard library and :mod:`lm_eval_medsplit.registry` (the rewards on validation).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lm_eval_medsplit import registry

TRAIN_SPLIT = "train"
TASKS = ("sft", "grpo")
PROMPT_FORMATS = ("auto", "conversational", "text")


class TrainDataError(ValueError):
    """A training source or setting that cannot be used; the message says why."""


# --------------------------------------------------------------------------- arguments


@dataclass
class MedsplitTrainArguments:
    """Data, selection, augmentation and reward settings of ``medsplit-train``.

    Parsed by ``TrlParser`` together with TRL's ``SFTConfig`` / ``GRPOConfig`` and
    ``ModelConfig``; every field can be set in the YAML ``--config`` file or on the
    command line.
    """

    dataset_source: str = field(
        default=registry.TRAIN_DATASET,
        metadata={"help": "hub id (default zou-lab/BioMed-R1-Train), a local directory in the same "
                          "layout (DIR/<config>/train*.parquet|jsonl), or a canonical MCQ JSONL file"})
    dataset_config: str = field(
        default="biomed_r1",
        metadata={"help": "config of the training set: biomed_r1 (reasoning-heavy release) or m23k_clean"})
    dataset_split: str = field(default=TRAIN_SPLIT, metadata={"help": "split to train on"})
    dataset_revision: str | None = field(default=None, metadata={"help": "hub revision of the training set (default: main, resolved to its "
                                  "commit sha, which the run records)"})
    dataset_strict: bool = field(default=False, metadata={
        "help": "fail on any invalid training row (default: skip it, count it, and warn with the reasons)"})
    reasoning_threshold: float | None = field(
        default=None,
        metadata={"help": "keep rows with reasoning_prob at or above this value, the classifier's is_reasoning "
                          "rule (none: keep all; "
                          "rows without reasoning_prob are labelled by the embedded classifier)"})
    knowledge_ratio: float = field(
        default=0.0,
        metadata={"help": "share of the final set drawn from knowledge rows (reasoning_prob < threshold), "
                          "in [0, 1); needs --reasoning_threshold"})
    max_train_samples: int | None = field(
        default=None, metadata={"help": "cap the final set (deterministic subset), e.g. for smoke runs"})
    decontaminate_against: str | None = field(
        default=None,
        metadata={"help": "evaluation source to decontaminate against: 'hub', a directory, a JSONL file, "
                          "or 'none' to skip; default the evaluation source in use ($MEDSPLIT_SOURCE or hub)"})
    decontaminate_benchmarks: str = field(
        default="all", metadata={"help": "comma-separated benchmarks to check (default: all the source has)"})
    near_duplicate_threshold: float = field(
        default=90.0,
        metadata={"help": "rapidfuzz ratio (0-100) at or above which a MinHash candidate is a near duplicate"})
    adversarial_share: float = field(
        default=0.0,
        metadata={"help": "share of rows (0-1) whose prompt starts with an incorrect trace (prefill form)"})
    prompt_style: str = field(default="cot", metadata={"help": "prompt style of the prompt builder: cot, direct or paper "
                                                           "(\\boxed{} answers, as in the BioMed-R1 evaluation)"})
    think_tags: bool = field(
        default=True,
        metadata={"help": "SFT targets are <think>reasoning</think> then 'Answer: X'; adversarial prefills open "
                          "<think> before the incorrect trace"})
    prompt_format: str = field(
        default="auto",
        metadata={"help": "conversational (chat messages, TRL applies the template), text (rendered with the "
                          "tokenizer's chat template here) or auto (text when there are adversarial prefills)"})
    selection_seed: int = field(default=0, metadata={"help": "seed of the deterministic mixing/augmentation choices"})
    reward_funcs: list[str] = field(
        default_factory=lambda: ["accuracy", "format"],
        metadata={"help": "GRPO rewards: accuracy, format, overlong, or dotted paths (pkg.module.func)"})
    unparsed_penalty: float = field(
        default=0.0, metadata={"help": "accuracy reward of a completion whose answer cannot be read"})
    overlong_buffer: int = field(
        default=0,
        metadata={"help": "with the 'overlong' reward: soft punishment over the last N tokens before "
                          "max_completion_length (TRL get_soft_overlong_punishment)"})
    data_report: str | None = field(
        default=None,
        metadata={"help": "where to write the data report JSON (default OUTPUT_DIR/medsplit_data.json)"})

    def __post_init__(self):
        if self.prompt_format not in PROMPT_FORMATS:
            raise TrainDataError(f"prompt_format must be one of {', '.join(PROMPT_FORMATS)}, "
                                 f"got {self.prompt_format!r}")
        if not 0.0 <= self.adversarial_share <= 1.0:
            raise TrainDataError(f"adversarial_share must be in [0, 1], got {self.adversarial_share}")
        if not 0.0 <= self.knowledge_ratio < 1.0:
            raise TrainDataError(f"knowledge_ratio must be in [0, 1), got {self.knowledge_ratio}")
        if self.knowledge_ratio > 0 and self.reasoning_threshold is None:
            raise TrainDataError("knowledge_ratio needs --reasoning_threshold (what counts as knowledge)")
        # "accuracy,format", "accuracy format" or a list of either (argparse gives a list)
        names = [self.reward_funcs] if isinstance(self.reward_funcs, str) else list(self.reward_funcs)
        self.reward_funcs = [x for n in names for x in re.split(r"[,\s]+", str(n)) if x]
        from lm_eval_medsplit.train.rewards import SHORT_NAMES, resolve_reward

        for name in self.reward_funcs:  # checked now, not after the data pipeline has run
            if name not in SHORT_NAMES:
                try:
                    resolve_reward(name)
                except (ValueError, ImportError, AttributeError) as e:
                    raise TrainDataError(f"--reward_funcs {name!r}: {e}") from None

