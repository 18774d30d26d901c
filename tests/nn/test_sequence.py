"""LITE-SNN sequence models: streaming, padding, gradients, operation counts, vocabulary, checkpoints."""

import numpy as np
import pytest
import torch

from bioSNN.data.text import EOS, UNK, Vocab, detokenize, pad_batch, tokenize
from bioSNN.models.sequence import TEXT_MODELS, RNNClassifier, SpikingTextClassifier, build_text_model
from bioSNN.nn.sequence import SeqCheckpoint, TokenData, fit_tokens, length_batches

pytestmark = pytest.mark.torch

V = 40


def _batch(seed=0, lengths=(9, 3, 5, 1, 7, 2)):
    g = torch.Generator().manual_seed(seed)
    lens = torch.tensor(lengths)
    tok = torch.randint(4, V, (len(lengths), int(lens.max())), generator=g)
    tok[torch.arange(tok.shape[1])[None, :] >= lens[:, None]] = 0
    return tok, lens


def _spiking_lite(readout="mean", seed=0):
    torch.manual_seed(seed)
    m = SpikingTextClassifier(V, 3, embed=12, hidden=16, depth=2, steps_per_token=4, leak=0.8, readout=readout)
    with torch.no_grad():  # strong enough weights that both layers spike (a silent net proves nothing)
        for lay in m.layers:
            lay.weight.mul_(5.0)
    return m.eval()


@pytest.mark.parametrize("readout", ["mean", "last"])
def test_streaming_token_by_token_equals_whole_sequence(readout):
    m = _spiking_lite(readout)
    tok, lens = _batch()
    with torch.no_grad():
        out = m(tok, lens, count=True)
    rates = out.stats.summary()["spike_rate"]
    assert all(0.02 < r < 0.9 for r in rates.values()), rates
    state = m.init_state(len(lens))
    for t in range(tok.shape[1]):
        state = m.stream(tok[:, t], state, active=t < lens)
    torch.testing.assert_close(m.logits_of(state), out.logits, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", TEXT_MODELS)
def test_padding_does_not_change_outputs(name):
    torch.manual_seed(1)
    m = build_text_model(name, V, 2, embed=12, hidden=16, steps_per_token=3).eval()
    if hasattr(m, "layers"):
        with torch.no_grad():
            for lay in m.layers:
                lay.weight.mul_(5.0)
    tok, lens = _batch(1)
    with torch.no_grad():
        a = m(tok, lens)
        b = m(torch.cat([tok, torch.zeros(len(lens), 7, dtype=torch.long)], 1), lens)
        # each sequence alone, padded only to its own length
        c = torch.cat([m(tok[i : i + 1, : int(n)], lens[i : i + 1]) for i, n in enumerate(lens)])
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)  # float rounding of other shapes only
    torch.testing.assert_close(a, c, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["lite", "conv_attention", "lstm", "gru", "cnn"])
def test_gradients_flow_to_the_first_token(name):
    torch.manual_seed(2)
    m = build_text_model(name, V, 2, embed=12, hidden=16, steps_per_token=3, dropout=0.0)
    if hasattr(m, "layers"):
        with torch.no_grad():
            for lay in m.layers:
                lay.weight.mul_(5.0)
    tok, lens = _batch(2, lengths=(12, 12, 12, 12))
    m.embedding.weight.grad = None
    torch.nn.functional.cross_entropy(m(tok, lens), torch.tensor([0, 1, 0, 1])).backward()
    g = m.embedding.weight.grad
    first = g[tok[:, 0]].norm(dim=1)
    assert (first > 0).all(), first
    assert torch.isfinite(g).all()


def test_last_token_readout_starves_the_first_token_of_gradient():
    """The vanilla recurrent read-out: the first token's gradient passes 11 tokens × T steps of leak."""
    tok, lens = _batch(3, lengths=(12, 12))
    norms = {}
    for readout in ("mean", "last"):
        m = _spiking_lite(readout, seed=3).train()
        m.dropout = 0.0
        e = m.embedding(tok).detach().requires_grad_(True)
        m.embedding = _Fixed(e)
        torch.nn.functional.cross_entropy(m(tok, lens), torch.tensor([0, 1])).backward()
        g = e.grad.norm(dim=2)
        norms[readout] = (g[:, 0] / g[:, -1]).mean().item()
    assert norms["last"] < 1e-2 * norms["mean"], norms


class _Fixed(torch.nn.Module):
    """Stands in for the embedding: returns a fixed (leaf) tensor, so its gradient per position is visible."""

    def __init__(self, e):
        super().__init__()
        self.e, self.embedding_dim = e, e.shape[-1]

    def forward(self, tok):
        return self.e


def test_operation_counts_follow_the_energy_model():
    m = _spiking_lite()
    tok, lens = _batch()
    with torch.no_grad():
        out = m(tok, lens, count=True, record=True)
    st, T, n_tok = out.stats, 4, int(lens.sum())
    s1, s2 = out.spikes["act1"], out.spikes["act2"]
    assert st.macs == n_tok * 12 * 16  # the embedding's current, once per token
    expected_acs = n_tok * T * 16 + float(s1.sum()) * 16 + float(s2.sum()) * 3
    assert st.acs == pytest.approx(expected_acs)
    assert st.spikes["act1"] == pytest.approx(float(s1.sum()))
    assert st.neuron_steps["act1"] == n_tok * T * 16
    lstm = RNNClassifier(V, 3, embed=12, hidden=16, kind="lstm").eval()
    with torch.no_grad():
        st = lstm(tok, lens, count=True).stats
    assert st.macs == n_tok * (4 * 16 * (12 + 16) + 3 * 16) + len(lens) * 16 * 3
    assert st.summary()["energy_nj_per_sample"] == pytest.approx(st.macs / len(lens) * 4.6e-3)


def test_vocabulary_round_trip_and_storage():
    texts = ["a gripping , funny film .", "the film is n't funny", "(a) film!"]
    vocab = Vocab.build(texts, min_freq=1)
    assert vocab.tokens[:4] == ("<pad>", "<unk>", "<bos>", "<eos>")
    assert vocab.tokens[4] == "film"  # most frequent first
    for t in texts:
        ids = vocab.encode(t, bos=True, eos=True)
        assert vocab.decode(ids) == tokenize(t)
        assert vocab.decode(ids + [7, 8]) == tokenize(t)  # decoding stops at <eos>
    assert vocab.encode("unseen film") == [UNK, vocab.tokens.index("film")]
    assert detokenize(tokenize("A film, (truly) funny!")) == "a film, (truly) funny!"
    assert Vocab.from_json(vocab.to_json()) == vocab
    assert Vocab.build(texts, min_freq=2).tokens[4:] == ("film", "a", "funny")  # ties: first seen first
    with pytest.raises(ValueError, match="starts with"):
        Vocab(("a", "b"))
    tok, lens = pad_batch([[5, 6, 7], [8], [9, 10, 11, 12, EOS]], max_len=4)
    assert tok.tolist() == [[5, 6, 7, 0], [8, 0, 0, 0], [9, 10, 11, 12]] and lens.tolist() == [3, 1, 4]


def test_length_batches_cover_every_sequence_once_and_follow_the_seed():
    lengths = np.random.default_rng(0).integers(1, 30, 1000)
    a = length_batches(lengths, 32, seed=5)
    assert sorted(np.concatenate(a).tolist()) == list(range(1000))
    assert [x.tolist() for x in a] == [x.tolist() for x in length_batches(lengths, 32, seed=5)]
    assert [x.tolist() for x in a] != [x.tolist() for x in length_batches(lengths, 32, seed=6)]
    # bucketing: a batch spans far fewer lengths than a random one would
    assert np.mean([np.ptp(lengths[b]) for b in a]) < 5


def _toy_data(n=240, seed=0):
    """Label = whether token 5 occurs in the sequence (learnable, needs memory over tokens)."""
    rng = np.random.default_rng(seed)
    seqs = [rng.integers(6, V, rng.integers(2, 12)).tolist() for _ in range(n)]
    y = rng.integers(0, 2, n)
    for s, lab in zip(seqs, y):
        if lab:
            s[rng.integers(len(s))] = 5
    tok, lens = pad_batch(seqs)
    return TokenData(tok, lens, y.astype(np.int64))


class _Stop(Exception):
    pass


def _train(path, epochs, stop_after=None, seed=0):
    torch.manual_seed(seed)
    m = SpikingTextClassifier(V, 2, embed=8, hidden=12, steps_per_token=2, dropout=0.3)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    if stop_after is not None:
        calls = [0]
        fwd = m.forward

        def forward(*a, **k):
            if m.training:
                calls[0] += 1
                if calls[0] > stop_after:
                    raise _Stop
            return fwd(*a, **k)

        m.forward = forward
    data = _toy_data()
    hist, best = fit_tokens(
        m,
        opt,
        SeqCheckpoint(path, {"test": True}),
        data,
        data.subset(np.arange(60)),
        epochs,
        batch_size=16,
        seed=3,
        progress=False,
        checkpoint_seconds=0,
    )
    return m, hist, best


def test_resume_inside_an_epoch_is_bit_identical(tmp_path):
    ref, hist_ref, best_ref = _train(tmp_path / "a.npz", 3)
    with pytest.raises(_Stop):
        _train(tmp_path / "b.npz", 3, stop_after=20)  # killed inside the second epoch (15 batches per epoch)
    torch.manual_seed(123)  # the resumed process starts from another RNG state: the checkpoint must restore it
    got, hist, best = _train(tmp_path / "b.npz", 3)
    for k, v in ref.state_dict().items():
        assert torch.equal(v, got.state_dict()[k]), k
    hist.pop("seconds"), hist_ref.pop("seconds")  # wall time, the only thing allowed to differ
    assert hist == hist_ref and best == best_ref
    assert hist["train_accuracy"][-1] > 0.7  # it learns the task at all


def test_frames_encoder_feeds_frame_t_at_step_t():
    from bioSNN.models.events import event_convnet

    torch.manual_seed(4)
    net = event_convnet((2, 12, 12), 10, channels=(4,), hidden=16).eval()
    x = torch.rand(3, 2, 12, 12)
    with torch.no_grad():
        for _, layer in net.weighted_layers():
            layer.weight.mul_(4.0)  # a silent network would pass every comparison below
        same = net.snn(x[:, None].expand(3, 6, 2, 12, 12), 6, "frames", count=True)
        direct = net.snn(x, 6, "direct")
        torch.testing.assert_close(same.logits, direct.logits)  # a constant sequence is direct coding
        ev = (torch.rand(3, 6, 2, 12, 12) < 0.2).float()
        layer = net.snn(ev, 6, "frames", count=True)
        assert all(r > 0.01 for r in layer.stats.spike_rates().values()), layer.stats.spike_rates()
        step = net.snn(ev, 6, "frames", mode="step")
        torch.testing.assert_close(layer.logits, step.logits)
        later = ev.clone()
        later[:, 3:] = 0  # the first three frames alone: what the later ones add is visible
        assert not torch.allclose(net.snn(later, 6, "frames").logits, layer.logits)
    # binary frames are input spikes: the first layer accumulates (no MACs) per event and its fan-out
    first = layer.stats.layer_ops()[0]
    assert not first.analog_input and first.synaptic_events == pytest.approx(
        float(
            torch.nn.functional.conv2d(ev.flatten(0, 1).sum(1, keepdim=True), torch.ones(1, 1, 3, 3), padding=1).sum()
        )
        * 4
        / 3
    )
    with pytest.raises(ValueError, match="frames must be"):
        net.snn(ev[:, :5], 6, "frames")
