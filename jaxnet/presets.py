"""Dataset settings and training recipes that configs/*.py start from: ImageNet, Fashion-MNIST
and CIFAR-10 data on top of the schema's defaults (jaxnet.config.base_config), ResNet's ImageNet
recipe and the quickstart's net and optimiser."""
import ml_collections

from jaxnet.config import base_config


def imagenet_config() -> ml_collections.ConfigDict:
    """ILSVRC-2012 data settings shared by the ImageNet configs: 1000 classes, 224 px, inception
    crops + flips for training (decoded in one grain worker per core), shorter side 256 + centre
    crop for evaluation on the 50,000 validation images."""
    c = base_config()
    c.dataset = "imagenet2012"
    c.num_classes = 1000
    c.image_size = 224
    c.train_transform = "inception_crop"
    c.augment = "none"  # the small-image batch augmentation: not for ImageNet (the crop flips)
    c.eval_resize = 256
    c.num_workers = -1
    c.eval_split = "validation"
    c.eval_batch_size = 512  # divides any power-of-two device count up to 512; the last batch is padded
    return c


def resnet_imagenet_recipe(name: str) -> ml_collections.ConfigDict:
    """He et al. 2015's ImageNet recipe: SGD 0.9, batch 256, lr 0.1 (x batch/256), /10 at epochs
    30/60/80 of 90, weight decay 1e-4, zero-init last BN gamma; v1.5, option B shortcuts. Training
    crops are torchvision's (inception_crop), the recipe behind the configs' expected figures; the
    paper's own scale augmentation (shorter side in [256, 480], random 224 crop + flip) is
    train_transform=resnet_scale."""
    c = imagenet_config()
    c.model.name = name
    c.batch_size = 256
    c.num_epochs = 90.0
    c.base_lr = 0.1
    c.lr_scaling = "linear"
    c.schedule = "multistep"
    c.decay_epochs = (30, 60, 80)
    c.weight_decay = 1e-4
    c.log_every_steps = 100
    c.checkpoint_every_steps = 2000
    return c


def fashion_mnist_config() -> ml_collections.ConfigDict:
    """Fashion-MNIST data settings shared by its configs: 28x28 grey, 10 classes, pad-crop + flip."""
    c = base_config()
    c.dataset = "fashion_mnist"
    c.num_classes = 10
    c.image_size = 28
    c.channels = 1
    c.mean = (72.94,)  # train-split pixel mean / std, in uint8 units
    c.std = (90.02,)
    c.augment = "crop_flip"
    c.crop_padding = 2
    c.batch_size = 128
    c.eval_batch_size = 500
    return c


def quickstart_recipe(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The quickstart's net and optimiser on `c` (configs/fashion_mnist.py; also the augmentation
    ablation's and the transfer recipes'): a narrow ResNet-10 for small images (one basic block
    per stage, 3x3/1 stem without max-pool, width 16: 0.31M parameters), SGD with Nesterov at
    peak lr 0.2 x batch/256, cosine after half an epoch of warmup, weight decay 5e-4 off the
    BatchNorm and bias terms, label smoothing 0.1. Epochs and cadence are the caller's."""
    c.model.name = "resnet10"
    c.model.stem = "small"
    c.model.width = 16
    c.base_lr = 0.2
    c.lr_scaling = "linear"
    c.schedule = "cosine"
    c.warmup_epochs = 0.5
    c.nesterov = True
    c.weight_decay = 5e-4
    c.weight_decay_exclude_bn_bias = True
    c.label_smoothing = 0.1
    return c


def cifar10_config() -> ml_collections.ConfigDict:
    """CIFAR-10 data settings (tfds `cifar10`, prepared or downloaded into data_dir): 32x32 RGB, 10
    classes, the ResNet paper's 4-pixel pad + random 32 crop + flip, the 10,000 test images."""
    c = base_config()
    c.dataset = "cifar10"
    c.num_classes = 10
    c.image_size = 32
    c.channels = 3
    c.mean = (125.31, 122.95, 113.87)  # train-split pixel mean / std, in uint8 units
    c.std = (62.99, 62.09, 66.70)
    c.train_transform = "resize"  # decoded whole (32 px), then the small-image augment below
    c.augment = "crop_flip"
    c.crop_padding = 4
    c.eval_split = "test"
    c.num_workers = -1
    c.batch_size = 128
    c.eval_batch_size = 500
    return c


def scenes_config(method: str) -> ml_collections.ConfigDict:
    """Fashion-MNIST scenes (64x64, one garment each at 1-2x its size, 60,000 train scenes;
    jaxnet.data.scenes) with the quickstart's optimiser on a ResNet-10 with the ImageNet stem,
    for `method` localize or segment: what configs/localize_fashion_mnist.py and
    configs/segment_fashion_mnist.py share. Epochs are the caller's."""
    c = quickstart_recipe(fashion_mnist_config())
    # ResNet-10's first three stages at width 32 behind the ImageNet stem (7x7/2 conv, 3x3/2
    # max-pool): maps of 16, 8 and 4 px for a 64 px canvas, a fifth of the 3x3/1 stem's cost
    # (measured against the 3x3/2 stem, "small2", on localization: 72.2% against 69.1% top-1
    # after 5 epochs, and faster)
    c.model.stem = "imagenet"
    c.model.width = 32
    c.model.stage_sizes = (1, 1, 1)
    c.method = method
    c.dataset = "fashion_mnist_scenes"
    c.image_size = 64
    c.scenes.canvas = 64
    c.mean = (55.0,)  # scene pixel mean / std (texture + garments), in uint8 units
    c.std = (62.0,)
    # one scene per train garment (60,000), each garment at 1-2x its 28 px (never shrunk below
    # its own detail); no augmentation: the net underfits in this budget, and Fashion-MNIST's
    # shoes all face left, so mirror images are views the test never shows
    c.scenes.train_size = 0
    c.scenes.scale_range = (28 / 64, 56 / 64)
    c.augment = "none"
    c.label_smoothing = 0.0
    c.batch_size = 64
    c.eval_batch_size = 500
    c.log_every_steps = 100
    c.eval_every_epochs = 0.0  # at the end only
    c.checkpoint_every_steps = 500
    return c
