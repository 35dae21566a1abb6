"""Parameters and forward-pass FLOPs of every registered model, from XLA's cost analysis.

    python -m jaxnet flops [NAME ...]

For one float32 image at the paper's resolution (227 px for the two-column AlexNet, 224 for the
rest; 1000 classes) this compiles `apply(variables, images, train=False)` on the default backend
and reads `compiled.cost_analysis()["flops"]`. XLA counts a multiply-add as 2 FLOPs, skips the
multiply-adds that land on a conv's zero padding, and also counts elementwise work (activations,
batch norm, LRN, pooling). Papers and torchvision quote multiply-adds of the conv and fc layers
with padding included, so the table also gives that count (`macs`, read off the jaxpr).
Nothing is run: only shapes are needed.
"""
import math

import jax
import jax.numpy as jnp
from jax.extend.core import ClosedJaxpr, Jaxpr

from jaxnet.models import create_model

RESOLUTION = {"alexnet": 227}  # everything else: 224


def macs(jaxpr) -> int:
    """Multiply-adds of the convolutions and matrix products in a (closed) jaxpr, padding included."""
    total = 0
    for eqn in jaxpr.eqns:
        out = eqn.outvars[0].aval
        if eqn.primitive.name == "conv_general_dilated":
            kernel = eqn.invars[1].aval
            out_features = kernel.shape[eqn.params["dimension_numbers"].rhs_spec[0]]
            total += out.size * kernel.size // out_features
        elif eqn.primitive.name == "dot_general":
            (contract, _), _ = eqn.params["dimension_numbers"]
            total += out.size * math.prod(eqn.invars[0].aval.shape[d] for d in contract)
        for param in eqn.params.values():  # nested jaxprs (jit, custom_jvp, ...)
            for sub in param if isinstance(param, (list, tuple)) else [param]:
                if isinstance(sub, ClosedJaxpr):
                    total += macs(sub.jaxpr)
                elif isinstance(sub, Jaxpr):
                    total += macs(sub)
    return total


def forward_macs(model, variables, images) -> int:
    """Conv + fc multiply-adds of model.apply(variables, images, train=False) (shapes only)."""
    jaxpr = jax.make_jaxpr(lambda v, x: model.apply(v, x, train=False))(variables, images)
    return macs(jaxpr.jaxpr)


def model_costs(name: str, num_classes: int = 1000):
    """(input px, parameter count, XLA forward FLOPs, conv/fc multiply-adds) for one image."""
    px = RESOLUTION.get(name, 224)
    model = create_model(name, num_classes=num_classes)
    images = jax.ShapeDtypeStruct((1, px, px, 3), jnp.float32)
    variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), images)
    params = variables["params"]
    if name == "googlenet":  # the aux heads are training-only; count the inference net
        params = {k: v for k, v in params.items() if not k.startswith("aux")}
    n_params = sum(x.size for x in jax.tree.leaves(params))

    def forward(v, x):
        return model.apply(v, x, train=False)

    cost = jax.jit(forward).lower(variables, images).compile().cost_analysis()
    if isinstance(cost, (list, tuple)):  # older jax returns one dict per device
        cost = cost[0]
    return px, n_params, cost["flops"], forward_macs(model, variables, images)
