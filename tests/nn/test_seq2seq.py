"""Translation models: causal decoding, padding, step-wise decoding = teacher forcing, BLEU of an overfit model."""

import numpy as np
import pytest
import torch

from bioSNN.data.text import BOS, EOS, Vocab
from bioSNN.models.seq2seq import ATTENTION, SEQ2SEQ_MODELS, build_seq2seq
from bioSNN.nn.seq2seq import bleu, cased_tokenize, encode_pairs, greedy_decode, seq2seq_loss, translate

pytestmark = pytest.mark.torch

SV, TV = 30, 25


# every model, and the conv models with each form of attention
CASES = [(n, a) for n in SEQ2SEQ_MODELS for a in (ATTENTION if n.startswith("conv") else ("convs2s",))]


def _model(name, seed=0, dim=24, attention="convs2s"):
    torch.manual_seed(seed)
    m = build_seq2seq(
        name, SV, TV, dim=dim, layers=2, kernel=3, time_steps=3, dropout=0.0, max_len=20, attention=attention
    )
    if name == "conv_lif":
        with torch.no_grad():  # spiking in every block
            for conv in (*m.enc, *m.dec):
                conv.weight.mul_(3.0)
    return m.eval()


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    src_len = torch.tensor([7, 3, 5])
    src = torch.randint(4, SV, (3, 7), generator=g)
    src[torch.arange(7)[None, :] >= src_len[:, None]] = 0
    tgt = torch.randint(4, TV, (3, 6), generator=g)
    tgt[:, 0] = BOS
    return src, src_len, tgt


@pytest.mark.parametrize("name,attention", CASES)
def test_decoder_is_causal_and_source_padding_changes_nothing(name, attention):
    m = _model(name, attention=attention)
    src, src_len, tgt = _batch()
    with torch.no_grad():
        a = m(src, src_len, tgt)
        changed = tgt.clone()
        changed[:, 4:] = 5
        b = m(src, src_len, changed)
        padded = m(torch.cat([src, torch.zeros(3, 4, dtype=torch.long)], 1), src_len, tgt)
    torch.testing.assert_close(a[:, :4], b[:, :4])  # outputs at t < 4 never see targets >= 4
    assert not torch.allclose(a[:, 4:], b[:, 4:])
    torch.testing.assert_close(a, padded, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name,attention", CASES)
def test_step_by_step_decoding_equals_teacher_forcing(name, attention):
    m = _model(name, seed=1, attention=attention)
    src, src_len, tgt = _batch(1)
    with torch.no_grad():
        want = m(src, src_len, tgt).log_softmax(-1)
        memory = m.encode(src, src_len)
        state = m.init_state(memory)
        for t in range(tgt.shape[1]):
            logp, state = m.step(memory, state, tgt[:, t])
            torch.testing.assert_close(logp, want[:, t], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("attention", ["dot", "convs2s"])
def test_spiking_model_spikes_and_counts_its_operations(attention):
    m = _model("conv_lif", seed=2, attention=attention)
    src, src_len, tgt = _batch(2)
    t_len = torch.full((3,), tgt.shape[1])
    ops = m.count_ops(src, src_len, tgt, t_len)
    assert 0.02 < ops["spikes"] / ops["neuron_steps"] < 0.9
    relu = _model("conv_relu", seed=2, attention=attention).count_ops(src, src_len, tgt, t_len)
    D, k, T, Ls, Lt = 24, 3, 3, 15.0, 18.0
    pair = float((src_len * 6).sum())
    query = Lt * D * D if attention == "convs2s" else 0.0  # the query projection
    assert relu["macs"] == (Ls + Lt) * 2 * D * D * k + 2 * pair * D + query + Lt * D * TV
    assert relu["acs"] == ((Ls + Lt) * D if attention == "convs2s" else 0.0)  # embeddings added to q and v
    # spiking: MACs only where analog values meet: the first blocks, the softmax, the source embeddings' share
    # of the context, the output layer; everything driven by spikes is an accumulate
    emb = pair * D if attention == "convs2s" else 0.0
    assert ops["macs"] == (Ls + Lt) * D * D * k + T * pair + emb + Lt * D * TV
    assert ops["acs"] > 0.0 and ops["macs"] < relu["macs"]


def _toy_pairs():
    """A tiny 'language': each German word maps to one English word, reversed order."""
    lex = {
        "ein": "a",
        "Hund": "dog",
        "rennt": "runs",
        "schnell": "fast",
        "rot": "red",
        "Ball": "ball",
        "Kind": "child",
        "spielt": "plays",
    }
    rng = np.random.default_rng(0)
    words = list(lex)
    de, en = [], []
    for _ in range(24):
        s = list(rng.choice(words, rng.integers(2, 5), replace=False))
        de.append(" ".join(s))
        en.append(" ".join(lex[w] for w in reversed(s)) + " .")
    return de, en


@pytest.mark.parametrize("name", ["gru", "conv_lif"])
def test_a_tiny_model_overfits_its_pairs_to_a_bleu_near_100(name):
    de, en = _toy_pairs()
    sv, tv = Vocab.build(de, tokenizer=cased_tokenize), Vocab.build(en, tokenizer=cased_tokenize)
    data = encode_pairs(de, en, sv, tv, max_len=10)
    torch.manual_seed(0)
    m = build_seq2seq(name, len(sv), len(tv), dim=32, layers=2, time_steps=3, dropout=0.0, max_len=12)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    src, s_len, tgt, _ = data.batch(np.arange(len(data)))
    m.train()
    for _ in range(60 if name == "gru" else 120):  # BLEU 100 after 25 / 75 steps when this was written
        loss, _, _ = seq2seq_loss(m, src, s_len, tgt, smoothing=0.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if hasattr(m, "clamp_"):
            m.clamp_()
    greedy = translate(m, data, tv)
    beam = translate(m, data, tv, beam=3)
    assert bleu(greedy, en)["bleu"] > 90, list(zip(greedy, en))[:4]
    assert bleu(beam, en)["bleu"] > 90
    assert "BLEU" in bleu(greedy, en)["signature"] or "nrefs" in bleu(greedy, en)["signature"]
    ids = greedy_decode(m, src[:2], s_len[:2])
    assert all(EOS not in seq for seq in ids)  # markers are stripped


def test_bleu_is_sacrebleu_on_detokenized_text():
    refs = ["A dog runs in the park.", "Two children play football."]
    assert bleu(refs, refs)["bleu"] == pytest.approx(100.0)
    assert bleu(["A dog runs.", "Children play."], refs)["bleu"] < 40


@pytest.mark.parametrize("name", SEQ2SEQ_MODELS)
def test_attention_weights_are_recorded_per_target_position(name):
    m = _model(name, seed=3)
    src, src_len, tgt = _batch(3)
    weights: list = []
    with torch.no_grad():
        logits = m(src, src_len, tgt, attention=weights)
        assert torch.equal(logits, m(src, src_len, tgt))  # recording changes nothing
    (a,) = weights
    assert a.shape == (3, tgt.shape[1], src.shape[1])
    torch.testing.assert_close(a.sum(-1), torch.ones(3, tgt.shape[1]))
    assert float(a[torch.arange(7)[None, None, :].expand_as(a) >= src_len[:, None, None]].abs().max()) == 0.0


def test_attention_stats_tell_uniform_from_sharp_attention():
    from bioSNN.nn.seq2seq import attention_stats

    de, en = _toy_pairs()
    sv, tv = Vocab.build(de, tokenizer=cased_tokenize), Vocab.build(en, tokenizer=cased_tokenize)
    data = encode_pairs(de, en, sv, tv, max_len=10)
    torch.manual_seed(0)
    m = build_seq2seq("conv_relu", len(sv), len(tv), dim=16, layers=1, dropout=0.0, max_len=30, attention="scaled")
    lens = data.src_len.astype(float)
    t_pos = data.tgt_len - 1  # valid target positions of each pair
    with torch.no_grad():
        m.log_scale.fill_(-float("inf"))  # scores x 0: uniform weights over each source
    r = attention_stats(m, data)
    assert r["target_positions"] == int(t_pos.sum())
    assert r["entropy_over_uniform"] == pytest.approx(1.0, abs=1e-6)
    assert r["mean_max_weight"] == pytest.approx(float((t_pos / lens).sum() / t_pos.sum()), rel=1e-6)
    with torch.no_grad():
        m.log_scale.fill_(8.0)  # scores x 3000: one source word takes (almost) all
    r = attention_stats(m, data)
    assert r["entropy_over_uniform"] < 0.05 and r["mean_max_weight"] > 0.95


# ------------------------------------------------------------------------------------ loading a stored translator
def _stored_translator(folder, vocab_name="vocab.json", vocab=None):
    import json

    from bioSNN import bundles
    from bioSNN.data.text import SPECIALS, Vocab
    from bioSNN.models.seq2seq import seq2seq_from_spec
    from bioSNN.nn.seq2seq import vocab_digest
    from bioSNN.nn.sequence import text_bundle

    src = Vocab(SPECIALS + ("ein", "hund", "rennt", "."))
    tgt = Vocab(SPECIALS + ("a", "dog", "runs", "."))
    spec = {
        "name": "gru",
        "dim": 8,
        "layers": 1,
        "kernel": 3,
        "time_steps": 2,
        "leak": 0.9,
        "dropout": 0.0,
        "max_len": 32,
        "surrogate": "linear",
        "src_vocab": len(src),
        "tgt_vocab": len(tgt),
        "attention": "convs2s",
        "source_max_len": 10,
    }
    torch.manual_seed(0)
    model = seq2seq_from_spec(spec)
    folder.mkdir(parents=True, exist_ok=True)
    bundles.write(
        folder / "gru.npz",
        text_bundle(model, spec, {}, extra={"vocab": vocab_name, "vocab_sha256": vocab_digest(src, tgt)}),
    )
    (folder / "vocab.json").write_text(
        json.dumps(vocab if vocab is not None else {"source": list(src.tokens), "target": list(tgt.tokens)})
    )
    return folder / "gru.npz"


def test_a_stored_translator_loads_and_translates_empty_input_to_empty_output(tmp_path):
    from bioSNN.models.seq2seq import load_translator

    tr = load_translator(_stored_translator(tmp_path))
    out = tr.translate(["Ein Hund rennt .", "", "   "])
    assert out[1:] == ["", ""] and isinstance(out[0], str)
    assert tr.translate([]) == []
    with pytest.raises(TypeError, match="list of sentences"):
        tr.translate("Ein Hund")


@pytest.mark.parametrize(
    "vocab_name, vocab, message",
    [
        ("../../../../etc/hostname", None, "extra\\['vocab'\\] must name a file beside the bundle"),
        ("vocab.json", ["a", "b"], "a JSON object with 'source' and 'target'"),
        ("vocab.json", {"source": []}, "a JSON object with 'source' and 'target'"),
        (
            "vocab.json",
            {
                "source": ["<pad>", "<unk>", "<bos>", "<eos>", "x", "x", "y", "z"],
                "target": ["<pad>", "<unk>", "<bos>", "<eos>", "a", "dog", "runs", "."],
            },
            "source vocabulary: a vocabulary holds each token once",
        ),
        (
            "vocab.json",
            {
                "source": ["<pad>", "<unk>", "<bos>", "<eos>", "ein", "hund", "rennt", "."],
                "target": ["<pad>", "<unk>", "<bos>", "<eos>", "dog", "a", "runs", "."],
            },  # two words swapped
            "not the vocabularies gru.npz was trained with",
        ),
        (
            "vocab.json",
            {
                "source": ["<pad>", "<unk>", "<bos>", "<eos>", "ein"],
                "target": ["<pad>", "<unk>", "<bos>", "<eos>", "a", "dog", "runs", "."],
            },
            "the model has 8 / 8",
        ),
    ],
)
def test_a_translator_bundle_with_a_bad_vocabulary_is_refused_naming_the_file(tmp_path, vocab_name, vocab, message):
    from bioSNN.bundles import BundleError
    from bioSNN.models.seq2seq import load_translator

    path = _stored_translator(tmp_path / "run", vocab_name, vocab)
    with pytest.raises(BundleError, match=message) as e:
        load_translator(path)
    assert "run" in str(e.value)


def test_a_vocabulary_linked_out_of_the_bundles_folder_is_refused(tmp_path):
    from bioSNN.bundles import BundleError
    from bioSNN.models.seq2seq import load_translator

    path = _stored_translator(tmp_path / "run")
    outside = tmp_path / "elsewhere.json"
    (tmp_path / "run" / "vocab.json").rename(outside)
    (tmp_path / "run" / "vocab.json").symlink_to(outside)
    with pytest.raises(BundleError, match="leads out of"):
        load_translator(path)
