"""Hybrid training pieces: STDB gradients through a conv SNN, a training step, models, bundles, transforms."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bioSNN import bundles, data
from bioSNN.models.resnet import resnet20
from bioSNN.models.vgg import vgg
from bioSNN.nn.bundle import load_state, to_bundle
from bioSNN.nn.convert import to_snn
from bioSNN.nn.train import batches, evaluate, random_crop_flip, to_tensor_images, train_epoch

pytestmark = pytest.mark.torch


def small_vgg():
    torch.manual_seed(0)
    return vgg("vgg5", (1, 12, 12), n_classes=4, width=0.125, hidden=16, dropout=0.1)


def test_stdb_gradient_reaches_every_layer():
    net = small_vgg()
    x = torch.rand(6, 1, 12, 12)
    to_snn(net, [x], time_steps=10, scale=0.5)
    net.set_neurons(surrogate="stdb", train_threshold=True)
    net.train()
    loss = nn.functional.cross_entropy(net(x, 10, "poisson"), torch.arange(6) % 4)
    loss.backward()
    for name, p in net.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_stdb_fine_tuning_improves_a_converted_network_on_real_digits():
    ds = data.load("digits")
    x, y = to_tensor_images(ds.x_train[:256]), torch.from_numpy(ds.y_train[:256]).long()
    torch.manual_seed(0)
    net = vgg("vgg5", (1, 8, 8), n_classes=10, width=0.25, hidden=32, dropout=0.0)
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    for _ in range(40):
        train_epoch(net, [(x, y)], opt)
    assert evaluate(net, x, y).accuracy > 0.95
    to_snn(net, [x], time_steps=8, scale=0.7)
    net.set_neurons(surrogate="stdb")

    @torch.no_grad()
    def loss():
        g = torch.Generator().manual_seed(0)
        return float(nn.functional.cross_entropy(net.eval().snn(x, 8, "poisson", generator=g).logits, y))

    before, acc_before = loss(), evaluate(net, x, y, 8, "poisson").accuracy
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    for _ in range(10):
        train_epoch(net, [(x, y)], opt, time_steps=8, encoder="poisson")
    after, acc_after = loss(), evaluate(net, x, y, 8, "poisson").accuracy
    assert after < 0.8 * before and acc_after > acc_before + 0.05, (before, after, acc_before, acc_after)


@pytest.mark.parametrize("mode", ["step", "layer"])
def test_dropout_mask_is_fixed_across_time_steps(mode):
    torch.manual_seed(0)
    net = vgg("vgg5", (1, 8, 8), n_classes=3, width=0.125, hidden=32, dropout=0.5)
    net.train()
    drop_idx = next(i for i, n in enumerate(net.nodes) if type(n).__name__ == "FixedDropout")
    with torch.no_grad():
        net.nodes[drop_idx - 1].threshold.fill_(-1e9)  # the hidden layer fires at every step: what passes is the mask
    seen = []
    net.nodes[drop_idx + 1].register_forward_pre_hook(lambda m, a: seen.append(a[0].detach().clone()))
    net.snn(torch.rand(2, 1, 8, 8), 5, "direct", mode=mode)
    masks = list(torch.cat(seen).reshape(5, 2, 32))
    assert all(torch.equal(m, masks[0]) for m in masks)
    assert 0 < (masks[0] == 0).float().mean() < 1 and set(masks[0].unique().tolist()) == {0.0, 2.0}


@pytest.mark.parametrize("name", ["vgg5", "vgg9", "vgg11", "vgg16"])
def test_vgg_plans_build_and_run_both_ways(name):
    net = vgg(name, (3, 32, 32), width=0.0625, hidden=8)
    n_conv = sum(isinstance(m, nn.Conv2d) for m in net.modules())
    n_fc = sum(isinstance(m, nn.Linear) for m in net.modules())
    assert n_conv + n_fc == int(name[3:])
    x = torch.rand(2, 3, 32, 32)
    assert net.ann(x).shape == (2, 10) and net.snn(x, 2).logits.shape == (2, 10)
    assert all(m.bias is None for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))


def test_resnet20_has_twenty_weighted_layers_on_its_main_path():
    net = resnet20(width=0.25)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    shortcuts = [m for m in convs if m.kernel_size == (1, 1)]
    assert len(convs) - len(shortcuts) == 19 and len(shortcuts) == 2
    out = net.snn(torch.rand(2, 3, 32, 32), 3, count=True)
    assert out.logits.shape == (2, 10) and len(out.stats.spike_rates()) == 1 + 2 * 9


def test_bundle_round_trip_restores_thresholds_and_weights(tmp_path):
    net = small_vgg()
    x = torch.rand(4, 1, 12, 12)
    thresholds = to_snn(net, [x], time_steps=5)
    b = to_bundle(net, model={"name": "vgg5", "width": 0.125})
    path = bundles.write(tmp_path / "net.npz", b)
    back = bundles.read(path)
    assert back.population("act1").params["v_threshold"]["value"] == pytest.approx(thresholds["act1"])
    assert [p.connectivity for p in back.projections] == ["conv2d", "conv2d", "conv2d", "linear", "linear"]
    assert back.projection("fc1").params["pre_ops"]["value"] == ["AvgPool2d", "Flatten"]
    other = small_vgg()
    torch.manual_seed(5)
    for p in other.parameters():
        nn.init.normal_(p)
    load_state(other, back)
    torch.testing.assert_close(other.snn(x, 5).logits, net.snn(x, 5).logits)
    with pytest.raises(ValueError, match="does not match"):
        load_state(vgg("vgg9", (1, 12, 12), n_classes=4, width=0.125, hidden=16), back)


def test_random_crop_flip_moves_content_without_changing_it():
    x = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).reshape(2, 3, 5, 5) + 1
    g = torch.Generator().manual_seed(3)
    out = random_crop_flip(x, pad=0, flip=False, generator=g)
    assert torch.equal(out, x)
    out = random_crop_flip(x, pad=2, flip=True, generator=g)
    assert out.shape == x.shape
    for i in range(2):  # every non-zero value of a crop comes from the same sample, in its own channel
        for c in range(3):
            vals = out[i, c][out[i, c] != 0]
            assert set(vals.tolist()) <= set(x[i, c].flatten().tolist())


def test_fit_with_augmentation_trains_on_crops(tmp_path):
    from bioSNN.nn.train import Checkpoint, fit

    torch.manual_seed(0)
    x, y = torch.rand(40, 3, 8, 8), torch.randint(0, 4, (40,))
    net = vgg("vgg5", (3, 8, 8), n_classes=4, width=0.125, hidden=16)
    w0 = [p.detach().clone() for p in net.parameters() if p.dim() > 1]  # the weights (λ, θ: SNN only)
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    hist = fit(
        net,
        opt,
        Checkpoint(tmp_path / "a.npz", {"model": "vgg5"}),
        (x, y),
        (x[:8], y[:8]),
        1,
        batch_size=16,
        augment=True,
        verbose=False,
    )
    assert hist["epoch"] == [1] and all(
        not torch.equal(a, p) for a, p in zip(w0, [p for p in net.parameters() if p.dim() > 1])
    )
    with pytest.raises(ValueError, match="augment must be"):
        fit(net, opt, Checkpoint(tmp_path / "b.npz", {"model": "vgg5"}), (x, y), (x, y), 1, augment="rotate")


@pytest.mark.parametrize("time_steps", [0, 3])
def test_a_run_killed_inside_an_epoch_resumes_to_the_same_weights(tmp_path, time_steps):
    """Checkpoints inside an epoch (here after every batch) hold the weights, the optimizer, the running totals
    and the RNG (dropout); resuming skips the batches done and ends where an uninterrupted run ends."""
    from bioSNN.nn.train import Checkpoint, fit

    x, y = torch.rand(48, 1, 8, 8), torch.randint(0, 4, (48,))
    x[:, :, 2:6, 2:6] += y[:, None, None, None] / 4  # something to learn

    def make():
        torch.manual_seed(0)
        net = vgg("vgg5", (1, 8, 8), n_classes=4, width=0.125, hidden=16, dropout=0.5)
        if time_steps:
            net.set_neurons(leak=1.0, reset="soft", train_leak=True, train_threshold=True)
        return net, torch.optim.Adam(net.parameters(), 1e-2)

    def run(net, opt, path):
        return fit(
            net,
            opt,
            Checkpoint(path, {"model": "vgg5"}),
            (x, y),
            (x[:8], y[:8]),
            2,
            time_steps,
            batch_size=8,
            augment="crop",
            seed=3,
            verbose=False,
            checkpoint_seconds=0,
        )

    ref, opt = make()
    hist_ref = run(ref, opt, tmp_path / "ref.npz")
    net, opt = make()
    step, calls = opt.step, [0]

    def dying_step(*a, **k):  # killed in the 5th batch of the second epoch (6 batches per epoch)
        calls[0] += 1
        if calls[0] == 11:
            raise KeyboardInterrupt
        return step(*a, **k)

    opt.step = dying_step
    with pytest.raises(KeyboardInterrupt):
        run(net, opt, tmp_path / "run.npz")
    saved = bundles.read(tmp_path / "run.npz").extra
    assert saved["epoch"] == 1 and saved["partial"]["batches"] == 4 and saved["partial"]["samples"] == 32
    net, opt = make()  # a fresh process: new model, new optimizer, other RNG state
    torch.manual_seed(123)
    hist = run(net, opt, tmp_path / "run.npz")
    assert hist["epoch"] == [1, 2] and hist["train_loss"] == pytest.approx(hist_ref["train_loss"], rel=1e-6)
    for a, b in zip(ref.state_dict().values(), net.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    assert "partial" not in bundles.read(tmp_path / "run.npz").extra  # the epoch-end checkpoint replaces it


def test_crop_augmentation_for_digits_shifts_without_mirroring():
    from bioSNN.nn.train import augmentation

    x = torch.zeros(64, 1, 9, 9)
    x[:, 0, 4, 1:4] = torch.tensor([1.0, 2.0, 3.0])  # an asymmetric stroke: increasing to the right
    out = augmentation("crop")(x, torch.Generator().manual_seed(0))
    for img in out[:, 0]:
        row = img[img.sum(1) > 0][0]
        vals = row[row > 0]
        assert vals.tolist() in ([1.0, 2.0, 3.0], [1.0, 2.0], [2.0, 3.0], [3.0], [1.0])  # never [3, 2, 1]
    shifts = {int((o[0].sum(0) > 0).nonzero()[0]) for o in out}
    assert len(shifts) > 2  # several horizontal shifts drawn
    assert augmentation(False) is None and augmentation("") is None
    flips = augmentation(True)(x, torch.Generator().manual_seed(0))
    assert any(o[0][o[0].sum(1) > 0][0][o[0][o[0].sum(1) > 0][0] > 0].tolist()[:2] == [3.0, 2.0] for o in flips)
    shift_flip = augmentation("shift_flip")(x, torch.Generator().manual_seed(0))
    rows = [o[0][o[0].sum(1) > 0][0] for o in shift_flip]
    assert any(r[r > 0].tolist()[:2] == [3.0, 2.0] for r in rows)  # some mirrored
    assert all((o[0].sum(1) > 0).nonzero()[0].item() in range(2, 7) for o in shift_flip)  # shifts of <= 2 rows


def test_batches_shard_without_overlap():
    x, y = torch.arange(10).float()[:, None], torch.arange(10)
    seen = [torch.cat([yb for _, yb in batches(x, y, 3, shuffle=True, seed=1, rank=r, world=2)]) for r in (0, 1)]
    assert len(seen[0]) == len(seen[1]) == 5 and not set(seen[0].tolist()) & set(seen[1].tolist())


@pytest.mark.parametrize("encoder", ["direct", "poisson"])
@pytest.mark.parametrize(
    "make",
    [lambda: vgg("vgg5", (1, 12, 12), n_classes=4, width=0.25, hidden=32), lambda: resnet20((3, 16, 16), width=0.25)],
    ids=["vgg5", "resnet20"],
)
def test_layer_by_layer_and_step_by_step_runs_agree(make, encoder):
    torch.manual_seed(0)
    net = make()
    x = torch.rand(6, *net.input_shape)
    to_snn(net, [x], 8, 0.6)
    net.set_neurons(surrogate="stdb", leak=0.95, train_leak=True, train_threshold=True)
    net.eval()
    runs = []
    for mode in ("step", "layer"):
        net.zero_grad()
        out = net.snn(x, 8, encoder, count=True, generator=torch.Generator().manual_seed(1), mode=mode)
        out.logits.square().sum().backward()
        runs.append((out.logits.detach(), [p.grad.clone() for p in net.parameters()], out.stats.summary()))
    (l1, g1, s1), (l2, g2, s2) = runs
    torch.testing.assert_close(l1, l2, rtol=1e-5, atol=1e-5)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * float(a.abs().max()))
    assert s1["spike_rate"] == s2["spike_rate"] and s1["layers"] == s2["layers"]
    assert 0 < s1["mean_spike_rate"] < 1
