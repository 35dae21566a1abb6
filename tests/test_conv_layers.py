"""The per-convolution benchmark reads the convolutions training runs from the net's own jaxpr
and times each one's forward and backward in XLA on the training mesh."""
from collections import Counter

import numpy as np
import pytest

from jaxnet.mesh import create_mesh
from jaxnet.tools import bench_conv_layers as conv_layers
from tests.tiny_config import get_config


def test_the_convolutions_are_the_nets_own_in_training_mode():
    convs = conv_layers.convolutions(get_config())  # batch 16, 8x8x1, width 4, stages (1, 1)
    same, none = ((1, 1), (1, 1)), ((0, 0), (0, 0))
    assert convs[0] == ((16, 8, 8, 1), (3, 3, 1, 4), (1, 1), same, 1, True)  # the stem
    assert Counter(convs[1:]) == Counter({
        ((16, 8, 8, 4), (3, 3, 4, 4), (1, 1), same, 1, False): 2,  # stage 1's block
        ((16, 8, 8, 4), (3, 3, 4, 8), (2, 2), same, 1, False): 1,  # stage 2: strided conv1
        ((16, 4, 4, 8), (3, 3, 8, 8), (1, 1), same, 1, False): 1,  # conv2
        ((16, 8, 8, 4), (1, 1, 4, 8), (2, 2), none, 1, False): 1,  # the projection shortcut
    })
    assert conv_layers.describe(convs[0]) == "8x8x1 -> 4, 3x3/1 (first)"


def test_the_xla_runner_computes_the_output_and_the_gradients_training_needs():
    mesh = create_mesh()
    first = ((16, 8, 8, 1), (3, 3, 1, 4), (1, 1), ((1, 1), (1, 1)), 1, True)
    strided = ((16, 8, 8, 4), (3, 3, 4, 8), (2, 2), ((1, 1), (1, 1)), 1, False)
    y, grads = conv_layers.xla_runner(first, mesh)()
    assert y.shape == (16, 8, 8, 4) and [g.shape for g in grads] == [(3, 3, 1, 4)]  # no image grad
    y, grads = conv_layers.xla_runner(strided, mesh)()
    assert y.shape == (16, 4, 4, 8)
    assert [g.shape for g in grads] == [(16, 8, 8, 4), (3, 3, 4, 8)]
    # The cotangent is the output itself and a convolution is linear in each argument, so
    # <dx, x> = <dw, w> = |y|^2 (x and w: the runner's standard normals, seed 0, x drawn first).
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(strided[0], np.float32), rng.standard_normal(strided[1], np.float32)
    norm = float(np.sum(np.square(np.asarray(y), dtype=np.float64)))
    assert float(np.vdot(np.asarray(grads[0], np.float64), x)) == pytest.approx(norm, rel=1e-4)
    assert float(np.vdot(np.asarray(grads[1], np.float64), w)) == pytest.approx(norm, rel=1e-4)
