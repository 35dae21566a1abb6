"""GoogLeNet (Inception-v1, Szegedy et al. 2014) on ImageNet (ILSVRC-2012) with the paper's recipe.

The net of Table 1 with its two auxiliary classifiers (loss weight 0.3, training only); SGD
momentum 0.9, the lr multiplied by 0.96 every 8 epochs, Polyak averaging of the parameters for
evaluation; crops of 8-100% of the image area with aspect ratio 3/4-4/3, flips and photometric
distortions (brightness, contrast, saturation). The paper gives no base lr, batch or weight decay:
these follow its Caffe reference model (bvlc_googlenet: lr 0.01 at batch 32, wd 2e-4), with the lr
scaled linearly to batch 256.

Run:      python train.py --config=configs/googlenet.py --workdir=workdirs/googlenet
Evaluate: python eval.py --config=configs/googlenet.py --workdir=workdirs/googlenet
Needs ILSVRC-2012 prepared once (docs/imagenet.md). Try it on random
data first: --config.dataset=synthetic --config.num_epochs=0.01
Expected (not yet measured here): about 10-11% top-5 validation error from one centre crop (paper
Table 3: 10.07% for one model and one crop; 7.89% with 144 crops). The slow x0.96 decay was made
for long asynchronous training: 90 epochs end at 0.96^11 = 64% of the initial lr; the Caffe model
trains about 60 epochs with a polynomial decay instead.
"""
from jaxnet.presets import imagenet_config


def get_config():
    c = imagenet_config()
    c.model.name = "googlenet"
    c.crop_area = (0.08, 1.0)
    c.color_jitter = 0.4  # photometric distortions
    c.batch_size = 256
    c.num_epochs = 90.0
    c.optimizer = "sgd"
    c.momentum = 0.9
    c.base_lr = 0.08  # Caffe's 0.01 at batch 32, x 256/32
    c.lr_scaling = "linear"  # lr = base_lr * batch_size / 256
    c.schedule = "exponential"
    c.decay_factor = 0.96
    c.decay_every_epochs = 8.0
    c.weight_decay = 2e-4
    c.ema_decay = 0.9999  # Polyak averaging: the averaged parameters are evaluated
    c.log_every_steps = 200
    c.checkpoint_every_steps = 5000
    return c
