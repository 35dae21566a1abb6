"""Pure train step and prediction function. No I/O here: the loop jits them over the mesh.

A batch is a dict of `image` (uint8 NHWC) and `label` (int32). Train metrics come back as means
over the global batch; evaluation sums are the evaluator's (jaxnet.evaluation.evaluator).
"""
import jax
import jax.numpy as jnp
import optax

from jaxnet.training.optim import lr_scale

AUX_LOSS_WEIGHT = 0.3  # GoogLeNet's auxiliary classifiers (Szegedy et al. 2014)


def normalize(images, mean, std, dtype, resize_to: int = 0):
    """uint8 images -> (x - mean) / std in the compute dtype, on the device; then bilinearly
    resized to `resize_to` x `resize_to` if it is set (upsampling small images to a net's input)."""
    x = images.astype(jnp.float32)
    x = (x - jnp.asarray(mean, jnp.float32)) / jnp.asarray(std, jnp.float32)
    if resize_to:
        x = jax.image.resize(x, (x.shape[0], resize_to, resize_to, x.shape[3]), "bilinear")
    return x.astype(dtype)


def ema_decay_at(step, decay: float):
    """The moving average's decay at `step`: min(decay, (1 + step) / (10 + step)), so early
    averages are not dominated by the random initialisation (as TF's ExponentialMovingAverage)."""
    step = step.astype(jnp.float32)
    return jnp.minimum(decay, (1.0 + step) / (10.0 + step))


def cross_entropy(logits, labels, num_classes: int, label_smoothing: float = 0.0):
    """Per-example softmax cross-entropy with optional label smoothing."""
    targets = jax.nn.one_hot(labels, num_classes)
    if label_smoothing:
        targets = optax.smooth_labels(targets, label_smoothing)
    return optax.softmax_cross_entropy(logits.astype(jnp.float32), targets)


def topk_correct(logits, labels, k: int):
    """1.0 where the label is among the k highest logits (ties broken by index, as argsort)."""
    k = min(k, logits.shape[-1])
    top = jax.lax.top_k(logits, k)[1]
    return jnp.any(top == labels[:, None], axis=-1).astype(jnp.float32)


def split_outputs(outputs):
    """Main logits and auxiliary logits from a model's train-mode output."""
    if isinstance(outputs, dict):
        return outputs["logits"], list(outputs.get("aux_logits", []))
    return outputs, []


def make_train_step(model, tx: optax.GradientTransformation, schedule, config, task_loss=None):
    """Return `train_step(state, batch) -> (state, metrics)`, pure and jittable. `task_loss(outputs,
    batch) -> (loss, metrics)`, if given, is added to the class loss (boxes, masks: the model's
    output is then a dict with `logits`) and its metrics to the step's."""
    dtype = jnp.bfloat16 if config.dtype == "bfloat16" else jnp.float32

    def loss_fn(params, state, images, batch, dropout_rng):
        labels = batch["label"]
        variables = {"params": params}
        mutable = []
        if state.batch_stats:
            variables["batch_stats"] = state.batch_stats
            mutable = ["batch_stats"]
        outputs, updates = model.apply(variables, images, train=True, mutable=mutable,
                                       rngs={"dropout": dropout_rng})
        logits, aux_logits = split_outputs(outputs)
        loss = cross_entropy(logits, labels, config.num_classes, config.label_smoothing).mean()
        for aux in aux_logits:
            aux_loss = cross_entropy(aux, labels, config.num_classes, config.label_smoothing)
            loss = loss + AUX_LOSS_WEIGHT * aux_loss.mean()
        extra = {}
        if task_loss is not None:
            task, extra = task_loss(outputs, batch)
            loss = loss + task
        return loss, (logits, updates.get("batch_stats", state.batch_stats), extra)

    def train_step(state, batch):
        images = normalize(batch["image"], config.mean, config.std, dtype, config.device_resize)
        labels = batch["label"]
        dropout_rng = jax.random.fold_in(state.rng, state.step)
        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (loss, (logits, batch_stats, extra)), grads = grad_fn(state.params, state, images, batch,
                                                              dropout_rng)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        ema_params = state.ema_params
        if ema_params:
            ema_params = optax.incremental_update(params, ema_params,
                                                  1.0 - ema_decay_at(state.step, config.ema_decay))
        new_state = state.replace(
            step=state.step + 1,
            params=params,
            batch_stats=batch_stats,
            opt_state=opt_state,
            ema_params=ema_params,
        )
        metrics = {
            "loss": loss,
            "top1_acc": topk_correct(logits, labels, 1).mean(),
            "top5_acc": topk_correct(logits, labels, 5).mean(),
            "lr": schedule(state.step) * lr_scale(state.opt_state),
            **extra,
        }
        return new_state, metrics

    return train_step


def make_predict_fn(model, config):
    """Return `predict(variables, images) -> logits` for uint8 images, in eval mode: the
    network's prediction function for the shared evaluator (pure and traceable)."""
    dtype = jnp.bfloat16 if config.dtype == "bfloat16" else jnp.float32

    def predict(variables, images):
        x = normalize(images, config.mean, config.std, dtype, config.device_resize)
        return model.apply(variables, x, train=False)

    return predict
