"""Methods, one registry keyed by `config.method`, and the two things every method is run by:
`train` (train.py) and `evaluate` (eval.py).

A method is a module that supplies only what is its own:
  RESUME_FIELDS   config fields a workdir's checkpoints depend on (a changed one is refused)
  EVAL_FIELDS     config fields that must match to evaluate a workdir's checkpoint
  check_config(config)          its own settings' checks, before anything runs
  fit(config, run) -> Predictor train (resuming what run.checkpointer holds), checkpoint, and
                                return the final model; None when stopped at run.stop_at_step
  restore(config, run, step) -> Predictor   a checkpoint, ready for the evaluator
Everything else (the workdir, checkpoints, metric logs, the evaluator, eval files, the CLI) is
shared and lives here and in jaxnet.loop / jaxnet.evaluation.
"""
import importlib
import json
import time
from pathlib import Path

import jax

from jaxnet import JaxnetError
from jaxnet.config import validate_config
from jaxnet.data.sources import EncodedSource, check_decodable, create_source
from jaxnet.evaluation.evaluator import Evaluator
from jaxnet.evaluation.multilabel import RealMetric
from jaxnet.evaluation.protocols import check_protocol, unseen_views
from jaxnet.evaluation.outputs import PER_CLASS_KEYS, Report
from jaxnet.loop.checkpoint import Checkpointer
from jaxnet.loop.eval_options import eval_options, options_key, read_labels_file
from jaxnet.loop.stop import Preempted, StopSignals
from jaxnet.console import progress_bar, warn
from jaxnet.loop.logger import MetricLogger
from jaxnet.loop.run import Run
from jaxnet.loop.workdir import (check_same_run, eval_path, load_config, prepare_workdir,
                                 workdir_lock, write_eval_file)
from jaxnet.mesh import check_batch_size, create_mesh

METHODS = {
    "network": "jaxnet.methods.network",  # a CNN trained by SGD (jaxnet.loop.train_loop)
    "classical": "jaxnet.methods.classical",  # features + linear SVM (jaxnet.classical)
    "probe": "jaxnet.methods.probe",  # a linear probe on a network's layer (jaxnet.transfer)
    "finetune": "jaxnet.methods.finetune",  # a network fine-tuned from another (jaxnet.transfer)
    "cluster": "jaxnet.methods.cluster",  # PCA + k-means of a layer's features (jaxnet.transfer)
    "localize": "jaxnet.methods.localize",  # class + box heads on a backbone (jaxnet.transfer.tasks)
    "segment": "jaxnet.methods.segment",  # an FCN mask head on a backbone (jaxnet.transfer.tasks)
}


def get_method(name: str):
    """The method module registered under `name`."""
    if name not in METHODS:
        raise JaxnetError(f"config.method must be one of {', '.join(METHODS)}, got {name!r}")
    return importlib.import_module(METHODS[name])


def _start(config):
    validate_config(config)
    method = get_method(config.method)
    method.check_config(config)
    mesh = create_mesh(model_parallel=config.model_parallel)
    check_batch_size(config.eval_batch_size, mesh, "eval_batch_size")
    return method, mesh


def eval_record(models, split: str, metrics: dict, seconds: float, protocol="center",
                num_views=1) -> dict:
    """The eval file's content (docs/ARCHITECTURE.md, "The workdir"): what was evaluated
    (`models`: [(workdir, step)], the first one's step naming the file), how, and the metrics."""
    return {"step": int(models[0][1]), "split": split, **metrics, "protocol": protocol,
            "num_views": num_views, "models": [{"workdir": str(w), "step": int(s)} for w, s in models],
            "seconds": seconds}


def train(config, workdir, stop_at_step=None, allow_config_change=False):
    """Fit `config`'s method in `workdir` (resuming it), evaluate the result on config.eval_split,
    write its eval file; return its metrics. None when stopped early at `stop_at_step`.
    `allow_config_change`: resume although fields other than the safe ones changed (recorded in
    WORKDIR/config_history.jsonl); without it such a workdir is refused."""
    method, mesh = _start(config)
    train_source = create_source(config, config.train_split)
    eval_source = create_source(config, config.eval_split)
    if isinstance(eval_source, EncodedSource):  # a bad eval image stops the run now, not hours in
        with progress_bar(len(eval_source), f"checking {config.eval_split} images") as bar:
            check_decodable(eval_source, bar)
    evaluator = Evaluator(eval_source, config, mesh)
    with workdir_lock(workdir):  # a second run on this workdir is refused
        workdir = prepare_workdir(workdir, config, method.RESUME_FIELDS, allow_config_change)
        return _fit_and_evaluate(config, method, mesh, workdir, evaluator, train_source, stop_at_step)


def _fit_and_evaluate(config, method, mesh, workdir, evaluator, train_source, stop_at_step):
    is_main = jax.process_index() == 0
    checkpointer = Checkpointer(workdir / "checkpoints", config.keep_checkpoints)
    logger = MetricLogger(workdir, enabled=is_main)  # opened at the step the method resumes from
    run = Run(config, workdir, mesh, checkpointer, logger, evaluator, train_source, stop_at_step)
    try:
        logger.print(f"config:\n{config}")
        logger.print(f"mesh: {dict(mesh.shape)} over {jax.device_count()}"
                     f" {jax.devices()[0].platform} device(s), {jax.process_count()} process(es)")
        predictor = method.fit(config, run)
        if predictor is None:
            return None
        metrics = run.evaluate(predictor)
        if is_main:
            write_eval_file(workdir, eval_record([(workdir, predictor.step)], config.eval_split,
                                                 metrics, run.evaluated[predictor.step][1]))
    finally:
        checkpointer.wait()
        checkpointer.close()
        logger.close()
    return metrics


def restore(config, workdir, mesh, step=None):
    """The Predictor of `workdir`'s checkpoint `step` (None: the latest), by its config's method."""
    workdir = Path(workdir)
    method = get_method(config.method)
    method.check_config(config)
    if not (workdir / "checkpoints").is_dir():
        raise JaxnetError(f"{workdir} has no checkpoints/ directory: train first with"
                          f" `python train.py --config=... --workdir={workdir}`")
    check_same_run(workdir, config, method.EVAL_FIELDS)
    with Checkpointer(workdir / "checkpoints", config.keep_checkpoints, read_only=True) as checkpointer:
        return method.restore(config, Run(config, workdir, mesh, checkpointer), step)


def ensemble_member(config, workdir, mesh):
    """The latest checkpoint of another workdir, restored with its own config.json, for an
    ensemble with `config`'s model: any method or architecture, the same input and classes."""
    own = load_config(workdir)
    validate_config(own)
    for field in ("num_classes", "image_size", "channels"):
        if own[field] != config[field]:
            raise JaxnetError(f"ensemble member {workdir} has {field}={own[field]}, the others"
                              f" {config[field]}: an ensemble's models share their input and classes")
    return restore(own, workdir, mesh)


def evaluate(config, workdir, split=None, step=None, protocol=None, ensemble=(),
             labels_file=None, report=True, out=None) -> dict:
    """Restore `step` (default: the latest) of `workdir` and evaluate it on `split` (default:
    config.eval_split) under `protocol` (default: config.eval_protocol), averaged with the
    latest checkpoints of the `ensemble` workdirs; write the eval file and, with `report`, the
    metrics beyond top-k, per-class results, figures and the report page beside it
    (jaxnet.evaluation.outputs), scoring against `labels_file` (ReaL format) too when given.
    The files go to WORKDIR/eval/, or to `out`; if they cannot be written (a read-only workdir),
    a warning says so and the record is still returned. Returns the eval file's record (+ `path`,
    None if not written, and `files` for the report's)."""
    method, mesh = _start(config)
    workdir, split = Path(workdir), split or config.eval_split
    protocol = protocol or config.eval_protocol
    check_protocol(protocol)
    whole_images = getattr(method, "PROTOCOLS", None)  # boxes and masks: no crops, no ensembles
    if whole_images is not None and (protocol not in whole_images or ensemble):
        raise JaxnetError(f"method {config.method} is evaluated on whole images, alone"
                          f" (--protocol={'|'.join(whole_images)}, no --ensemble):"
                          f" {protocol if protocol not in whole_images else 'an ensemble'} would"
                          " move or mix its boxes and masks")
    source = create_source(config, split)
    unseen = unseen_views(protocol, config, isinstance(source, EncodedSource))
    if unseen:
        warn(unseen)
    label_lists = read_labels_file(labels_file, len(source), config.num_classes) if labels_file else None
    extras = Report(config, len(source), labels_file) if report else None
    metrics = extras.metrics if extras else ([RealMetric(label_lists)] if label_lists else [])
    # SIGTERM / SIGINT: nothing written, or all of it. One process stops at once; several agree
    # on a batch between two of them (one leaving alone would hang the others in a collective).
    several = jax.process_count() > 1
    with StopSignals(mesh, raise_now=not several) as stop:
        predictors = [restore(config, workdir, mesh, step)]
        predictors += [ensemble_member(config, member, mesh) for member in ensemble]
        evaluator = Evaluator(source, config, mesh, protocol, metrics, [extras] if extras else ())
        start = time.time()
        with progress_bar(evaluator.num_batches(), f"evaluating {split}", unit="batch",
                          disable=jax.process_index() != 0) as bar:
            results = evaluator(predictors, _between_batches(stop, bar, agree=several))
            bar.update(bar.total - bar.n)
        models = [(workdir, predictors[0].step)] + [(m, p.step) for m, p in zip(ensemble, predictors[1:])]
        record = eval_record(models, split, results, time.time() - start, protocol, evaluator.num_views())
        trained = json.loads((workdir / "config.json").read_text()) if (workdir / "config.json").exists() else None
        record["options"] = eval_options(config, trained, labels_file, models[1:])
        record["key"] = options_key(record["options"])
        record["path"] = None
        if jax.process_index() == 0:
            with stop.deferred():
                _write_results(record, workdir, out, extras, source)
    return record


def _between_batches(stop: StopSignals, bar, agree: bool):
    """The evaluator's hook before batch i: the progress bar, and with `agree` (several
    processes) Preempted on every process once they agree to stop."""
    def before(batch: int) -> None:
        if batch:
            bar.update(1)
        reason = stop.at(batch) if agree else None
        if reason is not None:
            raise Preempted(f"{reason}: the evaluation stopped at batch {batch} on every process,"
                            " before anything was written; run the same command again")
    return before


def _write_results(record, workdir, out, extras, source) -> None:
    """The eval file and, with a Report, what goes beside it (record["path"], record["files"])."""
    try:
        path = eval_path(workdir, record, out)
        path.parent.mkdir(parents=True, exist_ok=True)
        if extras:  # first: a run that finds the eval file finds its figures and page too
            record["files"] = extras.write(record, path, source)
        write_eval_file(workdir, {k: v for k, v in record.items()
                                  if k not in PER_CLASS_KEYS and k != "files"}, out)
        record["path"] = str(path)
    except OSError as e:
        warn(f"the results could not be written ({e}); --out=DIR writes them elsewhere")
