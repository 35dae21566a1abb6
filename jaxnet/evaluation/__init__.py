"""Evaluation: the shared evaluator (any method's predict function over a whole split)."""
from jaxnet.evaluation.evaluator import Evaluator, Predictor, summarize  # noqa: F401
