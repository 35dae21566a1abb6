"""The config schema: every field a config file may set, with its default, and its validation.

Config files under configs/ start from `base_config()` and change fields; a field that is not
here is a typo, and `validate_config` names it instead of silently ignoring it.
"""
import difflib

import ml_collections

from jaxnet import JaxnetError

EVAL_PROTOCOLS = ("center", "flip", "ten_crop", "googlenet_144", "multiscale")  # jaxnet.evaluation.protocols
IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)

def base_config() -> ml_collections.ConfigDict:
    """All fields with their defaults (an ImageNet ResNet-50 recipe unless a config says otherwise)."""
    c = ml_collections.ConfigDict()
    c.method = "network"  # a jaxnet.methods registry name: network (a CNN, trained by SGD) |
    #                       classical (features + linear SVM) | probe | finetune | cluster (c.transfer)
    #                     | localize | segment (c.task)
    # Model: `name` is a registry name; every other key is passed to create_model as an override.
    c.model = ml_collections.ConfigDict({"name": "resnet50"})
    c.num_classes = 1000
    c.dtype = "float32"  # compute dtype: float32 or bfloat16 (parameters always float32)

    # Data.
    # fashion_mnist | synthetic | imagenet2012 | imagenette | cifar10 | cifar100 | tfds:NAME (any
    # prepared tfds dataset) | folder (data_dir/SPLIT/CLASS/*.jpg); see docs/imagenet.md
    c.dataset = "imagenet2012"
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
    c.num_workers = -1  # grain worker processes; 0 = read in the main process; -1 = auto: every
    #                     core for encoded images (JPEG decoding), 0 for in-memory arrays
    # Encoded-image datasets (imagenet2012, tfds, folder) are decoded per example in grain:
    c.train_transform = "inception_crop"  # inception_crop (8-100% area, aspect 3/4-4/3; GoogLeNet,
    #   ResNet v1.5 recipes) | resnet_scale (shorter side in scale_range, random crop; He et al.)
    #   | alexnet (shorter side 256, centre square, random crop, PCA lighting) | resize (whole image
    #   to image_size, no randomness: small images, then `augment` above applies). All but resize flip.
    c.crop_area = (0.08, 1.0)  # inception_crop: range of the crop's fraction of the image area
    c.scale_range = (256, 480)  # resnet_scale: range of the random shorter side, in pixels
    c.pca_lighting = 0.1  # alexnet: std of the PCA lighting alpha (Krizhevsky 2012); 0 = off
    c.color_jitter = 0.0  # brightness/contrast/saturation factors in [1-s, 1+s] (0.4 = torchvision's)
    c.eval_resize = -1  # eval: shorter side before the centre image_size crop; -1 = image_size *
    #                     256/224 (256 for 224), or the whole image squashed for train_transform=resize
    c.synthetic_examples = 1024  # size of each split of the synthetic dataset
    c.classes = ()  # class ids kept (every split), relabelled 0..k-1 in this order; () = all
    c.examples_per_class = 0  # train split: keep this many per class (seeded choice); 0 = all
    # eval.py's test protocol (jaxnet/evaluation/protocols.py): center | ten_crop |
    # googlenet_144 | multiscale; evaluations during training are always center crops
    c.eval_protocol = "center"
    # eval.py's hierarchy-aware metrics: a class tree (JSON: jaxnet.evaluation.hierarchy); "" =
    # the dataset's own (Fashion-MNIST's shipped tree, ImageNet's from WordNet), if any
    c.class_tree = ""

    # Optimisation.
    c.batch_size = 256  # global batch, over all devices and hosts
    c.eval_batch_size = 256
    c.num_epochs = 90.0
    c.optimizer = "sgd"
    c.momentum = 0.9
    c.nesterov = False
    c.base_lr = 0.1
    c.lr_scaling = "linear"  # linear: lr = base_lr * batch_size / 256; none: lr = base_lr
    c.schedule = "multistep"  # cosine | multistep | exponential | plateau | constant
    c.decay_epochs = (30, 60, 80)  # multistep: epochs at which lr *= decay_factor
    c.decay_factor = 0.1  # multistep, exponential and plateau: the lr multiplier of each drop
    c.decay_every_epochs = 8.0  # exponential: lr *= decay_factor every this many epochs (staircase)
    # plateau: lr *= decay_factor when the eval split's top-1 error has not improved by a relative
    # plateau_rtol for plateau_patience evaluations in a row, at most down to plateau_min_scale.
    c.plateau_patience = 1
    c.plateau_rtol = 0.01
    c.plateau_min_scale = 1e-3  # three drops of 10x, as AlexNet's
    c.warmup_epochs = 0.0
    c.warmup_start_lr = 0.0  # warmup starts at this fraction of the peak lr
    c.weight_decay = 1e-4
    c.weight_decay_exclude_bn_bias = False
    c.label_smoothing = 0.0
    c.ema_decay = 0.0  # > 0: evaluate Polyak (exponential moving) averages of the parameters
    c.device_resize = 0  # > 0: bilinear-resize batches on the device to this size (small images
    #                      upsampled to a net's minimum input, e.g. Fashion-MNIST for AlexNet)

    # Bookkeeping.
    c.seed = 0
    c.log_every_steps = 100
    c.eval_every_epochs = 1.0  # also evaluated at the end; 0 = only at the end
    c.checkpoint_every_steps = 1000  # also saved at the end
    c.keep_checkpoints = 3
    # Divergence guard: stop when the mean training loss of `divergence_intervals` logging
    # intervals in a row is above `divergence_factor` x the run's first interval's (0: off; a
    # non-finite loss always stops).
    c.divergence_factor = 10.0
    c.divergence_intervals = 3

    # Placement of the train state on the mesh (jaxnet/training/sharding.py): replicated (every
    # device holds all of it) | fsdp (each array of >= param_sharding_min_size elements is split
    # over the `data` axis along its largest divisible dimension: per-device memory / devices).
    c.param_sharding = "replicated"
    c.param_sharding_min_size = 2**14
    # Model parallelism: > 1 makes the mesh (data, model) with this many devices on `model`; every
    # layer's kernel and bias are split along their output channels over it (for AlexNet: the
    # paper's two columns on two devices, communicating only at conv3 and the fc layers).
    c.model_parallel = 1

    # The classical baseline (method = "classical"; docs/classical.md): features -> linear
    # SVM. It reads images with eval_batch_size and uses batch_size as the SGD minibatch.
    c.classical = ml_collections.ConfigDict({
        # feature blocks (hog / lbp / bow / kernel_map / fisher / coding), see
        # jaxnet/classical/feature_pipeline.py; recipes: jaxnet/classical/recipes.py
        "features": {"hog": {"cell": 4, "block": 2, "soft": True, "spatial": "bilinear"},
                     "lbp": {"cell": 7}},
        "solver": "full_batch",  # full_batch (features in memory, L-BFGS) | sgd (averaged SGD, streamed)
        "loss": "hinge",  # hinge | squared_hinge | crammer_singer
        "lam": 1e-5,  # L2 weight: lam/2 |W|^2 + mean loss (lam = 1 / (C n) for liblinear's C)
        "tol": 1e-2,  # stop when the certified relative duality gap is below this
        "ftol": 1e-3,  # ... or when the objective's relative decrease is below this (0 = never)
        "max_iter": 500,  # full_batch: L-BFGS iterations at most
        "smoothing": 1.0,  # full_batch: first and last smoothing widths of the hinge losses
        "min_smoothing": 1e-6,
        "epochs": 10,  # sgd: passes over the training features at most
        "eta0": 0.0,  # sgd: first step size; 0 = calibrated on a sample
        "feature_store": "memory",  # memory | disk (numpy memmaps in WORKDIR/features/)
        "feature_dtype": "float32",  # float32 | float16 (halves a disk store)
        "encoder_images": 5000,  # fisher blocks: PCA + GMM fitted on this many train images,
        "encoder_descriptors": 100_000,  # ... on at most this many of their descriptors,
        "em_iters": 50,  # ... with at most this many EM iterations
    })

    # Transfer (method = probe | finetune | cluster; jaxnet/transfer, docs/transfer.md): a
    # trained or imported network reused on new data.
    c.transfer = ml_collections.ConfigDict({
        "source_workdir": "",  # the trained or imported network (a workdir; or a weight file
        #                        .msgpack/.pth/.safetensors of config.model); cluster: "" = raw pixels
        "source_step": -1,  # its checkpoint step; -1 = the latest
        "layer": "pre_logits",  # probe / cluster: features of this layer (python -m
        #                         jaxnet.transfer.extract --workdir=SOURCE --list_layers)
        "pool": "avg",  # avg (global average of a spatial map) | none (the map, flattened)
        "probe_solver": "logistic",  # logistic (multinomial, optax L-BFGS) | svm (jaxnet.classical.svm)
        "l2": 1e-4,  # probe: L2 weight lam/2 |W|^2 (+ the mean loss)
        "max_iter": 500,  # probe: L-BFGS iterations at most; cluster: Lloyd iterations per restart
        "tol": 1e-5,  # probe: stop at this gradient norm; cluster: relative objective decrease
        "freeze": "",  # finetune: regex over parameter paths ("stage1_block1/conv1/kernel"); matches
        #                are not trained ("" = train all; "^(?!fc/)" = the new head only)
        "head_lr_mult": 1.0,  # finetune: the new head's learning rate = this x the schedule's
        "bn_frozen": False,  # finetune: BatchNorm uses (and keeps) the source's running statistics
        "clusters": 10,  # cluster: k
        "pca_dim": 50,  # cluster: PCA dimensions before k-means (0 = none)
        "restarts": 5,  # cluster: k-means++ restarts; the lowest objective wins
    })

    # Scenes (dataset = fashion_mnist_scenes; jaxnet/data/scenes.py): garments pasted on a canvas.
    c.scenes = ml_collections.ConfigDict({
        "canvas": 64,  # side in pixels (config.image_size must equal it)
        "objects": 1,  # garments per scene (localize: 1)
        "scale_range": (0.35, 0.75),  # a garment's side, as a fraction of the canvas
        "clutter": 0,  # garment fragments pasted as background per scene
        "texture": 0.35,  # background texture's brightness (0 = black)
        "train_size": 20000,  # scenes of the train split (0 = one per train garment: 60,000)
        "test_size": 0,  # scenes of the test split (0 = one per test garment: 10,000)
        "crop_area": (0.5, 1.0),  # augment crop_flip: a random crop of this much of the area
    })

    # Localization and segmentation heads (method = localize | segment; jaxnet/transfer/tasks.py),
    # on config.model's backbone; transfer.source_workdir / freeze / head_lr_mult / bn_frozen as
    # for finetune ("" source = from scratch).
    c.task = ml_collections.ConfigDict({
        "box_loss_weight": 5.0,  # localize: weight of the box loss (L1 + 1 - GIoU) beside the CE
        "mask_loss_weight": 1.0,  # segment: weight of the per-pixel CE beside the class CE
        "seg_levels": 3,  # segment: feature maps fused (the coarsest distinct strides, FCN-style)
        "seg_width": 64,  # segment: channels of the fused head
    })
    return c


def validate_config(config: ml_collections.ConfigDict) -> None:
    """Raise JaxnetError naming any field unknown to `base_config()` or any value out of range."""
    known = set(base_config().keys())
    unknown = sorted(set(config.keys()) - known)
    if unknown:
        close = difflib.get_close_matches(unknown[0], known, n=1)
        raise JaxnetError(
            f"unknown config field(s): {', '.join(unknown)}"
            + (f" (did you mean {close[0]}?)" if close else "")
            + ". Valid fields are listed in jaxnet/config.py (base_config)."
        )
    unknown = sorted(set(config.classical.keys()) - set(base_config().classical.keys()))
    if unknown:
        raise JaxnetError(
            f"unknown config.classical field(s): {', '.join(unknown)}. Valid fields are listed in"
            " jaxnet/config.py (base_config, c.classical)."
        )
    unknown = sorted(set(config.transfer.keys()) - set(base_config().transfer.keys()))
    if unknown:
        raise JaxnetError(
            f"unknown config.transfer field(s): {', '.join(unknown)}. Valid fields are listed in"
            " jaxnet/config.py (base_config, c.transfer)."
        )
    for section in ("scenes", "task"):
        unknown = sorted(set(config[section].keys()) - set(base_config()[section].keys()))
        if unknown:
            raise JaxnetError(f"unknown config.{section} field(s): {', '.join(unknown)}. Valid"
                              f" fields are listed in jaxnet/config.py (base_config, c.{section}).")
    classes = list(config.classes)
    if classes and (len(set(classes)) != len(classes) or min(classes) < 0
                    or len(classes) != config.num_classes):
        raise JaxnetError(f"config.classes must be distinct class ids >= 0, as many as"
                          f" config.num_classes ({config.num_classes}); got {tuple(classes)}")
    if config.examples_per_class < 0:
        raise JaxnetError(f"config.examples_per_class must be >= 0, got {config.examples_per_class}")
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
    if config.divergence_factor != 0 and config.divergence_factor <= 1:
        raise JaxnetError(f"config.divergence_factor must be 0 (off) or above 1, got"
                          f" {config.divergence_factor}")
    if config.divergence_intervals < 1:
        raise JaxnetError(f"config.divergence_intervals must be positive, got"
                          f" {config.divergence_intervals}")
    if config.optimizer != "sgd":
        raise JaxnetError(f"config.optimizer must be sgd (with momentum / nesterov), got {config.optimizer!r}")
    if config.lr_scaling not in ("linear", "none"):
        raise JaxnetError(f"config.lr_scaling must be linear or none, got {config.lr_scaling!r}")
    if config.schedule not in ("cosine", "multistep", "exponential", "plateau", "constant"):
        raise JaxnetError("config.schedule must be cosine, multistep, exponential, plateau or"
                          f" constant, got {config.schedule!r}")
    if not 0.0 <= config.ema_decay < 1.0:
        raise JaxnetError(f"config.ema_decay must be in [0, 1), got {config.ema_decay}")
    if config.schedule in ("exponential", "plateau") and not 0.0 < config.decay_factor < 1.0:
        raise JaxnetError(f"config.decay_factor must be in (0, 1), got {config.decay_factor}")
    if config.device_resize < 0:
        raise JaxnetError(f"config.device_resize must be 0 (off) or a size, got {config.device_resize}")
    if config.param_sharding not in ("replicated", "fsdp"):
        raise JaxnetError(f"config.param_sharding must be replicated or fsdp, got {config.param_sharding!r}")
    if config.param_sharding_min_size < 0:
        raise JaxnetError("config.param_sharding_min_size must be >= 0, got"
                          f" {config.param_sharding_min_size}")
    if config.model_parallel < 1:
        raise JaxnetError(f"config.model_parallel must be >= 1, got {config.model_parallel}")
    if config.model_parallel > 1 and config.param_sharding != "replicated":
        raise JaxnetError("config.model_parallel > 1 needs config.param_sharding=replicated (the"
                          " model axis splits the layers; fsdp with it is not supported)")
    if config.train_transform not in ("inception_crop", "resnet_scale", "alexnet", "resize"):
        raise JaxnetError("config.train_transform must be inception_crop, resnet_scale, alexnet or"
                          f" resize, got {config.train_transform!r}")
    if not 0 < config.crop_area[0] <= config.crop_area[1] <= 1:
        raise JaxnetError(f"config.crop_area must be 0 < low <= high <= 1, got {config.crop_area}")
    if config.train_transform == "resnet_scale" and not (
            config.image_size <= config.scale_range[0] <= config.scale_range[1]):
        raise JaxnetError(f"config.scale_range must be image_size <= low <= high, got {config.scale_range}")
    if config.num_workers < -1 or config.pca_lighting < 0 or config.color_jitter < 0:
        raise JaxnetError("config.num_workers must be >= -1, pca_lighting and color_jitter >= 0")
    if 0 <= config.eval_resize < config.image_size and config.eval_resize != 0:
        raise JaxnetError(f"config.eval_resize must be -1, 0 or >= image_size, got {config.eval_resize}")
    if config.eval_protocol not in EVAL_PROTOCOLS:
        raise JaxnetError(f"config.eval_protocol must be one of {', '.join(EVAL_PROTOCOLS)}, got"
                          f" {config.eval_protocol!r}")
    if config.augment not in ("crop_flip", "flip", "none"):
        raise JaxnetError(f"config.augment must be crop_flip, flip or none, got {config.augment!r}")
    if len(config.mean) != config.channels or len(config.std) != config.channels:
        raise JaxnetError(f"config.mean and config.std need {config.channels} values (one per channel)")
