"""``medsplit-train sft|grpo``: the BioMed-R1 training recipe on TRL.

Arguments are parsed by TRL's ``TrlParser`` from three dataclasses: the data and reward
settings (:class:`~lm_eval_medsplit.train.arguments.MedsplitTrainArguments`), TRL's
``SFTConfig`` / ``GRPOConfig`` and TRL's ``ModelConfig``. One YAML file given with
``--config`` sets any of them (plus an ``env:`` mapping); command-line flags override it.
``--config`` also accepts the name of a packaged config (``medsplit-train configs`` lists
them). Scale-out is TRL's: launch with ``accelerate launch --config_file ...`` (DeepSpeed
ZeRO-3) and generate with vLLM via ``use_vllm`` / ``vllm_mode``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

COMMANDS = ("sft", "grpo")
CONFIG_DIR = Path(__file__).resolve().parent / "configs"

USAGE = """\
usage: medsplit-train {sft,grpo} [--config CONFIG.yaml|NAME] [--model_name_or_path M]
                      [--dataset_source S] [--dataset_config C]
                      [--decontaminate_against SOURCE|none] [TRL options ...]
       medsplit-train configs [--path NAME]

SFT on reasoning-heavy examples, then GRPO with rewards from the scoring core, on TRL.

commands:
  sft       supervised fine-tuning: prompt from the prompt builder, completion =
            <think>reasoning</think> + "Answer: X" (loss on the completion only)
  grpo      GRPO with the accuracy / format (/ overlong) rewards
  configs   list the example configs shipped with the package (--path NAME: print
            one config's path, e.g. for accelerate launch --config_file)

examples (offline, CPU, from a checkout; docs/train.md):
  python examples/tiny_model.py tiny-model/
  medsplit-train sft --config sft_cpu_smoke --model_name_or_path tiny-model/ \\
      --dataset_source examples/sft.jsonl --output_dir outputs/sft-offline

`medsplit-train sft --help` shows the common options; `--help-all` lists every option
(data, TRL SFTConfig / GRPOConfig, ModelConfig).
"""

#: Options of TRL's configs shown by the short ``--help`` (``--help-all`` lists them all).
_COMMON_TRL = {
    "model_name_or_path": "model: hub id or local folder (ModelConfig)",
    "output_dir": "where checkpoints, the model and the data report go",
    "max_steps": "stop after N optimiser steps (-1: train --num_train_epochs)",
    "num_train_epochs": "epochs over the prepared data",
    "per_device_train_batch_size": "rows per device and step",
    "learning_rate": "peak learning rate",
    "use_cpu": "train on the CPU (true/false)",
    "bf16": "bfloat16 mixed precision (true/false)",
    "dtype": "model weights dtype: auto, float32, bfloat16 (ModelConfig)",
}
_GRPO_ONLY = {
    "num_generations": "completions per prompt (GRPO)",
    "max_completion_length": "new tokens per completion (GRPO)",
    "use_vllm": "generate with vLLM (true/false)",
}


def short_help(command: str) -> str:
    """``medsplit-train sft|grpo --help``: usage, an example, the medsplit data options and
    the most used TRL options (about 60 lines; ``--help-all`` prints TRL's full list)."""
    import dataclasses
    import textwrap

    from lm_eval_medsplit.train.arguments import MedsplitTrainArguments

    smoke = f"{command}_cpu_smoke"
    data = "examples/sft.jsonl" if command == "sft" else "medsplit-build/ --dataset_config medqa \\\n      --dataset_split test"
    lines = [
        f"usage: medsplit-train {command} [--config CONFIG.yaml|NAME] [--OPTION VALUE ...]",
        "",
        ("supervised fine-tuning on <think>reasoning</think> + 'Answer: X' targets"
         if command == "sft" else "GRPO with the scoring core's accuracy / format rewards") + ", on TRL.",
        "--config takes a YAML file or a packaged config name (medsplit-train configs); flags",
        "override it.",
        "",
        "example (offline, CPU; docs/train.md):",
        f"  medsplit-train {command} --config {smoke} --model_name_or_path tiny-model/ \\",
        f"      --dataset_source {data}",
        "",
        "data and selection (medsplit):",
    ]

    def opt(name: str, text: str) -> None:
        wrapped = textwrap.wrap(text, 72) or [""]
        lines.append(f"  --{name}")
        lines.extend(f"      {w}" for w in wrapped)

    for f in dataclasses.fields(MedsplitTrainArguments):
        if command == "sft" and f.name in ("reward_funcs", "unparsed_penalty", "overlong_buffer"):
            continue
        opt(f.name, f.metadata.get("help", ""))
    lines += ["", "training (TRL; --help-all lists every option):"]
    common = {**_COMMON_TRL, **(_GRPO_ONLY if command == "grpo" else {})}
    for name, text in common.items():
        opt(name, text)
    return "\n".join(lines) + "\n"


def packaged_configs() -> dict[str, Path]:
    """Example configs shipped in the package, by name (file stem)."""
    return {p.stem: p for p in sorted(CONFIG_DIR.glob("*.yaml"))}


def resolve_config_arg(argv: list[str]) -> list[str]:
    """Replace ``--config NAME`` by the path of the packaged config ``NAME`` when ``NAME``
    is not an existing file."""
    argv = list(argv)
    for i, a in enumerate(argv):
        if a == "--config" and i + 1 < len(argv):
            value = argv[i + 1]
        elif a.startswith("--config="):
            value = a.split("=", 1)[1]
            argv[i:i + 1] = ["--config", value]
        else:
            continue
        if not Path(value).expanduser().is_file():
            known = packaged_configs()
            name = value[:-5] if value.endswith(".yaml") else value
            if name not in known:
                raise SystemExit(f"medsplit-train: error: config {value!r} is neither a file nor a "
                                 f"packaged config ({', '.join(known)})")
            argv[i + 1] = str(known[name])
        break
    return argv


def make_parser(command: str):
    from trl import GRPOConfig, ModelConfig, SFTConfig, TrlParser

    from lm_eval_medsplit.train.arguments import MedsplitTrainArguments

    config_cls = SFTConfig if command == "sft" else GRPOConfig
    return TrlParser((MedsplitTrainArguments, config_cls, ModelConfig),
                     prog=f"medsplit-train {command}")


def parse(command: str, argv: list[str]):
    """``(data_args, training_args, model_args)`` for ``command`` from ``argv``."""
    if command not in COMMANDS:
        raise SystemExit(f"medsplit-train: error: unknown command {command!r}; choose sft or grpo")
    parser = make_parser(command)
    return parser.parse_args_and_config(resolve_config_arg(argv))


def _model_init_kwargs(training_args, model_args) -> None:
    kwargs = dict(revision=model_args.model_revision, trust_remote_code=training_args.trust_remote_code,
                  attn_implementation=model_args.attn_implementation, dtype=model_args.dtype)
    if training_args.model_init_kwargs is not None:
        kwargs.update(training_args.model_init_kwargs)
    training_args.model_init_kwargs = kwargs


def _tokenizer(model_args, training_args, *, left: bool):
    from transformers import AutoTokenizer

    kw: dict[str, Any] = {"revision": model_args.model_revision,
                          "trust_remote_code": training_args.trust_remote_code}
    if left:
        kw.update(padding_side="left", truncation_side="left")
    tok = AutoTokenizer.from_pretrained(model_args.model_name_or_path, **kw)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def template_opens_think(tokenizer) -> bool:
    """Whether the tokenizer's generation prompt already opens a ``<think>`` block."""
    from lm_eval_medsplit.scoring import opens_think

    if not getattr(tokenizer, "chat_template", None):
        return False
    try:
        text = tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False,
                                             add_generation_prompt=True)
    except Exception:  # noqa: BLE001 - a template that cannot render is TRL's error to report
        return False
    return opens_think(text)


def _write_reports(prepared, data_args, training_args) -> Path | None:
    if getattr(training_args, "process_index", 0) != 0:
        return None
    out = Path(data_args.data_report) if data_args.data_report else \
        Path(training_args.output_dir) / "medsplit_data.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(prepared.report, indent=2, ensure_ascii=False, default=str) + "\n")
    if prepared.decontamination is not None:
        (out.parent / "decontamination.json").write_text(
            json.dumps(prepared.decontamination.as_dict(), indent=2, ensure_ascii=False) + "\n")
    return out


def _prepare(command, data_args, training_args, tokenizer):
    from lm_eval_medsplit.train.data import prepare_training_data

    with training_args.main_process_first(desc="medsplit training data"):
        prepared = prepare_training_data(data_args, command, tokenizer=tokenizer,
                                         log=lambda m: print(m, flush=True) if training_args.process_index == 0 else None)
    path = _write_reports(prepared, data_args, training_args)
    if path is not None:
        s = prepared.report["steps"]
        print(f"medsplit-train {command}: {s['final']} rows ({s['adversarial']} adversarial) from "
              f"{s['loaded']} loaded; report {path}", flush=True)
    return prepared


def build_trainer(command: str, data_args, training_args, model_args, *, reward_funcs=None):
    """The TRL trainer for ``command`` with the prepared data (not yet trained).
    ``reward_funcs`` (GRPO) replaces the ones named by ``--reward_funcs``."""
    from trl import get_peft_config, get_quantization_config

    if not model_args.model_name_or_path:
        raise SystemExit("medsplit-train: error: --model_name_or_path is required")
    _model_init_kwargs(training_args, model_args)
    tokenizer = _tokenizer(model_args, training_args, left=command == "grpo")
    prepared = _prepare(command, data_args, training_args, tokenizer)
    dataset = prepared.to_dataset()
    common = dict(model=model_args.model_name_or_path, args=training_args, train_dataset=dataset,
                  processing_class=tokenizer, peft_config=get_peft_config(model_args))
    quant = get_quantization_config(model_args)
    if quant is not None:
        common["quantization_config"] = quant
    if command == "sft":
        from trl import SFTTrainer

        trainer = SFTTrainer(**common)
    else:
        from trl import GRPOTrainer

        from lm_eval_medsplit.train.rewards import make_reward_funcs

        if reward_funcs is None:
            reward_funcs = make_reward_funcs(
                data_args.reward_funcs, unparsed_penalty=data_args.unparsed_penalty,
                max_completion_length=training_args.max_completion_length,
                overlong_buffer=data_args.overlong_buffer,
                think_opened_by_template=template_opens_think(tokenizer))
        trainer = GRPOTrainer(reward_funcs=reward_funcs, **common)
    trainer.medsplit_data = prepared  # what the run trained on, for callers and tests
    return trainer


def run(command: str, argv: list[str] | None = None, *, parsed=None, reward_funcs=None):
    """Parse ``argv`` (or take ``parsed``), prepare the data, train and save. Returns the
    trainer."""
    import transformers
    from packaging.version import Version

    data_args, training_args, model_args = parsed or parse(command, argv or [])
    trainer = build_trainer(command, data_args, training_args, model_args, reward_funcs=reward_funcs)
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model(training_args.output_dir)
    trainer.accelerator.print(f"medsplit-train {command}: model saved to {training_args.output_dir}")
    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=data_args.dataset_source)
    if Version(transformers.__version__) >= Version("5.18.0"):
        trainer.end()
    return trainer


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "configs":
        if rest[:1] in (["-h"], ["--help"]):
            print("usage: medsplit-train configs [--path NAME]\n\nlist the example configs shipped "
                  "with the package; --path NAME prints one config's path")
            return 0
        known = packaged_configs()
        if rest[:1] == ["--path"]:
            name = (rest[1] if len(rest) > 1 else "").removesuffix(".yaml")
            if name not in known:
                print(f"medsplit-train: error: no packaged config {name!r} ({', '.join(known)})",
                      file=sys.stderr)
                return 2
            print(known[name])
            return 0
        for name, path in known.items():
            kind = "accelerate" if name.startswith("accelerate") else name.split("_", 1)[0]
            print(f"{name:<22} {kind:<11} {path}")
        return 0
    if command not in COMMANDS:
        print(f"medsplit-train: error: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    from lm_eval_medsplit.errors import CLIError
    from lm_eval_medsplit.schema import RecordValidationError

    if "--help-all" in rest:
        rest = [("--help" if a == "--help-all" else a) for a in rest]
    elif "-h" in rest or "--help" in rest:
        print(short_help(command))
        return 0
    from lm_eval_medsplit.sources import SourceError
    from lm_eval_medsplit.train.arguments import TrainDataError

    try:
        parsed = parse(command, rest)
    except (TrainDataError, ValueError) as e:  # a bad option value, found by the dataclasses
        print(f"medsplit-train: error: {e}", file=sys.stderr)
        return 2
    try:
        run(command, parsed=parsed)
    except (TrainDataError, SourceError, RecordValidationError, CLIError) as e:
        print(f"medsplit-train: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
