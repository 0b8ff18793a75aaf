"""The generated models' tokenizer: a SentencePiece-style vocab and the tokens never sampled.

Why its own module: the shape bounds `n_vocab` by it, the weights forbid its special and byte
tokens (column 0 of output.weight), and the GGUF header writes it; one home for all three.
"""

from __future__ import annotations

import string

import gguf

N_SPECIAL = 3  # <unk> <s> </s>
N_BYTE = 256
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def forbidden_token_ids() -> range:
    """Tokens the model can never sample: specials and byte-fallback tokens."""
    return range(N_SPECIAL + N_BYTE)


def vocab(n_vocab: int) -> tuple[list[str], list[float], list[int]]:
    """A SentencePiece-style vocab: <unk> <s> </s>, <0x00>..<0xFF>, then ▁-prefixed and bare pieces."""
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(N_BYTE)]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    types += [gguf.TokenType.BYTE] * N_BYTE
    pieces = _pieces(n_vocab - len(tokens))
    tokens += pieces
    types += [gguf.TokenType.NORMAL] * len(pieces)
    scores = [0.0] * (N_SPECIAL + N_BYTE) + [-float(i) for i in range(len(pieces))]
    return tokens, scores, [int(t) for t in types]


def _pieces(n: int) -> list[str]:
    """Shortest pieces first (single letters, then pairs...) so SentencePiece merges stay sane."""
    out: list[str] = ["▁"]
    letters = string.ascii_lowercase
    level = [""]
    while len(out) < n:
        level = [p + c for p in level for c in letters]
        for p in level:
            out += [p, "▁" + p]
            if len(out) >= n:
                break
    return out[:n]
