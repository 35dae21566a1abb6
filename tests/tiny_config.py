"""A tiny synthetic-data config for tests: a 4-wide, 2-block ResNet on 8x8 images, a few steps.

Run: python train.py --config=tests/tiny_config.py --workdir=/tmp/tiny (finishes in seconds).
Expected: nothing meaningful (random labels); it exercises the whole loop.
"""
from jaxnet.config import base_config


def get_config():
    c = base_config()
    c.model.name = "resnet18"
    c.model.stem = "small"
    c.model.width = 4
    c.model.stage_sizes = (1, 1)  # two blocks: a ResNet-18 cut short, so tests compile fast
    c.dataset = "synthetic"
    c.synthetic_examples = 64
    c.num_classes = 10
    c.image_size = 8
    c.channels = 1
    c.mean = (127.5,)
    c.std = (64.0,)
    c.crop_padding = 1
    c.batch_size = 16
    c.eval_batch_size = 24  # 64 = 2 full batches + one of 16: exercises the padded last batch
    c.num_epochs = 2.0  # 4 steps per epoch, 8 in all
    c.base_lr = 0.1
    c.schedule = "cosine"
    c.warmup_epochs = 0.5
    c.log_every_steps = 2
    c.eval_every_epochs = 1.0
    c.checkpoint_every_steps = 4
    c.keep_checkpoints = 2
    return c
