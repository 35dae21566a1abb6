"""Feature pipelines as plain configs: the functional API that train.py / eval.py configs use.

A config (dict or ml_collections.ConfigDict) lists feature blocks, concatenated in this order:
first the histogram blocks hog, lbp, bow (through the kernel map if there is one), then the
encoded blocks fisher, coding:

    {"hog": [{"cell": 4, "block": 2, "soft": True, "spatial": "bilinear"}],   # hog.hog kwargs
     "lbp": [{"cell": 7}],                                                    # lbp.lbp kwargs
     "bow": [{"descriptor": "sift", "bin_sizes": (4,), "step": 2,             # bag of words
              "pca_dim": 0, "words": 1024, "assign": "hard",                  # or "soft" with
              "neighbours": 5, "sigma": 1.0, "normalize": "l1",               # neighbours, sigma
              "pyramid": ((1, 1), (2, 2), (3, 1))}],
     "kernel_map": {"order": 1, "period": 0.5},  # optional chi2 map of the hog + lbp + bow blocks
     "fisher": [{"descriptor": "sift",            # or "colour"; + sift/colour kwargs
                 "bin_sizes": (4,), "step": 2, "pca_dim": 32, "components": 16,
                 "pyramid": ((1, 1), (2, 2), (3, 1)), "weight": 2.0}],
     "coding": [{"descriptor": "hog", "cells": (4,), "method": "super_vector",  # or "llc"
                 "words": 64, "s": 1.0, "power": 1.0, "pyramid": ((1, 1), (2, 2), (3, 1))}]}

Local descriptors of bow / coding blocks ("descriptor"): "sift" and "colour" (options bin_sizes,
step), "hog" (HOG blocks, coding.dense_hog: cells, block, bins, soft, spatial) and "lbp" (LBP
window histograms, coding.dense_lbp: windows, step, p, r). Their codebook is k-means (with
k-means++ seeds) on descriptors projected by PCA to pca_dim (0: no PCA). bow: bow.bow_vector
(sigma in units of the codebook's RMS quantisation error, fitted). coding: coding.super_vector
(s in the same units) or coding.llc_vector (neighbours, beta, pooling "max" | "average").

Each block may be one dict or a list of dicts, and may carry a "weight" that scales its
output (before the kernel map for hog / lbp / bow): with one L2 penalty on all weights, it sets
how much each block counts. Fisher, bow and coding blocks need fitted state (PCA + GMM, or
PCA + codebook) from `fit_features` (`needs_fit(config)` says so); the state is a pytree of
arrays (checkpointable with orbax). uint8 images are scaled to [0, 1].
"""
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet.classical import (bow, coding, colour, fisher, gmm, hog, kernel_map, kmeans, lbp, pca, pyramid,
                              sharding, sift)
from jaxnet.classical._checks import check_images

_KINDS = ("hog", "lbp", "bow", "fisher", "coding")
FITTED_KINDS = ("fisher", "bow", "coding")  # blocks whose state fit_features fits
_HISTOGRAM_KINDS = ("hog", "lbp", "bow")  # non-negative blocks: what the kernel map applies to
_DESCRIPTOR_KEYS = {"sift": {"bin_sizes", "step"}, "colour": {"bin_sizes", "step"},
                    "hog": {"cells", "block", "bins", "soft", "spatial"}, "lbp": {"windows", "step", "p", "r"}}
_FISHER_KEYS = {"descriptor", "bin_sizes", "step", "pca_dim", "components", "pyramid", "weight"}
_CODEBOOK_KEYS = {"descriptor", "pca_dim", "words", "pyramid", "weight"}
_OPTION_KEYS = {"bow": _CODEBOOK_KEYS | {"assign", "neighbours", "sigma", "normalize"},
                "coding": _CODEBOOK_KEYS | {"method", "s", "neighbours", "beta", "pooling", "power"}}
_CHOICES = {"assign": bow.ASSIGNMENTS, "normalize": bow.NORMALIZATIONS, "method": coding.METHODS,
            "pooling": coding.POOLINGS}
_DEFAULT_DESCRIPTOR = {"bow": "sift", "coding": "hog"}

def _as_dict(c) -> dict:
    return dict(c.to_dict() if hasattr(c, "to_dict") else c)


def _freeze(v):
    """Hashable copy of nested dicts / lists (for jit's static arguments)."""
    if hasattr(v, "to_dict") or isinstance(v, dict):
        return tuple(sorted((k, _freeze(x)) for k, x in _as_dict(v).items()))
    if isinstance(v, (list, tuple)):
        return tuple(_freeze(x) for x in v)
    return v


def _check_codebook_block(kind: str, e: dict) -> None:
    """Option names and values of a bow or coding block (ValueError naming the problem)."""
    desc = e.get("descriptor", _DEFAULT_DESCRIPTOR[kind])
    if desc not in _DESCRIPTOR_KEYS:
        raise ValueError(f"{kind} descriptor must be one of {', '.join(map(repr, _DESCRIPTOR_KEYS))}, got {desc!r}")
    valid = _OPTION_KEYS[kind] | _DESCRIPTOR_KEYS[desc]
    if set(e) - valid:
        raise ValueError(f"unknown {kind} option(s) {sorted(set(e) - valid)} for descriptor {desc!r};"
                         f" valid: {sorted(valid)}")
    for key, choices in _CHOICES.items():
        if key in e and key in _OPTION_KEYS[kind] and e[key] not in choices:
            raise ValueError(f"{kind} {key} must be one of {', '.join(map(repr, choices))}, got {e[key]!r}")
    for key, low in (("words", 1), ("pca_dim", 0), ("neighbours", 0)):
        if key in e and not (isinstance(e[key], (int, np.integer)) and e[key] >= low):
            raise ValueError(f"{kind} {key} must be an integer >= {low}, got {e[key]!r}")
    for key in ("sigma", "s", "power", "beta"):
        if key in e and not e[key] > 0:
            raise ValueError(f"{kind} {key} must be positive, got {e[key]!r}")


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
            elif kind in ("bow", "coding"):
                _check_codebook_block(kind, e)
            blocks.append((kind, _freeze(e)))
    if not blocks:
        raise ValueError("the feature config selects no features (give hog, lbp, bow, fisher or coding)")
    kmap = cfg.get("kernel_map")
    return tuple(blocks), (_freeze(kmap) if kmap else None)


def needs_fit(config) -> bool:
    """Whether the feature config has blocks with fitted state (fisher, bow, coding), i.e. whether
    `fit_features` must run (on train images) before `extract_features` / `traced_features`."""
    return any(kind in FITTED_KINDS for kind, _ in parse_config(config)[0])


def _to_float(images):
    return images.astype(jnp.float32) / 255.0 if images.dtype == jnp.uint8 else images.astype(jnp.float32)


def _descriptor_options(opts: dict, default: str = "sift"):
    """(descriptor name, its keyword arguments) of a block's options."""
    name = opts.get("descriptor", default)
    kw = {k: opts[k] for k in _DESCRIPTOR_KEYS[name] if k in opts}
    if name in ("sift", "colour"):
        kw = {"bin_sizes": tuple(np.atleast_1d(kw.get("bin_sizes", (4,))).tolist()), "step": kw.get("step", 2)}
    elif name == "hog":
        kw["cells"] = tuple(np.atleast_1d(kw.get("cells", (4,))).tolist())
    else:
        kw["windows"] = tuple(np.atleast_1d(kw.get("windows", (8,))).tolist())
    return name, kw


@partial(jax.jit, static_argnames=("name", "kw"))
def _local(images, name, kw):
    kw = dict(kw)
    return {"sift": sift.dsift, "colour": colour.colour_stats, "hog": coding.dense_hog,
            "lbp": coding.dense_lbp}[name](images, **kw)


def _descriptors(images, opts, default: str = "sift"):
    """Local descriptors [N, M, d] and their positions [M, 2] ((y, x) fractions) for a block."""
    name, kw = _descriptor_options(opts, default)
    positions = {"sift": sift.dsift_positions, "colour": sift.dsift_positions, "hog": coding.dense_hog_positions,
                 "lbp": coding.dense_lbp_positions}[name]
    return _local(images, name, _freeze(kw)), positions(*images.shape[1:3], **kw)


def _project(desc, st):
    return pca.pca_transform(desc, st["pca"]) if "pca" in st else desc


def _encode(images, kind, opts, st):
    """One fitted block's features [N, D] (weight not applied)."""
    desc, pos = _descriptors(images, opts, _DEFAULT_DESCRIPTOR.get(kind, "sift"))
    regions = pyramid.pyramid_regions(pos, opts.get("pyramid", pyramid.DEFAULT_LEVELS))
    if kind == "fisher":
        return fisher.fisher_vector(pca.pca_transform(desc, st["pca"]), st["gmm"], jnp.asarray(regions))
    desc = _project(desc, st)
    if kind == "bow":
        return bow.bow_vector(desc, st["centres"], regions, assign=opts.get("assign", "hard"),
                              neighbours=opts.get("neighbours", 5), sigma=opts.get("sigma", 1.0) * st["scale"],
                              normalize=opts.get("normalize", "l1"))
    if opts.get("method", "super_vector") == "super_vector":
        return coding.super_vector(desc, st["centres"], regions, s=opts.get("s", 1.0) * st["scale"],
                                   power=opts.get("power", 1.0))
    return coding.llc_vector(desc, st["centres"], regions, neighbours=opts.get("neighbours", 5),
                             beta=opts.get("beta", 1e-4), pooling=opts.get("pooling", "max"),
                             power=opts.get("power", 1.0))


@partial(jax.jit, static_argnames=("blocks", "kmap"))
def _extract(images, states, blocks, kmap):
    images = _to_float(images)
    histograms, encoded = [], []
    fitted = {kind: iter(states.get(kind, [])) for kind in FITTED_KINDS}
    for kind, opts in blocks:
        opts = dict(opts)
        weight = opts.pop("weight", 1.0)
        if kind == "hog":
            f = hog.hog(images, **opts)
        elif kind == "lbp":
            f = lbp.lbp(images, **opts)
        else:
            f = _encode(images, kind, opts, next(fitted[kind]))
        (histograms if kind in _HISTOGRAM_KINDS else encoded).append(weight * f)
    if histograms and kmap is not None:
        histograms = [kernel_map.chi2_map(jnp.concatenate(histograms, axis=-1), **dict(kmap))]
    return jnp.concatenate(histograms + encoded, axis=-1)


def _states(state, blocks) -> dict:
    """{kind: [block state, ...]} for the fitted kinds, checked against the config's blocks."""
    state = state or {}
    out = {}
    for kind in FITTED_KINDS:
        have = list(state.get(kind, []))
        needed = sum(k == kind for k, _ in blocks)
        if len(have) != needed:
            raise ValueError(f"the config has {needed} {kind} block(s) but the state has {len(have)};"
                             " run fit_features")
        if have:
            out[kind] = have
    return out


def traced_features(images, config, state):
    """Feature vectors [N, D] of device `images` inside a caller's jit (no padding, no host copy):
    what a method's prediction function composes with the SVM. `state` as for extract_features."""
    blocks, kmap = parse_config(config)
    return _extract(images, _states(state, blocks), blocks, kmap)


def extract_features(images, config, state=None, *, batch_size: int = 1024, mesh=None) -> np.ndarray:
    """Feature vectors [N, D] (float32, host memory) for NHWC images, in chunks of batch_size.
    `state` is fit_features' output; it is required when the config has fisher, bow or coding
    blocks (`needs_fit`). With a mesh, each chunk is split over its 'data' axis (devices work on
    their shards in parallel)."""
    blocks, kmap = parse_config(config)
    images = np.asarray(images) if not isinstance(images, jax.Array) else images
    check_images(images[:1])
    states = _states(state, blocks)
    out = []
    for i in range(0, images.shape[0], batch_size):
        chunk = images[i : i + batch_size]
        check_images(chunk)
        n = chunk.shape[0]
        chunk = sharding.place(sharding.pad_rows(chunk, sharding.data_size(mesh)), mesh)
        out.append(_extract(chunk, sharding.replicate(states, mesh), blocks, kmap)[:n])
    return np.concatenate([np.asarray(o) for o in out])


def _sample(key, n: int, m: int) -> np.ndarray:
    """Sorted indices of min(n, m) distinct picks out of n."""
    return np.sort(np.asarray(jax.random.choice(key, n, (min(n, m),), replace=False)))


def _sample_descriptors(images, kind, opts, k_img, k_desc, max_images, max_descriptors, batch_size):
    """At most max_descriptors local descriptors [n, d] (device array) of the block's kind, drawn
    from at most max_images random images."""
    pick = _sample(k_img, images.shape[0], max_images)
    desc = []
    for i in range(0, len(pick), batch_size):
        chunk = _to_float(check_images(images[pick[i : i + batch_size]]))
        d = _descriptors(chunk, opts, _DEFAULT_DESCRIPTOR.get(kind, "sift"))[0]
        desc.append(np.asarray(d).reshape(-1, d.shape[-1]))
    desc = np.concatenate(desc)
    return jnp.asarray(desc[_sample(k_desc, desc.shape[0], max_descriptors)])


def fit_features(images, config, *, key, max_images: int = 5000, max_descriptors: int = 100_000,
                 em_iters: int = 50, batch_size: int = 1024, mesh=None) -> dict:
    """Fit the state of the config's fisher, bow and coding blocks from at most max_descriptors
    descriptors of at most max_images random images: PCA, then a diagonal GMM (fisher, at most
    em_iters EM steps) or a k-means codebook (bow, coding: k-means++ seeds, at most em_iters
    Lloyd steps; with a mesh, sharded over its 'data' axis) on the projected descriptors.
    Returns {"fisher": [{"pca", "gmm"} per fisher block] (empty list if none), and "bow" /
    "coding": [{"pca" (when pca_dim > 0), "centres" [K, d], "scale" (RMS distance of a
    descriptor to its word)} per block] when the config has such blocks}."""
    blocks, _ = parse_config(config)
    images = np.asarray(images)
    check_images(images[:1])
    states = {"fisher": []}
    for kind, opts in blocks:
        if kind not in FITTED_KINDS:
            continue
        opts = dict(opts)
        key, k_img, k_desc, k_fit = jax.random.split(key, 4)
        desc = _sample_descriptors(images, kind, opts, k_img, k_desc, max_images, max_descriptors, batch_size)
        if kind == "fisher":
            p = pca.fit_pca(desc, min(opts.get("pca_dim", 32), desc.shape[1]))
            g, _ = gmm.fit_gmm(pca.pca_transform(desc, p), opts.get("components", 16), key=k_fit, max_iter=em_iters)
            states["fisher"].append({"pca": p, "gmm": g})
            continue
        st = {}
        if opts.get("pca_dim", 0):
            st["pca"] = pca.fit_pca(desc, min(opts["pca_dim"], desc.shape[1]))
            desc = pca.pca_transform(desc, st["pca"])
        words = opts.get("words", 1024 if kind == "bow" else 64)
        if words > desc.shape[0]:
            raise ValueError(f"{kind} block: {words} words need at least as many descriptors, got {desc.shape[0]}"
                             " (raise max_images / max_descriptors or lower words)")
        centres, history = kmeans.fit_kmeans(desc, words, key=k_fit, max_iter=em_iters, mesh=mesh)
        st["centres"] = centres
        st["scale"] = jnp.sqrt(jnp.float32(max(history[-1], 1e-12)))
        states.setdefault(kind, []).append(st)
    return states
