"""LITE-SNN for sequence-to-sequence learning: Multi30k German → English with a convolutional spiking
encoder–decoder with attention, the same network with ReLU, and a GRU encoder–decoder with attention.

Word vocabularies from the training side of each language (words seen ``min_freq`` times; case kept), sentences
cut at ``max_len`` tokens. Every model is trained by the same loop (Adam, label-smoothed cross-entropy, teacher
forcing, length-bucketed batches); after each epoch greedy BLEU on ``val`` selects the state that is tested on
``test_2016_flickr`` with greedy and beam-search decoding. BLEU: sacrebleu on detokenized output (signature in
``metrics.json``). Energy per translated sentence: the operations of a teacher-forced pass over the reference
(what incremental decoding with cached activity costs; 45 nm figures of :mod:`bioSNN.energy`), the output layer
(the same for all models) also given on its own. Writes ``metrics.json``, ``translate.png``, example translations
and a bundle per model (plus the two vocabularies); checkpoints per epoch and inside epochs (``--resume``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch

from bioSNN import bundles, energy, viz
from bioSNN.atomic import write_json
from bioSNN.config import ConfigError, validate
from bioSNN.data.text import Vocab
from bioSNN.models.seq2seq import SEQ2SEQ_MODELS, Attention, Seq2SeqModel, seq2seq_from_spec
from bioSNN.nn.seq2seq import ParallelData, bleu, cased_tokenize, encode_pairs, seq2seq_loss, translate, vocab_digest
from bioSNN.nn.sequence import SeqCheckpoint, count_parameters, fit_loop, length_batches, prepare_run, text_bundle
from bioSNN.nn.train import step_schedule

log = logging.getLogger(__name__)

SUMMARY = "LITE-SNN translation: spiking conv encoder-decoder with attention vs ReLU and GRU (Multi30k De->En)"


@dataclass(frozen=True)
class Config:
    models: tuple[Seq2SeqModel, ...] = SEQ2SEQ_MODELS
    source: Literal["de", "en"] = "de"
    dim: int = 256  # embedding / channel / GRU width
    layers: int = 3  # convolution blocks in the encoder and in the decoder
    kernel: int = 3
    time_steps: int = 4  # T of the spiking model (all positions run in parallel)
    leak: float = 0.9  # initial λ (trained)
    surrogate: Literal["linear", "fast_sigmoid"] = "linear"  # of the LIF blocks (linear: as DIET-SNN)
    attention: Attention = "convs2s"  # of the conv models: models.seq2seq
    dropout: float = 0.2
    min_freq: int = 2
    max_len: int = 40  # tokens per sentence kept
    epochs: int = 10
    lr: float = 1e-3  # Adam
    lr_milestones: tuple[float, ...] = ()  # fractions of the epochs after which the rate drops x0.1
    batch_size: int = 64
    clip: float = 1.0
    smoothing: float = 0.1  # label smoothing
    beam: int = 5  # beam width of the test decoding (greedy is reported too)
    train_limit: int = 0  # first N training pairs (0: all 29,000)
    select_limit: int = 0  # first N val pairs scored after each epoch (0: all 1,014)
    test_limit: int = 0  # first N test pairs (0: all 1,000)
    examples: int = 6
    threads: int = 2
    checkpoint_seconds: float = 600.0
    seed: int = 0

    RULES: ClassVar[dict] = {
        "dim": ">=1",
        "layers": ">=1",
        "kernel": ">=1",
        "time_steps": ">=1",
        "leak": "[0,1]",
        "dropout": "[0,1)",
        "min_freq": ">=1",
        "max_len": ">=1",
        "epochs": ">=0",
        "lr": ">0",
        "lr_milestones": "(0,1]",
        "batch_size": ">=1",
        "clip": ">=0",
        "smoothing": "[0,1)",
        "beam": ">=1",
        "train_limit": ">=0",
        "select_limit": ">=0",
        "test_limit": ">=0",
        "examples": ">=0",
        "threads": ">=1",
        "checkpoint_seconds": ">=0",
        "seed": ">=0",
    }

    def cross_check(self) -> None:
        if not self.models or len(set(self.models)) != len(self.models):
            raise ConfigError(f"models: name each model once, got {list(self.models)}")
        if self.kernel % 2 == 0:
            raise ConfigError(f"kernel: must be odd (centred encoder convolutions), got {self.kernel}")


RESUMABLE: tuple[str, ...] = ("checkpoint_seconds", "epochs", "beam", "examples")

PRESETS = {
    "quick": {
        "train_limit": 3000,
        "epochs": 3,
        "dim": 64,
        "layers": 2,
        "lr": 3e-3,
        "select_limit": 100,
        "test_limit": 100,
        "beam": 3,
        "max_len": 20,
    },
    "full": {},
}

TEST_SPLIT = "test_2016_flickr"


def data_of(cfg: Config):
    from bioSNN import data

    ds = data.load("multi30k")
    tgt_lang = "en" if cfg.source == "de" else "de"

    def side(split, lang):
        s = ds.splits[split]
        return s.source if lang == ds.source_lang else s.target

    def limit(split, n):
        src, tgt = side(split, cfg.source), side(split, tgt_lang)
        return (src[:n], tgt[:n]) if n else (src, tgt)

    tr_src, tr_tgt = limit("train", cfg.train_limit)
    src_vocab = Vocab.build(tr_src, cfg.min_freq, tokenizer=cased_tokenize)
    tgt_vocab = Vocab.build(tr_tgt, cfg.min_freq, tokenizer=cased_tokenize)
    out = {
        "train": encode_pairs(tr_src, tr_tgt, src_vocab, tgt_vocab, cfg.max_len),
        "val": encode_pairs(*limit("val", cfg.select_limit), src_vocab, tgt_vocab, cfg.max_len),
        "test": encode_pairs(*limit(TEST_SPLIT, cfg.test_limit), src_vocab, tgt_vocab, cfg.max_len),
    }
    sources = {"val": limit("val", cfg.select_limit)[0], "test": limit(TEST_SPLIT, cfg.test_limit)[0]}
    return src_vocab, tgt_vocab, out, sources


def _ops(model, d: ParallelData) -> dict:
    tot: dict = {}
    for idx in length_batches(d.src_len, 128, 0, shuffle=False):
        src, s_len, tgt, t_len = d.batch(idx)
        r = model.count_ops(src, s_len, tgt[:, :-1], t_len - 1)
        for k, v in r.items():
            tot[k] = tot.get(k, 0.0) + v
    n = tot.pop("sentences")
    e = tot["macs"] * energy.E_MAC_PJ + tot["acs"] * energy.E_AC_PJ
    out = {
        "macs_per_sentence": tot["macs"] / n,
        "acs_per_sentence": tot["acs"] / n,
        "energy_nj_per_sentence": e / n * 1e-3,
        "energy_nj_without_output_layer": (e - tot["output_layer_macs"] * energy.E_MAC_PJ) / n * 1e-3,
        "energy_model": energy.CONSTANTS_NOTE,
    }
    if tot["neuron_steps"]:
        out["mean_spike_rate"] = tot["spikes"] / tot["neuron_steps"]
    return out


def run(cfg: Config, run_dir: Path, progress: bool = True) -> dict:
    validate(cfg)
    t_start = time.perf_counter()
    run_dir, ckpts = prepare_run(run_dir, cfg.threads)
    src_vocab, tgt_vocab, d, sources = data_of(cfg)
    write_json(run_dir / "vocab.json", {"source": src_vocab.to_json(), "target": tgt_vocab.to_json()})
    prov = bundles.provenance("multi30k", cfg.seed)
    res: dict = {"models": {}}
    for name in cfg.models:
        # a model's seed follows its name, not its place in ``models``: one model trained alone (one per core, see
        # lite_translate_merge) starts from the same weights and batches as in a run of all three
        k = SEQ2SEQ_MODELS.index(name)
        torch.manual_seed(cfg.seed * 1000 + k)
        # max_len: positions for the longest decoding (1.5 x the source + 10 tokens) after <bos>
        spec = {
            "name": name,
            "dim": cfg.dim,
            "layers": cfg.layers,
            "kernel": cfg.kernel,
            "time_steps": cfg.time_steps,
            "leak": cfg.leak,
            "dropout": cfg.dropout,
            "max_len": 2 * cfg.max_len + 12,
            "surrogate": cfg.surrogate,
            "src_vocab": len(src_vocab),
            "tgt_vocab": len(tgt_vocab),
            "attention": cfg.attention,
            "source_max_len": cfg.max_len,
        }
        model = seq2seq_from_spec(spec)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        train = d["train"]

        def loss_of(idx, model=model):
            src, s_len, tgt, _ = train.batch(idx)
            return seq2seq_loss(model, src, s_len, tgt, cfg.smoothing)

        def score(model=model):
            return bleu(translate(model, d["val"], tgt_vocab), d["val"].references)["bleu"]

        seed = cfg.seed * 1000 + k
        history, best = fit_loop(
            model,
            opt,
            SeqCheckpoint(ckpts / f"{name}.npz", spec, prov),
            len(train),
            lambda e, seed=seed: length_batches(train.src_len, cfg.batch_size, seed * 1000 + e),
            loss_of,
            score,
            cfg.epochs,
            cfg.clip,
            name,
            progress,
            cfg.checkpoint_seconds,
            step_schedule(opt, cfg.epochs, cfg.lr_milestones),
            score_name="bleu",
        )
        t0 = time.perf_counter()
        greedy = translate(model, d["test"], tgt_vocab)
        t_greedy = time.perf_counter() - t0
        beam = translate(model, d["test"], tgt_vocab, beam=cfg.beam) if cfg.beam > 1 else greedy
        r_greedy, r_beam = bleu(greedy, d["test"].references), bleu(beam, d["test"].references)
        res["models"][name] = {
            "test_bleu_greedy": r_greedy["bleu"],
            "test_bleu_beam": r_beam["bleu"],
            "beam": cfg.beam,
            "val_bleu_greedy": best["score"],
            "best_epoch": best["epoch"],
            "bleu_signature": r_greedy["signature"],
            "parameters": count_parameters(model),
            "parameters_without_embeddings": count_parameters(model, False),
            **_ops(model, d["test"]),
            "neurons": best["neurons"],
            "history": history,
            "seconds_per_epoch": float(np.mean(history["seconds"])) if history["seconds"] else 0.0,
            "greedy_decode_seconds": t_greedy,
            "examples": [
                {
                    "source": sources["test"][i],
                    "reference": d["test"].references[i],
                    "greedy": greedy[i],
                    "beam": beam[i],
                }
                for i in range(min(cfg.examples, len(greedy)))
            ],
        }
        bundles.write(
            run_dir / f"{name}.npz",
            text_bundle(
                model, spec, prov, extra={"vocab": "vocab.json", "vocab_sha256": vocab_digest(src_vocab, tgt_vocab)}
            ),
        )
        write_json(run_dir / "partial.json", res)
        log.info(
            "%s: test BLEU %.2f greedy, %.2f beam %d; %.1f nJ per sentence",
            name,
            r_greedy["bleu"],
            r_beam["bleu"],
            cfg.beam,
            res["models"][name]["energy_nj_per_sentence"],
        )
    res["claims"] = _claims(res["models"])
    main = "conv_lif" if "conv_lif" in res["models"] else cfg.models[0]
    _figure(run_dir / "translate.png", res)
    # metrics' "accuracy" (a fraction, as every experiment reports): the main model's test BLEU / 100
    return {
        "accuracy": res["models"][main]["test_bleu_beam"] / 100,
        "main": main,
        "main_bundle": f"{main}.npz",
        "test_split": TEST_SPLIT,
        "direction": f"{cfg.source}->{'en' if cfg.source == 'de' else 'de'}",
        "n_train": len(d["train"]),
        "n_val": len(d["val"]),
        "n_test": len(d["test"]),
        "vocab": {"source": len(src_vocab), "target": len(tgt_vocab)},
        **res,
        "train_seconds": time.perf_counter() - t_start,
    }


def _claims(models: dict) -> dict:
    out = {}
    lif = models.get("conv_lif")
    if lif and "conv_relu" in models:
        out["lif_minus_relu_bleu"] = lif["test_bleu_beam"] - models["conv_relu"]["test_bleu_beam"]
    if lif and "gru" in models:
        g = models["gru"]
        out["lif_over_gru_bleu"] = lif["test_bleu_beam"] / g["test_bleu_beam"] if g["test_bleu_beam"] else None
        out["lif_over_gru_energy"] = lif["energy_nj_per_sentence"] / g["energy_nj_per_sentence"]
        out["lif_over_gru_parameters"] = lif["parameters"] / g["parameters"]
    return out


def _figure(path: Path, res: dict) -> None:
    fig, axes = viz.figure(1, 2, figsize=(10, 3.8), gridspec_kw={"wspace": 0.3})
    for name, r in res["models"].items():
        axes[0].plot(r["history"]["epoch"], r["history"]["select_bleu"], marker="o", ms=3, label=name)
        axes[1].scatter(r["energy_nj_per_sentence"] / 1e3, r["test_bleu_beam"], label=name)
        axes[1].scatter(
            r["energy_nj_without_output_layer"] / 1e3,
            r["test_bleu_beam"],
            marker="x",
            color=axes[1].collections[-1].get_facecolor()[0],
        )
    axes[0].set(xlabel="epoch", ylabel="val BLEU (greedy)", title="Multi30k: selection BLEU")
    axes[1].set(
        xlabel="compute energy per sentence (µJ, 45 nm; x: without the output layer)",
        ylabel="test BLEU (beam)",
        title="BLEU vs energy",
    )
    axes[1].set_xlim(left=0)
    for ax in axes:
        ax.legend(fontsize=7)
    viz.save(fig, path)
