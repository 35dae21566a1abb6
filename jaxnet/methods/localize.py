"""config.method = "localize": a backbone with a class head and a box-regression head (ILSVRC's
single-object localization: one class and box per image; each of the top-5 guesses carries its
class's box), on data with boxes (dataset fashion_mnist_scenes with scenes.objects = 1).

The backbone is config.model, trained from scratch (config.transfer.source_workdir empty) or
started from a trained or imported network (a workdir, or a weight file: as finetune), its
parameters frozen by the regex config.transfer.freeze, the new heads (the classifier and
jaxnet.transfer.tasks.HEAD) learning at config.transfer.head_lr_mult x the schedule's rate,
BatchNorm statistics kept with config.transfer.bn_frozen. The loss is the class cross-entropy
plus config.task.box_loss_weight x (L1 + 1 - GIoU) of the true class's box. Training is
jaxnet.loop.train_loop.train_loop's (checkpoints, resume, evaluation, preemption); the evaluator
reports loc_err / loc_err_top5 / mean_iou / iou50_given_class beside top-k.

segment (jaxnet.methods.segment) is the same with an FCN head and a per-pixel loss.
"""
import functools
import re

import jax

from jaxnet import JaxnetError
from jaxnet.evaluation.evaluator import Predictor
from jaxnet.evaluation.protocols import WHOLE_IMAGE_PROTOCOLS
from jaxnet.loop.train_loop import train_loop
from jaxnet.methods import finetune, network
from jaxnet.training.optim import create_schedule
from jaxnet.training.state import (abstract_variables, build_model, eval_variables, input_shape)
from jaxnet.training.steps import make_predict_fn
from jaxnet.transfer import tasks

TASK = "localize"
RESUME_FIELDS = network.RESUME_FIELDS + (
    "transfer.source_workdir", "transfer.source_step", "transfer.freeze", "transfer.head_lr_mult",
    "transfer.bn_frozen", "scenes", "task", "classes", "examples_per_class")
EVAL_FIELDS = network.EVAL_FIELDS + ("task.seg_levels", "task.seg_width")
PROTOCOLS = WHOLE_IMAGE_PROTOCOLS  # center and flip: boxes and masks stay in place
DATASETS_WITH_BOXES = ("fashion_mnist_scenes", "imagenet2012")  # imagenet2012: with its box files


def check_task_config(config, task: str) -> None:
    """Checks shared by localize and segment."""
    datasets = DATASETS_WITH_BOXES if task == "localize" else DATASETS_WITH_BOXES[:1]
    if config.dataset not in datasets:
        raise JaxnetError(f"method {task} needs a dataset with {'boxes' if task == 'localize' else 'masks'}"
                          f" ({', '.join(datasets)}), not {config.dataset!r}")
    if config.classes:
        raise JaxnetError(f"method {task} keeps every class (its boxes and masks hold the"
                          " dataset's class ids): leave config.classes empty")
    if config.device_resize:
        raise JaxnetError(f"method {task} reads whole images at their size: set"
                          " config.device_resize = 0 (resize with config.scenes.canvas)")
    try:
        re.compile(config.transfer.freeze)
    except re.error as e:
        raise JaxnetError(f"config.transfer.freeze is not a regular expression ({e})") from e
    if config.schedule == "plateau":
        raise JaxnetError(f"config.schedule=plateau is not supported by {task} (one rule per"
                          " parameter group); use cosine, multistep, exponential or constant")
    if config.eval_protocol not in WHOLE_IMAGE_PROTOCOLS:
        raise JaxnetError(f"method {task} evaluates whole images: config.eval_protocol must be"
                          f" {' or '.join(WHOLE_IMAGE_PROTOCOLS)}, not {config.eval_protocol}")


def check_config(config) -> None:
    check_task_config(config, TASK)
    if config.dataset == "fashion_mnist_scenes" and config.scenes.objects != 1:
        raise JaxnetError("localize is single-object localization (ILSVRC's task): set"
                          f" config.scenes.objects = 1, not {config.scenes.objects}")


def task_model(config, task: str) -> tasks.TaskModel:
    return tasks.TaskModel(build_model(config), task, config.num_classes, config.task.seg_levels,
                           config.task.seg_width)


def build(config, steps_per_epoch: int, mesh, task: str, run=None, log=print):
    """train_loop's `build` for a task model: (model, schedule, tx, init), the backbone started
    from config.transfer.source_workdir when set (unless resuming), per-group optimizers."""
    resuming = run is not None and run.checkpointer.latest_step()
    source = None
    if config.transfer.source_workdir and not resuming:
        source = finetune.open_source(config)
    model = task_model(config, task)
    schedule = create_schedule(config, steps_per_epoch)
    shape = input_shape(config)
    abstract = jax.eval_shape(lambda r: model.init({"params": r, "dropout": r},
                                                   jax.numpy.zeros(shape))["params"],
                              jax.random.PRNGKey(0))
    heads = model.head_modules(shape)
    tx, counts, init = finetune.train_state_from_source(config, model, mesh, schedule, shape,
                                                        abstract, heads, source, log)
    log(f"{task}: {config.model.name} backbone"
        f" {'from ' + config.transfer.source_workdir if config.transfer.source_workdir else 'from scratch'};"
        f" heads {', '.join(sorted(heads))}; trained {counts['backbone']:,} (backbone) +"
        f" {counts['head']:,} (heads, lr x {config.transfer.head_lr_mult:g}) parameters, frozen"
        f" {counts['frozen']:,}")
    wrapped = finetune.RunningStatistics(model) if config.transfer.bn_frozen else model
    return wrapped, schedule, tx, init


def task_loss(config, task: str):
    if task == "localize":
        return functools.partial(tasks.localize_loss, weight=config.task.box_loss_weight)
    return functools.partial(tasks.segment_loss, weight=config.task.mask_loss_weight)


def check_targets(source, task: str) -> None:
    """The train data must carry what the task learns: boxes (localize) or masks (segment)."""
    row = source.records[0] if hasattr(source, "records") else source[0]
    field = "boxes" if task == "localize" else "masks"
    if field not in row:
        raise JaxnetError(f"the {task} method needs {field} in the data: {source!r} has none"
                          " (ImageNet: prepare it with its box files in --manual_dir)")


def fit_task(config, run, task: str) -> Predictor:
    check_targets(run.train_source, task)
    predictor = train_loop(config, run, build=functools.partial(build, task=task, run=run,
                                                                 log=run.logger.print),
                           task_loss=task_loss(config, task))
    return None if predictor is None else Predictor(predictor.predict_fn, predictor.params,
                                                    predictor.step, task=task)


def restore_task(config, run, step, task: str) -> Predictor:
    """The task model's variables saved at `step`, ready for the evaluator."""
    model = task_model(config, task)
    target = abstract_variables(config, model, run.mesh)
    step, restored = run.checkpointer.restore_newest(
        lambda s: run.checkpointer.restore(s, {"variables": target}), step)
    return Predictor(make_predict_fn(model, config), eval_variables(restored["variables"]), step,
                     task=task)


def fit(config, run) -> Predictor:
    return fit_task(config, run, TASK)


def restore(config, run, step=None) -> Predictor:
    return restore_task(config, run, step, TASK)
