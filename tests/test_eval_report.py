"""eval.py's report: metrics beyond top-k through the shared evaluator (per-class counts equal the
totals on 1 and 8 devices), the files beside the eval JSON, and the page's human-in-the-loop
round trip: marks exported in a real browser re-score through eval.py --labels_file."""
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxnet.data.sources import create_source
from jaxnet.evaluation.evaluator import Evaluator
from jaxnet.evaluation.outputs import Report
from jaxnet.mesh import create_mesh
from jaxnet.methods import evaluate, restore, train
from tests.test_report_page import browser  # noqa: F401  (the headless Chromium fixture)
from tests.tiny_config import get_config

ROOT = Path(__file__).resolve().parents[1]
TREE = ROOT / "jaxnet" / "evaluation" / "trees" / "fashion_mnist.json"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("run")
    config = get_config()
    config.num_epochs, config.class_tree = 1.0, str(TREE)  # 10 classes: Fashion-MNIST's tree
    train(config, workdir)
    return config, workdir


def test_per_class_counts_and_hits_sum_to_the_totals_on_1_and_8_devices(trained, devices):
    config, workdir = trained
    source = create_source(config, config.eval_split)
    results = []
    for mesh in (create_mesh(devices[:1]), create_mesh(devices)):
        report = Report(config, len(source))
        m = Evaluator(source, config, mesh, metrics=report.metrics, collectors=[report])(
            restore(config, workdir, mesh))
        classes = m["classes"]
        assert sum(c["count"] for c in classes) == m["num_examples"] == 64
        hits = sum(round(c["top1_acc"] * c["count"]) for c in classes if c["count"])
        assert hits == round(m["top1_acc"] * 64)
        assert sum(m["reliability"]["bin_count"]) == 64
        assert 0 <= m["hier_cost_top5"] <= m["hier_cost_top1"] and m["ece"] >= 0
        np.testing.assert_array_equal(report.labels, source.labels)  # every label, in order
        results.append(m)
    one, eight = results
    assert [c["count"] for c in one["classes"]] == [c["count"] for c in eight["classes"]]
    assert one["hier_cost_top5"] == eight["hier_cost_top5"]
    assert one["ece"] == pytest.approx(eight["ece"], abs=1e-6)


def test_eval_writes_the_report_files(trained):
    config, workdir = trained
    record = evaluate(config, workdir)
    saved = json.loads(Path(record["path"]).read_text())
    assert "classes" not in saved and {"ece", "nll", "brier", "hier_cost_top5",
                                       "mistake_severity"} <= set(saved)
    per_class = json.loads(Path(record["files"]["per_class"]).read_text())
    assert len(per_class["classes"]) == 10 and per_class["classes"][0]["name"] == "T-shirt/top"
    for key in ("top5_histogram", "reliability", "worst_classes"):
        assert Image.open(record["files"][key]).size[0] > 300
    assert "T-shirt/top" in Path(record["files"]["page"]).read_text()


def test_marks_exported_from_the_page_rescore_through_eval_py(trained, browser, tmp_path):  # noqa: F811
    from selenium.webdriver.common.by import By

    config, workdir = trained
    record = evaluate(config, workdir)
    browser.get(f"file://{record['files']['page']}")
    card = browser.find_elements(By.CSS_SELECTOR, ".card")[0]  # the most confident mistake
    choice = card.find_element(By.CSS_SELECTOR, 'input[data-kind="acceptable"]')
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", choice)
    choice.click()
    export = browser.find_element(By.ID, "export")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", export)
    export.click()
    marks = browser.downloads / "marks.json"
    deadline = time.time() + 15
    while not marks.exists() and time.time() < deadline:
        time.sleep(0.1)
    out = subprocess.run([sys.executable, "eval.py", "--config=tests/tiny_config.py",
                          f"--workdir={workdir}", f"--labels_file={marks}", "--config.num_epochs=1",
                          f"--config.class_tree={TREE}"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    # The one accepted prediction is now a hit: ReaL top-1 = top-1 + 1 / 64.
    expected = record["top1_acc"] + 1 / 64
    assert f"real_top1_acc {expected:.4f}" in out.stdout
    written = out.stdout.split("written to ")[1].split()[0]  # its own file: the labels are keyed
    assert written != str(workdir / "eval" / "test_step4.json")
    saved = json.loads(Path(written).read_text())
    assert saved["real_top1_acc"] == pytest.approx(expected)
    assert saved["options"]["labels_file"] == str(marks)
