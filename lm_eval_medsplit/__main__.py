import sys

from lm_eval_medsplit.cli import main

sys.exit(main())
