"""Translation data, training loss, greedy and beam-search decoding, and BLEU for the encoder–decoders of
:mod:`bioSNN.models.seq2seq`.

Sentences are tokenised case-sensitively (:func:`bioSNN.data.text.tokenize` without lower-casing), mapped to
word ids of vocabularies built from the training side of each language; targets carry ``<bos>`` … ``<eos>``.
BLEU is sacrebleu's corpus BLEU on detokenized hypotheses against the raw reference sentences (its default 13a
tokenization, case-sensitive); the signature is reported beside every score.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bioSNN.data.text import BOS, EOS, PAD, Vocab, detokenize, pad_batch, tokenize

__all__ = [
    "ParallelData",
    "encode_pairs",
    "seq2seq_loss",
    "greedy_decode",
    "beam_decode",
    "translate",
    "bleu",
    "cased_tokenize",
    "attention_stats",
    "Translator",
    "vocab_digest",
    "read_vocabularies",
    "vocabulary_file",
]


def cased_tokenize(text: str) -> list[str]:
    """Word tokens with case kept; punctuation split off: :func:`bioSNN.data.text.tokenize` without lower-casing."""
    return tokenize(text, lower=False)


@dataclass(frozen=True)
class ParallelData:
    """Source ids ``(n, Ls)`` right-padded with lengths; targets ``<bos> … <eos>`` ``(n, Lt)`` with lengths
    (counting both markers); the raw reference sentences for BLEU."""

    src: np.ndarray
    src_len: np.ndarray
    tgt: np.ndarray
    tgt_len: np.ndarray
    references: list

    def __len__(self) -> int:
        return len(self.src_len)

    def batch(self, idx: np.ndarray):
        s_len, t_len = self.src_len[idx], self.tgt_len[idx]
        src = torch.from_numpy(self.src[idx, : int(s_len.max())])
        tgt = torch.from_numpy(self.tgt[idx, : int(t_len.max())])
        return src, torch.from_numpy(s_len), tgt, torch.from_numpy(t_len)

    def subset(self, idx: np.ndarray) -> ParallelData:
        return ParallelData(
            self.src[idx], self.src_len[idx], self.tgt[idx], self.tgt_len[idx], [self.references[i] for i in idx]
        )


def encode_pairs(
    sources: list[str], targets: list[str], src_vocab: Vocab, tgt_vocab: Vocab, max_len: int
) -> ParallelData:
    """Token ids of sentence pairs; sentences are cut at ``max_len`` tokens (targets: ``max_len`` + 2 markers)."""
    s = [src_vocab.encode(x, tokenizer=cased_tokenize) or [1] for x in sources]
    t = [[BOS] + tgt_vocab.encode(y, tokenizer=cased_tokenize)[:max_len] + [EOS] for y in targets]
    src, s_len = pad_batch(s, max_len)
    tgt, t_len = pad_batch(t)
    return ParallelData(src, s_len, tgt, t_len, list(targets))


def seq2seq_loss(model, src, src_len, tgt, smoothing: float = 0.1):
    """Teacher-forced cross-entropy (label smoothing ``smoothing``) of predicting ``tgt[:, 1:]`` from
    ``tgt[:, :-1]``, pads ignored; returns ``(loss, right next tokens, counted tokens)``."""
    logits = model(src, src_len, tgt[:, :-1])
    gold = tgt[:, 1:]
    loss = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), gold.reshape(-1), ignore_index=PAD, label_smoothing=smoothing
    )
    mask = gold != PAD
    return loss, int(((logits.argmax(-1) == gold) & mask).sum()), int(mask.sum())


def _max_steps(model, src_len: torch.Tensor, cap: int) -> int:
    """1.5 × the longest source + 10 tokens, at most ``cap`` and at most the model's positions."""
    return int(min(cap, getattr(model, "max_len", cap), int(src_len.max()) * 3 // 2 + 10))


@torch.no_grad()
def greedy_decode(model, src, src_len, max_len: int = 100) -> list[list[int]]:
    """Most likely next token at each step until ``<eos>`` (or 1.5 × source length + 10 tokens)."""
    model.eval()
    memory = model.encode(src, src_len)
    state = model.init_state(memory)
    tok = torch.full((len(src_len),), BOS, dtype=torch.long)
    out = torch.zeros(len(src_len), 0, dtype=torch.long)
    done = torch.zeros(len(src_len), dtype=torch.bool)
    for _ in range(_max_steps(model, src_len, max_len)):
        logp, state = model.step(memory, state, tok)
        tok = logp.argmax(-1).masked_fill(done, PAD)
        out = torch.cat([out, tok[:, None]], 1)
        done |= tok == EOS
        if done.all():
            break
    return [_strip(row) for row in out.tolist()]


def _strip(ids: list[int]) -> list[int]:
    res = []
    for i in ids:
        if i in (EOS, PAD):
            break
        res.append(i)
    return res


@torch.no_grad()
def beam_decode(model, src, src_len, beam: int = 5, max_len: int = 100, alpha: float = 0.6) -> list[list[int]]:
    """Beam search per sentence (``beam`` hypotheses), finished hypotheses ranked by log-probability / length
    penalty ((5 + n) / 6)^alpha (Wu et al. 2016)."""
    model.eval()
    results = []
    for i in range(len(src_len)):
        s, n = src[i : i + 1, : int(src_len[i])], src_len[i : i + 1]
        memory = model.expand(model.encode(s, n), beam)
        state = model.init_state(memory)
        tok = torch.full((beam,), BOS, dtype=torch.long)
        scores = torch.full((beam,), float("-inf"))
        scores[0] = 0.0  # all beams start identical: keep one
        seqs = [[] for _ in range(beam)]
        finished = []
        for _ in range(_max_steps(model, n, max_len)):
            logp, state = model.step(memory, state, tok)
            cand = (scores[:, None] + logp).reshape(-1)
            top = cand.topk(2 * beam)
            V = logp.shape[1]
            new_scores, new_tok, new_src, new_seqs = [], [], [], []
            for sc, flat in zip(top.values.tolist(), top.indices.tolist()):
                b, t = divmod(flat, V)
                if t == EOS:
                    L = len(seqs[b]) + 1
                    finished.append((sc / (((5 + L) / 6) ** alpha), seqs[b]))
                    continue
                new_scores.append(sc)
                new_tok.append(t)
                new_src.append(b)
                new_seqs.append(seqs[b] + [t])
                if len(new_scores) == beam:
                    break
            if not new_scores:
                break
            best_open = new_scores[0] / (((5 + len(new_seqs[0])) / 6) ** alpha) if new_scores else float("-inf")
            if len(finished) >= beam and max(f[0] for f in finished) >= best_open:
                break
            idx = torch.tensor(new_src)
            state = model.reorder(state, idx)
            scores, tok, seqs = torch.tensor(new_scores), torch.tensor(new_tok), new_seqs
        if not finished:
            finished = [(float(scores[0]), seqs[0])]
        results.append(max(finished, key=lambda f: f[0])[1])
    return results


def translate(model, data: ParallelData, tgt_vocab: Vocab, beam: int = 0, batch_size: int = 128) -> list[str]:
    """Detokenized translations of every source sentence of ``data`` (greedy, or beam search of width ``beam``)."""
    out: list[str | None] = [None] * len(data)
    order = np.argsort(data.src_len, kind="stable")
    for i in range(0, len(order), batch_size):
        idx = order[i : i + batch_size]
        src, s_len, _, _ = data.batch(idx)
        ids = beam_decode(model, src, s_len, beam) if beam > 1 else greedy_decode(model, src, s_len)
        for j, seq in zip(idx, ids):
            out[j] = detokenize(tgt_vocab.decode(seq))
    return out


def bleu(hypotheses: list[str], references: list[str]) -> dict:
    """sacrebleu corpus BLEU (13a tokenization, case-sensitive) with its signature."""
    import sacrebleu

    metric = sacrebleu.metrics.BLEU()
    res = metric.corpus_score(hypotheses, [references])
    return {"bleu": float(res.score), "signature": str(metric.get_signature())}


@torch.no_grad()
def attention_stats(model, data: ParallelData, batch_size: int = 128) -> dict:
    """How sharply a trained model's attention picks source words, teacher-forced on ``data``: over every valid
    target position, the mean entropy of the attention weights (nats), that of uniform weights over the same
    source (log Ls), their ratio, and the mean largest weight. Near-uniform attention (ratio ≈ 1) cannot align."""
    from bioSNN.nn.sequence import length_batches

    was = model.training
    model.eval()
    ent = uni = top = n = 0.0
    for idx in length_batches(data.src_len, batch_size, 0, shuffle=False):
        src, s_len, tgt, t_len = data.batch(idx)
        weights: list = []
        model(src, s_len, tgt[:, :-1], attention=weights)
        a = weights[0]  # (B, Lt, Ls)
        valid = torch.arange(a.shape[1])[None, :] < (t_len - 1)[:, None]
        h = -(a * a.clamp_min(1e-30).log()).sum(-1)
        ent += float(h[valid].sum())
        uni += float(torch.log(s_len.double())[:, None].expand_as(h)[valid].sum())
        top += float(a.amax(-1)[valid].sum())
        n += float(valid.sum())
    model.train(was)
    return {
        "entropy_nats": ent / n,
        "uniform_entropy_nats": uni / n,
        "entropy_over_uniform": ent / uni,
        "mean_max_weight": top / n,
        "target_positions": int(n),
    }


@dataclass(frozen=True)
class Translator:
    """A trained translator with its vocabularies: ``translate(["Ein Hund rennt ."], beam=5)``."""

    model: torch.nn.Module
    src_vocab: Vocab
    tgt_vocab: Vocab
    max_len: int  # source sentences are cut at this many tokens, as in training

    def translate(self, sentences: list[str], beam: int = 0) -> list[str]:
        """One translation per sentence; an empty (or all-blank) sentence translates to ``""``."""
        if isinstance(sentences, str) or not all(isinstance(x, str) for x in sentences):
            raise TypeError("translate takes a list of sentences (strings)")
        if not isinstance(beam, int) or beam < 0:
            raise ValueError(f"beam: 0 (greedy) or a beam width >= 1, got {beam!r}")
        out = [""] * len(sentences)
        keep = [i for i, x in enumerate(sentences) if cased_tokenize(x)]
        if keep:
            data = encode_pairs(
                [sentences[i] for i in keep], [""] * len(keep), self.src_vocab, self.tgt_vocab, self.max_len
            )
            for i, t in zip(keep, translate(self.model, data, self.tgt_vocab, beam)):
                out[i] = t
        return out


def vocab_digest(src_vocab: Vocab, tgt_vocab: Vocab) -> str:
    """SHA-256 of the two vocabularies' token lists, in order: a bundle keeps it, so a loader notices a vocabulary
    file that is not the one the model was trained with (two words swapped give the same size, other output)."""
    import hashlib
    import json

    text = json.dumps(
        {"source": list(src_vocab.tokens), "target": list(tgt_vocab.tokens)}, ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_MAX_VOCAB_BYTES = 64 << 20


def vocabulary_file(path: Path, name) -> Path:
    """The vocabulary file a bundle names: a plain file name, in the bundle's own folder (never a path that
    leads out of it)."""
    from bioSNN.bundles import BundleError

    if (
        not isinstance(name, str)
        or not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or name.startswith(".")
    ):
        raise BundleError(f"{path}: extra['vocab'] must name a file beside the bundle, got {name!r}")
    folder = path.parent.resolve()
    f = (folder / name).resolve()
    if f.parent != folder:  # a symbolic link out of the folder
        raise BundleError(f"{path}: its vocabulary {name!r} leads out of {folder}")
    return f


def read_vocabularies(vocab_file: Path) -> tuple[Vocab, Vocab]:
    """The source and target vocabularies of a translation run's ``vocab.json``, checked (structure, size cap,
    unique tokens with the specials first); a :class:`~bioSNN.bundles.BundleError` naming the file."""
    import json

    from bioSNN.bundles import BundleError

    if vocab_file.stat().st_size > _MAX_VOCAB_BYTES:
        raise BundleError(
            f"{vocab_file}: {vocab_file.stat().st_size} bytes; a vocabulary file is at most {_MAX_VOCAB_BYTES}"
        )
    try:
        v = json.loads(vocab_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BundleError(f"{vocab_file}: not a JSON vocabulary file ({type(e).__name__}: {e})") from None
    if not isinstance(v, dict) or not {"source", "target"} <= set(v):
        raise BundleError(
            f"{vocab_file}: a translation vocabulary is a JSON object with 'source' and 'target' token lists"
        )
    out = []
    for side in ("source", "target"):
        try:
            out.append(Vocab.from_json(v[side]))
        except ValueError as e:
            raise BundleError(f"{vocab_file}: {side} vocabulary: {e}") from None
    return out[0], out[1]
