"""config.method = "segment": a backbone with an FCN-style head (jaxnet.transfer.tasks.SegHead:
the coarsest config.task.seg_levels feature maps, e.g. strides 8/16/32, fused top-down with
bilinear upsampling, plus the image's pooled features as global context) giving a mask of
background + config.num_classes classes at the input's size, and the backbone's own class head;
on data with masks (dataset fashion_mnist_scenes, any number of objects). Loss: class
cross-entropy + config.task.mask_loss_weight x per-pixel cross-entropy. Backbone options
(scratch, a workdir or imported weights, freeze patterns, per-group learning rates, frozen
BatchNorm) are localize's (jaxnet.methods.localize); the evaluator reports miou, pixel_acc
and per-class IoU (in the per-class file) beside top-k.
"""
from jaxnet.evaluation.evaluator import Predictor
from jaxnet.methods import localize

TASK = "segment"
RESUME_FIELDS = localize.RESUME_FIELDS
EVAL_FIELDS = localize.EVAL_FIELDS
PROTOCOLS = localize.PROTOCOLS


def check_config(config) -> None:
    localize.check_task_config(config, TASK)


def fit(config, run) -> Predictor:
    return localize.fit_task(config, run, TASK)


def restore(config, run, step=None) -> Predictor:
    return localize.restore_task(config, run, step, TASK)
