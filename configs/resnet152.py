"""ResNet-152 on ImageNet (ILSVRC-2012) with the paper's recipe (He et al. 2015).

Run:      python train.py --config=configs/resnet152.py --workdir=workdirs/resnet152
Evaluate: python eval.py --config=configs/resnet152.py --workdir=workdirs/resnet152
Try it on random data first: --config.dataset=synthetic --config.num_epochs=0.01
Expected: top-1 / top-5 validation error about 21.69 / 5.94 (torchvision 1-crop; paper Table 4: 19.38 / 4.49).
Data: prepare ILSVRC-2012 once (no TensorFlow needed), then point the config at it:
    python -m jaxnet prepare imagenet2012 --manual_dir=DIR_WITH_TARS --data_dir=DATA
    python train.py --config=configs/resnet152.py --config.data_dir=DATA   (or JAXNET_DATA_DIR=DATA)
The batch is global: on N devices each gets batch_size / N.
"""
from jaxnet.presets import resnet_imagenet_recipe


def get_config():
    return resnet_imagenet_recipe("resnet152")
