"""The config schema: every field a config file may set, with its default, and its validation.

Config files under configs/ start from `base_config()` and change fields; a field that is not
here is a typo, and `validate_config` names it instead of silently ignoring it.
"""
import ml_collections

from jaxnet import JaxnetError

IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)


def base_config() -> ml_collections.ConfigDict:
    """All fields with their defaults (an ImageNet ResNet-50 recipe unless a config says otherwise)."""
    c = ml_collections.ConfigDict()
    # Model: `name` is a registry name; every other key is passed to create_model as an override.
    c.model = ml_collections.ConfigDict({"name": "resnet50"})
    c.num_classes = 1000
    c.dtype = "float32"  # compute dtype: float32 or bfloat16 (parameters always float32)

    # Data.
    c.dataset = "imagenet2012"  # fashion_mnist | imagenet2012 | synthetic
    c.data_dir = ""  # "" = $JAXNET_DATA_DIR, then the dataset's usual places
    c.train_split = "train"
    c.eval_split = "test"
    c.image_size = 224
    c.channels = 3
    c.mean = IMAGENET_MEAN  # per-channel, in uint8 units: normalisation happens on the device
    c.std = IMAGENET_STD
    c.augment = "crop_flip"  # crop_flip | flip | none
    c.crop_padding = 4  # pixels of zero padding before the random crop (small-image augment)
    c.random_erasing = 0.0  # probability of erasing one random rectangle (Zhong et al. 2017)
    c.num_workers = 0  # grain worker processes; 0 = read in the main process
    c.synthetic_examples = 1024  # size of each split of the synthetic dataset

    # Optimisation.
    c.batch_size = 256  # global batch, over all devices and hosts
    c.eval_batch_size = 256
    c.num_epochs = 90.0
    c.optimizer = "sgd"
    c.momentum = 0.9
    c.nesterov = False
    c.base_lr = 0.1
    c.lr_scaling = "linear"  # linear: lr = base_lr * batch_size / 256; none: lr = base_lr
    c.schedule = "multistep"  # cosine | multistep | constant
    c.decay_epochs = (30, 60, 80)
    c.decay_factor = 0.1
    c.warmup_epochs = 0.0
    c.warmup_start_lr = 0.0  # warmup starts at this fraction of the peak lr
    c.weight_decay = 1e-4
    c.weight_decay_exclude_bn_bias = False
    c.label_smoothing = 0.0

    # Bookkeeping.
    c.seed = 0
    c.log_every_steps = 100
    c.eval_every_epochs = 1.0  # also evaluated at the end; 0 = only at the end
    c.checkpoint_every_steps = 1000  # also saved at the end
    c.keep_checkpoints = 3
    return c


def validate_config(config: ml_collections.ConfigDict) -> None:
    """Raise JaxnetError naming any field unknown to `base_config()` or any value out of range."""
    unknown = sorted(set(config.keys()) - set(base_config().keys()))
    if unknown:
        raise JaxnetError(
            f"unknown config field(s): {', '.join(unknown)}. Valid fields are listed in "
            "jaxnet/config.py (base_config)."
        )
    if "name" not in config.model:
        raise JaxnetError("config.model.name is missing: set it to a model name, e.g. resnet50")
    if config.dtype not in ("float32", "bfloat16"):
        raise JaxnetError(f"config.dtype must be 'float32' or 'bfloat16', got {config.dtype!r}")
    for field in ("batch_size", "eval_batch_size", "log_every_steps", "checkpoint_every_steps",
                  "keep_checkpoints", "num_classes"):
        if config[field] < 1:
            raise JaxnetError(f"config.{field} must be positive, got {config[field]}")
    if config.num_epochs <= 0:
        raise JaxnetError(f"config.num_epochs must be positive, got {config.num_epochs}")
    if config.augment not in ("crop_flip", "flip", "none"):
        raise JaxnetError(f"config.augment must be crop_flip, flip or none, got {config.augment!r}")
    if len(config.mean) != config.channels or len(config.std) != config.channels:
        raise JaxnetError(f"config.mean and config.std need {config.channels} values (one per channel)")


def resnet_imagenet_recipe(name: str) -> ml_collections.ConfigDict:
    """He et al. 2015's ImageNet recipe: SGD 0.9, batch 256, lr 0.1 (x batch/256), /10 at epochs
    30/60/80 of 90, weight decay 1e-4, zero-init last BN gamma; v1.5, option B shortcuts."""
    c = base_config()
    c.model.name = name
    c.dataset = "imagenet2012"
    c.num_classes = 1000
    c.image_size = 224
    c.batch_size = 256
    c.eval_batch_size = 512  # divides any power-of-two device count up to 512; the last batch is padded
    c.num_epochs = 90.0
    c.base_lr = 0.1
    c.lr_scaling = "linear"
    c.schedule = "multistep"
    c.decay_epochs = (30, 60, 80)
    c.weight_decay = 1e-4
    c.log_every_steps = 100
    c.checkpoint_every_steps = 2000
    c.eval_split = "validation"
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
