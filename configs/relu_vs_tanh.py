"""AlexNet's Figure 1: ReLU against saturating units in a four-layer CNN, no regularisation.

The net is `small_cnn` (conv 5x5x32 -> max-pool -> conv 5x5x32 -> avg-pool -> conv 5x5x64 ->
avg-pool -> fc; jaxnet/models/small_cnn.py) with one activation everywhere; no weight decay, no
dropout, no augmentation, SGD with momentum 0.9 at a constant learning rate, batch 128. The
paper gave each unit type its own best learning rate; `python -m jaxnet report` sweeps
LEARNING_RATES for every activation and plots each at its best (fewest epochs to 25% training
error), as the paper's Figure 1.

Variant (after the colon): ACTIVATION[,LR][,cifar10]; ACTIVATION is relu, leaky_relu, maxout, tanh
or sigmoid; LR defaults to 0.03; `cifar10` trains on CIFAR-10 (tfds, prepared in data_dir) as the
paper did instead of Fashion-MNIST.
Run:      python train.py --config=configs/relu_vs_tanh.py:tanh,0.03 --workdir=workdirs/fig1_tanh
All of it: python -m jaxnet report --out=DIR [--quick]   (section "ReLU vs saturating units")
Expected: ReLU reaches 25% training error in fewer epochs than tanh and far fewer than sigmoid
(paper, CIFAR-10: six times fewer than tanh). Measured with --quick (8,000 Fashion-MNIST training
images, 3 epochs): see the report.
"""
from jaxnet.presets import cifar10_config, fashion_mnist_config

ACTIVATIONS = ("relu", "leaky_relu", "maxout", "tanh", "sigmoid")
LEARNING_RATES = (0.003, 0.01, 0.03, 0.1, 0.3)
VARIANTS = ACTIVATIONS  # the variant's first part; OPTIONS may follow it after commas
OPTIONS = ("0.1", "cifar10")


def get_config(variant="relu"):
    parts = (variant or "relu").split(",")
    cifar = "cifar10" in parts
    parts = [p for p in parts if p != "cifar10"]
    activation, lr = parts[0], float(parts[1]) if len(parts) > 1 else 0.03
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    c = cifar10_config() if cifar else fashion_mnist_config()
    c.model.name = "small_cnn"
    c.model.activation = activation
    c.augment = "none"  # no regularisation of any kind, as in the paper's Figure 1
    c.weight_decay = 0.0
    c.label_smoothing = 0.0
    c.optimizer = "sgd"
    c.momentum = 0.9
    c.base_lr = lr
    c.lr_scaling = "none"
    c.schedule = "constant"
    c.batch_size = 128
    c.num_epochs = 10.0
    c.log_every_steps = 10
    c.eval_every_epochs = 1.0
    c.checkpoint_every_steps = 5000
    return c
