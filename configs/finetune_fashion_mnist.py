"""Fine-tuning: the ResNet-10 pretrained on Fashion-MNIST classes 0-4, with a new 5-way head,
trained 4 epochs on classes 5-9 (30,000 images): all layers (backbone lr 0.01, head lr 0.1,
cosine), or with --config.transfer.freeze='^(?!fc/)' --config.transfer.bn_frozen=True
--config.base_lr=0.1 the head only (what the transfer study calls "fine-tune head").

First the source:  python train.py --config=configs/fashion_mnist_0to4.py --workdir=workdirs/fashion_mnist_0to4
Run:      python train.py --config=configs/finetune_fashion_mnist.py --workdir=workdirs/finetune_fashion_mnist
Evaluate: python eval.py --config=configs/finetune_fashion_mnist.py --workdir=workdirs/finetune_fashion_mnist
Expected: 95.88% test top-1 on the 5,000 test images of classes 5-9 (measured: the transfer
study's "fine-tune all layers, all labels" point is this config).
Head only: 87.62%. docs/transfer.md.
"""
from jaxnet.transfer.recipes import finetune_config


def get_config():
    return finetune_config()
