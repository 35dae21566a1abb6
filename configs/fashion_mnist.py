"""Quickstart: a narrow ResNet-10 on Fashion-MNIST, sized for a 2-core CPU.

Run:      python train.py --config=configs/fashion_mnist.py
Evaluate: python eval.py --config=configs/fashion_mnist.py --workdir=workdirs/fashion_mnist
Expected: >= 93.0% test top-1 in <= 15 minutes on a 2-core x86 CPU (measured: 93.24% in 13 min
33 s for the whole command; see README, Results).
"""
from jaxnet.config import fashion_mnist_config


def get_config():
    c = fashion_mnist_config()
    c.model.name = "resnet10"  # one basic block per stage
    c.model.stem = "small"  # 3x3/1 stem, no max-pool: for 28 px inputs
    c.model.width = 16  # a quarter of the usual width (64): 0.31M parameters
    c.num_epochs = 14.0
    c.base_lr = 0.2
    c.lr_scaling = "linear"  # peak lr = 0.2 * 128 / 256 = 0.1
    c.schedule = "cosine"
    c.warmup_epochs = 0.5
    c.nesterov = True
    c.weight_decay = 5e-4
    c.weight_decay_exclude_bn_bias = True
    c.label_smoothing = 0.1
    c.log_every_steps = 100
    c.eval_every_epochs = 7.0
    c.checkpoint_every_steps = 500
    return c
