"""LITE-SNN: LIF membranes as the only recurrence of a sequence model (thesis part 5), against LSTM/GRU/CNN.

Task ``sst2`` (Stanford Sentiment Treebank, binary; GLUE train phrases, dev sentences for selection, the labelled
SST test sentences for the number): every model of ``models`` is trained by the same loop on the same word ids
(vocabulary from the training texts), with Adam, for ``epochs``; the state with the best dev accuracy is tested.

- ``lite``: embedding → [Linear → LIF (leak, threshold trained; soft reset)] × depth → readout, each token fed for
  ``steps_per_token`` steps, membranes carried across tokens, readout = mean over the valid steps;
  ``lite_last``: the same with the read-out of the last token only (a vanilla recurrent read-out);
- ``conv_attention`` / ``conv_relu``: convolutions over the tokens with LIF / ReLU activations, attention pooling;
- ``lstm``, ``gru``: the last valid hidden state → readout; ``cnn``: Kim (2014), filters of 3, 4, 5 words.

Reports per model: parameters (with and without the embedding table, which all models share in size), test
accuracy, compute energy per sentence (45 nm model of :mod:`bioSNN.energy`), spike rates, training seconds per
epoch; accuracy per sentence-length bin; and the gradient study: the norm of ∂loss/∂(embedding of token i) at the
first and last token vs sentence length, on test sentences, for the trained models (``gradient_models``).
Writes ``metrics.json``, ``lite.png``, ``vocab.json`` and a bundle per model; every model checkpoints per epoch and
every ``checkpoint_seconds`` inside one (``--resume``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch

from bioSNN import bundles, viz
from bioSNN.atomic import write_json
from bioSNN.config import ConfigError, validate
from bioSNN.data.text import Vocab, pad_batch
from bioSNN.models.sequence import build_text_model
from bioSNN.nn.sequence import (
    SeqCheckpoint,
    TokenData,
    count_parameters,
    evaluate_tokens,
    fit_tokens,
    prepare_run,
    text_bundle,
)
from bioSNN.nn.train import step_schedule

log = logging.getLogger(__name__)

SUMMARY = "LITE-SNN: LIF layers without recurrent weights for sequences (SST-2) vs LSTM / GRU / CNN"

TextModel = Literal["lite", "lite_last", "conv_attention", "conv_relu", "lstm", "gru", "cnn"]


@dataclass(frozen=True)
class Config:
    task: Literal["sst2"] = "sst2"
    models: tuple[TextModel, ...] = ("lite", "lite_last", "lstm", "gru", "cnn", "conv_attention")
    embed: int = 128  # embedding width (trained from scratch: no pretrained vectors offline)
    hidden: int = 128  # LIF / LSTM / GRU width
    depth: int = 2  # LIF layers (lite) or convolution blocks (conv_*)
    steps_per_token: int = 5  # T: time steps each token is presented (conv_*: time steps of the whole sentence)
    leak: float = 0.9  # initial λ of the LIF neurons (trained)
    dropout: float = 0.3
    min_freq: int = 1  # words seen fewer times in the training texts map to <unk>
    max_len: int = 64  # tokens per sentence kept (SST-2's longest has 56)
    epochs: int = 6
    lr: float = 2e-3  # Adam
    lr_milestones: tuple[float, ...] = ()  # fractions of the epochs after which the rate drops x0.1
    weight_decay: float = 0.0
    batch_size: int = 64
    clip: float = 5.0  # gradient-norm clipping (0: none)
    train_limit: int = 0  # first N training phrases (0: all 67,349)
    gradient_models: tuple[TextModel, ...] = ("lite", "lite_last", "lstm", "conv_attention")
    gradient_sentences: int = 400  # test sentences in the gradient study
    threads: int = 2
    checkpoint_seconds: float = 600.0
    seed: int = 0

    RULES: ClassVar[dict] = {
        "embed": ">=1",
        "hidden": ">=1",
        "depth": ">=1",
        "steps_per_token": ">=1",
        "leak": "[0,1]",
        "dropout": "[0,1)",
        "min_freq": ">=1",
        "max_len": ">=1",
        "epochs": ">=0",
        "lr": ">0",
        "lr_milestones": "(0,1]",
        "weight_decay": ">=0",
        "batch_size": ">=1",
        "clip": ">=0",
        "train_limit": ">=0",
        "gradient_sentences": ">=0",
        "threads": ">=1",
        "checkpoint_seconds": ">=0",
        "seed": ">=0",
    }

    def cross_check(self) -> None:
        if not self.models:
            raise ConfigError("models: name at least one model")
        if len(set(self.models)) != len(self.models):
            raise ConfigError(f"models: each model once, got {list(self.models)}")
        missing = [m for m in self.gradient_models if m not in self.models]
        if missing:
            raise ConfigError(f"gradient_models: {missing} are not trained in this run (models = {list(self.models)})")


RESUMABLE: tuple[str, ...] = ("checkpoint_seconds", "epochs", "gradient_sentences")

PRESETS = {
    "quick": {
        "train_limit": 8000,
        "epochs": 3,
        "lr": 5e-3,
        "embed": 64,
        "hidden": 64,
        "gradient_sentences": 100,
        "models": ("lite", "lite_last", "lstm", "cnn", "conv_attention"),
    },
    "full": {},
}


def _model_args(cfg: Config, name: str) -> dict:
    return {
        "name": "lite" if name == "lite_last" else name,
        "embed": cfg.embed,
        "hidden": cfg.hidden,
        "steps_per_token": cfg.steps_per_token,
        "depth": cfg.depth,
        "dropout": cfg.dropout,
        "leak": cfg.leak,
        "readout": "last" if name == "lite_last" else "mean",
    }


def build(cfg: Config, name: str, vocab_size: int, n_classes: int) -> torch.nn.Module:
    return build_text_model(vocab_size=vocab_size, n_classes=n_classes, **_model_args(cfg, name))


def sst2_data(cfg: Config) -> tuple[Vocab, dict[str, TokenData]]:
    """Vocabulary of the training texts and the three splits as token data."""
    from bioSNN import data

    ds = data.load("sst2")
    train = ds.splits["train"]
    texts, labels = train.texts, train.labels
    if cfg.train_limit:
        texts, labels = texts[: cfg.train_limit], labels[: cfg.train_limit]
    vocab = Vocab.build(texts, cfg.min_freq)
    out = {}
    for split, (tx, lab) in {
        "train": (texts, labels),
        "dev": (ds.splits["dev"].texts, ds.splits["dev"].labels),
        "test": (ds.splits["test"].texts, ds.splits["test"].labels),
    }.items():
        ids = [vocab.encode(t) or [1] for t in tx]  # an empty phrase becomes one <unk>
        tok, lens = pad_batch(ids, cfg.max_len)
        out[split] = TokenData(tok, lens, np.asarray(lab, np.int64))
    return vocab, out


LENGTH_BINS = (1, 10, 20, 30, 40, 65)


def accuracy_by_length(pred: np.ndarray, data: TokenData) -> dict:
    out = {}
    for lo, hi in zip(LENGTH_BINS[:-1], LENGTH_BINS[1:]):
        sel = (data.lengths >= lo) & (data.lengths < hi)
        if sel.any():
            out[f"{lo}-{hi - 1}"] = {"n": int(sel.sum()), "accuracy": float((pred[sel] == data.labels[sel]).mean())}
    return out


def gradient_study(model: torch.nn.Module, data: TokenData, n: int) -> dict:
    """Per test sentence (the first ``n``, one at a time, dropout off): ‖∂loss/∂e_i‖ for the embedding e_i of
    its first and last token; means per length bin and their ratio, and the mean profile over relative position
    (10 bins)."""
    model.eval()
    emb = model.embedding
    rows = []
    for i in range(min(n, len(data))):
        tok, lens, y = data.batch(np.array([i]))
        grabbed = {}

        def hook(_m, _inp, out):
            out.retain_grad()
            grabbed["e"] = out
            return out

        h = emb.register_forward_hook(hook)
        try:
            logits = model(tok, lens)
            torch.nn.functional.cross_entropy(logits, y).backward()
        finally:
            h.remove()
        g = grabbed["e"].grad[0, : int(lens[0])].norm(dim=1).numpy()
        rows.append((int(lens[0]), g))
    model.zero_grad(set_to_none=True)
    out = {"bins": {}, "relative_position": None}
    for lo, hi in zip(LENGTH_BINS[:-1], LENGTH_BINS[1:]):
        sel = [g for L, g in rows if lo <= L < hi]
        if sel:
            first, last = float(np.mean([g[0] for g in sel])), float(np.mean([g[-1] for g in sel]))
            out["bins"][f"{lo}-{hi - 1}"] = {
                "n": len(sel),
                "first_token": first,
                "last_token": last,
                "first_over_last": first / last if last > 0 else float("inf"),
            }
    prof = np.zeros(10)
    cnt = np.zeros(10)
    for L, g in rows:
        if L >= 10:
            pos = (np.arange(L) * 10) // L
            np.add.at(prof, pos, g / max(g.mean(), 1e-30))
            np.add.at(cnt, pos, 1)
    if cnt.any():
        out["relative_position"] = (prof / np.maximum(cnt, 1)).tolist()
    return out


def run(cfg: Config, run_dir: Path, progress: bool = True) -> dict:
    validate(cfg)
    t_start = time.perf_counter()
    run_dir, ckpts = prepare_run(run_dir, cfg.threads)
    vocab, splits = sst2_data(cfg)
    write_json(run_dir / "vocab.json", {"tokens": vocab.to_json()})
    prov = bundles.provenance(cfg.task, cfg.seed)
    res: dict = {"models": {}}
    trained = {}
    for k, name in enumerate(cfg.models):
        torch.manual_seed(cfg.seed * 1000 + k)
        model = build(cfg, name, len(vocab), 2)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        spec = _model_args(cfg, name) | {"vocab_size": len(vocab), "n_classes": 2}
        history, best = fit_tokens(
            model,
            opt,
            SeqCheckpoint(ckpts / f"{name}.npz", spec, prov),
            splits["train"],
            splits["dev"],
            cfg.epochs,
            cfg.batch_size,
            cfg.seed * 1000 + k,
            cfg.clip,
            name,
            progress,
            cfg.checkpoint_seconds,
            step_schedule(opt, cfg.epochs, cfg.lr_milestones),
        )
        test = evaluate_tokens(model, splits["test"])
        dev = evaluate_tokens(model, splits["dev"])
        preds = test.pop("predictions")
        dev.pop("predictions")
        res["models"][name] = {
            "test_accuracy": test["accuracy"],
            "dev_accuracy": dev["accuracy"],
            "parameters": count_parameters(model),
            "parameters_without_embedding": count_parameters(model, False),
            **{k2: v for k2, v in test.items() if k2 != "accuracy"},
            "best_epoch": best["epoch"],
            "neurons": best["neurons"],
            "history": history,
            "seconds_per_epoch": float(np.mean(history["seconds"])) if history["seconds"] else 0.0,
            "accuracy_by_length": accuracy_by_length(preds, splits["test"]),
        }
        bundles.write(run_dir / f"{name}.npz", text_bundle(model, spec, prov, extra={"vocab": "vocab.json"}))
        trained[name] = model
        write_json(run_dir / "partial.json", res)
        log.info(
            "%s: test %.4f  dev %.4f  %.1f nJ/sentence  %d parameters (%d without embedding)",
            name,
            test["accuracy"],
            dev["accuracy"],
            test["energy_nj_per_sample"],
            res["models"][name]["parameters"],
            res["models"][name]["parameters_without_embedding"],
        )
    res["gradients"] = {
        name: gradient_study(trained[name], splits["test"], cfg.gradient_sentences) for name in cfg.gradient_models
    }
    res["claims"] = _claims(res["models"])
    main = "lite" if "lite" in res["models"] else cfg.models[0]
    metrics = {
        "accuracy": res["models"][main]["test_accuracy"],
        "main": main,
        "main_bundle": f"{main}.npz",
        "task": cfg.task,
        "vocab_size": len(vocab),
        "n_train": len(splits["train"]),
        "n_dev": len(splits["dev"]),
        "n_test": len(splits["test"]),
        **res,
        "train_seconds": time.perf_counter() - t_start,
    }
    _figure(run_dir / "lite.png", res)
    return metrics


def _claims(models: dict) -> dict:
    """The thesis targets on this run's numbers: LITE vs the best baseline and vs the LSTM."""
    if "lite" not in models:
        return {}
    lite = models["lite"]
    base = {k: v for k, v in models.items() if k in ("lstm", "gru", "cnn")}
    out = {}
    if base:
        best = max(base, key=lambda k: base[k]["test_accuracy"])
        out["best_baseline"] = best
        out["lite_minus_best_baseline"] = lite["test_accuracy"] - base[best]["test_accuracy"]
    if "lstm" in models:
        lstm = models["lstm"]
        out["parameters_over_lstm"] = lite["parameters"] / lstm["parameters"]
        out["parameters_without_embedding_over_lstm"] = (
            lite["parameters_without_embedding"] / lstm["parameters_without_embedding"]
        )
        out["energy_over_lstm"] = lite["energy_nj_per_sample"] / lstm["energy_nj_per_sample"]
    return out


def _figure(path: Path, res: dict) -> None:
    fig, axes = viz.figure(1, 4, figsize=(19, 3.8), gridspec_kw={"wspace": 0.35})
    models = res["models"]
    for name, r in models.items():
        axes[0].plot(r["history"]["epoch"], r["history"]["select_accuracy"], marker="o", ms=3, label=name)
        axes[1].scatter(r["energy_nj_per_sample"], r["test_accuracy"], label=name)
        axes[1].annotate(name, (r["energy_nj_per_sample"], r["test_accuracy"]), fontsize=7)
        bins = r["accuracy_by_length"]
        axes[3].plot(range(len(bins)), [b["accuracy"] for b in bins.values()], marker="o", ms=3, label=name)
    axes[0].set(xlabel="epoch", ylabel="dev accuracy", title="SST-2: selection accuracy")
    axes[1].set(
        xscale="log",
        xlabel="compute energy per sentence (nJ, 45 nm)",
        ylabel="test accuracy",
        title="accuracy vs energy",
    )
    for name, g in res["gradients"].items():
        bins = g["bins"]
        axes[2].plot(range(len(bins)), [b["first_over_last"] for b in bins.values()], marker="o", ms=3, label=name)
    if res["gradients"]:
        axes[2].set_xticks(range(len(bins)), list(bins), fontsize=7)
    axes[2].set(
        yscale="log",
        xlabel="sentence length (tokens)",
        ylabel="‖∂L/∂e_first‖ / ‖∂L/∂e_last‖",
        title="gradient reaching the first token",
    )
    if models:
        axes[3].set_xticks(
            range(len(bins := next(iter(models.values()))["accuracy_by_length"])), list(bins), fontsize=7
        )
    axes[3].set(xlabel="sentence length (tokens)", ylabel="test accuracy", title="accuracy vs length")
    for ax in axes:
        ax.legend(fontsize=7)
    viz.save(fig, path)
