"""Encoder–decoder models for translation (LITE-SNN, thesis part 5): a convolutional spiking encoder–decoder with
attention, the same architecture with ReLU, and a GRU encoder–decoder with attention.

:class:`ConvSeq2Seq` (ConvS2S-like, Gehring et al. 2017, without gating): token + position embeddings; encoder
blocks ``a = act(conv(a) + a)`` (centred kernels); decoder blocks the same with causal kernels (position t sees
targets ≤ t); attention of every decoder position over the encoder positions (pads masked);
``logits = W_out · dropout(d + context)``. Attention (``attention=``):

- ``"convs2s"`` (default; Gehring et al.'s form): query ``W_q·d + g`` (g: the target token + position
  embedding), keys the encoder output ``a``, values ``a + e`` (e: the source embedding), scores scaled by 1/√D;
- ``"dot"``: scores ``d·a/√D``, values ``a``; ``"scaled"``: the same with a trained temperature; ``"query"``:
  ``W_q·d`` as the query, values ``a``.

With spikes, ``"dot"`` cannot align: scores from coincidences of binary vectors barely differ between source
positions, the attention of a trained network stays near uniform and the network learns little (measured in
``experiments/results/README.md``); the analog embeddings in query and values let it align.

With ``act="lif"`` every block is a layer of LIF neurons (trained leak and threshold, soft reset) running
``time_steps`` steps with the embeddings as constant input currents: all positions of a sentence run in
parallel, a token reaches any output through the attention, never through a recurrence — which is what keeps
gradients from vanishing over long sequences. Attention is computed at every step on the spikes; the output
layer reads the mean over the steps of ``d + context``.
With ``act="relu"`` it is the same network as an ANN (one pass).

:class:`GRUSeq2Seq`: GRU encoder, GRU decoder with Luong dot attention (``tanh(W_c[h; c])`` → output layer).

All share the decoding interface used by :mod:`bioSNN.nn.seq2seq`: ``encode(src, lengths) → memory``,
``init_state(memory)``, ``step(memory, state, tokens) → (log-probs of the next token, state)``,
``expand(memory, k)`` (beam search), and ``forward(src, src_len, tgt_in) → logits (B, Lt, V)`` (teacher
forcing); ``count_ops(src_len, tgt_len)`` gives MACs and accumulates per sentence (:mod:`bioSNN.energy`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from bioSNN import bundles
from bioSNN.nn.neurons import LIF, lif_sequence
from bioSNN.nn.seq2seq import Translator, read_vocabularies, vocab_digest, vocabulary_file
from bioSNN.nn.sequence import load_module_state

__all__ = [
    "ConvSeq2Seq",
    "GRUSeq2Seq",
    "SEQ2SEQ_MODELS",
    "Seq2SeqModel",
    "ATTENTION",
    "Attention",
    "build_seq2seq",
    "seq2seq_from_spec",
    "load_translator",
]

Seq2SeqModel = Literal["conv_lif", "conv_relu", "gru"]
SEQ2SEQ_MODELS: tuple[str, ...] = get_args(Seq2SeqModel)
Attention = Literal["dot", "scaled", "query", "convs2s"]  # how the conv models attend (module docstring)
ATTENTION: tuple[str, ...] = get_args(Attention)


def _conv_steps(conv: nn.Conv1d, a: torch.Tensor, causal: bool) -> torch.Tensor:
    """``conv`` on every step of ``a`` (S, B, D, L); causal: left padding k−1 (no look-ahead)."""
    S, B = a.shape[:2]
    x = a.reshape(S * B, *a.shape[2:])
    k = conv.kernel_size[0]
    x = F.pad(x, (k - 1, 0)) if causal else F.pad(x, (k // 2, k // 2))
    y = conv(x)
    return y.reshape(S, B, *y.shape[1:])


class ConvSeq2Seq(nn.Module):
    """Convolutional encoder–decoder with dot-product attention; LIF (spiking, T steps) or ReLU activations."""

    def __init__(
        self,
        src_vocab: int,
        tgt_vocab: int,
        dim: int = 256,
        layers: int = 3,
        kernel: int = 3,
        act: Literal["lif", "relu"] = "lif",
        time_steps: int = 4,
        leak: float = 0.9,
        threshold: float = 1.0,
        dropout: float = 0.2,
        max_len: int = 128,
        surrogate: str = "fast_sigmoid",
        attention: str = "convs2s",
    ):
        super().__init__()
        if attention not in ATTENTION:
            raise ValueError(f"attention must be one of {list(ATTENTION)}, got {attention!r}")
        if act not in ("lif", "relu"):
            raise ValueError(f"act must be 'lif' or 'relu', got {act!r}")
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"kernel must be odd, got {kernel}")
        self.src_emb = nn.Embedding(src_vocab, dim, padding_idx=0)
        self.tgt_emb = nn.Embedding(tgt_vocab, dim, padding_idx=0)
        self.src_pos = nn.Embedding(max_len, dim)
        self.tgt_pos = nn.Embedding(max_len, dim)
        self.enc = nn.ModuleList(nn.Conv1d(dim, dim, kernel, bias=False) for _ in range(layers))
        self.dec = nn.ModuleList(nn.Conv1d(dim, dim, kernel, bias=False) for _ in range(layers))
        if act == "lif":

            def lif():
                return LIF(leak, threshold, "soft", surrogate, train_leak=True, train_threshold=True)

            self.enc_acts = nn.ModuleList(lif() for _ in range(layers))
            self.dec_acts = nn.ModuleList(lif() for _ in range(layers))
        self.out = nn.Linear(dim, tgt_vocab)
        self.attention = attention
        if attention in ("query", "convs2s"):
            self.query = nn.Linear(dim, dim, bias=False)
        if attention == "scaled":
            self.log_scale = nn.Parameter(torch.zeros(()))
        self.act, self.time_steps, self.dropout, self.max_len = act, time_steps, dropout, max_len
        self.dim = dim

    def clamp_(self) -> None:
        if self.act == "lif":
            for a in (*self.enc_acts, *self.dec_acts):
                a.clamp_()

    def _embed(self, emb: nn.Embedding, pos: nn.Embedding, tok: torch.Tensor) -> torch.Tensor:
        if tok.shape[1] > self.max_len:
            raise ValueError(f"sequence of {tok.shape[1]} tokens; the model has positions for {self.max_len}")
        x = emb(tok) + pos(torch.arange(tok.shape[1]))[None]
        return F.dropout(x, self.dropout, self.training).transpose(1, 2)  # (B, D, L)

    def _stack(
        self, convs, acts, x: torch.Tensor, valid: torch.Tensor | None, causal: bool, spikes: list | None = None
    ) -> torch.Tensor:
        """Blocks over the embeddings ``x`` (B, D, L) → activity (S, B, D, L), S = T (spiking) or 1."""
        a = x[None]  # the input "activity": the analog embedding, the same at every step
        for i, conv in enumerate(convs):
            cur = _conv_steps(conv, a, causal) + a
            if self.act == "relu":
                a = F.relu(cur)
            else:
                if cur.shape[0] == 1:
                    cur = cur.expand(self.time_steps, *cur.shape[1:])
                a, _ = lif_sequence(cur.contiguous(), None, acts[i].params())
            if valid is not None:
                a = a * valid[None, :, None, :]
            if spikes is not None:
                spikes.append(a)
        return a

    def encode(self, src: torch.Tensor, src_len: torch.Tensor, spikes: list | None = None) -> dict:
        valid = (torch.arange(src.shape[1])[None, :] < src_len[:, None]).float()
        x = self._embed(self.src_emb, self.src_pos, src) * valid[:, None, :]  # no position signal from pads
        a = self._stack(self.enc, getattr(self, "enc_acts", None), x, valid, causal=False, spikes=spikes)
        return {"a": a, "valid": valid, **({"e": x} if self.attention == "convs2s" else {})}

    def _decode(
        self, memory: dict, tgt_in: torch.Tensor, spikes: list | None = None, attention: list | None = None
    ) -> torch.Tensor:
        g = self._embed(self.tgt_emb, self.tgt_pos, tgt_in)
        d = self._stack(self.dec, getattr(self, "dec_acts", None), g, None, causal=True, spikes=spikes)  # (S,B,D,Lt)
        a = memory["a"]
        if a.shape[0] != d.shape[0]:
            a = a.expand(d.shape[0], *a.shape[1:])
        q, v = d, a
        if self.attention in ("query", "convs2s"):
            q = torch.einsum("ed,sbdt->sbet", self.query.weight, d)
        if self.attention == "convs2s":  # query + target embedding, values + source embedding (Gehring et al.)
            q, v = q + g[None], a + memory["e"][None]
        scores = torch.einsum("sbdt,sbdl->sbtl", q, a) / self.dim**0.5
        if self.attention == "scaled":
            scores = scores * self.log_scale.exp()
        scores = scores.masked_fill(memory["valid"][None, :, None, :] == 0, float("-inf"))
        alpha = scores.softmax(-1)
        if attention is not None:  # (B, Lt, Ls): the weights averaged over the steps
            attention.append(alpha.mean(0))
        ctx = torch.einsum("sbtl,sbdl->sbdt", alpha, v)
        h = (d + ctx).mean(0).transpose(1, 2)  # (B, Lt, D): the mean over the steps, then one projection
        return self.out(F.dropout(h, self.dropout, self.training))

    def forward(self, src, src_len, tgt_in, spikes: list | None = None, attention: list | None = None):
        """Teacher-forced logits (B, Lt, V); ``spikes`` collects every block's activity, ``attention`` the
        attention weights (B, Lt, Ls)."""
        return self._decode(self.encode(src, src_len, spikes), tgt_in, spikes, attention)

    # ---- decoding ----
    def init_state(self, memory: dict) -> torch.Tensor:
        return torch.zeros(memory["valid"].shape[0], 0, dtype=torch.long)

    def step(self, memory: dict, state: torch.Tensor, tokens: torch.Tensor):
        prefix = torch.cat([state, tokens[:, None]], 1)
        return self._decode(memory, prefix)[:, -1].log_softmax(-1), prefix

    @staticmethod
    def expand(memory: dict, k: int) -> dict:
        return {n: t.repeat_interleave(k, 1 if n == "a" else 0) for n, t in memory.items()}  # a: (S, B, D, L)

    @staticmethod
    def reorder(state: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return state[idx]

    @torch.no_grad()
    def count_ops(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor, tgt_len: torch.Tensor) -> dict:
        """Per-sentence MACs and accumulates of a teacher-forced pass over the reference (the cost of
        incremental decoding with cached activity), summed over the batch, and spikes / neuron-steps."""
        was = self.training
        self.eval()
        spikes: list = []
        memory = self.encode(src, src_len, spikes)
        self._decode(memory, tgt_in, spikes)
        self.train(was)
        D, V, n = self.dim, self.out.out_features, len(src_len)
        k = self.enc[0].kernel_size[0]
        Ls, Lt = float(src_len.sum()), float(tgt_len.sum())
        L = len(self.enc)
        tgt_valid = (torch.arange(tgt_in.shape[1])[None, :] < tgt_len[:, None]).float()
        pair = float((src_len.float() * tgt_len.float()).sum())  # Σ Ls·Lt over the batch
        out = {
            "sentences": n,
            "macs": 0.0,
            "acs": 0.0,
            "spikes": 0.0,
            "neuron_steps": 0.0,
            "output_layer_macs": Lt * D * V,
        }
        if self.act == "relu":
            out["macs"] += (Ls + Lt) * L * D * D * k + 2 * pair * D
            out["macs"] += Lt * D * D if self.attention in ("query", "convs2s") else 0.0
            out["acs"] += (Ls + Lt) * D if self.attention == "convs2s" else 0.0  # embeddings added to q and v
            out["macs"] += pair if self.attention == "scaled" else 0.0
        else:
            T = self.time_steps
            enc_sp, dec_sp = spikes[:L], spikes[L:]
            # first block of each stack: the embedding's current, once, then held for T steps
            out["macs"] += (Ls + Lt) * D * D * k
            out["acs"] += (Ls + Lt) * D * T
            for i in range(1, L):  # later blocks: every spike reaches D·k synapses
                out["acs"] += float(enc_sp[i - 1].sum()) * D * k
                out["acs"] += float((dec_sp[i - 1] * tgt_valid[None, :, None, :]).sum()) * D * k
            # attention on spikes: each decoder spike adds into Ls scores, each encoder spike into the context of
            # the valid target positions (α·spike: an accumulate); the softmax: one MAC per score and step
            dec_last = dec_sp[-1] * tgt_valid[None, :, None, :]
            enc_last = float(enc_sp[-1].sum(dim=(0, 2, 3)).mul(tgt_len).sum())  # Σ encoder spikes · Lt
            if self.attention in ("query", "convs2s"):
                # a decoder spike reaches D query synapses; an encoder spike adds its row of the (analog) query
                # into the scores of the valid target positions
                out["acs"] += float(dec_last.sum()) * D + enc_last
            else:
                out["acs"] += float(dec_last.sum(dim=(0, 2)).mul(src_len[:, None]).sum())
            out["acs"] += enc_last  # the context
            if self.attention == "convs2s":  # + target embedding into the query at every step, and the source
                out["acs"] += T * Lt * D  # embedding's share of the context: Σ_l mean_s(α) e_l, once
                out["macs"] += pair * D
            out["macs"] += T * pair * (2 if self.attention == "scaled" else 1)
            for s in enc_sp:
                out["spikes"] += float(s.sum())
                out["neuron_steps"] += Ls * D * T
            for s in dec_sp:
                out["spikes"] += float((s * tgt_valid[None, :, None, :]).sum())
                out["neuron_steps"] += Lt * D * T
        out["macs"] += out["output_layer_macs"]
        return out


class GRUSeq2Seq(nn.Module):
    """GRU encoder and decoder with Luong dot attention (``tanh(W_c [h; context])`` feeds the output layer)."""

    def __init__(self, src_vocab: int, tgt_vocab: int, dim: int = 256, dropout: float = 0.2):
        super().__init__()
        self.src_emb = nn.Embedding(src_vocab, dim, padding_idx=0)
        self.tgt_emb = nn.Embedding(tgt_vocab, dim, padding_idx=0)
        self.encoder = nn.GRU(dim, dim, batch_first=True)
        self.cell = nn.GRUCell(dim, dim)
        self.combine = nn.Linear(2 * dim, dim, bias=False)
        self.out = nn.Linear(dim, tgt_vocab)
        self.dropout, self.dim = dropout, dim

    def encode(self, src, src_len) -> dict:
        e = F.dropout(self.src_emb(src), self.dropout, self.training)
        packed = nn.utils.rnn.pack_padded_sequence(e, src_len.cpu(), batch_first=True, enforce_sorted=False)
        out, h = self.encoder(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
        valid = (torch.arange(src.shape[1])[None, :] < src_len[:, None]).float()
        return {"out": out, "h": h[0], "valid": valid}

    def _attend(self, memory: dict, h: torch.Tensor, attention: list | None = None) -> torch.Tensor:
        scores = torch.einsum("bld,bd->bl", memory["out"], h).masked_fill(memory["valid"] == 0, float("-inf"))
        alpha = scores.softmax(-1)
        if attention is not None:
            attention.append(alpha)
        ctx = torch.einsum("bl,bld->bd", alpha, memory["out"])
        return torch.tanh(self.combine(torch.cat([h, ctx], 1)))

    def forward(self, src, src_len, tgt_in, attention: list | None = None) -> torch.Tensor:
        """Teacher-forced logits (B, Lt, V); ``attention`` collects the attention weights (B, Lt, Ls)."""
        memory = self.encode(src, src_len)
        h = memory["h"]
        e = F.dropout(self.tgt_emb(tgt_in), self.dropout, self.training)
        outs, steps = [], [] if attention is not None else None
        for t in range(tgt_in.shape[1]):
            h = self.cell(e[:, t], h)
            outs.append(self._attend(memory, h, steps))
        if attention is not None:
            attention.append(torch.stack(steps, 1))
        return self.out(F.dropout(torch.stack(outs, 1), self.dropout, self.training))

    def init_state(self, memory: dict) -> torch.Tensor:
        return memory["h"]

    def step(self, memory: dict, state: torch.Tensor, tokens: torch.Tensor):
        h = self.cell(self.tgt_emb(tokens), state)
        return self.out(self._attend(memory, h)).log_softmax(-1), h

    @staticmethod
    def expand(memory: dict, k: int) -> dict:
        return {
            "out": memory["out"].repeat_interleave(k, 0),
            "h": memory["h"].repeat_interleave(k, 0),
            "valid": memory["valid"].repeat_interleave(k, 0),
        }

    @staticmethod
    def reorder(state: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return state[idx]

    @torch.no_grad()
    def count_ops(self, src, src_len, tgt_in, tgt_len) -> dict:
        D, V = self.dim, self.out.out_features
        Ls, Lt = float(src_len.sum()), float(tgt_len.sum())
        pair = float((src_len.float() * tgt_len.float()).sum())
        gru = 3 * D * (D + D) + 3 * D  # gates (input and recurrent weights) plus the gate products, per token
        out = {
            "sentences": len(src_len),
            "acs": 0.0,
            "spikes": 0.0,
            "neuron_steps": 0.0,
            "output_layer_macs": Lt * D * V,
        }
        out["macs"] = (Ls + Lt) * gru + 2 * pair * D + Lt * 2 * D * D + out["output_layer_macs"]
        return out


def build_seq2seq(
    name: str,
    src_vocab: int,
    tgt_vocab: int,
    dim: int = 256,
    layers: int = 3,
    kernel: int = 3,
    time_steps: int = 4,
    leak: float = 0.9,
    dropout: float = 0.2,
    max_len: int = 128,
    surrogate: str = "fast_sigmoid",
    attention: str = "convs2s",
) -> nn.Module:
    if name in ("conv_lif", "conv_relu"):
        return ConvSeq2Seq(
            src_vocab,
            tgt_vocab,
            dim,
            layers,
            kernel,
            "lif" if name == "conv_lif" else "relu",
            time_steps,
            leak,
            dropout=dropout,
            max_len=max_len,
            surrogate=surrogate,
            attention=attention,
        )
    if name == "gru":
        return GRUSeq2Seq(src_vocab, tgt_vocab, dim, dropout)
    raise ValueError(f"unknown translation model {name!r}; choose one of {list(SEQ2SEQ_MODELS)}")


def seq2seq_from_spec(spec: dict) -> nn.Module:
    """The (untrained) translator that a run's model spec describes: the factory arguments it stores in each
    bundle's ``extra["model"]``. A spec from before the ``attention`` setting means plain dot attention."""
    return build_seq2seq(
        spec["name"],
        spec["src_vocab"],
        spec["tgt_vocab"],
        spec["dim"],
        spec["layers"],
        spec["kernel"],
        spec["time_steps"],
        spec["leak"],
        spec["dropout"],
        spec["max_len"],
        spec["surrogate"],
        spec.get("attention", "dot"),
    )


def load_translator(path) -> Translator:
    """The translator of a ``lite_translate`` bundle (``RUN/conv_lif.npz`` …) with the vocabularies of its run
    (``vocab.json`` beside it), in eval mode. Read without pickle (:mod:`bioSNN.bundles`).

    The vocabulary file must sit in the bundle's folder, hold a ``source`` and a ``target`` list of unique tokens
    that start with the special tokens, be as large as the model's embeddings and — for bundles that record it —
    match the digest of the vocabularies the model was trained with; anything else is a
    :class:`~bioSNN.bundles.BundleError` naming the file."""
    path = Path(path)
    b = bundles.read(path)
    s = b.extra.get("model")
    if not isinstance(s, dict) or "tgt_vocab" not in s:
        raise bundles.BundleError(f"{path}: not a translation bundle (no encoder-decoder in extra['model'])")
    vocab_file = vocabulary_file(path, b.extra.get("vocab", "vocab.json"))
    if not vocab_file.is_file():
        raise FileNotFoundError(f"{vocab_file}: the vocabularies of {path.name} are missing (kept beside it)")
    src_vocab, tgt_vocab = read_vocabularies(vocab_file)
    if (len(src_vocab), len(tgt_vocab)) != (s["src_vocab"], s["tgt_vocab"]):
        raise bundles.BundleError(
            f"{vocab_file}: vocabularies of {len(src_vocab)} / {len(tgt_vocab)} words, the "
            f"model has {s['src_vocab']} / {s['tgt_vocab']}"
        )
    digest = b.extra.get("vocab_sha256")
    if digest is not None and digest != vocab_digest(src_vocab, tgt_vocab):
        raise bundles.BundleError(
            f"{vocab_file}: not the vocabularies {path.name} was trained with (same sizes, "
            "other words or order: its SHA-256 differs from the bundle's vocab_sha256)"
        )
    m = seq2seq_from_spec(s)
    load_module_state(m, b)
    # the source cut of the run: positions were made for 2 * max_len + 12 tokens
    return Translator(m.eval(), src_vocab, tgt_vocab, int(s.get("source_max_len", (s["max_len"] - 12) // 2)))
