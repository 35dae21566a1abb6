"""What the test protocols cost: wall time per image of each protocol against `center`, on
ImageNet-shaped data (generated 500x375 JPEGs decoded once per image on the host; the views cut
on the device), with an untrained ResNet-50 by default.

    python -m jaxnet bench_protocols [--model=resnet50] [--images=16] [--batch=8]
        [--protocols=center,ten_crop,googlenet_144,multiscale] [--repeats=3] [--min_seconds=30]

Each protocol is timed on the passes after the first (which compiles): up to --repeats of them,
fewer once --min_seconds have gone by, and the fastest counts (other load on the machine only
ever slows a pass down). Printed per image: wall time and the process's CPU time (all threads;
less sensitive to other jobs on a shared machine), and their ratios to center: what the views
cost. Ten crops should cost at most ~10x, 144 crops ~144x, if host decoding is not the
bottleneck.
"""
import time

import jax
import numpy as np
from absl import flags

from jaxnet.presets import imagenet_config
from jaxnet.tools.cli import start_jax

MODEL = flags.DEFINE_string("model", "resnet50", "Registry name of the model.")
IMAGES = flags.DEFINE_integer("images", 16, "Generated JPEGs evaluated per pass.")
BATCH = flags.DEFINE_integer("batch", 8, "Evaluation batch (global).")
SIZE = flags.DEFINE_integer("image_size", 224, "Crop size.")
REPEATS = flags.DEFINE_integer("repeats", 3, "Timed passes per protocol, at most.")
MIN_SECONDS = flags.DEFINE_float("min_seconds", 30.0, "No further timed pass once this long.")
PROTOCOLS = flags.DEFINE_list("protocols", ["center", "ten_crop", "googlenet_144", "multiscale"],
                              "Protocols to time.")


def main(argv):
    del argv
    config = imagenet_config()
    config.model.name, config.num_classes = MODEL.value, 1000
    config.image_size, config.eval_batch_size, config.num_workers = SIZE.value, BATCH.value, 0
    start_jax(config)
    from jaxnet.data.sources import encoded_source
    from jaxnet.evaluation.evaluator import Evaluator, Predictor
    from jaxnet.mesh import create_mesh, replicated
    from jaxnet.tools.bench_data import RepeatedJpegs, imagenet_like_jpeg
    from jaxnet.training.state import (
        build_model,
        eval_variables,
        init_variables,
        input_shape,
    )
    from jaxnet.training.steps import make_predict_fn

    mesh = create_mesh()
    jpegs = [imagenet_like_jpeg(np.random.default_rng(i)) for i in range(4)]
    source = encoded_source(RepeatedJpegs(jpegs, IMAGES.value, 1000), config, "jpegs")
    model = build_model(config)
    v = init_variables(jax.random.PRNGKey(0), model, input_shape(config))
    variables = {"params": v["params"], "batch_stats": v.get("batch_stats", {}), "ema_params": {}}
    predictor = Predictor(make_predict_fn(model, config),
                          jax.device_put(eval_variables(variables), replicated(mesh)), 0)
    print(f"{MODEL.value}, {IMAGES.value} images of 500x375, batch {BATCH.value},"
          f" {jax.device_count()} {jax.devices()[0].platform} device(s)")
    base = None
    for protocol in PROTOCOLS.value:
        evaluator = Evaluator(source, config, mesh, protocol)
        evaluator(predictor)  # compiles
        walls, cpus, started = [], [], time.time()
        while not walls or (len(walls) < REPEATS.value
                            and time.time() - started < MIN_SECONDS.value):
            wall, cpu = time.perf_counter(), time.process_time()
            evaluator(predictor)
            walls.append((time.perf_counter() - wall) / IMAGES.value)
            cpus.append((time.process_time() - cpu) / IMAGES.value)
        wall, cpu = min(walls), min(cpus)
        base = base or (wall, cpu)
        views = evaluator.num_views()
        print(f"  {protocol:14s} {views:4d} views  wall {wall * 1000:9.1f} ms/image"
              f" {wall / base[0]:6.1f}x center ({wall / base[0] / views:.2f}x per view)"
              f"  cpu {cpu * 1000:9.1f} ms/image {cpu / base[1]:6.1f}x center"
              f" ({cpu / base[1] / views:.2f}x per view)  [{len(walls)} timed pass(es)]",
              flush=True)
