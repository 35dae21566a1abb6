"""AlexNet split over two devices as in the paper: each column on one device of a `model` axis.

configs/alexnet_fashion_mnist.py with config.model_parallel = 2: the mesh becomes (data, model)
with 2 devices on `model` (any device count divisible by 2; the rest is data parallelism), every
kernel and bias is split along its output channels over `model`
(jaxnet/training/sharding.py), and `model.column_parallel` computes the grouped convs column by
column so that XLA keeps conv2/4/5 on their own devices. Activations then cross devices only at
conv3 and fc6-fc8 (and their gradients on the way back), as between the paper's two GPUs.
The step equals the single-device step (tests/test_model_parallel.py); the bytes each step
communicates, beside data parallelism's: python -m jaxnet model_parallel.

Run:      python train.py --config=configs/alexnet_model_parallel.py   (>= 2 devices; on a CPU
          train.py splits the cores into devices, --cpu_devices=2 on a 2-core machine)
Expected: what configs/alexnet_fashion_mnist.py reaches (the same training, another placement).
"""
import importlib.util
from pathlib import Path


def get_config():
    path = Path(__file__).with_name("alexnet_fashion_mnist.py")
    spec = importlib.util.spec_from_file_location("alexnet_fashion_mnist", path)
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    c = recipe.get_config()
    c.model_parallel = 2
    c.model.column_parallel = True
    return c
