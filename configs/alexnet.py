"""AlexNet (Krizhevsky, Sutskever & Hinton 2012) on ImageNet (ILSVRC-2012) with the paper's recipe.

The two-column net at 227 px (the paper's "224" does not give its 55x55 maps); SGD momentum 0.9,
batch 128, weight decay 5e-4, lr 0.01 divided by 10 when the validation error stops improving
(three times at most), about 90 epochs; random 227 crops of the image resized to 256 + flips + PCA
lighting (alpha ~ N(0, 0.1)); paper init N(0, 0.01), biases 1 in conv2/4/5 and fc6/7.

Run:      python train.py --config=configs/alexnet.py --workdir=workdirs/alexnet
Evaluate: python eval.py --config=configs/alexnet.py --workdir=workdirs/alexnet
Needs ILSVRC-2012 prepared once (docs/imagenet.md). Try it on random
data first: --config.dataset=synthetic --config.num_epochs=0.01
Expected (not yet measured here): about 42% top-1 / 19-20% top-5 validation error from this
single centre crop; the paper's 40.7% / 18.2% average 10 crops. The plateau rule watches the
validation split's top-1 error after every epoch; the paper's authors dropped the lr by hand.
"""
from jaxnet.presets import imagenet_config


def get_config():
    c = imagenet_config()
    c.model.name = "alexnet"
    c.image_size = 227
    c.train_transform = "alexnet"  # shorter side 256, centre 256x256, random 227 crop, flip, PCA light
    c.pca_lighting = 0.1
    c.eval_resize = 256
    c.std = (1.0, 1.0, 1.0)  # the paper subtracts the mean pixel only; its N(0, 0.01) init needs 0-255 inputs
    c.batch_size = 128
    c.num_epochs = 90.0
    c.optimizer = "sgd"
    c.momentum = 0.9
    c.base_lr = 0.01
    c.lr_scaling = "none"  # the paper's 0.01 at batch 128; use "linear" with base_lr 0.02 to scale
    c.schedule = "plateau"
    c.decay_factor = 0.1
    c.plateau_patience = 3  # epochs without a 1% relative gain in validation error
    c.plateau_rtol = 0.01
    c.plateau_min_scale = 1e-3  # at most three drops, as in the paper
    c.weight_decay = 5e-4
    c.eval_every_epochs = 1.0  # the plateau rule needs the validation error every epoch
    c.log_every_steps = 200
    c.checkpoint_every_steps = 5000
    return c
