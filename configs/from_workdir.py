"""The config a workdir was written with (its config.json), e.g. for weights imported with
`python -m jaxnet weights import --workdir=DIR`, or any trained workdir.

Evaluate: python eval.py --config=configs/from_workdir.py:DIR --workdir=DIR [--config.data_dir=DATA]
Expected: whatever DIR's network reaches (docs/transfer.md: torchvision's ImageNet weights give
their published top-1: ResNet-50 76.13, AlexNet 56.52, GoogLeNet 69.78, centre crop).
"""
from jaxnet.loop.workdir import load_config


def get_config(workdir: str):
    return load_config(workdir)
