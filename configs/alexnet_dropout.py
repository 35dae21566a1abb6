"""AlexNet's dropout claim: dropout in fc6/fc7 cuts overfitting but about doubles the iterations.

The net and optimiser of configs/alexnet_fashion_mnist.py (two-column AlexNet, He init, 28 px
upsampled to 67 on the device; SGD 0.9, batch 128, weight decay 5e-4) at a constant learning rate
of 0.01, with dropout 0.5 ("on", the paper's) or 0 ("off") before fc7 and fc8.
`python -m jaxnet report` trains both and measures the train/test gap (the train split evaluated
like the test split, dropout off) and the steps to fixed accuracies.

Variant: on | off [,cifar10].
Run:      python train.py --config=configs/alexnet_dropout.py:off --workdir=workdirs/dropout_off
Expected: "off" ends with a larger train-test gap than "on" and reaches a fixed training accuracy in
fewer steps (paper: dropout roughly doubles the iterations needed to converge). Sized for a GPU
(30 epochs); --quick trains on 2,000 images.
"""
from jaxnet.presets import cifar10_config, fashion_mnist_config

VARIANTS = ("on", "off")  # the variant's first part; OPTIONS may follow it after a comma
OPTIONS = ("cifar10",)


def get_config(variant="on"):
    parts = (variant or "on").split(",")
    if parts[0] not in ("on", "off"):
        raise ValueError(f"variant must be on or off, got {parts[0]!r}")
    c = cifar10_config() if "cifar10" in parts else fashion_mnist_config()
    c.model.name = "alexnet"
    c.model.init_scheme = "he"  # the paper's N(0, 0.01) does not learn at 67 px (docs/models.md)
    c.model.dropout_rate = 0.5 if parts[0] == "on" else 0.0
    c.device_resize = 67
    c.base_lr = 0.01
    c.lr_scaling = "none"
    c.momentum = 0.9
    c.weight_decay = 5e-4
    c.schedule = "constant"
    c.num_epochs = 30.0
    c.eval_every_epochs = 1.0
    c.log_every_steps = 50
    c.checkpoint_every_steps = 2000
    return c
