"""The PyTorch twin of a jaxnet small-image ResNet recipe, for the time-to-accuracy benchmark.

Same data (the config's in-memory source: uint8 images, normalised by config.mean/std), same
augmentation (a crop of the image zero-padded by config.crop_padding, a horizontal flip), same
net (torchvision's BasicBlock in jaxnet's ResNet shape: width, stages, stem, zero-initialised last
BatchNorm of each block, He fan-out init), same optimizer (SGD, momentum, Nesterov, weight decay
on the conv and fc weights only), the same learning rate at every step (read from jaxnet's own
schedule), label smoothing and batch size; fp32 on the CPU threads jaxnet uses. What differs is
only the framework: eager PyTorch (oneDNN kernels) against jitted XLA.
"""
import time

import numpy as np

from jaxnet import JaxnetError


def check_supported(config) -> None:
    """Refuse, in one line, a recipe this twin would not reproduce exactly."""
    problems = []
    if not config.model.name.startswith("resnet") or config.model.get("shortcut", "B") != "B":
        problems.append(f"model {config.model.name!r} (a resnet with option-B shortcuts is needed)")
    if config.augment not in ("crop_flip", "flip", "none") or config.random_erasing:
        problems.append(f"augment {config.augment!r} / random_erasing {config.random_erasing}")
    if config.optimizer != "sgd" or config.schedule == "plateau" or config.ema_decay:
        problems.append("an optimizer other than SGD on a fixed schedule without EMA")
    if config.dtype != "float32" or config.model.get("dropout_rate", 0.0):
        problems.append(f"dtype {config.dtype} / dropout")
    if problems:
        raise JaxnetError("the PyTorch twin cannot reproduce this recipe: " + "; ".join(problems))


def build_net(config):
    """torchvision BasicBlocks in jaxnet's ResNet shape for `config` (stage sizes from the
    registry name, config.model.width, config.model.stem)."""
    import torch
    from torch import nn
    from torchvision.models.resnet import BasicBlock

    from jaxnet.models.resnet import RESNET_SPECS

    width, stem = config.model.get("width", 64), config.model.get("stem", "imagenet")
    if stem == "small":
        layers = [nn.Conv2d(config.channels, width, 3, 1, 1, bias=False)]
    else:
        layers = [nn.Conv2d(config.channels, width, 7, 2, 3, bias=False)]
    layers += [nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
    if stem != "small":
        layers.append(nn.MaxPool2d(3, 2, 1))
    channels = width
    spec = RESNET_SPECS[config.model.name]
    if spec["block"].__name__ != "BasicBlock":
        raise JaxnetError(f"the PyTorch twin builds basic-block ResNets, not {config.model.name}")
    for stage, blocks in enumerate(config.model.get("stage_sizes", spec["stage_sizes"])):
        features = width * 2**stage
        for b in range(blocks):
            stride = 2 if stage > 0 and b == 0 else 1
            down = None
            if stride != 1 or channels != features:
                down = nn.Sequential(nn.Conv2d(channels, features, 1, stride, bias=False),
                                     nn.BatchNorm2d(features))
            layers.append(BasicBlock(channels, features, stride, down))
            channels = features
    net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(channels, config.num_classes))
    for m in net.modules():  # jaxnet's initialisers
        if isinstance(m, nn.Conv2d):  # He normal, fan out
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, BasicBlock):  # zero_init_residual
            nn.init.zeros_(m.bn2.weight)
        elif isinstance(m, nn.Linear):  # flax Dense: LeCun normal truncated at 2 std, zero bias
            std = (1.0 / m.in_features) ** 0.5 / 0.87962566103423978
            nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
            nn.init.zeros_(m.bias)
    return net.to(memory_format=torch.channels_last)


def augment(images, padding: int, flip: bool, generator):
    """A crop of each image zero-padded by `padding` and a random horizontal flip (NCHW floats)."""
    import torch

    n, _, h, w = images.shape
    if padding:
        padded = torch.nn.functional.pad(images, (padding,) * 4)
        dy, dx = torch.randint(0, 2 * padding + 1, (2, n), generator=generator).tolist()
        images = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
    if flip:
        flips = torch.rand(n, generator=generator) < 0.5
        images[flips] = images[flips].flip(-1)
    return images


def train_and_evaluate(config, train, test, learning_rates, eval_at, on_eval, threads: int):
    """Train on `train` (images uint8 NHWC, labels) for len(learning_rates) steps, the lr of step
    s being learning_rates[s]; at each step in `eval_at` call on_eval(step, top1_acc,
    train_seconds) with the accuracy on `test`. Training time excludes the evaluations."""
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    net = build_net(config)
    decay = [p for p in net.parameters() if p.ndim > 1]  # conv and fc weights, as jaxnet's mask
    no_decay = [p for p in net.parameters() if p.ndim <= 1]
    optimizer = torch.optim.SGD(
        [{"params": decay, "weight_decay": config.weight_decay},
         {"params": no_decay, "weight_decay": 0.0 if config.weight_decay_exclude_bn_bias
          else config.weight_decay}],
        lr=float(learning_rates[0]), momentum=config.momentum, nesterov=config.nesterov)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    mean = torch.tensor(config.mean).view(1, -1, 1, 1)
    std = torch.tensor(config.std).view(1, -1, 1, 1)

    def to_input(images):
        x = torch.from_numpy(np.array(images)).permute(0, 3, 1, 2).float()  # a writable copy
        return (x - mean) / std

    train_x, train_y = to_input(train[0]), torch.from_numpy(train[1]).long()
    per_epoch = len(train_y) // config.batch_size
    order, seconds, start = None, 0.0, time.time()
    for step in range(len(learning_rates)):
        if step % per_epoch == 0:
            order = torch.randperm(len(train_y), generator=generator)
        rows = order[(step % per_epoch) * config.batch_size:][:config.batch_size]
        x = augment(train_x[rows], config.crop_padding if config.augment == "crop_flip" else 0,
                    config.augment in ("crop_flip", "flip"), generator)
        for group in optimizer.param_groups:
            group["lr"] = float(learning_rates[step])
        net.train()
        loss = loss_fn(net(x.contiguous(memory_format=torch.channels_last)), train_y[rows])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step + 1 in eval_at:
            seconds += time.time() - start
            on_eval(step + 1, accuracy(net, to_input, test, config.eval_batch_size), seconds)
            start = time.time()
    return net


def accuracy(net, to_input, test, batch_size: int) -> float:
    import torch

    net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(test[1]), batch_size):
            x = to_input(test[0][i:i + batch_size]).contiguous(memory_format=torch.channels_last)
            correct += int((net(x).argmax(1).numpy() == test[1][i:i + batch_size]).sum())
    return correct / len(test[1])
