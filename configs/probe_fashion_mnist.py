"""Linear probe: multinomial logistic regression (optax L-BFGS) on the frozen pre-logits features
(global average pool) of the ResNet-10 pretrained on Fashion-MNIST classes 0-4, trained and tested
on classes 5-9 (Sandal, Shirt, Sneaker, Bag, Ankle boot), all 30,000 train images.

First the source:  python train.py --config=configs/fashion_mnist_0to4.py --workdir=workdirs/fashion_mnist_0to4
Run:      python train.py --config=configs/probe_fashion_mnist.py --workdir=workdirs/probe_fashion_mnist
Evaluate: python eval.py --config=configs/probe_fashion_mnist.py --workdir=workdirs/probe_fashion_mnist
Other layers: --config.transfer.layer=stage2 (python -m jaxnet extract
--workdir=workdirs/fashion_mnist_0to4 --list_layers); the JAX SVM: --config.transfer.probe_solver=svm.
Expected: 94.40% test top-1 on the 5,000 test images of classes 5-9 (measured: the transfer study's
"linear probe, pre_logits, all labels" point is this config). With
--config.examples_per_class=10: 81.28%. docs/transfer.md.
"""
from jaxnet.transfer.recipes import probe_config


def get_config():
    return probe_config()
