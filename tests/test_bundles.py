"""The weight bundle: round trip, atomic writes, and every rejection."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from bioSNN import bundles
from bioSNN.device import DeviceConfig


def _bundle(**kw):
    rng = np.random.default_rng(0)
    pops = [
        bundles.Population("input", 4, "poisson"),
        bundles.Population(
            "exc",
            3,
            "lif_conductance",
            {"v_threshold": {"value": -52.0, "unit": "mV"}, "tau": {"value": 100.0, "unit": "ms"}},
        ),
        bundles.Population("inh", 3, "lif_conductance"),
    ]
    projs = [
        bundles.Projection("input_exc", "input", "exc", "w_in"),
        bundles.Projection(
            "exc_inh", "exc", "inh", "w_ei", connectivity="one_to_one", params={"w": {"value": 10.4, "unit": "1"}}
        ),
    ]
    arrays = {"w_in": rng.random((3, 4)).astype(np.float32), "w_ei": np.full(3, 10.4), "theta": np.zeros(3)}
    return bundles.Bundle(
        pops,
        projs,
        arrays,
        engine="brian2",
        name="dc",
        device=DeviceConfig(levels=4).to_dict(),
        provenance=bundles.provenance("mnist", 7),
        **kw,
    )


def test_round_trip(tmp_path):
    b = _bundle(extra={"epoch": 3})
    p = bundles.write(tmp_path / "net.npz", b)
    r = bundles.read(p)
    assert r.describe() == b.describe()
    for k in b.arrays:
        np.testing.assert_array_equal(r.arrays[k], b.arrays[k])
        assert r.arrays[k].dtype == b.arrays[k].dtype
    assert r.population("exc").params["v_threshold"] == {"value": -52.0, "unit": "mV"}
    assert r.provenance["seed"] == 7 and r.provenance["dataset"] == "mnist" and r.extra["epoch"] == 3
    assert DeviceConfig(**r.device) == DeviceConfig(levels=4)
    # plain numpy reads the arrays too
    with np.load(p) as z:
        np.testing.assert_array_equal(z["w_in"], b.arrays["w_in"])
    assert [f.name for f in tmp_path.iterdir()] == ["net.npz"]  # no temp file left behind


def test_a_version_1_bundle_reads_with_dense_weights_turned_to_target_by_source(tmp_path):
    """Version 1 stored dense weights (source, target); read converts them and their masks, nothing else."""
    from bioSNN.brian import bundle as brian_bundle
    from bioSNN.brian.ensemble import DiehlCookConfig

    cfg = DiehlCookConfig(n_input=6, n_exc=4)
    rng = np.random.default_rng(1)
    state = {"w": rng.random((6, 4)), "alive": rng.random((6, 4)) > 0.3, "theta": rng.random(4)}
    new = brian_bundle.to_bundle({"": cfg}, {"": state}, column_gain={"": np.arange(4.0)})
    assert new.arrays["input_exc.w"].shape == (4, 6)  # (target, source), row j = neuron j's receptive field
    path = bundles.write(tmp_path / "v2.npz", new)
    old = tmp_path / "v1.npz"  # the same network as version 1 wrote it
    with zipfile.ZipFile(path) as zf, zipfile.ZipFile(old, "w") as out:
        meta = json.loads(zf.read("bundle.json"))
        meta["version"] = 1
        for k in ("input_exc.w", "input_exc.alive"):
            meta["arrays"][k]["shape"] = meta["arrays"][k]["shape"][::-1]
        out.writestr("bundle.json", json.dumps(meta))
        for name in zf.namelist():
            if name == "bundle.json":
                continue
            a = np.load(zf.open(name))
            buf = __import__("io").BytesIO()
            np.save(buf, a.T if name[:-4] in ("input_exc.w", "input_exc.alive") else a)
            out.writestr(name, buf.getvalue())
    r = bundles.read(old)
    for k, a in new.arrays.items():
        np.testing.assert_array_equal(r.arrays[k], a)
    st, _, _ = brian_bundle.state_from_bundle(r, {"": cfg})
    np.testing.assert_array_equal(st[""]["w"], state["w"])
    np.testing.assert_array_equal(st[""]["alive"], state["alive"])


def _as_version_1(path, out, engine: str, name: str):
    """``path``'s bundle re-labelled as version 1 by another writer (arrays as they are)."""
    with zipfile.ZipFile(path) as zf, zipfile.ZipFile(out, "w") as z:
        meta = json.loads(zf.read("bundle.json"))
        meta.update(version=1, engine=engine, name=name)
        z.writestr("bundle.json", json.dumps(meta))
        for member in zf.namelist():
            if member != "bundle.json":
                z.writestr(member, zf.read(member))
    return out


def test_a_version_1_square_weight_matrix_converts_only_when_its_writer_is_known(tmp_path):
    """(source, target) and (target, source) of a square matrix look alike: without a writer known to use
    version 1's layout the bundle is refused by array name, never transposed on a guess."""
    pops = [bundles.Population("a", 3, "lif"), bundles.Population("b", 3, "lif")]
    w = np.arange(9.0).reshape(3, 3)
    path = bundles.write(
        tmp_path / "v2.npz",
        bundles.Bundle(pops, [bundles.Projection("ab", "a", "b", "w")], {"w": w}, engine="torch", name="net"),
    )
    with pytest.raises(bundles.BundleError, match=r"v1\.npz: version-1 bundle with a square dense array 'w'"):
        bundles.read(_as_version_1(path, tmp_path / "v1.npz", "torch", "net"))
    known = bundles.read(_as_version_1(path, tmp_path / "v1_brian.npz", "brian2", "diehl_cook"))
    np.testing.assert_array_equal(known.arrays["w"], w.T)  # bioSNN's Brian2 engine wrote (source, target)


def test_bundle_info_refuses_populations_it_could_not_build(tmp_path):
    path = bundles.write(tmp_path / "net.npz", _bundle())
    for size in (-128, "abc", float("nan")):
        bad = tmp_path / "bad.npz"
        with zipfile.ZipFile(path) as zf, zipfile.ZipFile(bad, "w") as z:
            meta = json.loads(zf.read("bundle.json"))
            meta["populations"][1]["size"] = size
            z.writestr("bundle.json", json.dumps(meta))
            for member in zf.namelist():
                if member != "bundle.json":
                    z.writestr(member, zf.read(member))
        with pytest.raises(bundles.BundleError, match="population 'exc': size must be a positive integer"):
            bundles.describe(bad)


def test_write_replaces_atomically(tmp_path, monkeypatch):
    p = tmp_path / "net.npz"
    bundles.write(p, _bundle())
    before = p.read_bytes()

    def boom(*a, **k):
        raise RuntimeError("killed mid-write")

    monkeypatch.setattr(np.lib.format, "write_array", boom)
    with pytest.raises(RuntimeError):
        bundles.write(p, _bundle(extra={"new": True}))
    assert p.read_bytes() == before
    assert [f.name for f in tmp_path.iterdir()] == ["net.npz"]


def _rewrite(path, meta_fn=None, drop=None, replace=None):
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    if meta_fn:
        meta = json.loads(members["bundle.json"])
        meta_fn(meta)
        members["bundle.json"] = json.dumps(meta).encode()
    if drop:
        del members[drop]
    if replace:
        members.update(replace)
    with zipfile.ZipFile(path, "w") as zf:
        for n, d in members.items():
            zf.writestr(n, d)


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda m: m.update(version=99), "version 99 is not supported"),
        (lambda m: m.update(format="other"), "format"),
        (lambda m: m["arrays"]["w_in"].update(shape=[3, 3]), "described as"),
        (lambda m: m["projections"][0].update(target="nowhere"), "unknown population"),
        (lambda m: m["populations"][1].update(size=5), "dense weights must have shape"),
        (lambda m: m.pop("populations"), "malformed"),
    ],
)
def test_rejects_bad_descriptions(tmp_path, mutate, match):
    p = bundles.write(tmp_path / "b.npz", _bundle())
    _rewrite(p, meta_fn=mutate)
    with pytest.raises(bundles.BundleError, match=match):
        bundles.read(p)


def test_rejects_missing_array_truncation_and_pickles(tmp_path):
    p = bundles.write(tmp_path / "b.npz", _bundle())
    _rewrite(p, drop="theta.npy")
    with pytest.raises(bundles.BundleError, match="missing"):
        bundles.read(p)

    p = bundles.write(tmp_path / "t.npz", _bundle())
    p.write_bytes(p.read_bytes()[:-200])
    with pytest.raises(bundles.BundleError, match="damaged"):
        bundles.read(p)

    # an object array smuggled in as .npy must not be unpickled
    import io as pyio

    buf = pyio.BytesIO()
    np.save(buf, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    p = bundles.write(tmp_path / "o.npz", _bundle())
    _rewrite(p, replace={"theta.npy": buf.getvalue()})
    with pytest.raises(bundles.BundleError):
        bundles.read(p)

    (tmp_path / "plain.npz").write_bytes(b"nonsense")
    with pytest.raises(bundles.BundleError):
        bundles.read(tmp_path / "plain.npz")
    with pytest.raises(FileNotFoundError):
        bundles.read(tmp_path / "absent.npz")


def test_construction_validates():
    with pytest.raises(bundles.BundleError, match="weight array"):
        bundles.Bundle([bundles.Population("a", 2, "x")], [bundles.Projection("p", "a", "a", "w")], {})
    with pytest.raises(bundles.BundleError, match="objects"):
        bundles.Bundle([], [], {"x": np.array([None])})
    with pytest.raises(bundles.BundleError, match="unit"):
        bundles.Population("a", 2, "x", {"tau": 10})
    with pytest.raises(bundles.BundleError, match="appears twice"):
        bundles.Bundle([bundles.Population("a", 1, "x"), bundles.Population("a", 1, "x")], [], {})
    with pytest.raises(bundles.BundleError, match="positive integer"):
        bundles.Population("a", 0, "x")


def test_zero_dimensional_arrays_keep_their_shape(tmp_path):
    b = bundles.Bundle([], [], {"step": np.float32(3.0), "ft": np.asfortranarray(np.arange(6.0).reshape(2, 3))})
    r = bundles.read(bundles.write(tmp_path / "s.npz", b))
    assert r.arrays["step"].shape == () and r.arrays["step"] == 3.0
    np.testing.assert_array_equal(r.arrays["ft"], np.arange(6.0).reshape(2, 3))
