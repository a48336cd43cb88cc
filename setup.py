"""Package discovery and one build hook; all metadata lives in pyproject.toml.

``task_yaml/`` and ``inspect_tasks/`` sit at the top of the repository but install as
``lm_eval_medsplit.task_yaml`` / ``lm_eval_medsplit.inspect_tasks`` (package-dir in
pyproject.toml); every other subpackage is found under ``lm_eval_medsplit/``.

The build hook adds one file to the wheel's top level, ``lm_eval_medsplit_tasks.pth``,
which pip installs into ``site-packages`` so that ``lm_eval --tasks medsplit_...`` finds
this package's tasks with no ``--include_path`` (its one line is held by
``lm_eval_medsplit/_lm_eval_hook.py``; switch off with ``MEDSPLIT_LM_EVAL_AUTOREGISTER=0``).
"""

import os
import runpy

from setuptools import find_namespace_packages, setup
from setuptools.command.build_py import build_py

_HOOK = runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    "lm_eval_medsplit", "_lm_eval_hook.py"))


class build_py_with_pth(build_py):
    """build_py, plus the lm-eval registration ``.pth`` at the top of the wheel."""

    def run(self):
        super().run()
        with open(os.path.join(self.build_lib, _HOOK["PTH_NAME"]), "w", encoding="utf-8") as f:
            f.write(_HOOK["PTH_LINE"])

    def get_outputs(self, include_bytecode=1):
        return [*super().get_outputs(include_bytecode),
                os.path.join(self.build_lib, _HOOK["PTH_NAME"])]


setup(
    # namespace discovery, so data-only folders (report/templates) are packages too
    packages=find_namespace_packages(include=["lm_eval_medsplit", "lm_eval_medsplit.*"],
                                     exclude=["*.__pycache__"])
    + ["lm_eval_medsplit.task_yaml", "lm_eval_medsplit.inspect_tasks"],
    cmdclass={"build_py": build_py_with_pth},
)
