"""Write a tiny, randomly initialised chat model into a folder, for offline smoke runs.

    python examples/tiny_model.py tiny-model/

A Llama with hidden size 32 and 2 layers (a few hundred thousand parameters) and a
tokenizer trained here on real questions; nothing is downloaded. Its answers are noise:
it exists to run `medsplit-train`, `lm_eval --model hf` and `inspect eval --model hf/...`
end to end on a CPU in seconds. Any local model folder works in its place. The recipe is
the tests' own (tests/tiny_models.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from tiny_models import make_tiny_causal_lm  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    path = make_tiny_causal_lm(argv[0])
    print(f"wrote {path} (model, tokenizer, chat template; max context 4096 tokens)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
