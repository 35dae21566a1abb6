"""The transfer recipes' source network: configs/fashion_mnist.py's narrow ResNet-10 trained 4
epochs on Fashion-MNIST classes 0-4 only (T-shirt/top, Trouser, Pullover, Dress, Coat; 30,000
images), to be reused on classes 5-9 by configs/{probe,finetune,cluster}_fashion_mnist.py.

Run:      python train.py --config=configs/fashion_mnist_0to4.py --workdir=workdirs/fashion_mnist_0to4
Evaluate: python eval.py --config=configs/fashion_mnist_0to4.py --workdir=workdirs/fashion_mnist_0to4
Expected: 92.60% test top-1 on the 5,000 test images of classes 0-4 (measured: the transfer
study's pretraining run, which is this config; 936 steps; docs/transfer.md).
"""
from jaxnet.transfer.recipes import source_config


def get_config():
    return source_config()
