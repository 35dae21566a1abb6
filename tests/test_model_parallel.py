"""Model parallelism (config.model_parallel): AlexNet's columns on a `model` mesh axis.

The 8 emulated CPU devices as 4 data x 2 model give the single-device step; the compiled step
communicates activations only where the paper's GPUs did (conv3, fc6-fc8) and sends half the
gradient bytes of data parallelism; train.py's path (jaxnet.methods.train) runs with it.
"""
import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from jaxnet import JaxnetError
from jaxnet.config import validate_config
from jaxnet.experiments import model_parallel as mp
from jaxnet.mesh import create_mesh
from jaxnet.models.alexnet import column_conv


def test_mesh_axes_and_errors(devices):
    mesh = create_mesh(devices, model_parallel=2)
    assert dict(mesh.shape) == {"data": 4, "model": 2}
    assert dict(create_mesh(devices).shape) == {"data": 8}
    with pytest.raises(JaxnetError, match="divisible"):
        create_mesh(devices[:3], model_parallel=2)
    config = mp.alexnet_config(67, 10, 8, 64, True, 0)
    with pytest.raises(JaxnetError, match="model_parallel"):
        validate_config(config)


def test_column_conv_is_the_grouped_conv():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 7, 7, 12)).astype(np.float32)
    kernel = rng.normal(size=(5, 5, 6, 8)).astype(np.float32)
    grouped = jax.lax.conv_general_dilated(x, kernel, (1, 1), [(2, 2), (2, 2)],
                                           dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                           feature_group_count=2)
    np.testing.assert_allclose(column_conv(x, kernel, 2), grouped, rtol=1e-5, atol=1e-5)


def test_4_data_x_2_model_step_equals_one_device_and_communicates_where_the_paper_did(devices):
    from jaxnet.mesh import shard_batch
    from jaxnet.training.state import count_params

    config = mp.alexnet_config(67, 10, 8, 64, True, 2)
    step, state, mesh = mp.compiled_step(config, devices)
    batches = mp.random_batches(config, 2)
    compiled = step.lower(state, shard_batch(batches[0], mesh)).compile()
    comm = mp.summarize(mp.collectives(compiled.as_text()))
    # activations cross between the columns only at conv3 and fc6-fc8 (and back), as in the paper
    assert comm["activation_layers"] == ["conv3", "fc6", "fc7", "fc8"]
    # each device all-reduces the gradients of its own half of the model over the 4 data replicas
    # (the same all-reduce carries a few scalars of the metrics too)
    assert 0 <= comm["gradient_bytes"] - 4 * count_params(state.params) // 2 < 64
    assert state.params["conv2"]["kernel"].sharding.spec == P(None, None, None, "model")
    losses = []
    for batch in batches:
        state, metrics = compiled(state, shard_batch(batch, mesh))
        losses.append(float(metrics["loss"]))

    reference = mp.alexnet_config(67, 10, 8, 64, False, 1)  # XLA's grouped convs, one device
    ref_step, ref_state, ref_mesh = mp.compiled_step(reference, devices[:1])
    ref_losses = []
    for batch in batches:
        ref_state, metrics = ref_step(ref_state, shard_batch(batch, ref_mesh))
        ref_losses.append(float(metrics["loss"]))
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-5)
    assert losses[1] != losses[0]
    for a, b in zip(jax.tree.leaves(jax.device_get(state.params)),
                    jax.tree.leaves(jax.device_get(ref_state.params))):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_collectives_parser_reads_arrays_and_tuples():
    hlo = """
  %all-reduce.1 = (f32[2,3]{1,0}, bf16[4]{0}) all-reduce(%a, %b), replica_groups={}, metadata={op_name="jit(f)/transpose(jvp(AlexNet))/conv1/x jit(f)/transpose(jvp(AlexNet))/fc6/y jit(f)/transpose(jvp(AlexNet))/fc7/z"}
  %all-gather = f32[8,256]{0,1} all-gather(%c), dimensions={1}, metadata={op_name="jit(f)/jvp(AlexNet)/fc7/dot_general"}
  %add = f32[8]{0} add(%d, %e)
"""
    ops = mp.collectives(hlo)
    assert [(o["op"], o["bytes"]) for o in ops] == [("all-reduce", 32), ("all-gather", 8192)]
    summary = mp.summarize(ops)
    assert summary["gradient_bytes"] == 32 and summary["activation_layers"] == ["fc7"]


def test_train_runs_model_parallel_through_the_methods_interface(devices, tmp_path):
    from jaxnet.methods import train
    from jaxnet.training.sharding import state_shardings
    from tests.tiny_config import get_config

    config = get_config()
    config.model_parallel = 2
    config.num_epochs = 0.5
    config.eval_every_epochs = 0.5
    metrics = train(config, tmp_path / "run")
    assert metrics["num_examples"] == 64 and np.isfinite(metrics["loss"])
    mesh = create_mesh(devices, model_parallel=2)
    shapes = {"params": {"conv": {"kernel": jax.ShapeDtypeStruct((3, 3, 4, 8), np.float32),
                                  "bias": jax.ShapeDtypeStruct((8,), np.float32)},
                         "bn": {"scale": jax.ShapeDtypeStruct((8,), np.float32)}},
              "rng": jax.ShapeDtypeStruct((2,), np.uint32)}
    specs = jax.tree.map(lambda s: s.spec, state_shardings(shapes, mesh, config))
    assert specs == {"params": {"conv": {"kernel": P(None, None, None, "model"),
                                         "bias": P("model")}, "bn": {"scale": P()}},
                     "rng": P()}
