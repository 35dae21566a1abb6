"""Quickstart: a narrow ResNet-10 on Fashion-MNIST, sized for a 2-core CPU.

Run:      python train.py --config=configs/fashion_mnist.py
Evaluate: python eval.py --config=configs/fashion_mnist.py --workdir=workdirs/fashion_mnist
Expected: >= 93.0% test top-1 in <= 15 minutes on a 2-core x86 CPU (measured: 93.24% in 13 min
33 s for the whole command; see README, Results).
"""
from jaxnet.config import fashion_mnist_config, quickstart_recipe


def get_config():
    # ResNet-10 (one basic block per stage), 3x3/1 stem without max-pool for 28 px inputs, width
    # 16 (a quarter of the usual 64: 0.31M parameters); peak lr 0.2 * 128 / 256 = 0.1, cosine
    c = quickstart_recipe(fashion_mnist_config())
    c.num_epochs = 14.0
    c.log_every_steps = 100
    c.eval_every_epochs = 7.0
    c.checkpoint_every_steps = 500
    return c
