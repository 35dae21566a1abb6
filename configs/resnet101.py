"""ResNet-101 on ImageNet (ILSVRC-2012) with the paper's recipe (He et al. 2015).

Run:      python train.py --config=configs/resnet101.py --workdir=workdirs/resnet101
Evaluate: python eval.py --config=configs/resnet101.py --workdir=workdirs/resnet101
Try it on random data first: --config.dataset=synthetic --config.num_epochs=0.01
Expected: top-1 / top-5 validation error about 22.63 / 6.44 (torchvision 1-crop; paper Table 4: 19.87 / 4.60).
Data: prepare ILSVRC-2012 once (no TensorFlow needed), then point the config at it:
    python -m jaxnet prepare imagenet2012 --manual_dir=DIR_WITH_TARS --data_dir=DATA
    python train.py --config=configs/resnet101.py --config.data_dir=DATA   (or JAXNET_DATA_DIR=DATA)
The batch is global: on N devices each gets batch_size / N.
"""
from jaxnet.presets import resnet_imagenet_recipe


def get_config():
    return resnet_imagenet_recipe("resnet101")
