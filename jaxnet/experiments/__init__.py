"""The seed's claims as runnable experiments, one module per claim.

  activations      AlexNet Fig. 1: ReLU vs tanh / sigmoid / leaky ReLU / maxout, epochs to 25%
  dropout          AlexNet: dropout in fc6/fc7, the train/test gap and steps to fixed accuracies
  augmentation     none / crop + flip / + PCA lighting / + random erasing on a ResNet
  alexnet_recipe   AlexNet's plateau rule on Fashion-MNIST (configs/alexnet_fashion_mnist.py)
  model_parallel   AlexNet's two columns on two devices: equality and communicated bytes
  plain_residual   ResNet Fig. 6: plain vs residual CIFAR nets, the degradation problem
  landscape        Li et al. 2018: filter-normalised loss surfaces of plain-56 and ResNet-56
  evaluation_grid  GoogLeNet Table 3 in miniature: 1 / 10 / 144 crops x 1 / 2 / 3 models
  transfer         a pretrained net reused: linear probes, fine-tuning, clustering vs scratch
  tasks            localization and segmentation on scratch, frozen and fine-tuned backbones
  classical_lessons  ILSVRC 2011: larger feature vectors and more training data (the curves of
                   jaxnet.experiments.classical_curves)

Each module has `run(ctx) -> Section` (jaxnet.experiments.runs), which `python -m
jaxnet.tools.report` calls; each network it trains comes from a config file under configs/ and runs
through jaxnet.methods.train, cached in its workdir.
"""
