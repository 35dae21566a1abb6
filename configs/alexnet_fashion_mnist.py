"""AlexNet's recipe in miniature: the paper's two-column net on Fashion-MNIST, upsampled on the device.

The 28 px images are padded-cropped and flipped on the host (uint8), then resized on the device to
67 px, the smallest input the 11x11/4 conv1 and three overlapping pools leave a 1x1 map for. The
net is the paper's (LRN, grouped convs, dropout 0.5) and so is the optimiser (SGD 0.9, batch 128,
wd 5e-4, lr 0.01 / 10 on a validation plateau), but not the initialisation: with N(0, 0.01) weights
and biases of 1, the 1x1x256 map this input leaves before fc6 carries almost no per-image signal
(logits vary by ~1e-3 between images), the loss sits at chance (2.30) with or without warmup, at
lr 0.01 or 0.001, on 0-255 or unit-variance inputs; so this variant uses He-normal weights and
zero biases (`model.init_scheme="he"`), which learns at once. The "validation" split here is
Fashion-MNIST's test split (it has no other), so the lr drops peek at the test set.

The plateau rule: evaluated once per epoch, the lr is divided by 10 after 3 evaluations (3 epochs)
in a row without a 1% relative improvement of the best top-1 error so far, at most 3 times (lr
0.01 -> 1e-5), over 30 epochs. An earlier version (patience 1, evaluated every half epoch) read
evaluation noise as plateaus: on a GPU it had cut the lr to its floor by epoch 5 and stalled at
88.6% after 15 epochs.

The test protocol is the paper's (`eval_protocol = "ten_crop"`): the 4 corner and the centre
crops of the padded image and their mirrors, the softmax averaged (eval.py's default for this
config). The training loop's own evaluations, which drive the plateau rule, use one view.

Run:      python train.py --config=configs/alexnet_fashion_mnist.py --cpu_devices=1
Evaluate: python eval.py --config=configs/alexnet_fashion_mnist.py --workdir=workdirs/alexnet_fashion_mnist --cpu_devices=1
Expected: 92.06% test top-1 with the paper's 10 patches (91.86% with one view) after 30 epochs,
lr / 10 after epochs 15 and 28; 3.1 h of training (evaluations not counted) on a 2-core CPU
(a step of 128 images took 549 to 1,159 ms; docs/results.md). On a CPU one device is faster
here than the automatic one per core (549 against 927 ms per step, `python -m jaxnet bench`).
`python -m jaxnet report --quick` reports this run once it has finished.
"""
from jaxnet.presets import fashion_mnist_config


def get_config():
    c = fashion_mnist_config()
    c.model.name = "alexnet"
    c.device_resize = 67
    c.model.init_scheme = "he"  # the paper's init does not learn at this size (docstring)
    c.num_epochs = 30.0
    c.base_lr = 0.01
    c.lr_scaling = "none"
    c.momentum = 0.9
    c.weight_decay = 5e-4
    c.schedule = "plateau"
    c.decay_factor = 0.1
    c.plateau_patience = 3  # evaluations, i.e. epochs: a plateau, not evaluation noise
    c.plateau_rtol = 0.01
    c.eval_every_epochs = 1.0
    c.log_every_steps = 50
    c.checkpoint_every_steps = 500
    c.eval_protocol = "ten_crop"  # the paper's 10 patches (eval.py); the loop evaluates one view
    return c
