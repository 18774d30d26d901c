"""Which audio representation should feed the audio ensemble of the multimodal network?

A Diehl & Cook ensemble learns, in effect, one prototype per excitatory neuron by competitive (winner-take-all)
learning on min-max-normalised intensity maps, then labels each neuron and votes. This script measures each
candidate FSDD representation with the non-spiking analogue of that pipeline, in seconds instead of hours:
k-means with as many centroids as neurons on the training utterances (unsupervised), each centroid labelled by
the majority class of its training members, each test utterance classified by its nearest centroid — plus,
as a ceiling, a nearest-class-mean classifier. Features are the exact input arrays the ensemble would get
(:func:`bioSNN.encoding.utterance_features`, then min-max per utterance or :func:`bioSNN.encoding.onoff_code`).

Usage: ``python -m experiments.audio_features --out experiments/results/audio_features`` (needs FSDD,
e.g. ``BIOSNN_DATA``). Writes ``metrics.json`` with one row per representation. ``--noise`` instead measures
the multimodal default code (20 mel x 20 frames, ON/OFF, 40 dB floor) with and without spectral subtraction on
test utterances with white noise at several SNRs, prototypes learned on clean training utterances
(``metrics_noise.json``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bioSNN import data
from bioSNN.atomic import write_json
from bioSNN.encoding import code_audio, onoff_stats, utterance_features

# (kind, features, frames, dB range of the mel floor); "mel_onoff" is the multimodal default: log-mel features
# standardised with the training utterances' mean and std, split into ON and OFF inputs (twice the inputs)
CANDIDATES = (
    ("mel_onoff", 20, 20, 80.0),
    ("mel_onoff", 8, 8, 80.0),
    ("mel", 8, 8, 80.0),
    ("mel", 16, 16, 80.0),
    ("mel", 20, 20, 80.0),
    ("mel", 28, 28, 80.0),
    ("mel", 40, 20, 80.0),
    ("mfcc", 20, 20, 80.0),
    ("mfcc", 13, 30, 80.0),
    ("mel", 8, 8, 30.0),
    ("mel", 20, 20, 40.0),
    ("mel", 20, 20, 30.0),
    ("mel", 20, 20, 20.0),
)


def stimuli(
    ds, kind: str, n_features: int, n_frames: int, db_range: float = 80.0, train: np.ndarray | None = None
) -> np.ndarray:
    """``(n_utterances, inputs)`` uint8, the ensemble's input intensities: min-max per utterance, or for
    ``mel_onoff`` the ON/OFF code with statistics of the ``train`` utterances (all when None)."""
    base = "mel" if kind == "mel_onoff" else kind
    feats = utterance_features(ds, None, base, n_features, n_frames, db_range)
    if kind == "mel_onoff":
        return code_audio(feats, "onoff", onoff_stats(feats if train is None else feats[train]), z_full=2.0)
    return code_audio(feats, "minmax")  # min-max per utterance


def prototype_accuracy(x_tr, y_tr, x_te, y_te, n_prototypes: int, seed: int = 0) -> float:
    """k-means prototypes labelled by majority vote, nearest-prototype classification."""
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=n_prototypes, n_init=1, random_state=seed).fit(x_tr)
    n_classes = int(y_tr.max()) + 1
    votes = np.zeros((n_prototypes, n_classes))
    np.add.at(votes, (km.labels_, y_tr), 1)
    label = votes.argmax(1)
    return float((label[km.predict(x_te)] == y_te).mean())


def class_mean_accuracy(x_tr, y_tr, x_te, y_te) -> float:
    means = np.stack([x_tr[y_tr == c].mean(0) for c in np.unique(y_tr)])
    d = ((x_te[:, None, :] - means[None]) ** 2).sum(-1)
    return float((d.argmin(1) == y_te).mean())


def noise_rows(
    ds,
    tr,
    te,
    snrs=(None, 20.0, 10.0, 5.0, 0.0),
    denoise=(None, 10.0),
    n_prototypes: int = 400,
    db_range: float = 40.0,
    seed: int = 0,
) -> list[dict]:
    """Accuracy of the ON/OFF code under white noise on the test utterances (clean training utterances), with
    and without spectral subtraction (``denoise``: percentiles, None = off)."""
    rows = []
    for q in denoise:
        t0 = time.perf_counter()
        f_tr = utterance_features(ds, tr, "mel", 20, 20, db_range, denoise_percentile=q)
        stats = onoff_stats(f_tr)
        x_tr = code_audio(f_tr, "onoff", stats).astype(np.float32) / 255.0
        row = {"kind": "mel_onoff", "n_features": 20, "n_frames": 20, "db_range": db_range, "denoise_percentile": q}
        for snr in snrs:
            f_te = utterance_features(
                ds, te, "mel", 20, 20, db_range, snr_db=snr, seed=seed + 100, denoise_percentile=q
            )
            x_te = code_audio(f_te, "onoff", stats).astype(np.float32) / 255.0
            key = "clean" if snr is None else f"snr_{snr:g}dB"
            row[f"class_mean_{key}"] = class_mean_accuracy(x_tr, ds.labels[tr], x_te, ds.labels[te])
            row[f"prototypes_{n_prototypes}_{key}"] = prototype_accuracy(
                x_tr, ds.labels[tr], x_te, ds.labels[te], n_prototypes, seed
            )
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prototypes", type=int, nargs="+", default=[100, 400])
    ap.add_argument("--noise", action="store_true", help="noise robustness of the ON/OFF code, +- spectral subtraction")
    ap.add_argument("--out", default="experiments/results/audio_features")
    args = ap.parse_args(argv)
    ds = data.load("fsdd")
    tr, te = np.flatnonzero(~ds.is_test), np.flatnonzero(ds.is_test)
    if args.noise:
        rows = noise_rows(ds, tr, te, n_prototypes=max(args.prototypes))
        result = {
            "dataset": "fsdd",
            "train": len(tr),
            "test": len(te),
            "rows": rows,
            "method": "white noise (bioSNN.noise.white_noise, seed 100 + utterance index) on test utterances "
            "only; ON/OFF statistics, k-means prototypes (n_init 1, seed 0) and class means from "
            "clean training utterances",
        }
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "metrics_noise.json", result)
        return result
    rows = []
    for kind, nf, nt, db in CANDIDATES:
        t0 = time.perf_counter()
        x8 = stimuli(ds, kind, nf, nt, db, train=tr)
        x = x8.astype(np.float32) / 255.0
        row = {
            "kind": kind,
            "n_features": nf,
            "n_frames": nt,
            "db_range": db if kind != "mfcc" else None,
            "inputs": x.shape[1],
            "mean_intensity": float(x.mean()),
            "class_mean": class_mean_accuracy(x[tr], ds.labels[tr], x[te], ds.labels[te]),
        }
        for k in args.prototypes:
            row[f"prototypes_{k}"] = prototype_accuracy(x[tr], ds.labels[tr], x[te], ds.labels[te], k)
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {
        "dataset": "fsdd",
        "train": len(tr),
        "test": len(te),
        "rows": rows,
        "method": "k-means prototypes (n_init 1, seed 0) labelled by majority; nearest class mean as ceiling",
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "metrics.json", result)
    return result


if __name__ == "__main__":
    main()
