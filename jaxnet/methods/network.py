"""config.method = "network": a CNN from the model registry, trained by SGD (jaxnet.loop.train_loop)."""
from jaxnet.evaluation.evaluator import Predictor
from jaxnet.loop.train_loop import train_loop
from jaxnet.training.state import abstract_variables, build_model, eval_variables
from jaxnet.training.steps import make_predict_fn

RESUME_FIELDS = ("model", "num_classes", "image_size", "channels", "dataset", "optimizer", "dtype")
EVAL_FIELDS = ("model", "num_classes", "channels")


def check_config(config) -> None:
    """Nothing beyond jaxnet.config.validate_config yet."""


def fit(config, run) -> Predictor:
    return train_loop(config, run)


def restore(config, run, step=None) -> Predictor:
    """The model variables saved at `step` (not the optimizer: evaluation does not need it)."""
    model = build_model(config)
    target = abstract_variables(config, model, run.mesh)
    step, restored = run.checkpointer.restore_newest(lambda s: run.checkpointer.restore(s, {"variables": target}), step)
    variables = restored["variables"]
    return Predictor(make_predict_fn(model, config), eval_variables(variables), step)
