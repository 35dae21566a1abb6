"""Labels by many people: agreement and consensus over several annotators' label files.

ImageNet's labels came from several workers per candidate image, kept where they agreed. Here each
annotator hands in a file in the ReaL format of `jaxnet.evaluation.multilabel` (one list of label
indices per example, in split order; an empty list = not annotated). This module measures how far
they agree and merges them:

- `fleiss_kappa`: Fleiss' kappa, generalised to a varying number of raters per example (examples
  with fewer than two ratings are left out of it).
- `majority_vote`: the most voted label(s) per example; a tie keeps every tied label (the ReaL
  format accepts any of them) and is counted.
- `dawid_skene`: the EM of Dawid & Skene (1979): a confusion matrix per annotator and class priors,
  initialised from the vote shares (the soft majority vote), so a careless annotator's vote weighs
  less than a careful one's and systematic confusions are undone.

Annotations are sparse triples (example, annotator, label) with a weight (`Annotations`): an
annotator who gives several labels for one example casts 1/len votes for each. The EM works on
"slots" (the r-th annotation of every example: arrays [R, N], R = the most annotations any example
has), so one step costs O(R N K + A K^2) memory with no [N, A, K, K] array; a scan over the slots
gathers each annotation's log-likelihood row (E-step) and scatters the posteriors into the
confusion counts (M-step). Examples that nobody annotated keep the prior as their posterior, get
an empty consensus list and are counted (`Consensus.unannotated`).
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet import JaxnetError

METHODS = ("majority", "dawid_skene")
TIE_TOLERANCE = 1e-6  # posteriors within this (relative) of the best one are tied


@dataclass(frozen=True)
class Annotations:
    """Sparse annotations: annotation m says example `example[m]` has label `label[m]`, from
    annotator `annotator[m]`, with weight `weight[m]` (1 / the size of that annotator's list)."""

    example: np.ndarray  # int32 [M]
    annotator: np.ndarray  # int32 [M]
    label: np.ndarray  # int32 [M]
    weight: np.ndarray  # float32 [M]
    num_examples: int
    num_annotators: int
    num_classes: int

    def __post_init__(self):
        m = len(self.example)
        if not (len(self.annotator) == len(self.label) == len(self.weight) == m):
            raise JaxnetError("annotations: example, annotator, label and weight differ in length")
        for name, values, bound in (("example", self.example, self.num_examples),
                                    ("annotator", self.annotator, self.num_annotators),
                                    ("label", self.label, self.num_classes)):
            if m and (values.min() < 0 or values.max() >= bound):
                raise JaxnetError(f"annotations: {name} index outside [0, {bound})")

    @property
    def annotated(self) -> np.ndarray:
        """bool [N]: examples with at least one annotation."""
        return np.bincount(self.example, minlength=self.num_examples) > 0

    def per_annotator(self) -> np.ndarray:
        """int [A]: how many examples each annotator labelled."""
        pairs = np.unique(self.annotator.astype(np.int64) * self.num_examples + self.example)
        return np.bincount(pairs // self.num_examples, minlength=self.num_annotators)


def annotations_from_lists(per_annotator: Sequence[Sequence[Sequence[int]]],
                           num_classes: int) -> Annotations:
    """Annotations from one list of label lists per annotator (all of the same length N)."""
    if not per_annotator:
        raise JaxnetError("no annotators: give at least one labels file")
    n = len(per_annotator[0])
    examples, annotators, labels, weights = [], [], [], []
    for a, lists in enumerate(per_annotator):
        if len(lists) != n:
            raise JaxnetError(f"annotator {a} has {len(lists)} label lists, annotator 0 has {n}")
        sizes = np.fromiter((len(x) for x in lists), np.int64, n)
        flat = np.fromiter((c for x in lists for c in x), np.int64, int(sizes.sum()))
        examples.append(np.repeat(np.arange(n), sizes))
        annotators.append(np.full(len(flat), a))
        labels.append(flat)
        weights.append(np.repeat(1.0 / np.maximum(sizes, 1), sizes))
    cat = lambda xs, dtype: np.concatenate(xs).astype(dtype)
    return Annotations(cat(examples, np.int32), cat(annotators, np.int32), cat(labels, np.int32),
                       cat(weights, np.float32), n, len(per_annotator), num_classes)


def sample_annotations(truth: np.ndarray, confusions: np.ndarray, per_example: int | None = None,
                       seed: int = 0) -> Annotations:
    """Simulated annotators: annotator a labels an example of true class k with a draw from
    row k of `confusions[a]` ([A, K, K], rows sum to 1). Every annotator labels every example,
    or `per_example` distinct annotators chosen at random per example."""
    rng = np.random.default_rng(seed)
    truth = np.asarray(truth, np.int64)
    confusions = np.asarray(confusions, np.float64)
    a_count, k = confusions.shape[:2]
    n = len(truth)
    if per_example is None or per_example >= a_count:
        who = np.broadcast_to(np.arange(a_count), (n, a_count))
    else:
        who = np.argsort(rng.random((n, a_count)), axis=1)[:, :per_example]
    example = np.repeat(np.arange(n), who.shape[1])
    annotator = who.reshape(-1)
    cdf = np.cumsum(confusions, axis=-1)
    cdf[..., -1] = 1.0
    rows = cdf[annotator, truth[example]]  # [M, K]; M * K floats at a time is fine here
    label = np.minimum((rows < rng.random(len(example))[:, None]).sum(-1), k - 1)
    return Annotations(example.astype(np.int32), annotator.astype(np.int32),
                       label.astype(np.int32), np.ones(len(example), np.float32), n, a_count, k)


def fleiss_kappa(ann: Annotations) -> float | None:
    """Fleiss' kappa over the examples with at least two ratings (None if there are none).

    With n_i ratings of example i and n_ij of them for class j: P_i = (sum_j n_ij^2 - n_i) /
    (n_i (n_i - 1)), P = mean of P_i, p_j = sum_i n_ij / sum_i n_i, P_e = sum_j p_j^2,
    kappa = (P - P_e) / (1 - P_e). A list of several labels casts fractional ratings.
    """
    n_i = np.bincount(ann.example, ann.weight, minlength=ann.num_examples)
    keep = n_i >= 2 - 1e-9
    if not keep.any():
        return None
    sel = keep[ann.example]
    key = ann.example[sel].astype(np.int64) * ann.num_classes + ann.label[sel]
    uniq, inverse = np.unique(key, return_inverse=True)
    n_ij = np.bincount(inverse, ann.weight[sel])
    sq = np.bincount(uniq // ann.num_classes, n_ij ** 2, minlength=ann.num_examples)[keep]
    n = n_i[keep]
    p_bar = np.mean((sq - n) / (n * (n - 1)))
    p_j = np.bincount(ann.label[sel], ann.weight[sel], minlength=ann.num_classes) / n.sum()
    p_e = float(np.sum(p_j ** 2))
    if p_e >= 1.0:
        return 1.0 if p_bar >= 1.0 - 1e-12 else None  # one class only: agreement is trivial
    return float((p_bar - p_e) / (1.0 - p_e))


@dataclass
class Consensus:
    """The merged labels and what was learnt about the annotators.

    labels: one list per example (ReaL format): the consensus label, every tied label on a tie,
      [] where nobody annotated. confidence: float [N], the posterior (for the majority vote: the
      vote share) of the consensus label, NaN where nobody annotated. accuracy: float [A], each
      annotator's estimated accuracy: for Dawid-Skene the posterior-weighted share of their
      labels that are the true class; for the majority vote the share of their labels that are
      the consensus label (1/n for a label in an n-way tie). confusion: [A, K, K] (true class, given label) and priors [K] for Dawid-Skene.
    """

    method: str
    labels: list
    confidence: np.ndarray
    accuracy: np.ndarray
    examples_annotated: np.ndarray
    ties: int
    unannotated: int
    priors: np.ndarray
    confusion: np.ndarray | None = None
    iterations: int = 0
    log_likelihood: float | None = None
    converged: bool = True


def _slots(ann: Annotations):
    """(annotator, label, weight) as [R, N] arrays: slot r holds each example's r-th annotation
    (weight 0 where an example has fewer than r + 1)."""
    order = np.argsort(ann.example, kind="stable")
    ex = ann.example[order]
    counts = np.bincount(ex, minlength=ann.num_examples)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(len(ex)) - starts[ex]
    r = max(int(counts.max()) if len(counts) else 0, 1)
    a = np.zeros((r, ann.num_examples), np.int32)
    lab = np.zeros((r, ann.num_examples), np.int32)
    w = np.zeros((r, ann.num_examples), np.float32)
    a[pos, ex], lab[pos, ex], w[pos, ex] = ann.annotator[order], ann.label[order], ann.weight[order]
    return jnp.asarray(a), jnp.asarray(lab), jnp.asarray(w)


@functools.partial(jax.jit, static_argnames=("k",))
def _vote_shares(lab, w, k):
    """float [N, K]: each example's votes per class over its total (0 rows where none)."""
    n = lab.shape[1]
    votes = jnp.zeros((n, k), jnp.float32)
    rows = jnp.broadcast_to(jnp.arange(n), lab.shape)
    votes = votes.at[rows.reshape(-1), lab.reshape(-1)].add(w.reshape(-1))
    total = votes.sum(axis=1, keepdims=True)
    return votes / jnp.where(total > 0, total, 1.0)


@functools.partial(jax.jit, static_argnames=("num_annotators",))
def _m_step(post, a, lab, w, annotated, smoothing, num_annotators):
    """The smoothed log confusion matrices [A, L, K] (given label, true class: the E-step
    gathers rows [L]) from the posteriors, and the log class priors."""
    k = post.shape[1]

    def add(counts, slot):
        sa, sl, sw = slot
        return counts.at[sa, sl].add(sw[:, None] * post), None

    counts, _ = jax.lax.scan(add, jnp.zeros((num_annotators, k, k), jnp.float32), (a, lab, w))
    per_true = counts.sum(axis=1, keepdims=True)  # [A, 1, K]: labels given per true class
    log_cm = jnp.log(counts + smoothing) - jnp.log(per_true + k * smoothing)
    prior = jnp.where(annotated[:, None], post, 0.0).sum(0) + 1.0 / k
    return log_cm, jnp.log(prior / prior.sum())


@jax.jit
def _e_step(log_cm, log_prior, a, lab, w, annotated):
    """Posteriors [N, K] and the log-likelihood of the annotations."""
    n, k = a.shape[1], log_prior.shape[0]

    def add(acc, slot):
        sa, sl, sw = slot
        return acc + sw[:, None] * log_cm[sa, sl], None

    scores, _ = jax.lax.scan(add, jnp.broadcast_to(log_prior, (n, k)), (a, lab, w))
    norm = jax.nn.logsumexp(scores, axis=1, keepdims=True)
    post = jnp.exp(scores - norm)
    return post, jnp.where(annotated, norm[:, 0], 0.0).sum()


@functools.partial(jax.jit, static_argnames=("num_annotators",))
def _annotator_accuracy(post, a, lab, w, num_annotators):
    """float [A]: sum over an annotator's annotations of weight * P(true = given label) over
    the sum of their weights."""
    hits = jnp.take_along_axis(post, lab.T, axis=1).T * w  # [R, N]
    num = jnp.zeros(num_annotators).at[a.reshape(-1)].add(hits.reshape(-1))
    den = jnp.zeros(num_annotators).at[a.reshape(-1)].add(w.reshape(-1))
    return num / jnp.where(den > 0, den, 1.0)


@jax.jit
def _top(post):
    best = post.max(axis=1)
    tied = post >= best[:, None] * (1.0 - TIE_TOLERANCE)
    return best, tied.sum(axis=1)


@jax.jit
def _winners(post):
    """The consensus as a distribution: 1/n on each of the n tied best labels."""
    tied = post >= post.max(axis=1, keepdims=True) * (1.0 - TIE_TOLERANCE)
    return tied / tied.sum(axis=1, keepdims=True)


def _finish(method, post, slots, ann, annotated, **extra) -> Consensus:
    best, n_tied = (np.asarray(x) for x in _top(post))
    # Dawid-Skene: P(true = given label) under the posterior; majority: agreement with the vote.
    judge = post if method == "dawid_skene" else _winners(post)
    accuracy = np.asarray(_annotator_accuracy(judge, *slots, ann.num_annotators))
    ties = annotated & (n_tied > 1)
    top = np.asarray(jnp.argmax(post, axis=1))
    labels = [[int(c)] for c in top]
    if ties.any():  # every tied label, in class order
        rows = np.flatnonzero(ties)
        sub = np.asarray(post[jnp.asarray(rows)])
        for row, p in zip(rows, sub):
            labels[row] = np.flatnonzero(p >= p.max() * (1.0 - TIE_TOLERANCE)).tolist()
    for row in np.flatnonzero(~annotated):
        labels[row] = []
    confidence = np.where(annotated, best, np.nan).astype(np.float64)
    return Consensus(method=method, labels=labels, confidence=confidence, accuracy=accuracy,
                     examples_annotated=ann.per_annotator(), ties=int(ties.sum()),
                     unannotated=int((~annotated).sum()), **extra)


def majority_vote(ann: Annotations) -> Consensus:
    """The most voted label(s) of every example; confidence = the winner's vote share."""
    slots = _slots(ann)
    annotated = ann.annotated
    shares = _vote_shares(*slots[1:], k=ann.num_classes)
    priors = np.asarray(shares[jnp.asarray(annotated)].sum(0))
    return _finish("majority", shares, slots, ann, annotated,
                   priors=priors / max(priors.sum(), 1e-12))


def dawid_skene(ann: Annotations, *, max_iterations: int = 100, tolerance: float = 1e-6,
                smoothing: float | None = None,
                callback: Callable[[int, float], None] | None = None) -> Consensus:
    """Dawid & Skene's EM from the vote shares, until the mean log-likelihood per annotated
    example changes by less than `tolerance` (or `max_iterations`).

    smoothing: pseudo-count added to every cell of each confusion matrix (default 1/K: one
    pseudo-annotation per true class, spread over the labels), so that an unseen (true class,
    label) pair is unlikely but not impossible. callback(iteration, mean log-likelihood).
    """
    k = ann.num_classes
    smoothing = 1.0 / k if smoothing is None else float(smoothing)
    slots = _slots(ann)
    annotated_np = ann.annotated
    annotated = jnp.asarray(annotated_np)
    scale = 1.0 / max(int(annotated_np.sum()), 1)
    post = _vote_shares(*slots[1:], k=k)
    post = jnp.where(annotated[:, None], post, 1.0 / k)
    previous, converged, it = None, False, 0
    log_lik = None
    for it in range(1, max_iterations + 1):
        log_cm, log_prior = _m_step(post, *slots, annotated, smoothing, ann.num_annotators)
        post, total = _e_step(log_cm, log_prior, *slots, annotated)
        log_lik = float(total) * scale
        if callback is not None:
            callback(it, log_lik)
        if previous is not None and abs(log_lik - previous) < tolerance:
            converged = True
            break
        previous = log_lik
    log_cm, log_prior = _m_step(post, *slots, annotated, smoothing, ann.num_annotators)
    confusion = None
    if k <= 256:  # [A, K, K] rows = true class, columns = the given label
        confusion = np.transpose(np.exp(np.asarray(log_cm)), (0, 2, 1))
    return _finish("dawid_skene", post, slots, ann, annotated_np,
                   priors=np.exp(np.asarray(log_prior)), confusion=confusion, iterations=it,
                   log_likelihood=log_lik, converged=converged)


def consensus(ann: Annotations, method: str, **kwargs) -> Consensus:
    """`majority_vote` or `dawid_skene` by name."""
    if method == "majority":
        return majority_vote(ann)
    if method == "dawid_skene":
        return dawid_skene(ann, **kwargs)
    raise JaxnetError(f"unknown consensus method {method!r} (one of {', '.join(METHODS)})")


def label_accuracy(labels: Sequence[Sequence[int]], truth: np.ndarray) -> float:
    """Share of examples whose consensus is the true label: a tie of n labels that holds it
    counts 1/n (a tie broken at random), an empty list counts as a miss."""
    hits = sum(1.0 / len(lst) for lst, t in zip(labels, truth) if int(t) in lst)
    return hits / max(len(truth), 1)
