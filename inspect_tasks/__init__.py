"""Inspect AI tasks for the reasoning / knowledge splits of BioMed-R1-Eval.

Installed as :mod:`lm_eval_medsplit.inspect_tasks` and registered through the
``[project.entry-points.inspect_ai]`` entry point (module :mod:`._registry`), so after a
plain ``pip install "lm-eval-medsplit[inspect]"``::

    inspect eval lm_eval_medsplit/medsplit_reasoning --model hf/PATH -T benchmarks=medqa

One small module per concern, like inspect_evals: :mod:`.record_to_sample` (canonical
record -> ``Sample``), :mod:`.dataset` (eval sets -> ``MemoryDataset`` + provenance),
:mod:`.solver` (prompt messages, prefill / reconsider), :mod:`.scorer` (the scoring
core + grouped metrics) and :mod:`.tasks` (the ``@task`` functions). Everything about
prompts, labels, traces and scoring comes from the core package; this adapter only
translates.
"""
