"""ResNet-18 on ImageNet (ILSVRC-2012) with the paper's recipe (He et al. 2015).

Run:      python train.py --config=configs/resnet18.py --workdir=workdirs/resnet18
Evaluate: python eval.py --config=configs/resnet18.py --workdir=workdirs/resnet18
Try it on random data first: --config.dataset=synthetic --config.num_epochs=0.01
Expected: top-1 / top-5 validation error about 30.24 / 10.92 (torchvision's 1-crop figures; paper Table 2: 27.88 top-1, 10-crop).
Data: prepare ILSVRC-2012 once (no TensorFlow needed), then point the config at it:
    python -m jaxnet prepare imagenet2012 --manual_dir=DIR_WITH_TARS --data_dir=DATA
    python train.py --config=configs/resnet18.py --config.data_dir=DATA   (or JAXNET_DATA_DIR=DATA)
The batch is global: on N devices each gets batch_size / N.
"""
from jaxnet.presets import resnet_imagenet_recipe


def get_config():
    return resnet_imagenet_recipe("resnet18")
