"""The input benchmark runs end to end at tiny settings and reports every figure."""
import re

from jaxnet.tools import bench_data as bench


def test_data_bench_reports_per_core_rates_worker_scaling_and_memory(capsys):
    bench.main(["--images=4", "--size=160x120", "--repeats=1", "--workers=1", "--batch=4",
                "--batches=2", "--long=16"])
    out = capsys.readouterr().out
    rates = re.findall(r"^  (.+?)\s+(\d+)\s+([\d.]+)x$", out, re.M)
    assert [name.split(" (")[0] for name, _, _ in rates] == [
        "plain Pillow loop", "jaxnet inception_crop train transform",
        "jaxnet eval transform, 256 -> centre 224", "jaxnet inception_crop train transform",
        "jaxnet eval transform, 256 -> centre 224"]
    assert "(C extension)" in out and all(int(rate) > 0 for _, rate, _ in rates)
    assert re.search(r"in the main process\s+\d+ /s\s+1\.00x", out)
    assert re.search(r"1 worker process\(es\)\s+\d+ /s", out)
    assert re.search(r"memory over 16 images \(1 workers, \d+ images/sec\): resident \d+ MiB", out)


def test_repeated_jpegs_cycle_through_the_images_at_imagenet_size():
    records = bench.RepeatedJpegs([b"a", b"b", b"c"])
    assert len(records) == 1_281_167
    assert [records[i]["image"] for i in (0, 1, 2, 3, 1_281_166)] == [b"a", b"b", b"c", b"a", b"b"]
    assert {records[i]["label"] for i in range(10)} == {0}
    labelled = bench.RepeatedJpegs([b"a", b"b"], length=6, num_classes=4)
    assert len(labelled) == 6 and [labelled[i]["label"] for i in range(6)] == [0, 1, 2, 3, 0, 1]
