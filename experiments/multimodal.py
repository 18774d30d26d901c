"""Thesis part 2: an image and an audio Diehl & Cook ensemble joined by cross-modal STDP synapses.

Training shows paired stimuli of the same class at the same time: every spoken digit of the FSDD training split
(at least once per epoch) with a seeded MNIST training image of its label. Variants, each trained with the same
presentations:

- ``image``: the image ensemble alone;  ``audio``: the audio ensemble alone;
- ``independent``: both ensembles, no cross-modal synapses, class votes combined;
- ``multimodal``: both ensembles joined by plastic excitatory cross-modal synapses (gain ``cross.gain``).

Labels come from the last ``n_label`` training pairs (weights frozen); the test pairs each FSDD test utterance
with MNIST test images of its label. The multimodal vote adds each ensemble's class scores normalised to one
unit per sample (:func:`bioSNN.brian.readout.combined_scores`). Robustness: the same test pairs with Gaussian
pixel noise on the images (``image_noise``: σ as a fraction of full scale) or white noise on the audio
(``audio_snr_db``), the other modality clean. Audio: log-mel spectrograms (librosa), time-warped to a fixed
number of frames, min–max scaled to 0–255 per utterance — the same input format as pixels.

``test_gains`` tests the trained multimodal network again at other cross-modal gains (0: its cross synapses off),
for a paired on/off comparison on the same ensembles (``multimodal_cross_on_vs_off``).

Writes ``metrics.json`` (accuracy per variant and condition), ``noise.png``, a bundle per variant and its test
responses (``variants/<v>/test_counts.npz``: spike counts per condition and ensemble, assignments, labels);
every variant checkpoints after each chunk and resumes.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal, get_args

import numpy as np
import torch

from bioSNN import bundles, data, noise, viz
from bioSNN.atomic import write_json
from bioSNN.brian import compression, readout
from bioSNN.brian.backend import Backend, BackendName, backend
from bioSNN.brian.network import CrossConfig, DiehlCookConfig, EnsembleNetwork
from bioSNN.brian.training import STDPTraining, previous_result
from bioSNN.config import ConfigError, validate
from bioSNN.data import DatasetName
from bioSNN.data.pairing import pair_by_label
from bioSNN.encoding import AudioCode, audio_inputs, code_audio, onoff_stats, utterance_features
from bioSNN.models.diehl_cook import FrozenDiehlCook

log = logging.getLogger(__name__)

SUMMARY = "image + audio Diehl&Cook ensembles joined by cross-modal STDP (Brian2); noise robustness"

Variant = Literal["image", "audio", "independent", "multimodal"]
VARIANTS = get_args(Variant)


@dataclass(frozen=True)
class Config:
    image_dataset: DatasetName = "mnist"  # grey-scale image dataset (mnist; digits for the quick preset)
    audio_dataset: DatasetName = "fsdd"
    n_pairs: int = 10000  # training presentations (pairs); >= the FSDD training utterances covers each once
    n_label: int = 2000  # last training pairs used to assign labels
    test_repeats: int = 1  # each FSDD test utterance is paired with this many test images
    variants: tuple[Variant, ...] = VARIANTS
    n_mels: int = 20  # audio features: mel bands ...
    n_frames: int = 20  # ... x frames = audio input neurons
    db_range: float = 80.0  # mel floor below each utterance's peak (dB): smaller = sparser audio input
    # "minmax": each utterance's log-mel map scaled to 0-255 like a grey image (n_mels*n_frames inputs);
    # "onoff": each feature z-scored with training-set statistics, then split into an ON input (z > 0) and an
    # OFF input (z < 0), full rate at |z| = onoff_z (2*n_mels*n_frames inputs): removes the spectral shape all
    # utterances share, which otherwise becomes every neuron's receptive field
    audio_code: AudioCode = "onoff"
    onoff_z: float = 2.0
    # spectral subtraction: this percentile of each mel band's power over the utterance, x2, is subtracted before
    # trimming and the dB floor (0 = off). Removes stationary background such as white noise.
    audio_denoise: float = 0.0
    image_noise: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)
    audio_snr_db: tuple[float, ...] = (10.0, 5.0, 0.0, -5.0)
    image: DiehlCookConfig = field(default_factory=lambda: DiehlCookConfig(n_exc=400))
    # 2 x 20 x 20 ON/OFF inputs; weight sum per input as in D&C (78 / 784)
    audio: DiehlCookConfig = field(default_factory=lambda: DiehlCookConfig(n_input=800, n_exc=400, w_sum=79.6))
    cross: CrossConfig = field(default_factory=lambda: CrossConfig(gain=1.0, w_init_high=0.05, w_sum=4.0))
    # after training, test the multimodal variant again with its cross-modal transmission at these gains (same
    # weights and thresholds, labels assigned again under each gain): 0 switches the trained cross synapses off,
    # so the comparison with the training gain is paired on the very same ensembles
    test_gains: tuple[float, ...] = ()
    eta_end: float = 1.0  # STDP annealing, as the compression experiment's eta_end (all plastic projections)
    compress: str = "full"  # or pruned, q<bits>, pruned+q<bits>: applied to input and cross-modal synapses
    prune_threshold: float = 0.02
    interval: int = 1000
    start: int = 5000
    column_levels: bool = True  # quantize per neuron (own levels, one gain each; see compression.quantize_columns)
    # carry each quantization step's rounding error into the next (compression.compress_with_feedback), as the
    # compression experiment's error_feedback: sub-level STDP changes add up instead of being snapped back
    error_feedback: bool = True
    backend: BackendName = "cpp_standalone"
    # the engine that labels and tests the trained networks (every noise condition and test gain): 'torch'
    # (bioSNN.models.diehl_cook, the same equations and time step, many pairs side by side) or 'brian2' (the
    # training backend, one pair after another)
    test_engine: Literal["torch", "brian2"] = "torch"
    # torch: pairs presented side by side in independent runs from the initial state (0: one run per chunk pairs,
    # as many fresh starts as the Brian2 engine makes)
    test_streams: int = 0
    seed: int = 0

    RULES: ClassVar[dict] = {
        "n_pairs": ">=1",
        "n_label": ">=1",
        "test_repeats": ">=1",
        "n_mels": ">=1",
        "n_frames": ">=1",
        "db_range": ">0",
        "onoff_z": ">0",
        "audio_denoise": "[0,100)",
        "image_noise": ">=0",
        "test_gains": ">=0",
        "eta_end": "(0,1]",
        "prune_threshold": ">=0",
        "interval": ">=1",
        "start": ">=0",
        "seed": ">=0",
        "test_streams": ">=0",
    }

    def cross_check(self) -> None:
        if not self.variants or len(set(self.variants)) != len(self.variants):
            raise ConfigError(
                f"variants: name each of {list(VARIANTS)} at most once, at least one; got {list(self.variants)}"
            )
        if self.n_label > self.n_pairs:
            raise ConfigError(f"n_label: at most n_pairs ({self.n_pairs}), got {self.n_label}")
        if self.audio.n_input != _audio_inputs(self):
            raise ConfigError(
                f"audio.n_input: must be {_audio_inputs(self)} (n_mels*n_frames, twice that for "
                f"audio_code 'onoff'), got {self.audio.n_input}"
            )
        try:
            compression.CompressionConfig.from_variant(self.compress)
        except ValueError as e:
            raise ConfigError(f"compress: {e}") from None


# nothing may change when a multimodal run resumes: each variant trains on one fixed sequence of pairs
RESUMABLE: tuple[str, ...] = ()

PRESETS = {
    # minutes on 2 cores: the embedded 8x8 digits as images, a subset of FSDD, 40 neurons per ensemble
    "quick": {
        "image_dataset": "digits",
        "n_pairs": 1500,
        "n_label": 500,
        "n_mels": 8,
        "n_frames": 8,
        "image_noise": (0.4, 0.8),
        "audio_snr_db": (5.0, -5.0),
        "image": {"n_input": 64, "n_exc": 40, "w_sum": 12.8, "max_rate": 255.0, "chunk": 250},
        "audio": {"n_input": 128, "n_exc": 40, "w_sum": 12.8, "max_rate": 255.0, "chunk": 250},
        "cross": {"w_sum": 1.0},
        "interval": 250,
        "start": 500,
    },
    "full": {},
}


def _audio_features(ds, idx: np.ndarray, cfg: Config, snr_db: float | None = None, seed: int = 0) -> np.ndarray:
    """``(len(idx), n_mels * n_frames)`` float32 log-mel features (dB)."""
    return utterance_features(
        ds,
        idx,
        "mel",
        cfg.n_mels,
        cfg.n_frames,
        cfg.db_range,
        snr_db,
        seed,
        denoise_percentile=cfg.audio_denoise or None,
    )


def _audio_inputs(cfg: Config) -> int:
    return audio_inputs(cfg.n_mels, cfg.n_frames, cfg.audio_code)


def prepare(cfg: Config) -> dict:
    """Stimulus arrays of both modalities (train, test, and every corrupted test copy) and the id sequences."""
    img_ds, aud_ds = data.load(cfg.image_dataset), data.load(cfg.audio_dataset)
    if cfg.image.n_input != img_ds.x_train[0].size:  # audio.n_input is checked with the config
        raise ValueError(
            f"image.n_input must be {img_ds.x_train[0].size} (the pixels of {cfg.image_dataset}), "
            f"got {cfg.image.n_input}"
        )
    a_train, a_test = np.flatnonzero(~aud_ds.is_test), np.flatnonzero(aud_ds.is_test)
    ya_train, ya_test = aud_ds.labels[a_train], aud_ds.labels[a_test]
    # train pairs (ids into the train stimulus blocks)
    pa, pi = pair_by_label(ya_train, img_ds.y_train, cfg.n_pairs, seed=cfg.seed)
    # test pairs: each test utterance with `test_repeats` test images of its class
    ta, ti = pair_by_label(ya_test, img_ds.y_test, len(a_test) * cfg.test_repeats, seed=cfg.seed + 1)
    n_img_tr = len(img_ds.x_train)
    imgs = [img_ds.x_train.reshape(n_img_tr, -1), img_ds.x_test.reshape(len(img_ds.x_test), -1)]
    test_img_ids = {"clean": n_img_tr + ti}
    offset = n_img_tr + len(img_ds.x_test)
    test_imgs = imgs[1][ti]
    for k, sigma in enumerate(cfg.image_noise):
        imgs.append(noise.gaussian_pixel_noise(test_imgs, sigma, seed=cfg.seed + 10 + k))
        test_img_ids[f"image_noise={sigma}"] = offset + np.arange(len(ti))
        offset += len(ti)
    f_train = _audio_features(aud_ds, a_train, cfg)
    stats = onoff_stats(f_train)  # training utterances only

    def code(feats):
        return code_audio(feats, cfg.audio_code, stats, cfg.onoff_z)

    auds = [code(f_train), code(_audio_features(aud_ds, a_test, cfg))]
    test_aud_ids = {"clean": len(a_train) + ta}
    offset = len(a_train) + len(a_test)
    for snr in cfg.audio_snr_db:
        auds.append(code(_audio_features(aud_ds, a_test[ta], cfg, snr, seed=cfg.seed + 100)))
        test_aud_ids[f"audio_snr={snr}dB"] = offset + np.arange(len(ta))
        offset += len(ta)
    conditions = {"clean": (test_img_ids["clean"], test_aud_ids["clean"])}
    conditions.update({k: (v, test_aud_ids["clean"]) for k, v in test_img_ids.items() if k != "clean"})
    conditions.update({k: (test_img_ids["clean"], v) for k, v in test_aud_ids.items() if k != "clean"})
    return {
        "images": np.concatenate(imgs),
        "audio": np.concatenate(auds),
        "train": (pi, pa),
        "train_labels": ya_train[pa],
        "test_labels": ya_test[ta],
        "conditions": conditions,
        "n_classes": img_ds.n_classes,
    }


def _ensembles(variant: str) -> tuple[str, ...]:
    return {"image": ("image",), "audio": ("audio",)}.get(variant, ("image", "audio"))


def same_test(conditions: dict, names: tuple[str, ...]) -> dict[str, str]:
    """For each test condition, the first condition that shows the ensembles ``names`` the same stimuli (itself
    if none): an image-only network tested with noisy audio sees exactly its clean test."""
    first, out = {}, {}
    for cond, (img_ids, aud_ids) in conditions.items():
        ids = {"image": img_ids, "audio": aud_ids}
        out[cond] = first.setdefault(tuple(np.asarray(ids[n]).tobytes() for n in names), cond)
    return out


def train_variant(cfg: Config, variant: str, d: dict, out: Path, progress: bool) -> dict:
    """Train, label and test one variant in ``out``; resumes from ``out/checkpoint.npz`` (see
    :class:`bioSNN.brian.training.STDPTraining`), returns at once when the variant has finished before."""
    out.mkdir(parents=True, exist_ok=True)
    if (prev := previous_result(out)) is not None:
        return prev
    names = _ensembles(variant)
    configs = {n: dataclasses.replace(getattr(cfg, n), seed=cfg.seed) for n in names}
    stimuli = {"image": d["images"], "audio": d["audio"]}
    cross = cfg.cross if variant == "multimodal" else None
    comp = compression.CompressionConfig.from_variant(
        cfg.compress,
        cfg.prune_threshold,
        cfg.interval,
        cfg.start,
        column_levels=cfg.column_levels,
        error_feedback=cfg.error_feedback,
    )
    be = Backend.for_run(cfg.backend, out)
    train_ids = {"image": d["train"][0], "audio": d["train"][1]}
    with backend(be):
        net = EnsembleNetwork({n: (configs[n], stimuli[n]) for n in names}, be, cross=cross)
        training = STDPTraining(net, comp, out / "checkpoint.npz", cfg.eta_end)
        training.train([{n: train_ids[n] for n in names}], progress=progress, desc=f"{variant} training")
        present = _presenter(cfg, net, names, stimuli, progress)
        tested = _label_and_test(present, names, d, cfg, train_ids, out / "test_counts.npz", f"{variant}")
        bundles.write(out / "network.npz", training.bundle(tested.pop("assign")))
        by_gain = {}
        for g in cfg.test_gains if cross is not None else ():
            # the same trained network with its cross-modal transmission at another gain (0: switched off);
            # neurons are labelled again under that gain, as the network then runs
            net.cross_gain = g
            present = _presenter(cfg, net, names, stimuli, progress)
            by_gain[f"{g:g}"] = _label_and_test(
                present, names, d, cfg, train_ids, out / f"test_counts_gain{g:g}.npz", f"{variant} gain {g:g}"
            )
            by_gain[f"{g:g}"].pop("assign")
    kept = {n: float(net.state[n]["alive"].mean()) for n in names}
    kept.update({k: float(v["alive"].mean()) for k, v in net.cross_state.items()})
    result = {
        "variant": variant,
        "accuracy": tested["by_condition"]["clean"],
        **tested,
        "fraction_kept": kept,
        "wall_seconds": training.seconds(),  # all segments up to their checkpoints
        "cross_weight_mean": {k: float(v["w"].mean()) for k, v in net.cross_state.items()},
    }
    if by_gain:
        result["by_test_gain"] = by_gain
    write_json(out / "result.json", result)
    return result


def _presenter(cfg: Config, net: EnsembleNetwork, names: tuple[str, ...], stimuli: dict, progress: bool):
    """``present(ids, phase, desc)`` → spike counts per ensemble of the trained network (weights frozen, at its
    current cross gain) in ``cfg.test_engine``. The torch engine draws phase ``phase``'s input spikes from a
    generator seeded by ``cfg.seed`` and the phase: a rerun, or the same network at another cross gain, sees the
    same input spike trains."""
    if cfg.test_engine == "brian2":
        return lambda ids, phase, desc: net.present(ids, plastic=False, progress=progress, desc=desc).counts
    frozen = FrozenDiehlCook.coupled(
        {n: (net.configs[n], net.state[n]["w"], net.state[n]["theta"]) for n in names},
        {k: v["w"] for k, v in net.cross_state.items()},
        net.cross_gain,
    )
    chunk = net.configs[names[0]].chunk

    def present(ids, phase, desc):
        n = len(next(iter(ids.values())))
        r = frozen.present(
            {k: stimuli[k] for k in names},
            ids,
            streams=cfg.test_streams or -(-n // chunk),
            generator=torch.Generator().manual_seed(cfg.seed * 1_000_003 + phase),
            threads=os.cpu_count() or 1,
        )
        return r.counts

    return present


def _label_and_test(
    present, names: tuple[str, ...], d: dict, cfg: Config, train_ids: dict, counts_path: Path, desc: str
) -> dict:
    """Label the neurons on the last ``n_label`` training pairs and test every condition through ``present``
    (:func:`_presenter`); writes the test responses to ``counts_path`` (plain arrays, no pickle) for other
    read-outs without simulating again. Returns ``by_condition``, ``by_ensemble`` (each ensemble's own vote, with
    both inputs and any cross synapses on), ``test_spikes_per_pair``, ``seconds`` (labelling and testing) and
    ``assign``."""
    start = time.perf_counter()
    n_pairs = len(train_ids["image"])
    lab_ids = {n: train_ids[n][n_pairs - cfg.n_label :] for n in names}
    lab_counts = present(lab_ids, 0, f"{desc} labelling")
    y_lab = d["train_labels"][n_pairs - cfg.n_label :]
    assign = {n: readout.assign_labels(lab_counts[n], y_lab, d["n_classes"]) for n in names}
    accuracy, spikes, responses, by_ensemble = {}, {}, {}, {}
    same = same_test(d["conditions"], names)
    for phase, (cond, (img_ids, aud_ids)) in enumerate(d["conditions"].items(), start=1):
        if same[cond] != cond:  # noise on the modality this variant does not see: the earlier test, exactly
            accuracy[cond], spikes[cond] = accuracy[same[cond]], spikes[same[cond]]
            continue
        ids = {"image": img_ids, "audio": aud_ids}
        counts = present({n: ids[n] for n in names}, phase, f"{desc} test {cond}")
        scores = [readout.class_scores(counts[n], assign[n], d["n_classes"]) for n in names]
        pred = readout.combined_scores(scores).argmax(1)
        accuracy[cond] = float((pred == d["test_labels"]).mean())
        if len(names) > 1:
            by_ensemble[cond] = {n: float((s.argmax(1) == d["test_labels"]).mean()) for n, s in zip(names, scores)}
        spikes[cond] = {n: float(counts[n].sum(1).mean()) for n in names}
        responses.update({f"{cond}/{n}": counts[n].astype(np.int16) for n in names})
    seconds = time.perf_counter() - start
    np.savez_compressed(
        counts_path, labels=d["test_labels"], **responses, **{f"assignment/{n}": assign[n] for n in names}
    )
    return {
        "by_condition": accuracy,
        "by_ensemble": by_ensemble,
        "test_spikes_per_pair": spikes,
        "test_engine": cfg.test_engine,
        "label_and_test_seconds": seconds,
        "assign": assign,
    }


def run(cfg: Config, run_dir: Path, progress: bool = True) -> dict:
    validate(cfg)  # fail before any work (the CLI has checked already; callers from Python may not have)
    d = prepare(cfg)
    results = {v: train_variant(cfg, v, d, run_dir / "variants" / v, progress) for v in cfg.variants}
    for v, r in results.items():
        log.info(
            f"{v:>12}: clean {r['accuracy']:.4f}  "
            + "  ".join(f"{k} {a:.3f}" for k, a in r["by_condition"].items() if k != "clean")
        )
        if r.get("by_ensemble"):
            log.info(
                " " * 14
                + "each ensemble's own vote (clean, coupled): "
                + "  ".join(f"{n} {a:.3f}" for n, a in r["by_ensemble"]["clean"].items())
            )
        for g, t in r.get("by_test_gain", {}).items():
            log.info(
                " " * 14
                + f"tested at cross gain {g}: clean {t['by_condition']['clean']:.4f}  "
                + "  ".join(f"{k} {a:.3f}" for k, a in t["by_condition"].items() if k != "clean")
            )
    metrics = report(
        results,
        {v: run_dir / "variants" / v for v in results},
        d["n_classes"],
        cfg.image_noise,
        cfg.audio_snr_db,
        run_dir,
    )
    metrics.update(n_train_pairs=int(len(d["train"][0])), n_test_pairs=int(len(d["test_labels"])))
    return metrics


def report(
    results: dict,
    variant_dirs: dict[str, Path],
    n_classes: int,
    image_noise: tuple[float, ...],
    audio_snr_db: tuple[float, ...],
    out: Path,
    verbose: bool = True,
) -> dict:
    """What a run (and a merge of runs, :mod:`.multimodal_merge`) reports from its variants' results and saved
    test responses (``variant_dirs[v]/test_counts*.npz``): the noise figure ``out/noise.png``, accuracy per
    network and condition, and the paired comparisons — multimodal vs independent (different trainings) and,
    where the multimodal variant was tested at cross gain 0, its cross synapses on vs off (same ensembles)."""
    _figure(out / "noise.png", results, image_noise, audio_snr_db)
    main = results.get("multimodal") or next(iter(results.values()))
    metrics = {
        "accuracy": main["accuracy"],
        "main_variant": main["variant"],
        "variants": results,
        "accuracy_by_network": accuracy_by_network(results),
        "n_classes": n_classes,
    }
    if {"multimodal", "independent"} <= set(results):
        # what the cross-modal synapses add, on the same test pairs (a: with them, b: votes of independent ensembles)
        metrics["multimodal_vs_independent"] = cross_gain(
            variant_dirs["multimodal"], variant_dirs["independent"], n_classes
        )
    if "0" in results.get("multimodal", {}).get("by_test_gain", {}):
        metrics["multimodal_cross_on_vs_off"] = cross_on_vs_off(variant_dirs["multimodal"], n_classes)
    if verbose:
        for key, what in (
            (
                "multimodal_vs_independent",
                "multimodal vs independent, {}: only multimodal right {}, only independent right {}",
            ),
            (
                "multimodal_cross_on_vs_off",
                "multimodal, cross synapses on vs off at test, {}: only on right {}, only off right {}",
            ),
        ):
            for cond, c in metrics.get(key, {}).items():
                log.info(what.format(cond, c["only_a"], c["only_b"]) + f" of {c['n']} pairs (p = {c['p_value']:.3g})")
    return metrics


def cross_gain(multimodal_dir: Path, independent_dir: Path, n_classes: int) -> dict:
    """Per test condition, :func:`readout.paired_comparison` of the ``multimodal`` and ``independent`` variants'
    summed votes, from their saved test responses (``<variant folder>/test_counts.npz``; plain arrays, no pickle);
    the folders may belong to different runs (:mod:`.multimodal_merge`)."""
    return readout.paired_responses(multimodal_dir / "test_counts.npz", independent_dir / "test_counts.npz", n_classes)


def cross_on_vs_off(variant_dir: Path, n_classes: int, off_gain: float = 0.0) -> dict:
    """Per test condition, :func:`readout.paired_comparison` of the multimodal network at its training gain (a)
    and the same network tested at ``off_gain`` (b; ``test_gains``): what the trained cross synapses add to the
    very same ensembles, free of the variance between separately trained networks."""
    return readout.paired_responses(
        variant_dir / "test_counts.npz", variant_dir / f"test_counts_gain{off_gain:g}.npz", n_classes
    )


def accuracy_by_network(results: dict) -> dict[str, dict[str, float]]:
    """Accuracy per test condition of every trained variant, plus the image-only and audio-only networks read
    from the ``independent`` variant's ensembles where those variants were not trained on their own: with
    cross gain 0 each ensemble of that network *is* a unimodal network trained on the same presentations (a
    test checks that gain 0 reproduces the separate ensembles), so ``variants=independent,multimodal`` gives
    (1)-(4) from two trainings instead of four."""
    out = {v: dict(r["by_condition"]) for v, r in results.items()}
    for v, r in results.items():
        out.update(
            {f"{v}, tested at cross gain {g}": dict(t["by_condition"]) for g, t in r.get("by_test_gain", {}).items()}
        )
    by_ens = results.get("independent", {}).get("by_ensemble") or {}
    for name in ("image", "audio"):
        if name not in out and by_ens and all(name in accs for accs in by_ens.values()):
            out[f"{name} (ensemble of independent)"] = {c: accs[name] for c, accs in by_ens.items()}
    return out


def _figure(path: Path, results: dict, image_noise: tuple[float, ...], audio_snr_db: tuple[float, ...]) -> None:
    fig, axes = viz.figure(1, 2, figsize=(10, 3.8), gridspec_kw={"wspace": 0.3})
    for v, acc in accuracy_by_network(results).items():
        style = {"ls": "--"} if "ensemble of" in v else {"ls": ":"} if "tested at" in v else {}
        axes[0].plot(
            [0.0, *image_noise],
            [acc["clean"]] + [acc[f"image_noise={s}"] for s in image_noise],
            marker="o",
            ms=3,
            label=v,
            **style,
        )
        axes[1].plot(
            ["clean", *[f"{s:g}" for s in audio_snr_db]],
            [acc["clean"]] + [acc[f"audio_snr={s}dB"] for s in audio_snr_db],
            marker="o",
            ms=3,
            label=v,
            **style,
        )
    axes[0].set(xlabel="image noise σ (fraction of full scale)", ylabel="test accuracy", title="noisy images")
    axes[1].set(xlabel="audio SNR (dB)", ylabel="test accuracy", title="noisy audio")
    for ax in axes:
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    viz.save(fig, path)
