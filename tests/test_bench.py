"""The accelerator benchmark runs unchanged on CPU at tiny settings and reports its figures."""
import json
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from jaxnet.tools import bench_throughput as bench

TINY = ["--model=resnet18", "--batch=16", "--image_size=8", "--channels=1", "--num_classes=10",
        "--steps=1", "--repeats=1", '--model_options={"width": 8, "stem": "small", "stage_sizes": [1, 1]}']


def run_bench(*args):
    result = subprocess.run([sys.executable, "-m", "jaxnet", "bench", *TINY, *args],
                            cwd=Path(__file__).parent.parent, capture_output=True, text=True,
                            timeout=1800)  # a guard against hangs, not a timing
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    """One bench run over both placements and all three inputs: (stdout, records)."""
    out_file = tmp_path_factory.mktemp("bench") / "bench.jsonl"
    # jpeg: generated 500x375 JPEGs, decoded and inception-cropped to 8 px in this process
    stdout = run_bench("--dtype=bfloat16", "--channels=3", "--param_sharding=replicated,fsdp",
                       "--param_sharding_min_size=0",  # the tiny net's arrays are all small
                       "--input=synthetic,pipeline,jpeg", "--num_workers=0", "--peak_tflops=1",
                       f"--json_out={out_file}", "--torch")
    return stdout, [json.loads(line) for line in out_file.read_text().splitlines()]


def test_bench_reports_throughput_flops_memory_and_the_input_pipeline(bench_run):
    stdout, records = bench_run
    assert "8 x cpu (cpu)" in stdout  # tests emulate 8 CPU devices
    assert [(r["dtype"], r["param_sharding"], r["input"]) for r in records] == [
        ("bfloat16", s, i) for s in ("replicated", "fsdp") for i in ("synthetic", "pipeline", "jpeg")]
    for r in records:
        assert r["images_per_sec"] > 0 and r["compile_s"] > 0 and r["step_ms"] > 0
        assert r["flops_per_step_per_device"] > 0 and 0 < r["mfu"] < 1  # against the 1 TFLOP/s given
        # MFU = 6 FLOPs per conv/fc multiply-add of one image x images/sec per device / peak.
        assert r["mfu"] == pytest.approx(r["model_flops_per_image"] * r["images_per_sec_per_device"] / 1e12)
        assert r["argument_bytes"] > 0 and r["total_bytes"] >= r["argument_bytes"]
        assert (r["input"] != "synthetic") == ("pipeline_only_images_per_sec" in r)
    # The FSDP placement holds less of the state per device (XLA's memory analysis).
    rep, fsdp = (next(r for r in records if r["param_sharding"] == s) for s in ("replicated", "fsdp"))
    assert fsdp["argument_bytes"] < rep["argument_bytes"]
    assert "MFU" in stdout and "input pipeline alone" in stdout and "per-device memory" in stdout
    # Options change the net, so there is no like-for-like torchvision model to compare with.
    assert "no PyTorch comparison" in stdout or "torch is not installed" in stdout


def test_bench_feeds_the_imagenet_jpeg_path(bench_run):
    _, records = bench_run
    for record in (r for r in records if r["input"] == "jpeg"):
        assert record["pipeline_only_images_per_sec"] > 0 and record["images_per_sec"] > 0


def test_bench_rejects_unknown_inputs():
    result = subprocess.run([sys.executable, "-m", "jaxnet", "bench", *TINY, "--input=tfrecord"],
                            cwd=Path(__file__).parent.parent, capture_output=True, text=True)
    assert result.returncode != 0 and "--input takes synthetic, pipeline, jpeg" in result.stderr


@pytest.mark.parametrize("kind,dtype,expected", [
    ("NVIDIA H100 80GB HBM3", "bfloat16", 989.0), ("NVIDIA H100 80GB HBM3", "float32", 494.5),
    ("NVIDIA H100 PCIe", "bfloat16", 756.0), ("TPU v5 lite", "bfloat16", 197.0),
    ("TPU v5", "bfloat16", 459.0), ("cpu", "bfloat16", None)])
def test_peak_table(kind, dtype, expected):
    assert bench.peak_tflops(kind, dtype) == expected
    assert bench.peak_tflops(kind, dtype, override=100.0) == 100.0


def test_model_flops_per_image_is_six_times_the_forward_multiply_adds():
    import optax

    from jaxnet.config import base_config
    from jaxnet.models import create_model
    from jaxnet.training.state import create_train_state

    config = base_config()
    config.image_size, config.channels = 224, 3
    model = create_model("resnet50", num_classes=1000)
    state = jax.eval_shape(lambda: create_train_state(jax.random.PRNGKey(0), model, optax.sgd(0.1),
                                                      (1, 224, 224, 3)))
    # torchvision's ResNet-50 v1.5: 4.089 G multiply-adds (its "GFLOPS").
    assert bench.model_flops_per_image(model, state, config) == pytest.approx(6 * 4.0892e9, rel=1e-4)
