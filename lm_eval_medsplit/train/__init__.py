"""Training on TRL: SFT on reasoning-heavy examples, then GRPO with verifiable rewards.

- :mod:`lm_eval_medsplit.train.data`     the data pipeline (:func:`prepare_training_data`):
  load BioMed-R1-Train (hub id, local layout or MCQ JSONL; :mod:`.loading`), decontaminate
  against the evaluation source (:mod:`.decontamination`), select by ``reasoning_prob``
  (:mod:`.selection`), adversarial prefill augmentation, SFT / GRPO rows from the shared
  prompt builder (:mod:`.rows`); its settings are in :mod:`.arguments`
- :mod:`lm_eval_medsplit.train.rewards`  accuracy (the scoring core) and format rewards,
  importable by dotted path for ``trl grpo``
- :mod:`lm_eval_medsplit.train.cli`      the ``medsplit-train sft|grpo`` entrypoint
  (``TrlParser``: one YAML ``--config`` plus command-line overrides)

Nothing heavy is imported here: TRL, transformers and torch load inside the functions.
"""
