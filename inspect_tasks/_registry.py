"""Entry point module for Inspect (``[project.entry-points.inspect_ai]``).

Importing it registers the ``@task`` functions under the ``lm_eval_medsplit/`` prefix,
so ``inspect eval lm_eval_medsplit/medsplit_reasoning`` resolves after installation.
"""

from lm_eval_medsplit.inspect_tasks.tasks import (  # noqa: F401
    medsplit,
    medsplit_adversarial,
    medsplit_knowledge,
    medsplit_reasoning,
)
