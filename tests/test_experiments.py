"""The experiments of the seed's claims (jaxnet/experiments): their building blocks, the configs,
and one experiment end to end at toy size."""
import ast
import shlex

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxnet.config import validate_config
from jaxnet.data.sources import load_fashion_mnist
from jaxnet.experiments import context, landscape, runs, subsets
from jaxnet.experiments.context import Context
from jaxnet.mesh import create_mesh


def test_filter_normalised_directions_match_each_filters_norm_and_skip_biases_and_bn():
    rng = np.random.default_rng(0)
    params = {"conv": {"kernel": jnp.asarray(rng.normal(size=(3, 3, 2, 4)) * [1, 2, 3, 4]),
                       "bias": jnp.ones(4)},
              "bn": {"scale": jnp.full(4, 2.0), "bias": jnp.ones(4)},
              "fc": {"kernel": jnp.asarray(rng.normal(size=(5, 3))), "bias": jnp.ones(3)}}
    d = landscape.filter_normalized_direction(jax.random.PRNGKey(1), params)
    for layer, axes in (("conv", (0, 1, 2)), ("fc", (0,))):
        w, u = params[layer]["kernel"], d[layer]["kernel"]
        np.testing.assert_allclose(jnp.linalg.norm(u.reshape(-1, u.shape[-1]), axis=0),
                                   jnp.linalg.norm(w.reshape(-1, w.shape[-1]), axis=0), rtol=1e-5)
        assert not np.allclose(u / w, (u / w).ravel()[0])  # random, not a rescaled copy of w
    for leaf in (d["conv"]["bias"], d["bn"]["scale"], d["bn"]["bias"], d["fc"]["bias"]):
        assert not np.any(leaf)
    d2 = landscape.filter_normalized_direction(jax.random.PRNGKey(2), params)
    assert not np.allclose(d["conv"]["kernel"], d2["conv"]["kernel"])


def test_grid_points_sharded_over_devices_equal_direct_evaluation(devices):
    mesh = create_mesh(devices)
    params = {"w": jnp.arange(3.0), "b": jnp.ones(2)}
    d1 = {"w": jnp.array([1.0, 0, 0]), "b": jnp.zeros(2)}
    d2 = {"w": jnp.array([0, 1.0, -1.0]), "b": jnp.array([0.5, 0])}

    def loss(p, data):
        return jnp.sum(p["w"] ** 2) + jnp.sum(jnp.sin(p["b"])) * data

    coords = np.random.default_rng(0).uniform(-1, 1, size=(19, 2))  # not a multiple of 16
    got = landscape.loss_at_points(loss, params, d1, d2, coords, mesh, data=jnp.float32(3.0))
    want = [loss(jax.tree.map(lambda w, u, v: w + a * u + b * v, params, d1, d2), 3.0)
            for a, b in coords]
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_landscape_of_a_trained_workdir_is_centred_on_its_loss(devices, tmp_path):
    from jaxnet.data.sources import create_source
    from jaxnet.methods import restore, train
    from jaxnet.training.steps import cross_entropy
    from tests.tiny_config import get_config

    config = get_config()
    config.num_epochs = 0.5
    train(config, tmp_path / "run")
    mesh = create_mesh(devices)
    result = landscape.landscape(config, tmp_path / "run", mesh, grid=3, span=0.5, examples=16,
                                 slice_points=3)
    grid = np.asarray(result["grid"])
    assert grid.shape == (3, 3) and np.all(np.isfinite(grid))
    assert result["slice"][1] == pytest.approx(grid[1, 1], rel=1e-5)  # both pass through theta
    predictor = restore(config, tmp_path / "run", mesh)
    source = create_source(config, config.train_split)
    images = np.stack([source[i]["image"] for i in range(16)])
    labels = np.array([source[i]["label"] for i in range(16)])
    want = cross_entropy(predictor.predict_fn(predictor.params, images), labels, 10).mean()
    assert grid[1, 1] == pytest.approx(float(want), rel=1e-4)
    assert grid.max() > grid[1, 1]  # moving away from the trained weights costs loss
    files = landscape.draw(tmp_path, {"tiny": result, "same": result})
    image = np.asarray(Image.open(files[0]).convert("RGB"))
    assert image.shape[1] > 600 and len(np.unique(image.reshape(-1, 3), axis=0)) > 50


def test_fashion_mnist_subsets_are_balanced_and_readable(tmp_path):
    ctx = Context(tmp_path)
    data_dir = subsets.fashion_mnist_subset(ctx, 100, 50)
    train, test = load_fashion_mnist("train", data_dir), load_fashion_mnist("test", data_dir)
    assert (len(train), len(test)) == (100, 50)
    assert np.bincount(train.labels).tolist() == [10] * 10
    full = load_fashion_mnist("train")
    assert any(np.array_equal(train.images[0], full.images[i]) for i in range(len(full)))
    assert subsets.fashion_mnist_subset(ctx, 100, 50) == data_dir  # written once


def test_the_train_command_reproduces_the_config():
    config = context.load_config("cifar_resnet", "plain20")
    config.num_epochs, config.decay_epochs, config.data_dir = 4.0, (2.0, 3.0), "/tmp/a dir"
    command = context.train_command(config, "cifar_resnet", "plain20", "/tmp/w")
    assert command.startswith("python train.py --config=configs/cifar_resnet.py:plain20 ")
    args = shlex.split(command)[3:-1]
    assert args[-1] == "--config.num_epochs=4.0" and "--config.data_dir=/tmp/a dir" in args
    rebuilt = context.load_config("cifar_resnet", "plain20")
    for arg in args:  # apply the overrides as absl's config flags would (literals, else strings)
        key, value = arg.removeprefix("--config.").split("=", 1)
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            pass
        rebuilt[key] = value
    assert rebuilt.to_json() == config.to_json()


@pytest.mark.parametrize("name,variants", [
    ("relu_vs_tanh", ["relu", "tanh,0.1", "maxout,0.01", "sigmoid,0.3,cifar10"]),
    ("alexnet_dropout", ["on", "off", "on,cifar10"]),
    ("augmentation", ["none", "crop_flip", "lighting", "erasing"]),
    ("cifar_resnet", ["resnet20", "plain56", "resnet110,cifar10"]),
    ("alexnet_model_parallel", [None]), ("alexnet_fashion_mnist", [None]),
])
def test_experiment_configs_load_and_validate(name, variants):
    for variant in variants:
        config = context.load_config(name, variant)
        validate_config(config)
        assert context.config_path(name).read_text().lstrip().startswith('"""')
    if name == "alexnet_fashion_mnist":  # item 4: a patience that means a plateau
        assert config.plateau_patience * config.eval_every_epochs >= 3


def test_cifar_recipe_converts_the_papers_iterations_to_epochs():
    c = context.load_config("cifar_resnet", "resnet56,cifar10")
    steps = 50_000 // 128
    assert abs(c.num_epochs * steps - 64_000) < 2  # 64k iterations (epochs to 2 decimals)
    assert [round(e * steps, -2) for e in c.decay_epochs] == [32_000, 48_000]
    assert c.model.name == "cifar_resnet56" and c.dataset == "cifar10" and c.channels == 3


def test_crossings_and_training_seconds():
    x, y = np.array([0.5, 1.0, 1.5]), np.array([0.5, 0.3, 0.2])
    assert runs.first_crossing(x, y, 0.25) == 1.5
    assert runs.first_crossing(x, y, 0.1) is None
    assert runs.first_crossing(x, 1 - y, 0.7, below=False) == 1.0
    records = [{"split": "train", "epoch": 0.5, "images_per_sec": 100.0},
               {"split": "test", "epoch": 0.5, "top1_err": 0.1},
               {"split": "train", "epoch": 1.0, "images_per_sec": 50.0}]
    assert runs.seconds_to(records, 1.0, 1000) == pytest.approx(5.0 + 10.0)


def test_classical_lessons_section_reads_the_curves(tmp_path, monkeypatch):
    from jaxnet.experiments import classical_curves as curves
    from jaxnet.experiments import classical_lessons

    accs = {"fisher_components": (0.80, 0.86), "bow_words": (0.84, 0.83), "fisher_data": (0.70, 0.85),
            "bow_data": (0.72, 0.84)}

    def fake_run(out, quick, data_dir, log):
        out.mkdir(parents=True)
        for name in ("dimension.png", "data.png"):
            (out / name).write_bytes(b"\x89PNG")
        return [{"curve": c, "x": x, "size": 8 * (i + 1), "train_examples": 100 * (i + 1),
                 "feature_dim": 160 * (i + 1), "test_acc": acc, "test_examples": 50, "seconds": 2.0}
                for c, pair in accs.items() for i, (x, acc) in enumerate(zip((0.1, 1.0), pair))]

    monkeypatch.setattr(curves, "run", fake_run)
    section = classical_lessons.run(context.Context(tmp_path, quick=True, log=lambda s: None))
    assert section.verdict == "partly held"  # the codebook curve fell: 84% -> 83%
    assert "Fisher vectors, GMM size 8 -> 16 (160 -> 320 dims): 80.00% -> 86.00%" in section.measured
    assert "bag of words, training images 100 -> 200: 72.00% -> 84.00%" in section.measured
    assert (tmp_path / "classical_dimension.png").exists() and len(section.table) == 9
    assert section.commands == [f"python -m jaxnet classical_curves --out {tmp_path / 'runs' / 'classical_curves'} --quick"]


def test_evaluation_grid_section_trains_three_seeds_and_reads_the_grid(tmp_path, monkeypatch):
    from jaxnet.experiments import evaluation_grid
    from jaxnet.experiments import protocol_grid as grid

    trained = []

    def fake_run_network(ctx, config, experiment, name, config_name, config_variant):
        trained.append((name, config.seed, config.num_epochs))
        return runs.RunResult(name, tmp_path / name, {}, [], 1.0, f"python train.py ({name})", "cpu", False, {})

    def fake_grid(workdirs, protocols, split=None, examples=0):
        assert protocols == ["center", "ten_crop", "googlenet_144"] and examples == 500
        err = {"center": 0.10, "ten_crop": 0.09, "googlenet_144": 0.085}
        return [{"models": k, "protocol": p, "crops": {"center": 1, "ten_crop": 10, "googlenet_144": 144}[p],
                 "cost": k, "top1_err": err[p] - 0.01 * (k - 1), "top5_err": 0.002, "seconds": 2.0 * k,
                 "relative_wall": float(k), "num_examples": 500} for k in (1, 2, 3) for p in protocols]

    monkeypatch.setattr(evaluation_grid, "run_network", fake_run_network)
    monkeypatch.setattr(grid, "grid", fake_grid)
    section = evaluation_grid.run(context.Context(tmp_path, quick=True, log=lambda s: None))
    assert trained == [("seed0", 0, 10.0), ("seed1", 1, 10.0), ("seed2", 2, 10.0)]
    assert section.verdict == "held" and len(section.table) == 10
    assert section.measured == ("top-1 error 10.00% (1 model, 1 crop); 10 crops 9.00%, 144 crops 8.50%,"
                                " 3 models 8.00%; best 6.50% (3 model(s), googlenet_144, 3x the evaluation time)")
    assert section.commands[-1].endswith("--protocols=center,ten_crop,googlenet_144 --examples=500")


def test_transfer_section_sets_transfer_against_scratch(tmp_path, monkeypatch):
    from jaxnet.experiments import transfer
    from jaxnet.experiments import transfer_study as study

    def fake_study(out, quick, log):
        out.mkdir(parents=True)
        (out / "accuracy_vs_labels.png").write_bytes(b"\x89PNG")
        accs = {"probe": 0.80, "finetune head": 0.78, "finetune all": 0.84, "scratch": 0.70}
        return {name: {"top1_acc": accs.get(kind, 0.5) + (0.05 if n == 100 else 0)
                       + (0.06 if layer == "stage2" else 0)}  # the best: a probe, not of the last layer
                for name, kind, n, layer, _ in study.plan(out, quick)}

    monkeypatch.setattr(study, "study", fake_study)
    section = transfer.run(context.Context(tmp_path, quick=True, log=lambda s: None))
    assert section.measured == ("with 10 labels per class: best transfer 86.00% vs 70.00% from scratch"
                                " (test top-1, classes 5-9)")
    assert section.verdict == "held"
    assert section.table[0] == ["method", "10 labels/class", "100 labels/class"]
    assert section.table[-1] == ["from scratch", "70.00%", "75.00%"]
    assert section.figures == [("transfer_accuracy_vs_labels.png", "Test top-1 against labels per class, per method.")]


def test_alexnet_recipe_section_reports_a_finished_train_py_run(tmp_path, monkeypatch):
    """--quick reports the recipe's run that train.py finished in its workdir with the same
    config, its last checkpoint evaluated once under the paper's test; an unfinished run or one
    of another config is not reported. The full report trains and evaluates it once itself."""
    import json

    from jaxnet.experiments import alexnet_recipe

    config = context.load_config(alexnet_recipe.CONFIG)
    workdir = tmp_path / "workdirs" / "alexnet_fashion_mnist"
    workdir.mkdir(parents=True)
    monkeypatch.setattr(alexnet_recipe, "TRAIN_WORKDIR", workdir)

    def write(last_epoch, target=workdir, **config_changes):
        (target / "config.json").write_text(json.dumps({**json.loads(config.to_json()),
                                                        **config_changes}))
        lines = []
        for epoch in range(1, last_epoch + 1):
            # one drop after epoch 12's evaluation: the log's window means show it in two records
            lr = 0.01 if epoch <= 12 else 0.0046 if epoch == 13 else 0.001
            lines.append({"step": epoch * 468, "split": "train", "epoch": epoch, "lr": lr,
                          "top1_acc": 0.9})
            acc = 0.85 + 0.0025 * epoch
            seconds = 240.0 * (epoch if epoch <= 20 else epoch - 20)  # resumed after epoch 20
            lines.append({"step": epoch * 468, "split": "test", "epoch": epoch, "top1_acc": acc,
                          "top1_err": 1 - acc, "train_seconds": seconds})
        (target / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))

    evaluations = []

    def evaluate(config, workdir, split):  # the paper's test of the last checkpoint
        evaluations.append((config.eval_protocol, workdir, split))
        return {"split": split, "top1_acc": 0.915, "protocol": config.eval_protocol}

    def section():
        return alexnet_recipe.run(Context(tmp_path / "out", quick=True, log=lambda s: None,
                                          evaluate_fn=evaluate))

    write(30, eval_protocol="center")  # an eval-only field may differ (as on resuming)
    s = section()
    assert evaluations == [("ten_crop", workdir, "test")]
    assert s.verdict == "did not hold"  # the paper's test decides: 91.50%, one view 92.50%
    assert s.measured == ("91.50% test top-1 after 30 epochs with the paper's test (ten_crop: 4"
                          " corner + centre crops and their mirrors, averaged), 92.50% with one"
                          " view (the training loop's) (2.00 h of training); lr drops at epochs 12.0")
    assert len(s.table) == 31 and s.table[11] == ["11", "87.75%", "0.01"]
    assert s.table[12] == ["12", "88.00%", "0.001"] and s.table[13] == ["13", "88.25%", "0.001"]
    assert s.figures[0][0] == "alexnet_recipe.png"
    assert (tmp_path / "out" / "alexnet_recipe.png").read_bytes()[:4] == b"\x89PNG"
    assert s.commands == [f"python train.py --config=configs/alexnet_fashion_mnist.py"
                          f" --workdir={workdir}",
                          f"python eval.py --config=configs/alexnet_fashion_mnist.py"
                          f" --workdir={workdir}  # the paper's test"]
    # eval.py's file for the last checkpoint is read, not evaluated again
    (workdir / "eval").mkdir()
    (workdir / "eval" / "test_ten_crop_step14040.json").write_text(json.dumps(
        {"split": "test", "step": 14040, "protocol": "ten_crop", "top1_acc": 0.9206}))
    s = section()
    assert len(evaluations) == 1 and s.verdict == "held"
    assert s.measured.startswith("92.06% test top-1 after 30 epochs with the paper's test")
    write(29)  # not finished
    assert section().measured.startswith("not run with --quick")
    write(30, base_lr=0.02)  # another recipe
    assert section().verdict == "not measured"
    write(30, num_epochs=40.0)  # a longer run, not yet finished
    assert section().verdict == "not measured"

    trained = []

    def train(config, run_dir):
        trained.append(run_dir)
        run_dir.mkdir(parents=True)
        write(30, target=run_dir)
        return {"top1_acc": 0.925, "top1_err": 0.075}

    for _ in range(2):  # the second report reads the cached run and its evaluation
        s = alexnet_recipe.run(Context(tmp_path / "full", log=lambda s: None, train_fn=train,
                                       evaluate_fn=evaluate))
        assert s.verdict == "did not hold" and s.measured.startswith("91.50% test top-1")
    run_dir = tmp_path / "full" / "runs" / "alexnet_recipe" / "alexnet_fashion_mnist"
    assert trained == [run_dir] and evaluations[1:] == [("ten_crop", run_dir, "test")]
