"""Config validation names what is wrong; every config file in configs/ loads and validates."""
import importlib.util
from pathlib import Path

import pytest

from jaxnet import JaxnetError
from jaxnet.config import base_config, validate_config

CONFIGS = sorted(Path(__file__).parent.parent.glob("configs/*.py"))


def load(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_files_validate_and_document_how_to_run(path, tmp_path):
    module = load(path)
    if path.stem == "from_workdir":  # configs/from_workdir.py:DIR reads DIR/config.json
        config = base_config()
        config.model.name = "resnet18"
        (tmp_path / "config.json").write_text(config.to_json())
        loaded = module.get_config(str(tmp_path))
        assert loaded.model.name == "resnet18"
    else:
        loaded = module.get_config()
    validate_config(loaded)
    assert f"configs/{path.name}" in module.__doc__ and "Expected" in module.__doc__


def test_resnet_configs_follow_the_paper_recipe():
    for depth in (18, 34, 50, 101, 152):
        c = load(Path(__file__).parent.parent / f"configs/resnet{depth}.py").get_config()
        assert c.model.name == f"resnet{depth}" and c.dataset == "imagenet2012"
        assert (c.batch_size, c.base_lr, c.momentum, c.weight_decay) == (256, 0.1, 0.9, 1e-4)
        assert tuple(c.decay_epochs) == (30, 60, 80) and c.num_epochs == 90


def test_unknown_field_is_named():
    c = base_config()
    c.learning_rate = 0.1
    with pytest.raises(JaxnetError, match="unknown config field.*learning_rate"):
        validate_config(c)


def test_bad_values_are_named():
    c = base_config()
    c.batch_size = 0
    with pytest.raises(JaxnetError, match="batch_size must be positive"):
        validate_config(c)
    c = base_config()
    c.dtype = "float16"
    with pytest.raises(JaxnetError, match="dtype"):
        validate_config(c)


def test_auto_cpu_devices_divides_the_batches():
    from jaxnet.tools.cli import auto_cpu_devices

    assert auto_cpu_devices(2, 128, 500) == 2
    assert auto_cpu_devices(6, 128, 512) == 4
    assert auto_cpu_devices(64, 256, 512) == 8
    assert auto_cpu_devices(3, 125, 500) == 1
