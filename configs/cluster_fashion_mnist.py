"""Clustering: PCA (50 dims) then k-means (5 clusters, k-means++, 5 restarts) of the pre-logits
features of the ResNet-10 pretrained on Fashion-MNIST classes 0-4, on classes 5-9 (30,000 train
images, labels unused until scoring). Reports NMI / ARI / purity (train and test) in
metrics.jsonl and the eval record, top-1 of each cluster's majority label, and
WORKDIR/cluster_scatter_{train,test}.png. Raw pixels instead: --config.transfer.source_workdir=''.

First the source:  python train.py --config=configs/fashion_mnist_0to4.py --workdir=workdirs/fashion_mnist_0to4
Run:      python train.py --config=configs/cluster_fashion_mnist.py --workdir=workdirs/cluster_fashion_mnist
Evaluate: python eval.py --config=configs/cluster_fashion_mnist.py --workdir=workdirs/cluster_fashion_mnist
Expected: test NMI 0.413, ARI 0.318, purity 0.584, top-1 58.38% (measured: the transfer study's
"cluster pre_logits" point is this config); raw pixels do better here
(NMI 0.520), the best layer is stage3 (0.468). docs/transfer.md.
"""
from jaxnet.transfer.recipes import cluster_config


def get_config():
    return cluster_config()
