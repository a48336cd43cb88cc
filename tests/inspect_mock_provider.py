"""Offline Inspect model providers for tests: ``medsplit_test/pattern`` and
``medsplit_test_replay/NAME``.

Inspect's ``mockllm`` wants a tokenizer download here, so this provider answers a known
pattern instead and sets ``usage`` itself. The answer depends only on the *first user
message* (the question prompt), so a test can predict it for every record:

- ``pattern_kind(text) == 0``: ``"...\\nAnswer: A"``
- ``pattern_kind(text) == 1``: ``"... The answer is B."``
- ``pattern_kind(text) == 2``: ``"I cannot decide between the options."`` (unparsed)

The provider also records, in the output metadata, the roles of the messages it got
and whether the last one was an assistant turn (a prefill it continued).
Importing this module registers the provider.
"""

from __future__ import annotations

import hashlib

from inspect_ai.model import (
    ChatMessage,
    GenerateConfig,
    ModelAPI,
    ModelOutput,
    ModelUsage,
    modelapi,
)
from inspect_ai.tool import ToolChoice, ToolInfo

PATTERN_OUTPUTS = (
    "Let me think about the findings step by step.\nAnswer: A",
    "Considering everything above, the answer is B.",
    "I cannot decide between the options.",
)
#: The letter each pattern commits to (None: unparsed).
PATTERN_LETTERS = ("A", "B", None)


def pattern_kind(first_user_text: str) -> int:
    return int(hashlib.sha256(first_user_text.encode("utf-8")).hexdigest(), 16) % 3


def pattern_output(first_user_text: str) -> str:
    return PATTERN_OUTPUTS[pattern_kind(first_user_text)]


class _ScriptedAPI(ModelAPI):
    """Answers the first user message with :meth:`answer`; sets usage (word counts) and
    records the input roles in the output metadata."""

    def __init__(self, model_name: str, base_url: str | None = None, api_key: str | None = None,
                 config: GenerateConfig = GenerateConfig(), **model_args) -> None:
        super().__init__(model_name=model_name, base_url=base_url, api_key=api_key, config=config)

    async def generate(self, input: list[ChatMessage], tools: list[ToolInfo],
                       tool_choice: ToolChoice, config: GenerateConfig) -> ModelOutput:
        first_user = next(m for m in input if m.role == "user")
        text = self.answer(first_user.text)
        out = ModelOutput.from_content(model=self.model_name, content=text)
        n_in = sum(len(m.text.split()) for m in input)
        out.usage = ModelUsage(input_tokens=n_in, output_tokens=len(text.split()),
                               total_tokens=n_in + len(text.split()))
        out.metadata = {"roles": [m.role for m in input],
                        "continued_assistant": input[-1].role == "assistant"}
        return out

    def answer(self, first_user_text: str) -> str:
        raise NotImplementedError


@modelapi(name="medsplit_test")
class MedsplitTestAPI(_ScriptedAPI):
    def answer(self, first_user_text: str) -> str:
        return pattern_output(first_user_text)


#: ``medsplit_test_replay/NAME`` answers with ``REPLAY[first user text]`` (tests fill it in
#: the same process before calling ``inspect_ai.eval``), e.g. real GPT-4o outputs.
REPLAY: dict[str, str] = {}


@modelapi(name="medsplit_test_replay")
class MedsplitReplayAPI(_ScriptedAPI):
    def answer(self, first_user_text: str) -> str:
        return REPLAY[first_user_text]
