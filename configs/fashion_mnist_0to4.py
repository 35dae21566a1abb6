"""The transfer recipes' source network: configs/fashion_mnist.py's narrow ResNet-10 trained 4
epochs on Fashion-MNIST classes 0-4 only (T-shirt/top, Trouser, Pullover, Dress, Coat; 30,000
images), to be reused on classes 5-9 by configs/{probe,finetune,cluster}_fashion_mnist.py.

Run:      python train.py --config=configs/fashion_mnist_0to4.py --workdir=workdirs/fashion_mnist_0to4
Evaluate: python eval.py --config=configs/fashion_mnist_0to4.py --workdir=workdirs/fashion_mnist_0to4
Expected: about 93% test top-1 on the 5,000 test images of classes 0-4, in about 3 minutes on a
2-core CPU (README, "Transfer": the study's pretraining run is this config).
"""
from jaxnet.transfer.recipes import source_config


def get_config():
    return source_config()
