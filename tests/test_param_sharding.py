"""Parameter sharding (config.param_sharding = "fsdp"): the per-leaf rule, the same training
result as replication on 8 devices, less per-device memory, and checkpoints that move between
the two placements."""
import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from jaxnet import JaxnetError
from jaxnet.config import validate_config
from jaxnet.loop.checkpoint import Checkpointer, abstract_like
from jaxnet.mesh import batch_sharded, create_mesh, replicated, shard_batch
from jaxnet.training.sharding import fsdp_spec, shardings_of, state_shardings
from jaxnet.training.state import build_training
from jaxnet.training.steps import make_train_step
from tests.tiny_config import get_config


def test_fsdp_spec_splits_the_largest_divisible_dimension_of_big_arrays():
    assert fsdp_spec((3, 3, 64, 128), 8, 1000) == P(None, None, None, "data")
    assert fsdp_spec((2048, 1000), 8, 1000) == P("data")
    assert fsdp_spec((1000, 2048), 8, 1000) == P(None, "data")
    assert fsdp_spec((7, 7, 3, 64), 8, 1000) == P(None, None, None, "data")  # 64, not 7
    assert fsdp_spec((3, 3, 5, 7), 8, 0) == P()  # nothing divisible: replicated
    assert fsdp_spec((512,), 8, 1000) == P()  # small (a BatchNorm vector): replicated
    assert fsdp_spec((), 8, 0) == P()  # scalars (step, counters)
    assert fsdp_spec((4096, 4096), 1, 0) == P()  # one device: nothing to split


def test_state_shardings_work_on_any_state_pytree(devices):
    mesh = create_mesh(devices)
    config = get_config()
    config.param_sharding, config.param_sharding_min_size = "fsdp", 64
    state = {"params": {"w": jax.ShapeDtypeStruct((16, 8), np.float32)},
             "ema_params": {"w": jax.ShapeDtypeStruct((16, 8), np.float32)},  # any extra field
             "opt_state": (jax.ShapeDtypeStruct((), np.int32),
                           {"w": jax.ShapeDtypeStruct((16, 8), np.float32)}),
             "rng": jax.ShapeDtypeStruct((2,), np.uint32)}
    specs = jax.tree.map(lambda s: s.spec, state_shardings(state, mesh, config))
    assert specs == {"params": {"w": P("data")}, "ema_params": {"w": P("data")},
                     "opt_state": (P(), {"w": P("data")}), "rng": P()}
    config.param_sharding = "replicated"
    assert set(jax.tree.leaves(jax.tree.map(lambda s: s.spec, state_shardings(state, mesh, config)))) == {P()}


def test_config_rejects_an_unknown_placement():
    config = get_config()
    config.param_sharding = "zero3"
    with pytest.raises(JaxnetError, match="param_sharding"):
        validate_config(config)


def setup(mode, mesh):
    config = get_config()
    config.model.width = 8  # channel counts divisible by the 8 devices
    config.param_sharding, config.param_sharding_min_size = mode, 0
    model, schedule, tx, init = build_training(config, 4, mesh)
    state = init(jax.random.PRNGKey(0))
    shardings = shardings_of(state)
    step = jax.jit(make_train_step(model, tx, schedule, config),
                   in_shardings=(shardings, batch_sharded(mesh)),
                   out_shardings=(shardings, replicated(mesh)))
    return config, state, step


def batches(config, mesh, n):
    rng = np.random.default_rng(0)
    shape = (config.batch_size, config.image_size, config.image_size, config.channels)
    return [shard_batch({"image": rng.integers(0, 256, shape, np.uint8),
                         "label": rng.integers(0, config.num_classes, config.batch_size).astype(np.int32)},
                        mesh) for _ in range(n)]


def test_fsdp_trains_like_replication_with_less_memory_per_device(devices, tmp_path):
    mesh = create_mesh(devices)
    runs = {}
    for mode in ("replicated", "fsdp"):
        config, state, step = setup(mode, mesh)
        data = batches(config, mesh, 3)
        memory = step.lower(state, data[0]).compile().memory_analysis()
        losses = []
        for batch in data:
            state, metrics = step(state, batch)
            losses.append(float(metrics["loss"]))
        runs[mode] = state, losses, memory

    (rep, rep_losses, rep_memory), (fsdp, fsdp_losses, fsdp_memory) = runs["replicated"], runs["fsdp"]
    # Really sharded: most arrays (conv kernels, momenta, BatchNorm vectors of 8) live 1/8 per device.
    sharded = [x for x in jax.tree.leaves(fsdp) if x.sharding.spec != P()]
    assert len(sharded) > len(jax.tree.leaves(fsdp)) // 3, "most arrays should be split"
    for x in sharded:
        assert x.addressable_shards[0].data.size == x.size // 8
    # Same numbers: losses and every state leaf after 3 steps.
    np.testing.assert_allclose(fsdp_losses, rep_losses, rtol=1e-5)
    for (path, a), b in zip(jax.tree.leaves_with_path(jax.device_get(rep)),
                            jax.tree.leaves(jax.device_get(fsdp))):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6, err_msg=jax.tree_util.keystr(path))
    # Less memory per device for the step's arguments (state + batch shard), from XLA itself.
    print(f"argument bytes per device: replicated {rep_memory.argument_size_in_bytes:,},"
          f" fsdp {fsdp_memory.argument_size_in_bytes:,}")
    assert fsdp_memory.argument_size_in_bytes < 0.5 * rep_memory.argument_size_in_bytes

    # A checkpoint of the replicated state restores into the sharded placement (and back).
    checkpointer = Checkpointer(tmp_path / "checkpoints", keep=1)
    try:
        checkpointer.save(3, {"state": rep})
        checkpointer.wait()
        restored = checkpointer.restore(3, {"state": abstract_like(fsdp, shardings_of(fsdp))})["state"]
    finally:
        checkpointer.close()
    assert shardings_of(restored) == shardings_of(fsdp)
    for a, b in zip(jax.tree.leaves(jax.device_get(rep)), jax.tree.leaves(jax.device_get(restored))):
        np.testing.assert_array_equal(a, b)


def test_eval_py_restores_an_fsdp_run_in_its_placement(tmp_path):
    from jaxnet.methods import evaluate, train

    config = get_config()
    config.param_sharding, config.param_sharding_min_size = "fsdp", 64
    final = train(config, tmp_path)
    again = evaluate(config, tmp_path)
    assert again["step"] == 8 and again["num_examples"] == final["num_examples"]
    for key in ("loss", "top1_acc", "top5_acc"):
        assert again[key] == pytest.approx(final[key], rel=1e-6)
