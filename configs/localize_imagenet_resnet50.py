"""ILSVRC-2012 single-object localization with a ResNet-50 backbone, sized for GPUs.

Data: ImageNet prepared with its box files (ILSVRC2012_bbox_train_v2.tar.gz and
ILSVRC2012_bbox_val_v3.tgz beside the image tars in --manual_dir):
    python -m jaxnet prepare imagenet2012 --manual_dir=DIR --data_dir=DATA
Run:      python train.py --config=configs/localize_imagenet_resnet50.py --config.data_dir=DATA
Evaluate: python eval.py --config=configs/localize_imagenet_resnet50.py --workdir=workdirs/localize_imagenet_resnet50 --config.data_dir=DATA

From scratch, this is ResNet-50's ImageNet recipe (90 epochs, batch 256, lr 0.1 / 10 at epochs
30/60/80, bfloat16) with a box head beside the classifier. Much cheaper: start from torchvision's
ImageNet ResNet-50 (imported once with `python -m jaxnet weights import --format=torchvision
--model=resnet50 resnet50-0676ba61.pth --workdir=workdirs/tv_resnet50`) and fine-tune for 12
epochs, the heads at 10x the backbone's rate:
    python train.py --config=configs/localize_imagenet_resnet50.py --config.data_dir=DATA --config.transfer.source_workdir=workdirs/tv_resnet50 --config.num_epochs=12 --config.base_lr=0.01 --config.transfer.head_lr_mult=10 --config.schedule=cosine
(frozen backbone: add --config.transfer.freeze='^(?!fc/|task_head/)' --config.transfer.bn_frozen=True).

Training crops are torchvision's inception crops + flips, the boxes moving with them (train
images without a box file train the class head only); the box head regresses a box per class
from the 7x7 stage-4 map and each of the top-5 guesses carries its class's box (ILSVRC's rule:
right when the class is and IoU >= 0.5). Evaluation: shorter side 256, centre 224 crop, the
boxes cut with it. Expected: not measured (no ImageNet copy or GPU was at hand when this was
written). For orientation: the ILSVRC-2014 localization winner (VGG) had 25.3% top-5
localization error with several scales and models; a single-scale regression head like this one
should land above that.
"""
from jaxnet.presets import resnet_imagenet_recipe


def get_config():
    c = resnet_imagenet_recipe("resnet50")
    c.method = "localize"
    c.task.box_loss_weight = 5.0
    c.dtype = "bfloat16"
    c.eval_every_epochs = 5.0
    return c
