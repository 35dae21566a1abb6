"""Localization (ILSVRC's single-object task) on Fashion-MNIST scenes: a narrow ResNet-10 with a
class head and a per-class box head, from scratch.

Run:      python train.py --config=configs/localize_fashion_mnist.py
Evaluate: python eval.py --config=configs/localize_fashion_mnist.py --workdir=workdirs/localize_fashion_mnist
Expected (measured, docs/tasks.md): test loc_err 13.6% (top-5 0.25%), top-1 class error 13.6%,
mean IoU 0.94, every right-class box at IoU >= 0.5; 11.5 min of training on a quiet 2-core AMD
EPYC. The boxes are solved and the class decides; the net underfits, so easier learning moved
it, not regularisation (docs/tasks.md).

Scenes: one garment of the Fashion-MNIST train split (test split for the test scenes) per 64x64
canvas at 1-2x its 28 px, anywhere, over a textured background; the 60,000 train scenes (one per
garment), the 10,000 test scenes (jaxnet/data/scenes.py). Net: ResNet-10's first three stages
(width 32) behind the ImageNet stem (7x7/2 conv, 3x3/2 max-pool): maps of 16, 8 and 4 px; its
class head and a per-class box head on the 4x4 map; loss = cross-entropy + 5 x (L1 + 1 - GIoU)
of the true class's box; SGD + Nesterov, batch 64, cosine, 5.5 epochs (5,154 steps). No
augmentation (Fashion-MNIST's shoes all face left: mirror images are views the test never shows).
Metrics: loc_err (wrong class or IoU < 0.5), loc_err_top5, mean_iou, iou50_given_class beside
top-1/top-5.
"""
from jaxnet.presets import scenes_config


def get_config():
    c = scenes_config("localize")
    c.num_epochs = 5.5
    c.task.box_loss_weight = 5.0
    return c
