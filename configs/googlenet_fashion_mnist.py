"""GoogLeNet's recipe in miniature: Inception-v1 with its auxiliary heads on Fashion-MNIST.

The 28 px images are padded-cropped and flipped on the host, then resized on the device to 32 px
(the stem's stride 4 leaves 8x8 maps for the inception modules; the aux heads pool their small
maps whole). The net is the paper's (LRN, real 5x5 branches, dropout 0.4, aux losses x0.3); so
is the optimiser: SGD 0.9, lr x0.96 at a fixed interval, Polyak averaging for evaluation. The
interval is cut from 8 epochs to a quarter epoch to fit 4 epochs on a 2-core CPU.

Run:      python train.py --config=configs/googlenet_fashion_mnist.py
Evaluate: python eval.py --config=configs/googlenet_fashion_mnist.py --workdir=workdirs/googlenet_fashion_mnist
Expected: about 88.3% test top-1 in 21 minutes on a 2-core CPU (measured: 88.34%, 99.81% top-5,
20 min 47 s for the whole command; docs/results.md).
"""
from jaxnet.presets import fashion_mnist_config


def get_config():
    c = fashion_mnist_config()
    c.model.name = "googlenet"
    c.device_resize = 32
    c.num_epochs = 4.0
    c.base_lr = 0.08  # the Caffe model's 0.01 at batch 32, scaled linearly: 0.04 at batch 128
    c.lr_scaling = "linear"  # 0.08 * 128 / 256 = 0.04
    c.momentum = 0.9
    c.weight_decay = 2e-4
    c.schedule = "exponential"
    c.decay_factor = 0.96
    c.decay_every_epochs = 0.25
    c.ema_decay = 0.999
    c.eval_every_epochs = 2.0
    c.log_every_steps = 50
    c.checkpoint_every_steps = 500
    return c
