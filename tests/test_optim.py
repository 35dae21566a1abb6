"""Learning-rate schedules, linear scaling and the weight-decay mask."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxnet.config import base_config
from jaxnet.training.optim import (
    create_optimizer,
    create_schedule,
    decay_mask,
    lr_scale,
    observe_plateau,
    peak_learning_rate,
)


def config_with(**fields):
    c = base_config()
    for k, v in fields.items():
        c[k] = v
    return c


def test_linear_scaling_rule():
    assert peak_learning_rate(config_with(base_lr=0.1, batch_size=1024)) == pytest.approx(0.4)
    assert peak_learning_rate(config_with(base_lr=0.1, batch_size=1024, lr_scaling="none")) == 0.1


def test_multistep_decays_by_ten_at_the_given_epochs():
    c = config_with(base_lr=0.1, batch_size=256, schedule="multistep", decay_epochs=(30, 60, 80),
                    num_epochs=90)
    lr = create_schedule(c, steps_per_epoch=10)
    assert float(lr(0)) == pytest.approx(0.1)
    assert float(lr(299)) == pytest.approx(0.1)
    assert float(lr(300)) == pytest.approx(0.01)
    assert float(lr(600)) == pytest.approx(0.001)
    assert float(lr(899)) == pytest.approx(0.0001)


def test_warmup_then_cosine():
    c = config_with(base_lr=0.1, batch_size=512, schedule="cosine", warmup_epochs=5, num_epochs=90)
    lr = create_schedule(c, steps_per_epoch=100)
    peak = 0.2
    assert float(lr(0)) == pytest.approx(0.0)
    assert float(lr(250)) == pytest.approx(peak / 2)
    assert float(lr(500)) == pytest.approx(peak)
    mid = 500 + (9000 - 500) // 2
    assert float(lr(mid)) == pytest.approx(peak / 2, rel=1e-3)
    assert float(lr(9000)) == pytest.approx(0.0, abs=1e-7)


def test_multistep_with_warmup_keeps_the_epoch_boundaries():
    c = config_with(base_lr=0.1, batch_size=256, schedule="multistep", decay_epochs=(30,),
                    warmup_epochs=5, num_epochs=40)
    lr = create_schedule(c, steps_per_epoch=10)
    assert float(lr(25)) == pytest.approx(0.05)
    assert float(lr(299)) == pytest.approx(0.1)
    assert float(lr(300)) == pytest.approx(0.01)


def test_bad_schedule_is_named():
    with pytest.raises(ValueError, match="schedule must be"):
        create_schedule(config_with(schedule="linear"), 10)


def test_weight_decay_can_skip_batchnorm_and_biases():
    params = {"conv": {"kernel": jnp.ones((3, 3))}, "bn": {"scale": jnp.ones(3), "bias": jnp.ones(3)},
              "fc": {"kernel": jnp.ones((3, 2)), "bias": jnp.ones(2)}}
    mask = decay_mask(params, exclude_bn_and_bias=True)
    assert mask == {"conv": {"kernel": True}, "bn": {"scale": False, "bias": False},
                    "fc": {"kernel": True, "bias": False}}
    assert all(jax.tree.leaves(decay_mask(params, exclude_bn_and_bias=False)))
    # One SGD step with zero gradients: only the masked-in parameters shrink.
    c = config_with(weight_decay=0.1, weight_decay_exclude_bn_bias=True, momentum=0.0)
    tx = create_optimizer(c, optax.constant_schedule(1.0))
    zeros = jax.tree.map(jnp.zeros_like, params)
    updates, _ = tx.update(zeros, tx.init(params), params)
    new = optax.apply_updates(params, updates)
    np.testing.assert_allclose(new["conv"]["kernel"], 0.9)
    np.testing.assert_allclose(new["bn"]["scale"], 1.0)
    np.testing.assert_allclose(new["fc"]["bias"], 1.0)


def test_exponential_drops_by_the_factor_every_interval():
    # GoogLeNet: x0.96 every 8 epochs, as a staircase.
    c = config_with(base_lr=0.01, batch_size=256, schedule="exponential", decay_factor=0.96,
                    decay_every_epochs=8, num_epochs=40)
    lr = create_schedule(c, steps_per_epoch=10)
    assert float(lr(0)) == pytest.approx(0.01)
    assert float(lr(79)) == pytest.approx(0.01)
    assert float(lr(80)) == pytest.approx(0.0096)
    assert float(lr(160)) == pytest.approx(0.01 * 0.96 ** 2)


def plateau_config(**fields):
    return config_with(base_lr=0.01, batch_size=256, schedule="plateau", momentum=0.0,
                       weight_decay=0.0, decay_factor=0.1, plateau_patience=2, plateau_rtol=0.01,
                       plateau_min_scale=1e-2, **fields)


def test_plateau_divides_the_lr_after_patience_evaluations_without_improvement():
    c = plateau_config()
    tx = create_optimizer(c, create_schedule(c, 10))
    params = {"w": jnp.ones(3)}
    opt_state = tx.init(params)
    grads = {"w": jnp.asarray([1.0, 2.0, 3.0])}
    assert float(lr_scale(opt_state)) == 1.0
    # Errors: improve, improve, 2 without a 1% relative gain (drop), improve, 2 flat (drop),
    # 2 flat (a third drop would pass min_scale: held at 1e-2).
    errors = [0.5, 0.4, 0.399, 0.41, 0.3, 0.3, 0.3, 0.3, 0.3]
    scales = []
    for error in errors:
        opt_state = observe_plateau(opt_state, error, c)
        scales.append(float(lr_scale(opt_state)))
    np.testing.assert_allclose(scales, [1, 1, 1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01], rtol=1e-6)
    updates, _ = tx.update(grads, opt_state, params)
    np.testing.assert_allclose(updates["w"], -0.01 * 0.01 * grads["w"], rtol=1e-6)


def test_observe_plateau_leaves_other_schedules_alone():
    c = config_with(schedule="cosine")
    tx = create_optimizer(c, create_schedule(c, 10))
    opt_state = tx.init({"w": jnp.ones(3)})
    assert observe_plateau(opt_state, 0.5, c) == opt_state
    assert float(lr_scale(opt_state)) == 1.0
