"""The Fashion-MNIST transfer recipes: a network pretrained on classes 0-4 (T-shirt/top, Trouser,
Pullover, Dress, Coat) reused on classes 5-9 (Sandal, Shirt, Sneaker, Bag, Ankle boot). What
configs/{fashion_mnist_0to4,probe,finetune,cluster}_fashion_mnist.py train and what the transfer
study (python -m jaxnet transfer_study) compares, so their numbers are the same runs'.
"""
from jaxnet.presets import fashion_mnist_config, quickstart_recipe

SOURCE_CLASSES = (0, 1, 2, 3, 4)
TARGET_CLASSES = (5, 6, 7, 8, 9)
SOURCE_WORKDIR = "workdirs/fashion_mnist_0to4"


def _data(c, classes):
    c.classes = classes
    c.num_classes = len(classes)
    return c


def network_config(classes=TARGET_CLASSES):
    """The quickstart's narrow ResNet-10 (0.31M parameters) and optimiser
    (jaxnet.presets.quickstart_recipe, at batch 128 with pad-crop + flip), on `classes`."""
    c = quickstart_recipe(_data(fashion_mnist_config(), classes))
    c.num_epochs = 4.0
    c.log_every_steps = 100
    c.eval_every_epochs = 0.0
    c.checkpoint_every_steps = 500
    c.keep_checkpoints = 1
    return c


def source_config():
    """The source network: the ResNet-10 trained 4 epochs on classes 0-4 (30,000 images)."""
    return network_config(SOURCE_CLASSES)


def probe_config(source_workdir=SOURCE_WORKDIR, layer="pre_logits"):
    """Multinomial logistic regression (L-BFGS) on `layer`'s average-pooled features."""
    c = _data(fashion_mnist_config(), TARGET_CLASSES)
    c.method = "probe"
    c.transfer.source_workdir = source_workdir
    c.transfer.layer = layer
    c.transfer.pool = "avg"
    c.transfer.probe_solver = "logistic"
    c.transfer.l2 = 1e-3
    c.transfer.max_iter = 500
    c.keep_checkpoints = 1
    return c


def finetune_config(source_workdir=SOURCE_WORKDIR, head_only=False):
    """Fine-tuning: the head only (backbone and BatchNorm statistics frozen, lr 0.1), or all of
    it (backbone lr 0.01, the new head 10x that), SGD + Nesterov, cosine, 4 epochs."""
    c = network_config(TARGET_CLASSES)
    c.method = "finetune"
    c.transfer.source_workdir = source_workdir
    c.lr_scaling = "none"
    c.warmup_epochs = 0.0
    if head_only:
        c.base_lr = 0.1
        c.transfer.freeze = "^(?!fc/)"  # everything but the new classifier
        c.transfer.bn_frozen = True
        c.transfer.head_lr_mult = 1.0
    else:
        c.base_lr = 0.01
        c.transfer.head_lr_mult = 10.0
    return c


def scratch_config():
    """The same network trained from random weights on the target classes (no transfer)."""
    c = network_config(TARGET_CLASSES)
    c.base_lr = 0.1
    c.lr_scaling = "none"
    return c


def cluster_config(source_workdir=SOURCE_WORKDIR, layer="pre_logits"):
    """PCA to 50 dimensions, k-means with 5 clusters (one per class), 5 restarts; source ""
    clusters the raw pixels."""
    c = _data(fashion_mnist_config(), TARGET_CLASSES)
    c.method = "cluster"
    c.transfer.source_workdir = source_workdir
    c.transfer.layer = layer
    c.transfer.pool = "avg"
    c.transfer.clusters = 5
    c.transfer.pca_dim = 50
    c.transfer.restarts = 5
    c.transfer.max_iter = 100
    c.transfer.tol = 1e-5
    c.keep_checkpoints = 1
    return c
