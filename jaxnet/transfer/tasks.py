"""Task heads on any registered backbone: boxes (localization) and masks (segmentation).

`TaskModel(backbone, task, ...)` behaves as a flax module to the training code (`init`, `apply`
with train / mutable / rngs) and returns a dict: the backbone's own class `logits` (plus
GoogLeNet's `aux_logits` in training) and
  localize  `boxes` [N, C, 4]: one box per class (ILSVRC's per-class regression: each of the top-5
            guesses carries its class's box), normalised (ymin, xmin, ymax, xmax), from the
            backbone's last feature map (a 1x1 reduction, flattened, a hidden layer): global
            average pooling would throw away where the object is;
  segment   `masks` [N, H, W, C + 1] float32 logits at the input's size (0 = background): an
            FCN-style head (Long et al. 2015; as torchvision's FCN and an FPN's top-down path) on
            the `seg_levels` coarsest feature maps (e.g. strides 8, 16 and 32 of a ResNet): a 1x1
            lateral conv each, the coarser map bilinearly upsampled and added to the finer one,
            a 3x3 conv, a 1x1 classifier, bilinear upsampling to the input.
The backbone is unchanged and its parameters keep their own top-level names (`stem_conv`,
`stage1_block1`, `fc`, ...), so a network workdir, an imported torchvision file, freeze patterns
and per-group learning rates apply to it as to `finetune`; the task head's parameters live under
`HEAD`. Feature maps are read as the backbone runs (flax method interception of its top-level
submodules, as jaxnet.transfer.extract): no model needs a features_only variant, and which maps
are used follows from their shapes alone (the last map of each resolution).
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxnet.evaluation.localization import box_area

HEAD = "task_head"
TASKS = ("localize", "segment")


class BoxHead(nn.Module):
    num_classes: int
    hidden: int = 256

    @nn.compact
    def __call__(self, feature_map):
        x = nn.relu(nn.Conv(32, (1, 1), name="reduce")(feature_map.astype(jnp.float32)))
        x = nn.relu(nn.Dense(self.hidden, name="hidden")(x.reshape(x.shape[0], -1)))
        raw = nn.Dense(4 * self.num_classes, name="box", kernel_init=nn.initializers.zeros)(x)
        raw = raw.reshape(x.shape[0], self.num_classes, 4)
        centre, size = jax.nn.sigmoid(raw[..., :2]), jax.nn.sigmoid(raw[..., 2:])
        return jnp.concatenate([centre - size / 2, centre + size / 2], -1)


class SegHead(nn.Module):
    num_classes: int  # with background
    width: int = 64

    @nn.compact
    def __call__(self, maps, out_size):
        """maps: coarsest first; out_size: (H, W) of the input. Every pixel also sees the whole
        image (the coarsest map average-pooled, as ParseNet's global context): what the object
        is, so the pixels of one object agree on its class."""
        y = None
        for i, m in enumerate(maps):
            lateral = nn.Conv(self.width, (1, 1), name=f"lateral{i}")(m.astype(jnp.float32))
            if y is not None:
                y = jax.image.resize(y, lateral.shape[:3] + (self.width,), "bilinear")
                lateral = lateral + y
            y = lateral
        context = nn.Dense(self.width, name="context")(maps[0].astype(jnp.float32).mean((1, 2)))
        y = y + context[:, None, None, :]
        y = nn.relu(nn.Conv(self.width, (3, 3), name="fuse")(nn.relu(y)))
        y = nn.Conv(self.num_classes, (1, 1), name="classifier")(y)
        return jax.image.resize(y, (y.shape[0],) + tuple(out_size) + (self.num_classes,), "bilinear")


def _capture(run):
    """run() under an interceptor: (its result, [(name, input, output)] of each top-level
    submodule call, in order)."""
    calls = []

    def interceptor(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        if context.method_name == "__call__" and len(context.module.path) == 1 and args:
            calls.append((context.module.path[0], args[0], out))
        return out

    with nn.intercept_methods(interceptor):
        result = run()
    return result, calls


def feature_maps(calls, levels: int):
    """The `levels` coarsest maps: the last 4-D output of each spatial size, coarsest first."""
    last = {}
    for _, _, out in calls:
        if hasattr(out, "ndim") and out.ndim == 4:
            last[out.shape[1:3]] = out  # later calls at the same size replace earlier ones
    sizes = sorted(last, key=lambda hw: hw[0] * hw[1])
    return [last[s] for s in sizes[:levels]]


def classifier_name(calls, num_classes: int) -> str:
    """The top-level submodule whose output is the class logits (the last [N, num_classes])."""
    for name, _, out in reversed(calls):
        if hasattr(out, "ndim") and out.ndim == 2 and out.shape[-1] == num_classes:
            return name
    raise ValueError("the backbone has no classifier module with num_classes outputs")


class TaskModel:
    """A backbone (a flax module from the registry) with a localization or segmentation head."""

    def __init__(self, backbone, task: str, num_classes: int, seg_levels: int = 3,
                 seg_width: int = 64):
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        self.backbone, self.task, self.num_classes = backbone, task, num_classes
        self.seg_levels = seg_levels
        self.head = (BoxHead(num_classes) if task == "localize"
                     else SegHead(num_classes + 1, seg_width))

    def _head_input(self, calls, images):
        if self.task == "localize":
            return (feature_maps(calls, 1)[0],)
        return (feature_maps(calls, self.seg_levels), images.shape[1:3])

    def init(self, rngs, images, train: bool = False):
        rng = rngs["params"] if isinstance(rngs, dict) else rngs
        variables, calls = _capture(lambda: self.backbone.init(rngs, images, train=train))
        head = self.head.init(jax.random.fold_in(rng, 1), *self._head_input(calls, images))
        variables = dict(variables)
        variables["params"] = {**variables["params"], HEAD: head["params"]}
        return variables

    def apply(self, variables, images, train: bool = False, mutable=False, rngs=None):
        params = {k: v for k, v in variables["params"].items() if k != HEAD}
        backbone_vars = {**variables, "params": params}
        result, calls = _capture(lambda: self.backbone.apply(
            backbone_vars, images, train=train, mutable=mutable, rngs=rngs))
        out, updates = (result if mutable is not False else (result, None))
        outputs = dict(out) if isinstance(out, dict) else {"logits": out}
        head = self.head.apply({"params": variables["params"][HEAD]}, *self._head_input(calls, images))
        outputs["boxes" if self.task == "localize" else "masks"] = head
        return outputs if mutable is False else (outputs, updates)

    def head_modules(self, images_shape) -> set:
        """The top-level parameter names that are new for a task: the classifier and the head."""
        calls = []

        def trace(rng):
            nonlocal calls
            _, calls = _capture(lambda: self.backbone.init(rng, jnp.zeros(images_shape), train=False))
            return 0

        jax.eval_shape(trace, jax.random.PRNGKey(0))
        return {classifier_name(calls, self.num_classes), HEAD}


def generalized_iou(a, b):
    """GIoU (Rezatofighi et al. 2019) of boxes (..., 4): IoU less the share of the enclosing box
    neither covers; in [-1, 1], and it has a gradient when the boxes do not overlap."""
    low, high = jnp.maximum(a[..., :2], b[..., :2]), jnp.minimum(a[..., 2:], b[..., 2:])
    inter_hw = jnp.clip(high - low, 0)
    inter = inter_hw[..., 0] * inter_hw[..., 1]
    union = box_area(a) + box_area(b) - inter
    hull_hw = jnp.maximum(a[..., 2:], b[..., 2:]) - jnp.minimum(a[..., :2], b[..., :2])
    hull = hull_hw[..., 0] * hull_hw[..., 1]
    iou = inter / jnp.maximum(union, 1e-9)
    return iou - (hull - union) / jnp.maximum(hull, 1e-9)


def localize_loss(outputs, batch, weight: float):
    """weight x (L1 + 1 - GIoU) of the true class's box against the true box (object 0), over
    the images that have one; and the train IoU."""
    labels = batch["box_labels"][:, 0]
    valid = (labels >= 0).astype(jnp.float32)
    pred = jnp.take_along_axis(outputs["boxes"], jnp.maximum(labels, 0)[:, None, None], 1)[:, 0]
    true = batch["boxes"][:, 0]
    giou = generalized_iou(pred, true)
    per_image = jnp.abs(pred - true).sum(-1) + 1.0 - giou
    count = jnp.maximum(valid.sum(), 1.0)
    loss = weight * (per_image * valid).sum() / count
    return loss, {"box_loss": loss, "train_giou": (giou * valid).sum() / count}


def segment_loss(outputs, batch, weight: float = 1.0):
    """Per-pixel softmax cross-entropy of the mask logits (mean over pixels) and pixel accuracy."""
    logits = outputs["masks"].astype(jnp.float32)
    masks = batch["masks"].astype(jnp.int32)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, masks).mean()
    acc = (jnp.argmax(logits, -1) == masks).mean()
    return weight * loss, {"mask_loss": loss, "train_pixel_acc": acc}
