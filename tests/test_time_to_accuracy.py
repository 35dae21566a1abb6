"""The time-to-accuracy benchmark's bookkeeping: training seconds in the eval records, minutes to
a target, medians that count a run that never got there."""
import json

import pytest

from jaxnet.tools import bench_throughput  # noqa: F401  both in one process: no clashing flags
from jaxnet.tools import bench_time_to_accuracy as tta
from tests.tiny_config import get_config


def test_minutes_to_target_is_the_first_evaluation_that_reaches_it():
    evals = [(10, 0.90, 60.0), (20, 0.931, 150.0), (30, 0.929, 200.0), (40, 0.95, 300.0)]
    assert tta.minutes_to(0.93, evals) == 2.5
    assert tta.minutes_to(0.96, evals) is None


def test_median_counts_a_run_short_of_the_target_as_slowest():
    assert tta.median_minutes([5.0, None, 3.0]) == 5.0
    assert tta.median_minutes([None, None, 3.0]) is None
    assert tta.median_minutes([4.0]) == 4.0


def test_summary_prints_medians_and_the_ratios(capsys):
    tta.summary({"jaxnet": [(5.0, 0.931, 6.0), (6.0, 0.935, 6.5), (7.0, 0.932, 7.0)],
                 "pytorch": [(9.0, 0.930, 9.0), (12.0, 0.933, 13.0), (None, 0.92, 13.0)]}, 0.93)
    out = capsys.readouterr().out
    assert ("jaxnet: medians over 3 run(s): 6.00 min to 93.0%; final top-1 93.20% after 6.50 min"
            " of training") in out
    assert "pytorch: medians over 3 run(s): 12.00 min to 93.0%; final top-1 93.00%" in out
    assert "jaxnet / PyTorch minutes of training: 0.50x" in out
    assert "jaxnet / PyTorch minutes to 93.0%: 0.50x" in out


def test_jaxnet_run_reports_training_seconds_at_every_evaluation(tmp_path):
    config = get_config()  # 4 steps per epoch, evaluated every epoch: steps 4 and 8
    evals, wall = tta.run_jaxnet(config, tmp_path / "run")
    assert [step for step, _, _ in evals] == [4, 8]
    seconds = [s for _, _, s in evals]
    assert 0 < seconds[0] < seconds[1] < wall  # evaluations and start-up are left out
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    final = [r for r in records if r["split"] == config.eval_split][-1]
    assert evals[-1][1] == pytest.approx(final["top1_acc"])
