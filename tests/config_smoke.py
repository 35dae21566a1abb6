"""Smoke runs of every config: `train.py` for a step or two, then `eval.py` on its workdir.

Every configs/*.py (and the tests' tiny configs) is found on disk, with each variant it declares
(`VARIANTS`, the arguments its get_config accepts, as in `--config=configs/NAME.py:VARIANT`), so
a new config or variant is run without anyone listing it. The runs go through train.py's and
eval.py's own `main` (tests/cli_main.py) with the config file and overrides on the command line,
as a user types them; the overrides only shrink the run, derived from the loaded config:
- data: Fashion-MNIST and CIFAR become `synthetic` images of the config's size and channels,
  ImageNet the miniature ILSVRC-2012 of tests/mini_imagenet.py (JPEGs through the config's own
  crops and resizes), scenes a handful of scenes; 16 images, batches of 8, one epoch;
- model: the family's smallest shape where it has one (two stages of width 4 for a ResNet, the
  8-layer CIFAR net of the same kind, its ResNet with one block per stage, for the CIFAR nets,
  4-channel layers for the small CNN, 16-unit fully connected layers for AlexNet); GoogLeNet has
  no smaller shape and runs whole, on 64 px images;
- classical: codebooks of at most 8 words, 2 EM / Lloyd iterations, 3 solver iterations, and
  64 synthetic images (the SVM needs an example of every class).
eval.py writes its figures and HTML report for the tests' tiny configs only (--noreport for the
others: the report does not depend on the config).
"""
import importlib.util
import inspect
import json
import re
from pathlib import Path

import pytest

from tests.cli_main import ROOT, run_main

CONFIG_DIRS = (ROOT / "configs",)
TEST_CONFIGS = (ROOT / "tests" / "tiny_config.py", ROOT / "tests" / "classical" / "tiny_classical_config.py")
# configs whose argument is not a variant name but a trained workdir (run on another case's workdir)
WORKDIR_ARG = ("from_workdir",)
# transfer methods: their source is the smoke workdir of this config
TRANSFER_SOURCE = "fashion_mnist_0to4"
EXAMPLES = 16
BATCH = 8  # divides the 8 emulated devices (and 4 x 2 for model parallelism)


def config_files() -> list[Path]:
    files = sorted(p for d in CONFIG_DIRS for p in d.glob("*.py") if not p.name.startswith("_"))
    return files + list(TEST_CONFIGS)


def load_module(path: Path):
    spec = importlib.util.spec_from_file_location(f"_smoke_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def takes_argument(module) -> bool:
    return bool(inspect.signature(module.get_config).parameters)


def variants(path: Path) -> list[str | None]:
    """The `:VARIANT` suffixes to run for a config file: None (no suffix), each declared variant
    (`VARIANTS`) whose config differs from the default's, and the first one followed by each of
    its `OPTIONS` (",cifar10", ...). A config whose get_config takes an argument must declare
    VARIANTS (ValueError otherwise)."""
    module = load_module(path)
    if path.stem in WORKDIR_ARG:
        return ["WORKDIR"]
    declared = list(getattr(module, "VARIANTS", ()))
    if takes_argument(module) != bool(declared):
        raise ValueError(f"{path.name}: get_config " + (
            "takes an argument but the file declares no VARIANTS (the arguments it accepts), so"
            " they cannot be smoke-tested" if declared == [] else "takes no argument but VARIANTS is declared"))
    if not declared:
        return [None]
    default = module.get_config().to_json()
    named = [v for v in declared if module.get_config(v).to_json() != default]
    return [None] + named + [f"{declared[0]},{o}" for o in getattr(module, "OPTIONS", ())]


def case_id(path: Path, variant) -> str:
    rel = path.relative_to(ROOT).as_posix()
    return rel + (f":{variant}" if variant else "")


def all_cases() -> list[tuple[Path, str | None]]:
    return [(p, v) for p in config_files() for v in variants(p)]


def group(path: Path) -> str:
    """Which test file runs a config (pytest-xdist gives each file to one worker)."""
    if path.stem in WORKDIR_ARG or path.stem == TRANSFER_SOURCE:
        return "transfer"
    config = load_module(path).get_config(*([variants(path)[-1]] if takes_argument(load_module(path)) else []))
    if config.method in ("probe", "finetune", "cluster"):
        return "transfer"
    if config.method == "classical":
        return "classical"
    if config.model.name.startswith(("alexnet", "googlenet")):
        return "imagenet_nets"
    return "networks"


def cases(name: str) -> list[tuple[Path, str | None]]:
    return [(p, v) for p, v in all_cases() if group(p) == name]


# ---- overrides --------------------------------------------------------------------------------

def _literal(value) -> str:
    return repr(tuple(value)) if isinstance(value, (list, tuple)) else str(value)


def model_overrides(model) -> dict:
    """config.model options giving the smallest net of the config's model family."""
    name = model.name
    if name.startswith("cifar_"):  # a depth-8 CIFAR net (one block per stage) of the same kind
        return {"model.name": "resnet18", "model.stage_sizes": (1, 1, 1), "model.width": 4,
                "model.stem": "small", "model.shortcut": "none" if "plain" in name else "A",
                "model.zero_init_residual": False}
    if name.startswith(("resnet", "plain")):
        return {"model.stage_sizes": (1, 1), "model.width": 4}
    if name == "small_cnn":
        return {"model.features": (4, 4, 4)}
    if name.startswith("alexnet"):
        return {"model.fc_features": 16}
    return {}


def image_overrides(config) -> dict:
    """GoogLeNet, which has no smaller shape, sees ImageNet at 64 px (its aux heads pool small
    maps whole); every other net keeps the config's size."""
    if config.model.name == "googlenet" and config.image_size > 64:
        return {"image_size": 64, "eval_resize": 73}  # the 256 / 224 ratio
    return {}


def data_overrides(config, mini_imagenet) -> dict:
    """The data settings of a smoke run (ValueError for a dataset with no rule here)."""
    dataset = config.dataset
    if dataset in ("fashion_mnist", "cifar10", "cifar100", "synthetic"):
        return {"dataset": "synthetic", "synthetic_examples": EXAMPLES}
    if dataset == "imagenet2012":
        from tests.mini_imagenet import CLASSES

        boxes = config.method == "localize"  # its box files too
        return {"data_dir": str(mini_imagenet(boxes)), "num_classes": len(CLASSES), "num_workers": 0}
    if dataset == "fashion_mnist_scenes":
        return {"scenes.train_size": EXAMPLES, "scenes.test_size": EXAMPLES}
    raise ValueError(f"no smoke-test data rule for dataset {dataset!r}: add one to tests/config_smoke.py")


def classical_overrides(config) -> dict:
    c = config.classical
    out = {"classical.encoder_images": EXAMPLES, "classical.encoder_descriptors": 2000,
           "classical.em_iters": 2, "classical.max_iter": 3, "classical.epochs": 1}
    for kind in ("bow", "coding"):
        block = c.features.get(kind)
        if hasattr(block, "keys") and block.get("words", 0) > 8:  # one block (a list cannot be set)
            out[f"classical.features.{kind}.words"] = 8
    return out


def smoke_args(path: Path, variant, mini_imagenet, source_workdir=None) -> list[str]:
    """The command-line arguments (besides --workdir) of a config's smoke run."""
    spec = f"{path.relative_to(ROOT).as_posix()}" + (f":{variant}" if variant else "")
    config = load_module(path).get_config(*([variant] if variant else []))
    over = {"dataset": config.dataset, "batch_size": BATCH, "eval_batch_size": BATCH, "num_epochs": 1,
            "log_every_steps": 1,
            **data_overrides(config, mini_imagenet), **model_overrides(config.model),
            **image_overrides(config)}
    if config.method == "classical":
        over.update(classical_overrides(config))
        if over["dataset"] == "synthetic":  # the SVM needs an example of every class
            over["synthetic_examples"] = 4 * EXAMPLES
    if config.method in ("probe", "finetune", "cluster"):
        over["transfer.source_workdir"] = str(source_workdir)
    if config.method in ("probe", "cluster"):
        over["transfer.max_iter"] = 3
    if config.method == "cluster":
        over.update({"transfer.restarts": 1, "transfer.pca_dim": 4})
    return [f"--config={spec}"] + [f"--config.{k}={_literal(v)}" for k, v in over.items()]


def train(args: list[str], workdir: Path) -> str:
    """Run train.py with `args`; its output (AssertionError with it when the run fails)."""
    code, out = run_main("train", *args, f"--workdir={workdir}")
    assert code == 0, f"train.py {' '.join(args)} exited {code}:\n{out[-3000:]}"
    assert "final " in out, out[-3000:]
    return out


def train_and_eval(args: list[str], workdir: Path) -> dict:
    """Run train.py then eval.py with `args`; return the eval file's metrics (AssertionError with
    the command's output when either fails)."""
    train(args, workdir)
    return evaluate(args, workdir)


def evaluate(args: list[str], workdir: Path) -> dict:
    """Run eval.py with `args` on `workdir`; the eval file's metrics."""
    report = [] if any(a.startswith(f"--config={t.relative_to(ROOT).as_posix()}") for a in args
                       for t in TEST_CONFIGS) else ["--noreport"]  # figures: once per tiny config
    code, out = run_main("eval", *args, *report, f"--workdir={workdir}")
    assert code == 0, f"eval.py {' '.join(args)} exited {code}:\n{out[-3000:]}"
    written = re.search(r"written to (\S+\.json)", out)
    assert written, f"eval.py wrote no eval file:\n{out[-3000:]}"
    return json.loads(Path(written.group(1)).read_text())


@pytest.fixture(scope="session")
def mini_imagenet(tmp_path_factory):
    """A callable giving the data_dir of the prepared miniature ILSVRC-2012 (made at first call)."""
    made = {}

    def data_dir(boxes: bool = False) -> Path:
        if boxes not in made:
            from tests.mini_imagenet import prepare_mini

            made[boxes] = prepare_mini(tmp_path_factory.mktemp("mini_imagenet"), boxes)[0]
        return made[boxes]

    return data_dir
