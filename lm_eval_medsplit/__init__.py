"""lm-eval-medsplit: reasoning vs knowledge splits of medical QA benchmarks.

The package root stays import-light (no datasets / torch / lm-eval imports) so that
the CLI and the harness registrations start fast. Import submodules for the API:

- :mod:`lm_eval_medsplit.registry`  the 11 benchmarks of ``zou-lab/BioMed-R1-Eval``
- :mod:`lm_eval_medsplit.schema`    the canonical multiple-choice record and its validation
- :mod:`lm_eval_medsplit.sources`   hub / hub-layout directory / raw directory / JSONL loaders
- :mod:`lm_eval_medsplit.prompts`   chat messages for every style and adversarial form
- :mod:`lm_eval_medsplit.scoring`   the one answer extractor and scorer
"""

__version__ = "0.1.0"
