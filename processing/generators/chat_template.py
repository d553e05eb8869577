"""The DeepSeek-R1 distill chat template, written out here so prompts never depend on a hub download.

Mirrors the model's `tokenizer_config.json` template for system, user and assistant turns: system prompts are
joined by a blank line and placed first, each user turn opens with the User marker, an earlier assistant turn is
replayed without its reasoning and closed with the end-of-sentence token, and the generation prompt opens the
`<think>` block, which is why completions usually carry only the closing `</think>`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from processing.confidence.reasoning import THINK_CLOSE, THINK_OPEN
from processing.interfaces import Message

# The markers use U+FF5C (fullwidth vertical line) and U+2581 (lower one eighth block), exactly as the
# tokenizer's added tokens spell them; escaped so they cannot be mistaken for ASCII "|" and "_".
BOS = "<\uff5cbegin\u2581of\u2581sentence\uff5c>"
EOS = "<\uff5cend\u2581of\u2581sentence\uff5c>"
USER = "<\uff5cUser\uff5c>"
ASSISTANT = "<\uff5cAssistant\uff5c>"

PromptBuilder = Callable[[Sequence[Message]], str]


def deepseek_r1_prompt(messages: Sequence[Message], *, include_bos: bool = True) -> str:
    """Render messages as the model sees them, ending with the generation prompt.

    `include_bos=False` is for servers that tokenize the prompt with the model's special tokens and so add the
    begin-of-sentence token themselves (TGI `generate`, Bedrock Custom Model Import completions).
    """
    if not messages:
        raise ValueError("messages must not be empty")
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    turns = []
    for index, message in enumerate(messages):
        if message.role == "user":
            turns.append(USER + message.content)
        elif message.role == "assistant":
            turns.append(ASSISTANT + message.content.split(THINK_CLOSE)[-1] + EOS)
        elif message.role != "system":
            raise ValueError(f"messages[{index}].role must be system, user or assistant, got {message.role!r}")
    return (BOS if include_bos else "") + system + "".join(turns) + ASSISTANT + THINK_OPEN + "\n"


def deepseek_r1_server_prompt(messages: Sequence[Message]) -> str:
    """The prompt for servers that add the begin-of-sentence token while tokenizing (see `include_bos`)."""
    return deepseek_r1_prompt(messages, include_bos=False)
