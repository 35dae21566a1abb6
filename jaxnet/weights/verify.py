"""Parity check against torchvision (needs torch and torchvision; not part of the test suite).

For each model, two comparisons of logits on one random batch (NCHW for torch, the same pixels as
NHWC for jaxnet), eval mode, reported as max |jaxnet - torch| / max |torch|:

1. float32, the torchvision model exactly as constructed with weights=None (random init): the
   parity target, < 1e-5.
2. float64 on both sides, after giving every BatchNorm random affine weights and running
   statistics measured on random batches. With untouched statistics a random net's signal fades
   (a random GoogLeNet's logits do not depend on the input at all, so check 1 cannot see a layout
   error there); with measured statistics the logits depend on the input ("input spread": the max
   logit difference between two images, relative), and float32 rounding alone then reaches
   1e-5..3e-4 in the deep ResNets, on torch's side as much as ours (torch float32 vs torch float64
   differ as much), hence float64. Target < 1e-6 (our logits are rounded to float32 at the end,
   which alone gives ~3e-8). AlexNet has no BatchNorm: there it is plain float64.
3. googlenet_bn only: training mode (batch statistics, dropout off), float64: the main and both
   aux logits, since the aux heads never run in eval mode. Target < 1e-6.

Also reported: the parameter counts, and whether `to_torchvision` of the imported variables loads
into a fresh torchvision model with strict=True and reproduces the original tensors bit for bit.
Note: check 2 switches on jax_enable_x64 for its duration.
"""
from typing import Dict, List

import numpy as np

from jaxnet import JaxnetError
from jaxnet.weights.manifests import SOURCES
from jaxnet.weights.torchvision import from_torchvision, to_torchvision

TOLERANCE = 1e-5
# label -> (jaxnet name, torchvision kwargs beyond SOURCES', jaxnet overrides)
CASES = {
    "resnet18": ("resnet18", {}, {}),
    "resnet34": ("resnet34", {}, {}),
    "resnet50": ("resnet50", {}, {}),
    "resnet101": ("resnet101", {}, {}),
    "resnet152": ("resnet152", {}, {}),
    "alexnet_onegpu": ("alexnet_onegpu", {}, {}),
    "googlenet_bn": ("googlenet_bn", {}, {}),
    "googlenet_bn+transform_input": ("googlenet_bn", {"transform_input": True},
                                     {"transform_input": True}),
}


def _randomize_batchnorm(model, generator, size):
    """Random BN affine weights, then running statistics measured on random batches (train-mode
    forward passes with a cumulative average), so activations keep their scale through the net and
    the logits depend on the input (with untouched statistics a random GoogLeNet's logits are
    nearly constant, and a layout error in the early layers could hide)."""
    import torch

    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for m in norms:
            c = m.num_features
            m.weight.copy_(torch.rand(c, generator=generator) + 0.5)
            m.bias.copy_(0.1 * torch.randn(c, generator=generator))
            m.reset_running_stats()
            m.momentum = None  # cumulative average
        model.train()
        for _ in range(2):
            model(torch.randn(4, 3, size, size, generator=generator))
        model.eval()
        for m in norms:
            m.momentum = 0.1
            m.num_batches_tracked.zero_()


def verify(labels: List[str], *, batch: int = 2, size: int = 224, seed: int = 0,
           log=print) -> Dict[str, dict]:
    try:
        import torch
        import torchvision
    except ImportError:
        raise JaxnetError("verify needs torch and torchvision:"
                          " pip install torch==2.14.1 torchvision==0.29.1") from None
    import jax

    from jaxnet.models import create_model

    unknown = [m for m in labels if m not in CASES]
    if unknown:
        raise JaxnetError(f"unknown model {unknown[0]!r} for verify; choose from {', '.join(CASES)}")
    results = {}
    for label in labels:
        name, tv_extra, overrides = CASES[label]
        ctor, tv_kwargs = SOURCES[name]
        build = lambda: getattr(torchvision.models, ctor)(weights=None, **tv_kwargs,  # noqa: E731
                                                          **tv_extra)
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        tmodel = build().eval()
        x = torch.randn(batch, 3, size, size, generator=generator)
        x_nhwc = x.permute(0, 2, 3, 1).numpy()
        with torch.no_grad():
            ref = tmodel(x).numpy()
        state_dict = tmodel.state_dict()
        variables = from_torchvision(state_dict, name)
        model = create_model(name, num_classes=ref.shape[1], **overrides)
        out = np.asarray(jax.jit(lambda v, im: model.apply(v, im, train=False))(variables, x_nhwc))
        rel32, _ = _compare(out, ref)
        n_jax = sum(int(np.size(p)) for p in jax.tree.leaves(variables["params"]))
        n_torch = sum(p.numel() for p in tmodel.parameters())
        # export -> strict load into a fresh torchvision model -> the same tensors, bit for bit
        exported = to_torchvision(variables, name)
        fresh = build()
        fresh.load_state_dict({k: torch.from_numpy(v) for k, v in exported.items()}, strict=True)
        exact = all(torch.equal(v, state_dict[k]) for k, v in fresh.state_dict().items()
                    if not k.endswith("num_batches_tracked"))
        # float64, measured BatchNorm statistics
        _randomize_batchnorm(tmodel, generator, size)
        variables = from_torchvision(tmodel.state_dict(), name)
        with torch.no_grad():
            ref64 = tmodel.double()(x.double()).numpy()
        rel64, spread = _float64_apply(name, overrides, variables, x_nhwc, ref64)
        aux_note, rel_aux = "", 0.0
        if name == "googlenet_bn":  # aux heads only run in training: compare them there
            rel_aux = _float64_train_aux(tmodel, overrides, variables, x, x_nhwc)
            aux_note = f" | train mode + aux heads {rel_aux:.2e}"
        ok = (rel32 < TOLERANCE and rel64 < 1e-6 and rel_aux < 1e-6 and spread > 1e-2
              and n_jax == n_torch and exact)
        results[label] = dict(max_rel_diff=rel32, max_rel_diff_f64=rel64, input_spread=spread,
                              train_aux_f64=rel_aux, params=n_jax, torch_params=n_torch,
                              export_exact=exact, ok=ok)
        log(f"{label:<28} float32 max_rel_diff={rel32:.2e} | float64 + BN stats {rel64:.2e}"
            f" (input spread {spread:.2f}){aux_note} | params {n_jax:,} (torch {n_torch:,})"
            f" | export->strict load {'exact' if exact else 'DIFFERS'} | {'OK' if ok else 'FAIL'}")
    return results


def _compare(out, ref):
    out, ref = np.asarray(out, np.float64), np.asarray(ref, np.float64)
    scale = np.max(np.abs(ref))
    return float(np.max(np.abs(out - ref)) / scale), float(np.max(np.abs(ref[0] - ref[-1])) / scale)


def _float64_apply(name, overrides, variables, x_nhwc, ref64):
    import jax
    import jax.numpy as jnp

    from jaxnet.models import create_model

    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        model = create_model(name, num_classes=ref64.shape[1], dtype=jnp.float64, **overrides)
        v64 = jax.tree.map(lambda a: np.asarray(a, np.float64), variables)
        out = jax.jit(lambda v, im: model.apply(v, im, train=False))(v64, x_nhwc.astype(np.float64))
        return _compare(np.asarray(out), ref64)
    finally:
        jax.config.update("jax_enable_x64", before)


def _float64_train_aux(tmodel, overrides, variables, x, x_nhwc):
    """googlenet_bn in training mode (batch statistics), dropout off: main and both aux logits."""
    import jax
    import jax.numpy as jnp
    import torch

    from jaxnet.models import create_model

    for m in tmodel.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    tmodel.train()
    with torch.no_grad():
        out = tmodel(x.double())
    tmodel.eval()
    refs = [out.logits.numpy(), out.aux_logits1.numpy(), out.aux_logits2.numpy()]
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        model = create_model("googlenet_bn", num_classes=refs[0].shape[1], dtype=jnp.float64,
                             dropout_rate=0.0, aux_dropout_rate=0.0, **overrides)
        v64 = jax.tree.map(lambda a: np.asarray(a, np.float64), variables)
        ours, _ = jax.jit(lambda v, im: model.apply(v, im, train=True, mutable=["batch_stats"]))(
            v64, x_nhwc.astype(np.float64))
        mine = [ours["logits"], *ours["aux_logits"]]
        return max(_compare(np.asarray(a), r)[0] for a, r in zip(mine, refs))
    finally:
        jax.config.update("jax_enable_x64", before)
