"""A tiny classical-pipeline config for tests: HOG + LBP -> hinge SVM on 64 random 16x16 images.

Run: python train.py --config=tests/classical/tiny_classical_config.py --workdir=/tmp/tiny_svm
(seconds). Expected: nothing meaningful (random labels); it exercises fit, checkpoint and eval.
"""
from jaxnet.config import base_config


def get_config():
    c = base_config()
    c.method = "classical"
    c.dataset = "synthetic"
    c.synthetic_examples = 64
    c.num_classes = 8  # > 5, so top-5 is not trivially 1
    c.image_size = 16
    c.channels = 1
    c.mean, c.std = (127.5,), (64.0,)
    c.batch_size = 16
    c.eval_batch_size = 24  # 64 = 2 full batches + one of 16: exercises the padded last batch
    c.classical.features = {"hog": {"cell": 4, "block": 2}, "lbp": {"cell": 8}}
    c.classical.lam = 1e-2
    c.classical.max_iter = 50
    return c
