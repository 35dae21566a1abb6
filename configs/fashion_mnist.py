"""Quickstart: a narrow ResNet-10 on Fashion-MNIST, sized for a 2-core CPU.

Run:      python train.py --config=configs/fashion_mnist.py
Evaluate: python eval.py --config=configs/fashion_mnist.py --workdir=workdirs/fashion_mnist
Time it:  python -m jaxnet bench_time_to_accuracy   (3 runs, and the same recipe in PyTorch)
Expected: about 93.7% test top-1 after 10 epochs (93.40-93.81% over seeds 0-2; 93.0% first reached
after 6.3-7.4 minutes), in about 8 minutes of training on a 2-core x86 CPU (docs/results.md;
about 12 minutes on a CPU that trains 1.5x slower).
The same recipe in eager PyTorch trains 1.5x faster there (XLA's CPU convolutions are slower:
python -m jaxnet bench_conv_layers) and reaches the same accuracy.

Chosen on a held-out part of train (train[:50000], evaluated on train[50000:]), never on test:
batch 64 (32 per core: the activations stay in cache; 1.35x the images/sec of batch 128 on this
CPU), flips without pad-crops (a net this small underfits in a few epochs: 93.45% held-out after
8 epochs against 92.20% with crops) and 10 epochs (93.67% held-out; as many as the 10-minute
budget of jaxnet.tools.bench_time_to_accuracy holds on that CPU).
"""
from jaxnet.presets import fashion_mnist_config, quickstart_recipe


def get_config():
    # ResNet-10 (one basic block per stage), 3x3/1 stem without max-pool for 28 px inputs, width
    # 16 (a quarter of the usual 64: 0.31M parameters); peak lr 0.2 * 64 / 256 = 0.05, cosine
    c = quickstart_recipe(fashion_mnist_config())
    c.batch_size = 64
    c.augment = "flip"
    c.num_epochs = 10.0
    c.log_every_steps = 200
    c.eval_every_epochs = 5.0
    c.checkpoint_every_steps = 1000
    return c
