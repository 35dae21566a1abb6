"""The HTML report: thumbnails, the mistake collector, figures, and the page in a real headless
Chromium (selenium): a person's marks export as a ReaL-format labels file that re-scores."""
import base64
import io
import json
import re
import shutil
import time

import jax
import numpy as np
import pytest
from PIL import Image

from jaxnet.evaluation import figures
from jaxnet.evaluation.calibration import CalibrationMetric
from jaxnet.evaluation.multilabel import RealMetric, load_label_lists
from jaxnet.evaluation.report_page import (
    MistakeCollector,
    image_data_uri,
    write_report_page,
)

NAMES = ["cat", "dog", "fox", "owl"]
PATHS = [["animal", "feline", "cat"], ["animal", "canine", "dog"], ["animal", "canine", "fox"],
         ["animal", "bird", "owl"]]
SPLIT_LABELS = [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
MISTAKES = [  # index, label, top-5 (most probable first)
    (2, 2, [1, 2, 0, 3]), (5, 1, [3, 1, 0, 2]), (7, 3, [0, 3, 1, 2]), (8, 0, [2, 0, 1, 3])]


def test_image_data_uri_round_trip():
    rng = np.random.default_rng(0)
    for image in (rng.integers(0, 256, (28, 28), dtype=np.uint8),
                  rng.integers(0, 256, (28, 28, 1), dtype=np.uint8),
                  rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)):
        uri = image_data_uri(image)
        assert uri.startswith("data:image/png;base64,")
        decoded = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))
        np.testing.assert_array_equal(decoded, image.reshape(decoded.shape))
    big = image_data_uri(np.zeros((400, 200, 3), np.uint8), max_side=128)
    assert Image.open(io.BytesIO(base64.b64decode(big.split(",", 1)[1]))).size == (64, 128)
    with pytest.raises(ValueError, match="uint8"):
        image_data_uri(np.zeros((4, 4), np.float32))


def test_mistake_collector_keeps_the_most_confident_mistakes():
    collector = MistakeCollector(k=3)
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.1, 0.3, 0.6], [0.05, 0.95, 0.0],
                      [0.0, 0.3, 0.7], [0.5, 0.4, 0.1]])
    labels = np.array([1, 1, 0, 0, 2, 2])  # mistakes: rows 0 (0.9), 2 (0.6), 3 (0.95), 5 (0.5)
    collector.update(np.arange(0, 3), labels[:3], probs[:3])
    collector.update(np.arange(3, 6), labels[3:], probs[3:], mask=np.array([1, 1, 1]))
    collector.update(np.array([9]), np.array([1]), np.array([[0.99, 0.01, 0.0]]),
                     mask=np.array([0]))  # padding is ignored
    records = collector.records()
    assert [r["index"] for r in records] == [3, 0, 2]
    assert records[0] == {"index": 3, "label": 0, "top5": [1, 0, 2],
                          "top5_probs": pytest.approx([0.95, 0.05, 0.0]),
                          "confidence": pytest.approx(0.95)}


def _write_page(tmp_path):
    rng = np.random.default_rng(1)
    probs = np.full((10, 4), 0.25, np.float32)
    labels = np.array(SPLIT_LABELS, np.int32)
    calib = CalibrationMetric()
    calibration = calib.finalize(jax.tree.map(np.asarray, calib.sums(
        probs, labels, np.ones(10, np.float32))))
    figs = {
        "Per-class top-5 hit rate": figures.top5_histogram([1.0, 0.5, 0.75, 1.0],
                                                           tmp_path / "hist.png"),
        "Reliability diagram": figures.reliability_diagram(calibration["reliability"],
                                                           tmp_path / "rel.png", ece=0.25),
        "Worst classes": figures.worst_classes(NAMES, [0.5, 0.25, None, 1.0],
                                               tmp_path / "worst.png", counts=[2, 4, 0, 2]),
    }
    mistakes = [{"index": i, "label": label, "top5": top,
                 "top5_probs": [0.6, 0.2, 0.15, 0.05],
                 "image": rng.integers(0, 256, (28, 28) if i % 2 else (40, 40, 3), np.uint8)}
                for i, label, top in MISTAKES]
    metrics = {"top1_acc": 0.6, "top5_acc": 1.0, "ece": 0.25, "hier_cost_top5": 0.0,
               "mistake_severity": 1.75, "mistake_within_parent": 0.5, "num_examples": 10,
               "reliability": calibration["reliability"]}
    per_class = {"classes": [{"class": i, "name": n, "count": 2, "top1_acc": 0.5,
                              "top5_acc": 1.0} for i, n in enumerate(NAMES)],
                 "most_confused": [{"true": 1, "true_name": "dog", "pred": 3,
                                    "pred_name": "owl", "count": 1, "share_of_true": 1 / 3}]}
    return write_report_page(tmp_path / "eval" / "test_step10.html", title="test report",
                             metrics=metrics, class_names=NAMES, split_labels=SPLIT_LABELS,
                             mistakes=mistakes, per_class=per_class, figures=figs,
                             class_paths=PATHS)


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    assert binary and driver_path, "needs Debian's chromium and chromium-driver (apt-get install)"
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1200,900"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.downloads = downloads
    yield driver
    driver.quit()


def test_page_marks_export_and_rescore(tmp_path, browser):
    from selenium.webdriver.common.by import By

    page = _write_page(tmp_path)
    html = open(page, encoding="utf-8").read()
    assert "<script src" not in html and "<link" not in html
    assert not re.search(r"(https?|ftp)://", html)  # offline: nothing fetched from outside
    browser.get(f"file://{page}")
    find = browser.find_element
    assert not browser.find_elements(By.CSS_SELECTOR, "script[src], link[rel=stylesheet]")
    imgs = browser.find_elements(By.CSS_SELECTOR, "figure img")
    assert len(imgs) == 3 and all(i.get_attribute("src").startswith("data:image/png") for i in imgs)
    assert all(browser.execute_script("return arguments[0].naturalWidth", i) > 100 for i in imgs)
    summary = find(By.CSS_SELECTOR, "table.summary").text
    assert "top1_acc 0.6000 (60.00%)" in summary and "mistake_severity 1.7500" in summary
    assert "reliability" not in summary  # not a scalar
    assert "dog owl 1 33.3%" in browser.find_element(By.TAG_NAME, "body").text

    cards = browser.find_elements(By.CSS_SELECTOR, ".card")
    assert [c.get_attribute("data-index") for c in cards] == ["2", "5", "7", "8"]
    card = lambda i: find(By.ID, f"card-{i}")  # noqa: E731  (cards re-render on each change)
    assert "true label: fox" in card(2).text and "animal › canine › fox" in card(2).text
    assert "common ancestor: canine" in card(2).text  # dog vs fox
    assert card(2).find_element(By.CSS_SELECTOR, "img.thumb").get_attribute(
        "src").startswith("data:image/png;base64,")
    assert "exports as [2]" in card(2).text

    def click(element):  # scroll to the middle, clear of the fixed export bar, as a person would
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        element.click()

    def mark(i, kind):
        click(card(i).find_element(By.CSS_SELECTOR, f'input[data-kind="{kind}"]'))

    def click_prediction(i, c):
        click(card(i).find_element(By.CSS_SELECTOR, f'li[data-class="{c}"]'))

    mark(2, "wrong")  # defaults to the top-1 prediction (dog), then the person picks cat
    assert "exports as [1]" in card(2).text
    click_prediction(2, 0)
    assert "exports as [0]" in card(2).text and "correct label: cat" in card(2).text
    mark(5, "acceptable")
    assert "exports as [1,3]" in card(5).text
    mark(7, "several")
    card(7).find_element(By.CSS_SELECTOR, '[data-role="class-input"]').send_keys("fox")
    click(card(7).find_element(By.CSS_SELECTOR, '[data-role="class-add"]'))
    click_prediction(7, 0)
    assert "exports as [3,2,0]" in card(7).text
    mark(8, "exclude")
    mark(8, "none")  # unmarked again ...
    assert "exports as [0]" in card(8).text
    mark(8, "exclude")  # ... and marked for good
    assert "exports as []" in card(8).text
    assert find(By.ID, "count").text == "4 examples marked"

    click(find(By.ID, "export"))
    target = browser.downloads / "marks.json"
    deadline = time.time() + 15
    while not target.exists() and time.time() < deadline:
        time.sleep(0.1)
    assert target.exists(), list(browser.downloads.iterdir())
    exported = json.loads(target.read_text())
    assert exported == [[0], [1], [0], [3], [0], [1, 3], [2], [3, 2, 0], [], [1]]

    # Re-score: the marks file is a valid labels file, and the corrections change ReaL top-1.
    lists = load_label_lists(target, num_examples=10, num_classes=4)
    top1 = np.array([0, 1, 1, 3, 0, 3, 2, 0, 2, 1])  # wrong on 2, 5, 7, 8 against the labels
    scores = np.eye(4, dtype=np.float32)[top1]
    metric = RealMetric(lists)
    sums = metric.sums(scores, np.zeros(10, np.int32), np.ones(10, np.float32),
                       np.arange(10, dtype=np.int32))
    result = metric.finalize(jax.tree.map(np.asarray, sums))
    # 9 examples counted (8 excluded); misses only 2 (label now cat, predicted dog).
    assert result == {"real_top1_acc": pytest.approx(8 / 9), "real_num_examples": 9}
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe


def _wait_for(path, seconds=15):
    deadline = time.time() + seconds
    while not path.exists() and time.time() < deadline:
        time.sleep(0.1)
    assert path.exists(), list(path.parent.iterdir())
    time.sleep(0.2)  # the download is renamed into place once complete
    return json.loads(path.read_text())


def test_second_round_starts_from_the_labels_file_and_names_its_annotator(tmp_path, browser):
    """A page written for an evaluation that used --labels_file shows those lists; its export
    is their union with the new marks (the first round's corrections stay), under a name."""
    from selenium.webdriver.common.by import By

    first_round = [[0], [1], [0], [3], [0], [1, 3], [2], [3, 2, 0], [], [1]]
    rng = np.random.default_rng(2)
    mistakes = [{"index": i, "label": label, "top5": top, "top5_probs": [0.6, 0.2, 0.15, 0.05],
                 "image": rng.integers(0, 256, (28, 28), np.uint8)} for i, label, top in MISTAKES]
    page = write_report_page(tmp_path / "round2.html", title="round two", metrics={"top1_acc": 0.6},
                             class_names=NAMES, split_labels=first_round, mistakes=mistakes)
    browser.set_window_size(800, 600)  # headless Chromium's default window
    browser.get(f"file://{page}")
    find = browser.find_element
    card = lambda i: find(By.ID, f"card-{i}")
    assert find(By.ID, "fromfile").is_displayed()
    assert "labels file: cat" in card(2).text and "exports as [0]" in card(2).text
    assert "labels file: owl, fox, cat" in card(7).text
    assert "labels file: excluded" in card(8).text and "exports as []" in card(8).text
    # Plain clicks, with no scrolling of our own: WebDriver scrolls each control into view, and
    # the export bar must not intercept any of them.
    card(5).find_element(By.CSS_SELECTOR, 'input[data-kind="several"]').click()
    card(5).find_element(By.CSS_SELECTOR, 'li[data-class="0"]').click()
    assert "exports as [1,3,0]" in card(5).text  # the first round's [1, 3] plus cat
    card(7).find_element(By.CSS_SELECTOR, 'input[data-kind="acceptable"]').click()
    assert "exports as [3,2,0]" in card(7).text  # the prediction (cat) was already there
    card(8).find_element(By.CSS_SELECTOR, 'input[data-kind="wrong"]').click()
    assert "exports as [2]" in card(8).text  # an excluded example gets a label again
    find(By.ID, "annotator").send_keys("Ada L.")
    find(By.ID, "export").click()
    exported = _wait_for(browser.downloads / "marks-ada-l.json")
    assert exported["annotator"] == "Ada L." and exported["title"] == "round two"
    assert exported["reviewed"] == [2, 5, 7, 8]  # the examples the page showed
    assert exported["labels"] == [[0], [1], [0], [3], [0], [1, 3, 0], [2], [3, 2, 0], [2], [1]]
    path = browser.downloads / "marks-ada-l.json"
    assert load_label_lists(path, num_examples=10, num_classes=4) == exported["labels"]
    # The name is remembered for the next report opened in this browser. The browser stores
    # localStorage writes asynchronously, so a reload straight away may not see them yet.
    deadline = time.time() + 10
    while True:
        browser.refresh()
        remembered = find(By.ID, "annotator").get_attribute("value")
        if remembered == "Ada L." or time.time() > deadline:
            break
        time.sleep(0.5)
    assert remembered == "Ada L."


def test_every_control_is_reachable_at_common_window_sizes(tmp_path, browser):
    """Scrolled into view as WebDriver does (block end, and start), the element found at the
    centre of each control is the control itself: nothing (the export bar) lies over it."""
    page = _write_page(tmp_path)
    for width, height in [(800, 600), (1280, 720), (1920, 1080), (1024, 768), (375, 667)]:
        browser.set_window_size(width, height)
        browser.get(f"file://{page}")
        browser.execute_script("localStorage.clear()")  # each size starts with no marks
        browser.refresh()
        _check_controls(browser)


def _check_controls(browser):
    from selenium.webdriver.common.by import By

    browser.find_element(By.CSS_SELECTOR, '#card-7 input[data-kind="several"]').click()
    controls = browser.find_elements(
        By.CSS_SELECTOR, ".card input, .card li.pred, .card button, #bar input, #bar button")
    assert len(controls) == 4 * 5 + 4 * 4 + 2 + 3  # radios, predictions, add + input, bar
    covered = browser.execute_script("""
      const bad = [];
      for (const c of arguments[0]) for (const block of ["end", "start", "nearest"]) {
        c.scrollIntoView({block: block});
        const r = c.getBoundingClientRect();
        const hit = document.elementFromPoint(r.left + Math.min(r.width / 2, 8), r.top + r.height / 2);
        if (!hit || !(c === hit || c.contains(hit))) bad.push(block + ": " + c.outerHTML.slice(0, 60) + " under " + (hit ? hit.outerHTML.slice(0, 40) : "nothing"));
      }
      return bad;""", controls)
    assert not covered, covered
    first = browser.find_element(By.CSS_SELECTOR, ".card")
    browser.execute_script("document.getElementById('main').scrollTop = 0")
    first.find_element(By.CSS_SELECTOR, 'input[data-kind="wrong"]').click()  # no interception
    assert "exports as [1]" in first.text
