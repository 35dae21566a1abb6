"""ResNet-18 on ImageNet (ILSVRC-2012) with the paper's recipe (He et al. 2015).

Run:      python train.py --config=configs/resnet18.py --workdir=workdirs/resnet18
Evaluate: python eval.py --config=configs/resnet18.py --workdir=workdirs/resnet18
Try it on random data first: --config.dataset=synthetic --config.num_epochs=0.01
Expected: top-1 / top-5 validation error about 30.24 / 10.92 (torchvision's 1-crop figures; paper Table 2: 27.88 top-1, 10-crop).
Needs the ImageNet input pipeline (prepared ILSVRC-2012); until then the config exits with
instructions. The batch is global: on N devices each gets batch_size / N.
"""
from jaxnet.config import resnet_imagenet_recipe


def get_config():
    return resnet_imagenet_recipe("resnet18")
