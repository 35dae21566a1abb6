"""The benchmark script runs unchanged on CPU at tiny settings and prints its figures."""
import subprocess
import sys
from pathlib import Path


def test_bench_prints_compile_time_and_throughput():
    result = subprocess.run(
        [sys.executable, "-m", "jaxnet.bench", "--model=resnet18", "--batch=8", "--image_size=8",
         "--channels=1", "--num_classes=10", "--steps=1", "--repeats=1", "--torch",
         '--model_options={"width": 4, "stem": "small", "stage_sizes": [1, 1]}'],
        cwd=Path(__file__).parent.parent, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "on 8 x cpu" in result.stdout
    assert "jaxnet  train step: compile" in result.stdout and "images/sec" in result.stdout
    # Options change the net, so there is no like-for-like torchvision model to compare with.
    assert "no PyTorch comparison" in result.stdout or "torch is not installed" in result.stdout
