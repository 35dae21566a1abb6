"""Pure steps: the sharded 8-device step equals the 1-device step; metrics and masking are right."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet.evaluation.evaluator import batch_sums
from jaxnet.evaluation.evaluator import summarize as summarize_eval
from jaxnet.mesh import batch_sharded, create_mesh, replicated, shard_batch
from jaxnet.training.state import build_training, eval_variables, split_state
from jaxnet.training.steps import (
    make_predict_fn,
    make_train_step,
    normalize,
    topk_correct,
)
from tests.tiny_config import get_config


def make_eval_step(model, config):
    """The network's prediction + the evaluator's sums, as the shared evaluator composes them."""
    predict = make_predict_fn(model, config)

    def eval_step(state, batch):
        scores = predict(eval_variables(split_state(state)[0]), batch["image"])
        return batch_sums(scores, batch["label"], batch["mask"], config.num_classes)

    return eval_step


def tiny_batch(config, n=16, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "image": rng.integers(0, 256, (n, config.image_size, config.image_size, config.channels),
                              np.uint8),
        "label": rng.integers(0, config.num_classes, n).astype(np.int32),
    }


def run_steps(config, devices, batches):
    mesh = create_mesh(devices)
    model, schedule, tx, init = build_training(config, 4, mesh)
    state = init(jax.random.PRNGKey(0))
    step = jax.jit(make_train_step(model, tx, schedule, config),
                   in_shardings=(replicated(mesh), batch_sharded(mesh)),
                   out_shardings=(replicated(mesh), replicated(mesh)))
    losses = []
    for batch in batches:
        state, metrics = step(state, shard_batch(batch, mesh))
        losses.append(float(metrics["loss"]))
    return state, losses


def test_sharded_step_equals_single_device_step(devices):
    config = get_config()
    batches = [tiny_batch(config, seed=s) for s in range(3)]
    state8, losses8 = run_steps(config, devices, batches)
    state1, losses1 = run_steps(config, devices[:1], batches)
    np.testing.assert_allclose(losses8, losses1, rtol=1e-5)
    assert losses8[0] != losses8[2]  # the steps really changed the parameters
    for a, b in zip(jax.tree.leaves(state8.params), jax.tree.leaves(state1.params)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    # BatchNorm running statistics come from the global batch, not per-device slices.
    for a, b in zip(jax.tree.leaves(state8.batch_stats), jax.tree.leaves(state1.batch_stats)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert int(state8.step) == 3
    assert len(state8.params["fc"]["kernel"].sharding.device_set) == 8


def test_bfloat16_step_tracks_float32_step(devices):
    config = get_config()
    batches = [tiny_batch(config, seed=s) for s in range(2)]
    _, losses32 = run_steps(config, devices, batches)
    config.dtype = "bfloat16"
    state16, losses16 = run_steps(config, devices, batches)
    np.testing.assert_allclose(losses16, losses32, rtol=0.05)
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(state16.params))


def test_topk_correct():
    logits = jnp.array([[0.1, 0.5, 0.2, 0.9, 0.0, -1.0], [3.0, 2.0, 1.0, 0.0, -1.0, -2.0]])
    labels = jnp.array([1, 5])
    np.testing.assert_array_equal(topk_correct(logits, labels, 1), [0.0, 0.0])
    np.testing.assert_array_equal(topk_correct(logits, labels, 2), [1.0, 0.0])
    np.testing.assert_array_equal(topk_correct(logits, labels, 3), [1.0, 0.0])
    np.testing.assert_array_equal(topk_correct(logits, labels, 6), [1.0, 1.0])


def test_eval_step_ignores_padded_rows(devices):
    config = get_config()
    mesh = create_mesh(devices)
    model, _, _, init = build_training(config, 4, mesh)
    state = init(jax.random.PRNGKey(0))
    eval_step = jax.jit(make_eval_step(model, config))
    batch = tiny_batch(config, n=16)
    batch["mask"] = np.ones(16, np.float32)
    full = summarize_eval(jax.device_get(eval_step(state, batch)))
    # The same 10 real rows, padded with 6 rows of garbage that the mask must hide.
    padded = {k: v.copy() for k, v in batch.items()}
    padded["mask"][10:] = 0
    padded["label"][10:] = 3
    first10 = {k: v[:10] for k, v in batch.items()}
    a = summarize_eval(jax.device_get(eval_step(state, padded)))
    b = summarize_eval(jax.device_get(eval_step(state, {k: np.concatenate([v, v[:6]]) for k, v in first10.items()} | {"mask": np.r_[np.ones(10), np.zeros(6)].astype(np.float32)})))
    assert a["num_examples"] == b["num_examples"] == 10 and full["num_examples"] == 16
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    assert a["top1_acc"] == b["top1_acc"]


def test_polyak_average_follows_its_formula_and_is_what_eval_sees(devices):
    config = get_config()
    config.ema_decay = 0.5
    mesh = create_mesh(devices[:1])
    model, schedule, tx, init = build_training(config, 4, mesh)
    state = init(jax.random.PRNGKey(0))
    step = jax.jit(make_train_step(model, tx, schedule, config))
    expected = jax.device_get(state.params)  # the average starts at the initial parameters
    for t in range(3):
        state, _ = step(state, tiny_batch(config, seed=t))
        decay = min(0.5, (1 + t) / (10 + t))  # 0.1, 0.18.., 0.25: warm-up of the decay
        params = jax.device_get(state.params)
        expected = jax.tree.map(lambda e, p: decay * e + (1 - decay) * p, expected, params)
    for a, b in zip(jax.tree.leaves(state.ema_params), jax.tree.leaves(expected)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert not np.allclose(state.ema_params["fc"]["kernel"], state.params["fc"]["kernel"])

    eval_step = jax.jit(make_eval_step(model, config))
    batch = tiny_batch(config) | {"mask": np.ones(16, np.float32)}
    with_ema = summarize_eval(jax.device_get(eval_step(state, batch)))
    averaged_only = state.replace(params=state.ema_params, ema_params={})
    assert with_ema == summarize_eval(jax.device_get(eval_step(averaged_only, batch)))
    raw = summarize_eval(jax.device_get(eval_step(state.replace(ema_params={}), batch)))
    assert raw["loss"] != with_ema["loss"]


def test_device_resize_upsamples_before_the_model(devices):
    images = np.full((2, 8, 8, 1), 200, np.uint8)
    images[:, :, 4:] = 100
    x = normalize(images, (100.0,), (50.0,), jnp.float32, resize_to=16)
    assert x.shape == (2, 16, 16, 1)
    np.testing.assert_allclose(x[:, :, :7], 2.0)  # left half (200) stays 2; right half (100) 0
    np.testing.assert_allclose(x[:, :, 9:], 0.0)
    config = get_config()
    config.device_resize = 16
    state, losses = run_steps(config, devices[:1], [tiny_batch(config)])
    assert np.isfinite(losses[0])
