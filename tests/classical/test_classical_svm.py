"""The SVM solvers: optimum of small problems (closed form, scikit-learn's liblinear), sharded
on 8 devices == 1 device, and clear errors on bad inputs."""
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet.classical import sgd, sharding, svm

RNG = np.random.default_rng(2)


def _problem(n=150, d=8, c=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32) + 0.5
    y = np.argmax(x @ rng.normal(size=(d, c)) + 0.7 * rng.normal(size=(n, c)), axis=1)
    return x, y


def primal(x, y, w, b, lam, loss, scale=1.0):
    """The objective, written out in numpy (bias regularised as b / scale, like liblinear)."""
    s = x @ w + b
    onehot = np.eye(w.shape[1])[y]
    if loss == "crammer_singer":
        per = np.max(s + 1 - onehot, axis=1) - np.sum(s * onehot, axis=1)
    else:
        viol = np.maximum(0, 1 - (2 * onehot - 1) * s)
        per = np.sum(viol if loss == "hinge" else viol**2, axis=1)
    return 0.5 * lam * (np.sum(w**2) + np.sum((b / scale) ** 2 if scale else 0)) + per.mean()


@pytest.mark.parametrize("lam,w_star", [(0.5, 1.0), (2.0, 0.5)])
def test_hinge_closed_form(lam, w_star):
    # two points x = +1 (class 1), x = -1 (class 0): w_1 = -w_0 = min(1, 1 / lam)
    x, y = np.array([[1.0], [-1.0]], np.float32), np.array([1, 0])
    params, info = svm.fit_svm(x, y, lam=lam, fit_intercept=False, tol=1e-4)
    np.testing.assert_allclose(np.asarray(params["w"]), [[-w_star, w_star]], atol=2e-3)
    want = lam * w_star**2 + 2 * max(0.0, 1 - w_star)
    assert info["converged"] and abs(info["primal"] - want) <= 1e-4 * want + 1e-6
    assert info["dual"] <= want + 1e-6


@pytest.mark.parametrize("loss", ["hinge", "squared_hinge", "crammer_singer"])
def test_matches_liblinear_optimum(loss):
    import sklearn.svm as lsvm
    x, y = _problem()
    c = 1.0
    lam = svm.lam_from_c(c, len(y))
    params, info = svm.fit_svm(x, y, lam=lam, loss=loss, tol=1e-4)
    w, b = np.asarray(params["w"], np.float64), np.asarray(params["b"], np.float64)
    ours = primal(x, y, w, b, lam, loss)
    assert info["converged"]
    np.testing.assert_allclose(ours, info["primal"], rtol=1e-4)
    sk = lsvm.LinearSVC(C=c, loss="hinge" if loss == "crammer_singer" else loss, tol=1e-8, max_iter=200_000,
                        multi_class="crammer_singer" if loss == "crammer_singer" else "ovr").fit(x, y)
    theirs = primal(x, y, sk.coef_.T, sk.intercept_, lam, loss)
    # ours is within the certified gap of the optimum, and no worse than liblinear's
    assert info["dual"] <= theirs * (1 + 1e-5)
    assert ours <= theirs * (1 + 1e-4)
    agree = np.mean(np.argmax(x @ w + b, 1) == sk.predict(x))
    assert agree >= 0.98


def test_predict_and_decision_function():
    x, y = _problem()
    params, _ = svm.fit_svm(x, y, lam=1e-2)
    scores = np.asarray(svm.decision_function(params, x))
    assert scores.shape == (150, 3) and params["w"].shape == (8, 3) and params["b"].shape == (3,)
    np.testing.assert_array_equal(np.asarray(svm.predict(params, x)), scores.argmax(1))
    assert np.mean(scores.argmax(1) == y) > 0.8


def test_sharded_equals_single_device(devices):
    x, y = _problem()  # 150 rows, not a multiple of 8: padding rows must not count
    mesh = sharding.data_mesh(devices)
    # the same 15 iterations (no early stop): equal up to float summation order
    one, info1 = svm.fit_svm(x, y, lam=1e-2, tol=0.0, max_iter=15)
    eight, info8 = svm.fit_svm(x, y, lam=1e-2, tol=0.0, max_iter=15, mesh=mesh)
    assert eight["w"].sharding.device_set == set(devices)
    assert info1["iterations"] == info8["iterations"] == 15
    np.testing.assert_allclose(np.asarray(eight["w"]), np.asarray(one["w"]), atol=1e-4)
    np.testing.assert_allclose(info8["objective"], info1["objective"], rtol=1e-5)


@pytest.mark.parametrize("n,dtype", [(150, np.float32), (152, np.float16)])
@pytest.mark.parametrize("eight", [False, True])
def test_row_buffer_equals_placing_the_padded_matrix(devices, n, dtype, eight):
    x = RNG.normal(size=(n, 5)).astype(np.float32)
    mesh = sharding.data_mesh(devices) if eight else None
    buf = sharding.RowBuffer((n, 5), mesh, dtype)
    for start, stop in [(0, 7), (7, 40), (40, 41), (41, n)]:  # blocks straddling shards
        buf[start:stop] = x[start:stop]
    got = buf.array()
    want = sharding.place(sharding.pad_rows(x.astype(dtype), sharding.data_size(mesh)), mesh)
    assert got.dtype == dtype and got.shape == want.shape == (sharding.padded_rows(n, mesh), 5)
    assert got.sharding.is_equivalent_to(want.sharding, 2)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))  # padding rows are zeros
    np.testing.assert_array_equal(np.asarray(sharding.place_rows(x, mesh, dtype, block_rows=32)), np.asarray(want))
    with pytest.raises(ValueError, match="contiguous row slice"):
        sharding.RowBuffer((n, 5), mesh)[0:3] = x[:2]


@pytest.mark.parametrize("layout", ["host", "one device", "sharded", "replicated"])
def test_rows_of_a_sharded_array_without_gathering_it(devices, layout):
    x = RNG.normal(size=(152, 5)).astype(np.float32)
    mask = np.arange(152, dtype=np.float32)
    mesh = sharding.data_mesh(devices)
    put = {"host": lambda a: a, "one device": jnp.asarray, "sharded": lambda a: sharding.place(a, mesh),
           "replicated": lambda a: sharding.replicate(a, mesh)}[layout]
    for stride in (1, 3, 7):
        sub = sharding.strided_rows(put(x), stride)
        assert sub.sharding.device_set == {devices[0]}
        np.testing.assert_array_equal(np.asarray(sub), x[::stride])
        np.testing.assert_array_equal(np.asarray(sharding.strided_rows(put(mask), stride)), mask[::stride])
    for start, stop in [(0, 152), (3, 20), (18, 19), (150, 152)]:
        np.testing.assert_array_equal(sharding.host_rows(put(x), start, stop), x[start:stop])


def test_fit_on_device_features_equals_host_features(devices):
    x, y = _problem()  # 150 rows: padded to 152 on 8 devices
    mesh = sharding.data_mesh(devices)
    kw = dict(lam=1e-2, tol=0.0, max_iter=15, mesh=mesh)
    host, info_host = svm.fit_svm(x, y, **kw)
    padded, info_padded = svm.fit_svm(sharding.place_rows(x, mesh), y, **kw)  # [152, 8], the RowBuffer layout
    unpadded, _ = svm.fit_svm(sharding.place(x, sharding.data_mesh(devices[:2])), y, **kw)  # [150, 8], resharded
    np.testing.assert_array_equal(np.asarray(padded["w"]), np.asarray(host["w"]))
    np.testing.assert_array_equal(info_padded["objective"], info_host["objective"])
    np.testing.assert_array_equal(np.asarray(unpadded["w"]), np.asarray(host["w"]))


def test_sgd_reaches_the_optimum_and_shards(devices):
    x, y = _problem()
    lam = 1e-2
    _, full = svm.fit_svm(x, y, lam=lam, tol=1e-5)
    kw = dict(lam=lam, epochs=40, batch_size=16, chunk_steps=10, tol=1e-4, seed=3)
    params, info = sgd.fit_svm_sgd(x, y, **kw)
    ours = primal(x, y, np.asarray(params["w"]), np.asarray(params["b"]), lam, "hinge")
    np.testing.assert_allclose(ours, info["objective"][-1], rtol=1e-4)
    assert ours <= full["primal"] * 1.01  # averaged SGD within 1% of the optimum
    assert info["objective"][-1] < info["objective"][0] and info["gap"][-1] < info["gap"][0]
    assert info["dual"] <= full["primal"] + 1e-6  # the reported dual bound is valid
    mesh = sharding.data_mesh(devices)
    sharded, info8 = sgd.fit_svm_sgd(x, y, mesh=mesh, **kw)
    assert info8["eta0"] == info["eta0"] and info8["epochs"] == info["epochs"]
    np.testing.assert_allclose(np.asarray(sharded["w"]), np.asarray(params["w"]), atol=2e-3)


def test_sgd_streams_from_a_memory_map(tmp_path):
    x, y = _problem()
    path = tmp_path / "features.npy"
    np.save(path, x)
    mm = np.load(path, mmap_mode="r")
    a, _ = sgd.fit_svm_sgd(mm, y, lam=1e-2, epochs=3, batch_size=16, chunk_steps=10, eta0=0.1)
    b, _ = sgd.fit_svm_sgd(x, y, lam=1e-2, epochs=3, batch_size=16, chunk_steps=10, eta0=0.1)
    np.testing.assert_array_equal(np.asarray(a["w"]), np.asarray(b["w"]))


@pytest.mark.parametrize("fit", [svm.fit_svm, sgd.fit_svm_sgd])
def test_bad_inputs(fit):
    x, y = _problem(n=40)
    with pytest.raises(ValueError, match="2-D"):
        fit(x[:, :, None], y)
    with pytest.raises(ValueError, match="one entry per example"):
        fit(x, y[:-1])
    with pytest.raises(ValueError, match="NaN"):
        bad = x.copy()
        bad[3, 2] = np.nan
        fit(bad, y)
    with pytest.raises(ValueError, match=r"class\(es\) \[1\] have no examples"):
        fit(x, np.where(y == 1, 0, y))
    with pytest.raises(ValueError, match="integers"):
        fit(x, y.astype(np.float32))
    with pytest.raises(ValueError, match="labels must lie in"):
        fit(x, y, num_classes=2)
    with pytest.raises(ValueError, match="unknown SVM loss"):
        fit(x, y, loss="logistic")
    with pytest.raises(ValueError, match="lam must be positive"):
        fit(x, y, lam=0.0)


def test_sgd_batch_must_split_over_the_mesh(devices):
    x, y = _problem(n=40)
    with pytest.raises(ValueError, match="multiple of the mesh"):
        sgd.fit_svm_sgd(x, y, batch_size=12, mesh=sharding.data_mesh(devices))
