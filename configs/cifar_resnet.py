"""The ResNet paper's CIFAR-10 nets (He et al. 2015, section 4.2) and their plain twins.

`cifar_resnet{20,32,44,56,110}` (option A shortcuts) and `cifar_plain{20,32,44,56,110}`: 16/32/64
channels, 6n+2 layers, 0.27M-1.7M parameters (jaxnet/models/cifar.py). The paper's recipe: SGD
0.9, batch 128, lr 0.1, divided by 10 at 32k and 48k iterations, stopped at 64k, weight decay
1e-4, pad-and-crop + flip; depth 110 starts at lr 0.01 for ~400 iterations (a linear warm-up
here). The iteration counts are converted to epochs of the chosen dataset.

Variant: resnetN | plainN [,cifar10]   (N in 20, 32, 44, 56, 110)
Run:      python train.py --config=configs/cifar_resnet.py:resnet56,cifar10 --workdir=workdirs/r56
          python train.py --config=configs/cifar_resnet.py:plain56 --workdir=workdirs/p56  # Fashion-MNIST
Expected on CIFAR-10 (paper, test error): ResNet 8.75 / 7.51 / 7.17 / 6.97 / 6.43% for 20 / 32 /
44 / 56 / 110 layers; plain-56 trains and tests worse than plain-20 (the degradation problem,
Fig. 6). Sized for one GPU (64k iterations); `python -m jaxnet report --quick` trains 20 and 56
layers of both kinds on 5,000 Fashion-MNIST images for a few epochs.
"""
from jaxnet.presets import cifar10_config, fashion_mnist_config

TRAIN_EXAMPLES = {"fashion_mnist": 60_000, "cifar10": 50_000}
VARIANTS = tuple(f"{kind}{depth}" for kind in ("resnet", "plain") for depth in (20, 32, 44, 56, 110))
OPTIONS = ("cifar10",)  # may follow the variant after a comma


def get_config(variant="resnet20"):
    parts = (variant or "resnet20").split(",")
    kind = parts[0]
    if not (kind.startswith("resnet") or kind.startswith("plain")):
        raise ValueError(f"variant must be resnetN or plainN, got {kind!r}")
    c = cifar10_config() if "cifar10" in parts else fashion_mnist_config()
    c.model.name = f"cifar_{kind}"
    depth = int(kind.removeprefix("resnet").removeprefix("plain"))
    c.batch_size = 128
    c.base_lr = 0.1
    c.lr_scaling = "none"
    c.momentum = 0.9
    c.weight_decay = 1e-4
    c.schedule = "multistep"
    c.decay_factor = 0.1
    steps_per_epoch = TRAIN_EXAMPLES[c.dataset] // c.batch_size
    c.num_epochs = round(64_000 / steps_per_epoch, 2)
    c.decay_epochs = (round(32_000 / steps_per_epoch, 2), round(48_000 / steps_per_epoch, 2))
    if depth == 110:  # the paper's lr 0.01 "until the training error is below 80%"
        c.warmup_epochs = round(400 / steps_per_epoch, 2)
        c.warmup_start_lr = 0.1
    c.augment = "crop_flip"
    c.log_every_steps = 50
    c.eval_every_epochs = 1.0
    c.checkpoint_every_steps = 5000
    return c
