"""Feature pipelines as plain configs: the functional API that train.py / eval.py configs use.

A config (dict or ml_collections.ConfigDict) lists feature blocks, concatenated in this order:

    {"hog": [{"cell": 4, "block": 2, "soft": True, "spatial": "bilinear"}],   # hog.hog kwargs
     "lbp": [{"cell": 7}],                                                    # lbp.lbp kwargs
     "kernel_map": {"order": 1, "period": 0.5},  # optional chi2 map of the hog + lbp blocks
     "fisher": [{"descriptor": "sift",            # or "colour"; + sift/colour kwargs
                 "bin_sizes": (4,), "step": 2, "pca_dim": 32, "components": 16,
                 "pyramid": ((1, 1), (2, 2), (3, 1)), "weight": 2.0}]}

Each block may be one dict or a list of dicts, and may carry a "weight" that scales its
output (before the kernel map for hog / lbp): with one L2 penalty on all weights, it sets how
much each block counts. Fisher blocks need fitted state (PCA + GMM) from `fit_features`; the
state is a pytree of arrays (checkpointable with orbax). uint8 images are scaled to [0, 1].
"""
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet.classical import colour, fisher, gmm, hog, kernel_map, lbp, pca, pyramid, sharding, sift
from jaxnet.classical._checks import check_images

_KINDS = ("hog", "lbp", "fisher")
_FISHER_KEYS = {"descriptor", "bin_sizes", "step", "pca_dim", "components", "pyramid", "weight"}


def _as_dict(c) -> dict:
    return dict(c.to_dict() if hasattr(c, "to_dict") else c)


def _freeze(v):
    """Hashable copy of nested dicts / lists (for jit's static arguments)."""
    if hasattr(v, "to_dict") or isinstance(v, dict):
        return tuple(sorted((k, _freeze(x)) for k, x in _as_dict(v).items()))
    if isinstance(v, (list, tuple)):
        return tuple(_freeze(x) for x in v)
    return v


def parse_config(config):
    """Validate a feature config; returns (blocks, kernel map) as hashable tuples."""
    cfg = _as_dict(config)
    unknown = set(cfg) - set(_KINDS) - {"kernel_map"}
    if unknown:
        raise ValueError(f"unknown feature config key(s) {sorted(unknown)}; valid: {sorted(_KINDS) + ['kernel_map']}")
    blocks = []
    for kind in _KINDS:
        entries = cfg.get(kind) or []
        entries = [entries] if hasattr(entries, "keys") else list(entries)
        for e in entries:
            e = _as_dict(e)
            if kind == "fisher":
                if e.get("descriptor", "sift") not in ("sift", "colour"):
                    raise ValueError(f"fisher descriptor must be 'sift' or 'colour', got {e['descriptor']!r}")
                if set(e) - _FISHER_KEYS:
                    bad = sorted(set(e) - _FISHER_KEYS)
                    raise ValueError(f"unknown fisher option(s) {bad}; valid: {sorted(_FISHER_KEYS)}")
            blocks.append((kind, _freeze(e)))
    if not blocks:
        raise ValueError("the feature config selects no features (give hog, lbp or fisher)")
    kmap = cfg.get("kernel_map")
    return tuple(blocks), (_freeze(kmap) if kmap else None)


def _to_float(images):
    return images.astype(jnp.float32) / 255.0 if images.dtype == jnp.uint8 else images.astype(jnp.float32)


def _descriptors(images, opts):
    """Local descriptors [N, M, d] and their positions [M, 2] for a fisher block."""
    kw = {"bin_sizes": tuple(opts.get("bin_sizes", (4,))), "step": opts.get("step", 2)}
    fn = sift.dsift if opts.get("descriptor", "sift") == "sift" else colour.colour_stats
    return fn(images, **kw), sift.dsift_positions(*images.shape[1:3], **kw)


@partial(jax.jit, static_argnames=("blocks", "kmap"))
def _extract(images, states, blocks, kmap):
    images = _to_float(images)
    dense, encoded = [], []
    fisher_states = iter(states)
    for kind, opts in blocks:
        opts = dict(opts)
        weight = opts.pop("weight", 1.0)
        if kind == "hog":
            dense.append(weight * hog.hog(images, **opts))
        elif kind == "lbp":
            dense.append(weight * lbp.lbp(images, **opts))
        else:
            st = next(fisher_states)
            desc, pos = _descriptors(images, opts)
            regions = pyramid.pyramid_regions(pos, opts.get("pyramid", pyramid.DEFAULT_LEVELS))
            fv = fisher.fisher_vector(pca.pca_transform(desc, st["pca"]), st["gmm"], jnp.asarray(regions))
            encoded.append(weight * fv)
    if dense and kmap is not None:
        dense = [kernel_map.chi2_map(jnp.concatenate(dense, axis=-1), **dict(kmap))]
    return jnp.concatenate(dense + encoded, axis=-1)


def extract_features(images, config, state=None, *, batch_size: int = 1024, mesh=None) -> np.ndarray:
    """Feature vectors [N, D] (float32, host memory) for NHWC images, in chunks of batch_size.
    `state` is fit_features' output; it is required when the config has fisher blocks. With a
    mesh, each chunk is split over its 'data' axis (devices work on their shards in parallel)."""
    blocks, kmap = parse_config(config)
    images = np.asarray(images) if not isinstance(images, jax.Array) else images
    check_images(images[:1])
    states = list((state or {}).get("fisher", []))
    needed = sum(kind == "fisher" for kind, _ in blocks)
    if len(states) != needed:
        raise ValueError(f"the config has {needed} fisher block(s) but the state has {len(states)}; run fit_features")
    out = []
    for i in range(0, images.shape[0], batch_size):
        chunk = images[i : i + batch_size]
        check_images(chunk)
        n = chunk.shape[0]
        chunk = sharding.place(sharding.pad_rows(chunk, sharding.data_size(mesh)), mesh)
        out.append(_extract(chunk, sharding.replicate(states, mesh), blocks, kmap)[:n])
    return np.concatenate([np.asarray(o) for o in out])


def fit_features(images, config, *, key, max_images: int = 5000, max_descriptors: int = 100_000,
                 em_iters: int = 50, batch_size: int = 1024) -> dict:
    """Fit the state of the config's fisher blocks: PCA, then a diagonal GMM on the projected
    descriptors, from at most max_descriptors descriptors of at most max_images random images.
    Returns {"fisher": [{"pca": ..., "gmm": ...} per fisher block]} (empty list if none)."""
    blocks, _ = parse_config(config)
    images = np.asarray(images)
    check_images(images[:1])

    def sample(k, n, m):  # sorted indices of min(n, m) distinct picks out of n
        return np.sort(np.asarray(jax.random.choice(k, n, (min(n, m),), replace=False)))

    states = []
    for kind, opts in blocks:
        if kind != "fisher":
            continue
        opts = dict(opts)
        key, k_img, k_desc, k_gmm = jax.random.split(key, 4)
        pick = sample(k_img, images.shape[0], max_images)
        desc = []
        for i in range(0, len(pick), batch_size):
            d = _descriptors(_to_float(check_images(images[pick[i : i + batch_size]])), opts)[0]
            desc.append(np.asarray(d).reshape(-1, d.shape[-1]))
        desc = np.concatenate(desc)
        desc = jnp.asarray(desc[sample(k_desc, desc.shape[0], max_descriptors)])
        p = pca.fit_pca(desc, min(opts.get("pca_dim", 32), desc.shape[1]))
        g, _ = gmm.fit_gmm(pca.pca_transform(desc, p), opts.get("components", 16), key=k_gmm, max_iter=em_iters)
        states.append({"pca": p, "gmm": g})
    return {"fisher": states}
