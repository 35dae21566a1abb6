"""Segmentation on Fashion-MNIST scenes: the localize config's backbone (ResNet-10's first three
stages, width 32, ImageNet stem) with an FCN-style head (its maps at strides 4, 8 and 16, fused
top-down with bilinear upsampling, plus the image's pooled features as global context, then
upsampled to the 64x64 input) giving background + 10 classes per pixel, from scratch.

Run:      python train.py --config=configs/segment_fashion_mnist.py
Evaluate: python eval.py --config=configs/segment_fashion_mnist.py --workdir=workdirs/segment_fashion_mnist
Expected (measured, docs/tasks.md): test miou 0.721 (background 0.97; bag 0.89 down to shirt
0.42), pixel_acc 0.946, class head top-1 error 13.8%; 12.1 min of training on a quiet 2-core
AMD EPYC.

Scenes as configs/localize_fashion_mnist.py (one garment per 64x64 canvas at 1-2x its size,
60,000 train scenes, no augmentation); masks are the pasted garments' silhouettes. Loss:
image-level cross-entropy + per-pixel cross-entropy; 4 epochs (3,748 steps of 64). Metrics: miou
(mean IoU over the classes present, background included), pixel_acc, per-class IoU in the
per-class file, beside top-1/top-5 of the class head.
"""
from jaxnet.presets import scenes_config


def get_config():
    c = scenes_config("segment")
    c.num_epochs = 4.0
    c.task.seg_levels = 3
    c.task.seg_width = 32
    return c
