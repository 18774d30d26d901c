"""Word vocabularies and padded token batches for the sequence models (LITE-SNN and its baselines).

SST-2 and Multi30k come lower-cased/tokenised or as raw sentences; :func:`tokenize` splits on whitespace after
separating punctuation, :class:`Vocab` maps tokens to ids (``<pad>`` 0, ``<unk>`` 1, ``<bos>`` 2, ``<eos>`` 3, then
the training words by falling frequency, ties in first-seen order, so a vocabulary is reproducible from its
texts) and back. A vocabulary is stored as plain JSON (its token list), never pickled.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["PAD", "UNK", "BOS", "EOS", "SPECIALS", "tokenize", "detokenize", "Vocab", "pad_batch"]

PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIALS = ("<pad>", "<unk>", "<bos>", "<eos>")

_PUNCT = re.compile(r"([.,!?;:\"()])")


def tokenize(text: str, lower: bool = True) -> list[str]:
    """Word tokens (lower-cased unless ``lower=False``); punctuation ``. , ! ? ; : " ( )`` becomes tokens of its
    own."""
    return _PUNCT.sub(r" \1 ", text.lower() if lower else text).split()


def detokenize(tokens: Sequence[str]) -> str:
    """Tokens back to text: joined by spaces, no space before ``. , ! ? ; : )`` or after ``(``."""
    text = " ".join(tokens)
    text = re.sub(r" ([.,!?;:)])", r"\1", text)
    return re.sub(r"\( ", "(", text)


@dataclass(frozen=True)
class Vocab:
    """Token list; ``tokens[i]`` is the word of id ``i`` (the four :data:`SPECIALS` first)."""

    tokens: tuple[str, ...]

    def __post_init__(self):
        if tuple(self.tokens[:4]) != SPECIALS:
            raise ValueError(f"a vocabulary starts with {SPECIALS}, got {tuple(self.tokens[:4])}")
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError("a vocabulary holds each token once")
        object.__setattr__(self, "_index", {t: i for i, t in enumerate(self.tokens)})

    @classmethod
    def build(cls, texts: Iterable[str], min_freq: int = 1, max_size: int = 0, tokenizer=tokenize) -> Vocab:
        """Words of ``texts`` seen at least ``min_freq`` times, the most frequent ``max_size`` (0: all)."""
        if min_freq < 1 or max_size < 0:
            raise ValueError(f"min_freq must be >= 1 and max_size >= 0, got {min_freq}, {max_size}")
        counts = Counter()
        for t in texts:
            counts.update(tokenizer(t))
        words = [w for w, c in sorted(counts.items(), key=lambda kv: -kv[1]) if c >= min_freq and w not in SPECIALS]
        if max_size:
            words = words[:max_size]
        return cls(SPECIALS + tuple(words))

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str, bos: bool = False, eos: bool = False, tokenizer=tokenize) -> list[int]:
        ids = [self._index.get(w, UNK) for w in tokenizer(text)]
        return ([BOS] if bos else []) + ids + ([EOS] if eos else [])

    def decode(self, ids: Iterable[int], strip: bool = True) -> list[str]:
        """Tokens of ``ids``; ``strip``: stop at the first ``<eos>`` and leave out ``<pad>``/``<bos>``."""
        out = []
        for i in ids:
            i = int(i)
            if strip and i == EOS:
                break
            if strip and i in (PAD, BOS):
                continue
            out.append(self.tokens[i])
        return out

    def to_json(self) -> list[str]:
        return list(self.tokens)

    @classmethod
    def from_json(cls, tokens: list) -> Vocab:
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise ValueError("a stored vocabulary is a JSON list of strings")
        return cls(tuple(tokens))


def pad_batch(seqs: Sequence[Sequence[int]], max_len: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Right-padded ``(batch, L)`` int64 ids (``<pad>`` = 0) and the int64 lengths; ``max_len`` truncates."""
    lengths = np.array([min(len(s), max_len) if max_len else len(s) for s in seqs], np.int64)
    if len(seqs) and lengths.min() < 1:
        raise ValueError("every sequence needs at least one token")
    out = np.zeros((len(seqs), int(lengths.max()) if len(seqs) else 0), np.int64)
    for i, (s, n) in enumerate(zip(seqs, lengths)):
        out[i, :n] = s[:n]
    return out, lengths
