"""Loss landscapes (Li et al. 2018): filter-normalised random directions around a trained net.

f(a, b) = L(theta + a d1 + b d2), where d1 and d2 are Gaussian directions rescaled filter by
filter to the norms of the trained weights' filters (a filter = one output unit of a conv or
dense kernel: everything but the kernel's last axis in flax's layouts), and the directions of
biases and BatchNorm parameters are zero. The loss is the training loss on a fixed set of
training images, with BatchNorm's running statistics (eval mode, as Li et al. evaluate). The grid's
points are evaluated in batches of points sharded over the devices' `data` axis: each device
evaluates its points on the whole image set.

    python -m jaxnet landscape --workdir=W1 --workdir=W2 --out=DIR [--grid=51]
        [--examples=2000] [--span=1.0]

draws DIR/landscape.png (contours side by side) and DIR/landscape_1d.png from any trained
network workdirs (their config.json says how to rebuild them).
"""
from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxnet.data.sources import create_source
from jaxnet.experiments import plots
from jaxnet.experiments.context import Context, Section

DIRECTION_LEAVES = ("kernel",)  # everything else (biases, BatchNorm scale and offset) gets zero


def _leaf_name(path) -> str:
    last = path[-1]
    return str(getattr(last, "key", getattr(last, "name", last)))


def filter_normalized_direction(rng, params):
    """A random direction shaped like `params`: Gaussian, each filter (kernel[..., j]) rescaled
    to the norm of the same filter of `params`; zero for biases and BatchNorm parameters."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
    keys = jax.random.split(rng, len(leaves))
    out = []
    for key, (path, w) in zip(keys, leaves):
        if _leaf_name(path) in DIRECTION_LEAVES and w.ndim >= 2:
            d = jax.random.normal(key, w.shape, jnp.float32)
            axes = tuple(range(w.ndim - 1))
            w_norm = jnp.sqrt(jnp.sum(jnp.square(w.astype(jnp.float32)), axis=axes, keepdims=True))
            d_norm = jnp.sqrt(jnp.sum(jnp.square(d), axis=axes, keepdims=True))
            out.append((d * w_norm / jnp.maximum(d_norm, 1e-12)).astype(w.dtype))
        else:
            out.append(jnp.zeros_like(w))
    return jax.tree_util.tree_unflatten(treedef, out)


def loss_at_points(loss_fn, params, d1, d2, coords, mesh, points_per_device: int = 2, data=None):
    """loss_fn(params + a d1 + b d2, data) for every (a, b) row of `coords` [K, 2] (`data`: any
    pytree of arrays the loss reads, e.g. images and labels, replicated). Batches of
    points_per_device x devices points run at once, sharded over `data` (the last batch padded):
    each device evaluates its own points one after another (lax.map), so the convolutions keep
    their kernels unbatched."""
    n_dev = mesh.shape["data"]
    chunk = points_per_device * n_dev
    rep = NamedSharding(mesh, P())

    def local(ab_block, params, d1, d2, data):
        def one(ab):
            moved = jax.tree.map(lambda w, u, v: w + ab[0] * u + ab[1] * v, params, d1, d2)
            return loss_fn(moved, data)

        return jax.lax.map(one, ab_block)

    sharded = jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(P("data"), P(), P(), P(), P()),
                                    out_specs=P("data")))
    params, d1, d2, data = (jax.device_put(t, rep) for t in (params, d1, d2, data))
    coords = np.asarray(coords, np.float32)
    out = []
    for start in range(0, len(coords), chunk):
        part = coords[start:start + chunk]
        padded = np.concatenate([part, np.zeros((chunk - len(part), 2), np.float32)])
        points = jax.device_put(padded, NamedSharding(mesh, P("data")))
        out.append(np.asarray(jax.device_get(sharded(points, params, d1, d2, data)))[: len(part)])
    return np.concatenate(out)


def network_loss_fn(config, workdir, mesh, examples: int):
    """(loss_fn(params, data), data = `examples` training images and labels, trained params) of a
    network workdir, restored through the shared method interface; BatchNorm statistics stay as
    trained."""
    from jaxnet.methods import restore
    from jaxnet.training.steps import cross_entropy

    predictor = restore(config, workdir, mesh)
    source = create_source(config, config.train_split)
    take = np.arange(min(examples, len(source)))
    images = np.stack([source[int(i)]["image"] for i in take])
    labels = np.array([source[int(i)]["label"] for i in take], np.int32)
    variables = jax.device_get(predictor.params)
    data = {"images": images, "labels": labels,
            "rest": {k: v for k, v in variables.items() if k != "params"}}

    def loss_fn(params, data):
        logits = predictor.predict_fn({"params": params, **data["rest"]}, data["images"])
        return cross_entropy(logits, data["labels"], config.num_classes).mean()

    return loss_fn, variables["params"], data


def landscape(config, workdir, mesh, *, grid: int, span: float, examples: int, slice_points: int,
              seed: int = 0) -> dict:
    """The 2-D grid [grid x grid] on [-span, span]^2 and a 1-D slice along d1 with
    `slice_points` points, around `workdir`'s trained parameters."""
    loss_fn, params, data = network_loss_fn(config, workdir, mesh, examples)
    r1, r2 = jax.random.split(jax.random.PRNGKey(seed))
    d1 = filter_normalized_direction(r1, params)
    d2 = filter_normalized_direction(r2, params)
    axis = np.linspace(-span, span, grid)
    aa, bb = np.meshgrid(axis, axis)  # rows: b (direction 2), columns: a (direction 1)
    line = np.linspace(-span, span, slice_points)
    coords = np.concatenate([np.stack([aa.ravel(), bb.ravel()], 1),
                             np.stack([line, np.zeros_like(line)], 1)])  # one compiled function
    losses = loss_at_points(loss_fn, params, d1, d2, coords, mesh, data=data)
    return {"axis": axis.tolist(), "grid": losses[:grid * grid].reshape(grid, grid).tolist(),
            "line": line.tolist(), "slice": losses[grid * grid:].tolist()}


def cached_landscape(path: Path, settings: dict, compute) -> dict:
    """A landscape saved as JSON with its settings; recomputed only when they changed."""
    if path.exists():
        saved = json.loads(path.read_text())
        if saved.get("settings") == settings:
            return saved
    result = {"settings": settings, **compute()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result) + "\n")
    return result


def sharpness(result) -> float:
    """Mean loss over the 2-D grid's points within radius span/2, over the loss at the centre:
    how fast the loss grows around the minimum (1 = flat)."""
    grid, axis = np.asarray(result["grid"]), np.asarray(result["axis"])
    a, b = np.meshgrid(axis, axis)
    inner = np.hypot(a, b) <= axis.max() / 2
    centre = grid[len(axis) // 2, len(axis) // 2]
    return float(np.mean(np.minimum(grid[inner], 1e6)) / max(centre, 1e-9))


def draw(ctx_or_dir, results: dict, title_suffix: str = ""):
    """Contours side by side and the 1-D slices: `results` = {name: landscape dict}."""
    out = Path(getattr(ctx_or_dir, "out", ctx_or_dir))
    names = list(results)
    axis = np.asarray(results[names[0]]["axis"])
    contour = plots.contours(out / "landscape.png", [(n, results[n]["grid"]) for n in names],
                             axis, axis, title="Training-loss surface around the trained weights"
                             " (filter-normalised random directions)" + title_suffix)
    series = [(n, results[n]["line"], results[n]["slice"], {}) for n in names]
    one_d = plots.curves(out / "landscape_1d.png", series, logy=True,
                         title="1-D slice of the training loss along direction 1" + title_suffix,
                         xlabel="step along direction 1 (filter-normalised)",
                         ylabel="training loss (log scale)")
    return contour, one_d


def settings(quick: bool) -> dict:
    if quick:
        return dict(grid=11, span=1.0, examples=256, slice_points=21)
    return dict(grid=51, span=1.0, examples=10_000, slice_points=101)


def run(ctx: Context) -> Section:
    from jaxnet.experiments import plain_residual
    from jaxnet.mesh import create_mesh

    s = settings(ctx.quick)
    nets = plain_residual.train_nets(ctx, ("plain56", "resnet56"))
    mesh = create_mesh()
    results = {}
    for net, r in nets.items():
        config, _ = plain_residual.config_for(ctx, net, plain_residual.settings(ctx.quick))
        key = {**s, "workdir": str(r.workdir), "trained": r.metrics}
        results[net] = cached_landscape(ctx.workdir("landscape", f"{net}.json"), key,
                                        lambda: landscape(config, r.workdir, mesh, **s))
    contour, one_d = draw(ctx, results)
    sharp = {n: sharpness(res) for n, res in results.items()}
    rows = [["net", "loss at the trained weights", "mean loss within radius 0.5 / centre loss",
             "loss at (+-1, 0) (1-D slice ends)", "max loss on the grid"]]
    for n, res in results.items():
        sl = res["slice"]
        rows.append([n, f"{res['grid'][len(res['axis']) // 2][len(res['axis']) // 2]:.4f}",
                     f"{sharp[n]:.2f}", f"{sl[0]:.3g} / {sl[-1]:.3g}",
                     f"{np.nanmax(np.asarray(res['grid'])):.3g}"])
    smoother = sharp["resnet56"] < sharp["plain56"]
    return Section(
        key="landscape", title="Loss landscapes: plain-56 vs ResNet-56 (Li et al. 2018)",
        claim="Residual connections make the loss landscape much smoother: around the solution,"
              " ResNet-56's surface is convex-looking while plain-56's is chaotic.",
        paper="qualitative (Li et al. 2018, Fig. 5: ResNet-56 smooth, plain-56 chaotic)",
        measured=(f"loss growth within radius 0.5: ResNet-56 x{sharp['resnet56']:.2f}, plain-56"
                  f" x{sharp['plain56']:.2f} its value at the minimum"),
        verdict="held" if smoother else "did not hold",
        details=(f"Around the plain-56 and ResNet-56 of the plain-vs-residual section: a"
                 f" {s['grid']}x{s['grid']} grid on [-{s['span']:g}, {s['span']:g}]^2 and a"
                 f" {s['slice_points']}-point slice, the training loss on {s['examples']:,}"
                 f" training images at each point, BatchNorm in eval mode; grid points evaluated"
                 f" {2 * mesh.shape['data']} at a time, sharded over {mesh.shape['data']}"
                 " device(s). 'Smoother' here: a smaller mean loss increase near the minimum."),
        table=rows,
        figures=[(Path(contour).name, "Contours of the training loss (shared log-scale levels)."),
                 (Path(one_d).name, "The loss along direction 1 through the trained weights.")],
        commands=[f"python -m jaxnet landscape --workdir={nets['plain56'].workdir}"
                  f" --workdir={nets['resnet56'].workdir} --out={ctx.out} --grid={s['grid']}"
                  f" --examples={s['examples']} --span={s['span']:g}"
                  f" --slice_points={s['slice_points']}"],
        hardware=sorted({r.hardware for r in nets.values()}))
