"""Package discovery only; all metadata lives in pyproject.toml.

``task_yaml/`` and ``inspect_tasks/`` sit at the top of the repository but install as
``lm_eval_medsplit.task_yaml`` / ``lm_eval_medsplit.inspect_tasks`` (package-dir in
pyproject.toml); every other subpackage is found under ``lm_eval_medsplit/``.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["lm_eval_medsplit", "lm_eval_medsplit.*"])
    + ["lm_eval_medsplit.task_yaml", "lm_eval_medsplit.inspect_tasks"],
)
