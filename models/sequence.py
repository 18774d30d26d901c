"""LITE-SNN sequence classifiers and their non-spiking baselines (thesis part 5).

Every model maps right-padded token ids ``(batch, L)`` and their lengths to class logits, and can count its own
operations for :mod:`bioSNN.energy` (``forward(tokens, lengths, count=True)`` → :class:`SeqOutput` with a
:class:`SeqStats`). Padding never changes a sequence's logits: the embedding of ``<pad>`` is zero, spikes at
padded positions are masked, and recurrences run only over valid steps.

- :class:`SpikingTextClassifier` (LITE-SNN): embedding → [Linear → LIF] × depth → Linear readout, **no recurrent
  weights**: the LIF membranes (leak and threshold trained) carry the sequence. Each token's embedding is the
  input current for ``steps_per_token`` steps, so the network runs ``L × T`` steps; its membranes are carried
  from one token to the next (:meth:`~SpikingTextClassifier.stream` runs it token by token with the same
  result). The readout integrates its input and reports the mean over the valid steps (``readout="mean"``)
  or over the last token's steps (``"last"``, the vanilla recurrent read-out).
- :class:`ConvAttentionClassifier`: embedding → 1-D convolutions over the tokens (LIF or ReLU activations,
  residual) → dot-product attention pooling over positions → readout. As an SNN every position runs ``T``
  steps in parallel and every token reaches the output through the attention, not through a recurrence.
- :class:`RNNClassifier` (LSTM / GRU, last valid hidden state) and :class:`KimCNN` (filters of 3, 4, 5 tokens,
  max over time; Kim 2014): the baselines, trained by the same code on the same tokens.

Operation counts per sample (45 nm figures of :mod:`bioSNN.energy`): a weight applied to an analog value is a
MAC; a weight applied to a spike is an accumulate (AC). The spiking models' first layer takes the analog
embedding and holds its current for the token's T steps (its MACs once per token plus one AC per neuron and
step: ``reuse_constant_input`` of :mod:`bioSNN.energy`). LSTM: ``4H(E+H)`` MACs per token plus ``3H`` gate
products; GRU ``3H(E+H) + 3H``; nonlinearities (sigmoid, tanh, softmax's exponentials) and the embedding
lookup are not counted for any model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from bioSNN import energy
from bioSNN.nn.network import SpikingNet
from bioSNN.nn.neurons import LIF, LIFState, lif_sequence, lif_step

__all__ = [
    "SeqStats",
    "SeqOutput",
    "SpikingTextClassifier",
    "ConvAttentionClassifier",
    "RNNClassifier",
    "KimCNN",
    "TEXT_MODELS",
    "build_text_model",
]


@dataclass
class SeqStats:
    """Operations and spikes of a batch, summed over its samples (:meth:`summary` gives per-sample figures)."""

    samples: int = 0
    tokens: int = 0
    macs: float = 0.0
    acs: float = 0.0
    spikes: dict = field(default_factory=dict)  # by activation: spikes over valid steps
    neuron_steps: dict = field(default_factory=dict)  # by activation: neurons × valid steps

    def add_spikes(self, name: str, spikes: float, neuron_steps: float) -> None:
        self.spikes[name] = self.spikes.get(name, 0.0) + spikes
        self.neuron_steps[name] = self.neuron_steps.get(name, 0.0) + neuron_steps

    def merge(self, other: SeqStats) -> SeqStats:
        self.samples += other.samples
        self.tokens += other.tokens
        self.macs += other.macs
        self.acs += other.acs
        for k in other.spikes:
            self.add_spikes(k, other.spikes[k], other.neuron_steps[k])
        return self

    def summary(self) -> dict:
        n = max(self.samples, 1)
        e = self.macs * energy.E_MAC_PJ + self.acs * energy.E_AC_PJ
        rates = {k: self.spikes[k] / self.neuron_steps[k] for k in self.spikes if self.neuron_steps[k]}
        total_ns = sum(self.neuron_steps.values())
        out = {
            "macs_per_sample": self.macs / n,
            "acs_per_sample": self.acs / n,
            "energy_nj_per_sample": e / n * 1e-3,
            "tokens_per_sample": self.tokens / n,
            "energy_model": energy.CONSTANTS_NOTE,
        }
        if self.spikes:
            out["spike_rate"] = rates
            out["mean_spike_rate"] = sum(self.spikes.values()) / total_ns if total_ns else 0.0
        return out


class SeqOutput(NamedTuple):
    logits: torch.Tensor
    stats: SeqStats | None = None
    spikes: dict | None = None  # by activation, (steps, batch, ...) detached, with record=True


def _valid(lengths: torch.Tensor, L: int) -> torch.Tensor:
    """(L, batch) float mask of the valid token positions."""
    return (torch.arange(L)[:, None] < lengths[None, :]).float()


def _check_tokens(tokens: torch.Tensor, lengths: torch.Tensor) -> None:
    if tokens.dim() != 2 or lengths.shape != tokens.shape[:1]:
        raise ValueError(
            f"tokens must be (batch, L) with one length per row, got {list(tokens.shape)} and {list(lengths.shape)}"
        )
    if len(lengths) and (int(lengths.min()) < 1 or int(lengths.max()) > tokens.shape[1]):
        raise ValueError(
            f"lengths must lie in [1, {tokens.shape[1]}], got [{int(lengths.min())}, {int(lengths.max())}]"
        )


class SpikingTextClassifier(nn.Module):
    """LITE-SNN: feed-forward LIF layers whose membranes are the only recurrence (see the module docstring)."""

    def __init__(
        self,
        vocab_size: int,
        n_classes: int,
        embed: int = 128,
        hidden: int = 128,
        depth: int = 2,
        steps_per_token: int = 5,
        leak: float = 0.9,
        threshold: float = 1.0,
        train_neurons: bool = True,
        dropout: float = 0.2,
        readout: Literal["mean", "last"] = "mean",
        surrogate: str = "linear",
    ):
        super().__init__()
        if depth < 1 or steps_per_token < 1:
            raise ValueError(f"depth and steps_per_token must be >= 1, got {depth}, {steps_per_token}")
        if readout not in ("mean", "last"):
            raise ValueError(f"readout must be 'mean' or 'last', got {readout!r}")
        self.embedding = nn.Embedding(vocab_size, embed, padding_idx=0)
        self.layers = nn.ModuleList(nn.Linear(embed if i == 0 else hidden, hidden, bias=False) for i in range(depth))
        self.acts = nn.ModuleList(
            LIF(leak, threshold, "soft", surrogate, train_leak=train_neurons, train_threshold=train_neurons)
            for _ in range(depth)
        )
        self.readout = nn.Linear(hidden, n_classes, bias=True)
        self.steps_per_token, self.dropout, self.readout_mode = steps_per_token, dropout, readout

    def clamp_(self) -> None:
        for a in self.acts:
            a.clamp_()

    def _masks(self, batch: int, like: torch.Tensor) -> list:
        """Dropout masks, one per sequence and layer input, held for all its steps (as FixedDropout)."""
        if not self.training or self.dropout == 0:
            return [None] * (len(self.layers) + 1)
        keep = 1.0 - self.dropout
        sizes = [self.embedding.embedding_dim] + [lay.out_features for lay in self.layers]
        return [torch.bernoulli(like.new_full((batch, s), keep)) / keep for s in sizes]

    def forward(
        self, tokens: torch.Tensor, lengths: torch.Tensor, count: bool = False, record: bool = False
    ) -> torch.Tensor | SeqOutput:
        _check_tokens(tokens, lengths)
        B, L = tokens.shape
        T = self.steps_per_token
        e = self.embedding(tokens).transpose(0, 1)  # (L, B, E)
        masks = self._masks(B, e)
        if masks[0] is not None:
            e = e * masks[0]
        valid = _valid(lengths, L).repeat_interleave(T, 0)[:, :, None]  # (L·T, B, 1)
        st = SeqStats(samples=B, tokens=int(lengths.sum())) if count else None
        rec = {} if record else None
        x = self.layers[0](e).repeat_interleave(T, 0)  # the token's current, held for its T steps
        s = x
        if st is not None:
            lay = self.layers[0]
            st.macs += st.tokens * lay.in_features * lay.out_features
            st.acs += st.tokens * T * lay.out_features
        for i, act in enumerate(self.acts):
            if i:
                lay = self.layers[i]
                x = lay(s)
                if st is not None:
                    st.acs += float(s.detach().sum()) * lay.out_features
            s, _ = lif_sequence(x, None, act.params())
            s = s * valid  # padded steps come after every valid one (right padding): masking them is exact
            if masks[i + 1] is not None:
                s = s * masks[i + 1]
            if st is not None:
                st.add_spikes(f"act{i + 1}", float(s.detach().sum()), float(valid.sum()) * s.shape[-1])
            if rec is not None:
                rec[f"act{i + 1}"] = s.detach()
        r = self.readout(s)  # (L·T, B, C): the readout integrates, it does not spike
        if st is not None:
            st.acs += float(s.detach().sum()) * self.readout.out_features
        logits = self._read(r, valid, lengths, T)
        return SeqOutput(logits, st, rec) if (count or record) else logits

    def as_spiking_net(self):
        """The layers after the embedding as a :class:`~bioSNN.nn.network.SpikingNet` (the same module objects):
        fed the embedding of token k at steps kT … kT+T−1 (``encoder="frames"``), its summed readout equals this
        model's mean read-out × (tokens × T). This is what NIR export writes; the embedding lookup has no NIR
        node and stays in the bundle."""
        nodes = []
        for lay, act in zip(self.layers, self.acts):
            nodes += [lay, act]
        return SpikingNet(nodes + [self.readout], (self.embedding.embedding_dim,))

    def _read(self, r: torch.Tensor, valid: torch.Tensor, lengths: torch.Tensor, T: int) -> torch.Tensor:
        if self.readout_mode == "mean":
            return (r * valid).sum(0) / (lengths[:, None].float() * T)
        last = (torch.arange(r.shape[0])[:, None] // T) == (lengths[None, :] - 1)  # (L·T, B): last token's steps
        return (r * last[:, :, None]).sum(0) / T

    # ---- token by token (inference): the same numbers as forward, for streaming input ----
    def init_state(self, batch: int) -> dict:
        return {"lif": [None] * len(self.acts), "sum": None, "last": None, "tokens": torch.zeros(batch)}

    @torch.no_grad()
    def stream(self, token: torch.Tensor, state: dict, active: torch.Tensor | None = None) -> dict:
        """Feed one token id per sequence ``(batch,)`` for T steps; ``active`` (bool, batch) marks sequences that
        still have tokens (the others keep their state). Returns the new state; :meth:`logits_of` reads it."""
        if self.training:
            raise RuntimeError("stream() runs the trained network: call .eval() first (dropout is per sequence)")
        B = token.shape[0]
        act_mask = torch.ones(B, dtype=torch.bool) if active is None else active
        cur = self.layers[0](self.embedding(token))
        lif = list(state["lif"])
        tok_sum, s = None, cur
        for _ in range(self.steps_per_token):
            x = cur
            for i, act in enumerate(self.acts):
                if i:
                    x = self.layers[i](s)
                s, new = lif_step(x, lif[i], act.params())
                if lif[i] is not None:  # inactive sequences keep their membranes
                    new = LIFState(torch.where(act_mask[:, None], new.u, lif[i].u))
                lif[i] = new
                s = s * act_mask[:, None]
            r = self.readout(s)
            tok_sum = r if tok_sum is None else tok_sum + r
        tok_sum = tok_sum * act_mask[:, None]
        total = tok_sum if state["sum"] is None else state["sum"] + tok_sum
        last = tok_sum if state["last"] is None else torch.where(act_mask[:, None], tok_sum, state["last"])
        return {"lif": lif, "sum": total, "last": last, "tokens": state["tokens"] + act_mask.float()}

    def logits_of(self, state: dict) -> torch.Tensor:
        T = self.steps_per_token
        if self.readout_mode == "mean":
            return state["sum"] / (state["tokens"][:, None] * T)
        return state["last"] / T


class ConvAttentionClassifier(nn.Module):
    """Convolutions over the tokens with LIF (``act="lif"``, T steps) or ReLU activations, then attention pooling.

    Block i: ``a_i = act(conv_i(a_{i−1}) + a_{i−1})`` (no residual on the first, which changes width); pooling:
    ``α = softmax_l(q·a_l / √H)`` over the valid positions, context ``Σ_l α_l a_l``, readout ``Linear(H, C)``. As
    an SNN the embedding is the input current at every one of the T steps, every step is pooled and read out,
    and the logits are the mean over the steps."""

    def __init__(
        self,
        vocab_size: int,
        n_classes: int,
        embed: int = 128,
        hidden: int = 128,
        depth: int = 2,
        kernel: int = 3,
        act: Literal["lif", "relu"] = "lif",
        time_steps: int = 5,
        leak: float = 0.9,
        threshold: float = 1.0,
        train_neurons: bool = True,
        dropout: float = 0.2,
        surrogate: str = "linear",
    ):
        super().__init__()
        if kernel % 2 == 0 or kernel < 1:
            raise ValueError(f"kernel must be odd (centred convolution), got {kernel}")
        if act not in ("lif", "relu"):
            raise ValueError(f"act must be 'lif' or 'relu', got {act!r}")
        self.embedding = nn.Embedding(vocab_size, embed, padding_idx=0)
        self.convs = nn.ModuleList(
            nn.Conv1d(embed if i == 0 else hidden, hidden, kernel, padding=kernel // 2, bias=False)
            for i in range(depth)
        )
        self.acts = (
            nn.ModuleList(
                LIF(leak, threshold, "soft", surrogate, train_leak=train_neurons, train_threshold=train_neurons)
                for _ in range(depth)
            )
            if act == "lif"
            else None
        )
        self.query = nn.Parameter(torch.randn(hidden) / hidden**0.5)
        self.readout = nn.Linear(hidden, n_classes)
        self.act, self.time_steps, self.dropout = act, time_steps, dropout

    def clamp_(self) -> None:
        for a in self.acts or ():
            a.clamp_()

    def _pool(self, a: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """a: (..., B, H, L) → context (..., B, H); valid (B, L)."""
        H = a.shape[-2]
        scores = torch.einsum("h,...hl->...l", self.query, a) / H**0.5
        scores = scores.masked_fill(valid == 0, float("-inf"))
        return torch.einsum("...l,...hl->...h", scores.softmax(-1), a)

    def forward(
        self, tokens: torch.Tensor, lengths: torch.Tensor, count: bool = False, record: bool = False
    ) -> torch.Tensor | SeqOutput:
        _check_tokens(tokens, lengths)
        B, L = tokens.shape
        valid = _valid(lengths, L).T  # (B, L)
        x = self.embedding(tokens).transpose(1, 2)  # (B, E, L)
        if self.training and self.dropout:
            x = F.dropout(x, self.dropout)
        st = SeqStats(samples=B, tokens=int(lengths.sum())) if count else None
        rec = {} if record else None
        n_valid = float(valid.sum())
        k = self.convs[0].kernel_size[0]
        if self.act == "relu":
            a = None
            for i, conv in enumerate(self.convs):
                h = conv(x if a is None else a)
                a = F.relu(h if a is None else h + a) * valid[:, None, :]
                if st is not None:
                    st.macs += n_valid * conv.in_channels * conv.out_channels * k
            ctx = self._pool(a, valid)
            if st is not None:
                H = a.shape[1]
                st.macs += 2 * n_valid * H + B * H * self.readout.out_features  # scores, weighted sum, readout
            logits = self.readout(F.dropout(ctx, self.dropout, self.training))
            return SeqOutput(logits, st, rec) if (count or record) else logits
        T = self.time_steps
        a = None  # spikes (T, B, H, L)
        for i, (conv, act) in enumerate(zip(self.convs, self.acts)):
            if a is None:
                cur = conv(x).unsqueeze(0).expand(T, -1, -1, -1)  # analog input, the same at every step
                if st is not None:
                    st.macs += n_valid * conv.in_channels * conv.out_channels * k
                    st.acs += n_valid * conv.out_channels * T
            else:
                cur = SpikingNet._apply_seq(conv, a) + a
                if st is not None:
                    st.acs += float(a.detach().sum()) * conv.out_channels * k  # interior fan-out (edges: fewer)
            a, _ = lif_sequence(cur.contiguous(), None, act.params())
            a = a * valid[None, :, None, :]
            if st is not None:
                st.add_spikes(f"act{i + 1}", float(a.detach().sum()), n_valid * a.shape[2] * T)
            if rec is not None:
                rec[f"act{i + 1}"] = a.detach()
        ctx = self._pool(a, valid)  # (T, B, H)
        if st is not None:
            H = a.shape[2]
            # q·a and Σα·a on binary spikes: one accumulate per spike each; the context is analog: readout MACs
            st.acs += 2 * float(a.detach().sum())
            st.macs += T * n_valid + T * B * H * self.readout.out_features  # α_l × spike weights, readout
        logits = self.readout(F.dropout(ctx, self.dropout, self.training)).mean(0)
        return SeqOutput(logits, st, rec) if (count or record) else logits


class RNNClassifier(nn.Module):
    """LSTM or GRU over the valid tokens; the last valid hidden state → dropout → Linear."""

    def __init__(
        self,
        vocab_size: int,
        n_classes: int,
        embed: int = 128,
        hidden: int = 128,
        kind: Literal["lstm", "gru"] = "lstm",
        dropout: float = 0.2,
    ):
        super().__init__()
        if kind not in ("lstm", "gru"):
            raise ValueError(f"kind must be 'lstm' or 'gru', got {kind!r}")
        self.embedding = nn.Embedding(vocab_size, embed, padding_idx=0)
        self.rnn = (nn.LSTM if kind == "lstm" else nn.GRU)(embed, hidden, batch_first=True)
        self.readout = nn.Linear(hidden, n_classes)
        self.kind, self.dropout = kind, dropout

    def forward(
        self, tokens: torch.Tensor, lengths: torch.Tensor, count: bool = False, record: bool = False
    ) -> torch.Tensor | SeqOutput:
        _check_tokens(tokens, lengths)
        e = F.dropout(self.embedding(tokens), self.dropout, self.training)
        packed = nn.utils.rnn.pack_padded_sequence(e, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, h = self.rnn(packed)
        h = (h[0] if self.kind == "lstm" else h)[-1]
        logits = self.readout(F.dropout(h, self.dropout, self.training))
        if not (count or record):
            return logits
        st = SeqStats(samples=tokens.shape[0], tokens=int(lengths.sum()))
        E, H = self.rnn.input_size, self.rnn.hidden_size
        gates = 4 if self.kind == "lstm" else 3
        st.macs = st.tokens * (gates * H * (E + H) + 3 * H) + st.samples * H * self.readout.out_features
        return SeqOutput(logits, st, None)


class KimCNN(nn.Module):
    """Kim (2014): filters of widths 3, 4, 5 over the embeddings, ReLU, max over the valid positions."""

    def __init__(
        self,
        vocab_size: int,
        n_classes: int,
        embed: int = 128,
        filters: int = 100,
        widths: tuple[int, ...] = (3, 4, 5),
        dropout: float = 0.5,
    ):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed, padding_idx=0)
        self.convs = nn.ModuleList(nn.Conv1d(embed, filters, w) for w in widths)
        self.readout = nn.Linear(filters * len(widths), n_classes)
        self.dropout = dropout

    def forward(
        self, tokens: torch.Tensor, lengths: torch.Tensor, count: bool = False, record: bool = False
    ) -> torch.Tensor | SeqOutput:
        _check_tokens(tokens, lengths)
        B, L = tokens.shape
        wmax = max(c.kernel_size[0] for c in self.convs)
        if L < wmax:  # every sentence gets at least one window of each width
            tokens = F.pad(tokens, (0, wmax - L))
        x = self.embedding(tokens).transpose(1, 2)
        pooled = []
        for conv in self.convs:
            w = conv.kernel_size[0]
            h = F.relu(conv(x))  # (B, F, L − w + 1)
            n_win = torch.clamp(lengths - w + 1, min=1)  # windows that start inside the sentence
            ok = torch.arange(h.shape[2])[None, :] < n_win[:, None]
            pooled.append(h.masked_fill(~ok[:, None, :], float("-inf")).amax(2))
        logits = self.readout(F.dropout(torch.cat(pooled, 1), self.dropout, self.training))
        if not (count or record):
            return logits
        st = SeqStats(samples=B, tokens=int(lengths.sum()))
        for conv in self.convs:
            w = conv.kernel_size[0]
            st.macs += float(torch.clamp(lengths - w + 1, min=1).sum()) * conv.in_channels * conv.out_channels * w
        st.macs += B * self.readout.in_features * self.readout.out_features
        return SeqOutput(logits, st, None)


TEXT_MODELS = ("lite", "conv_attention", "conv_relu", "lstm", "gru", "cnn")


def build_text_model(
    name: str,
    vocab_size: int,
    n_classes: int,
    embed: int = 128,
    hidden: int = 128,
    steps_per_token: int = 5,
    depth: int = 2,
    dropout: float = 0.2,
    leak: float = 0.9,
    readout: str = "mean",
) -> nn.Module:
    """One of :data:`TEXT_MODELS` with the shared sizes (``hidden``: LIF/RNN width; the CNN uses 100 filters
    per width as in Kim 2014)."""
    if name == "lite":
        return SpikingTextClassifier(
            vocab_size, n_classes, embed, hidden, depth, steps_per_token, leak, dropout=dropout, readout=readout
        )
    if name in ("conv_attention", "conv_relu"):
        return ConvAttentionClassifier(
            vocab_size,
            n_classes,
            embed,
            hidden,
            depth,
            act="lif" if name == "conv_attention" else "relu",
            time_steps=steps_per_token,
            leak=leak,
            dropout=dropout,
        )
    if name in ("lstm", "gru"):
        return RNNClassifier(vocab_size, n_classes, embed, hidden, name, dropout)
    if name == "cnn":
        return KimCNN(vocab_size, n_classes, embed, 100, dropout=max(dropout, 0.5))
    raise ValueError(f"unknown text model {name!r}; choose one of {list(TEXT_MODELS)}")
