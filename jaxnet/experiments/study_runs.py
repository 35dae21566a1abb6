"""Running a study: many method runs ("points") in OUT/runs/<point>/, each cached in
OUT/results/<point>.json and rerun only when its config changes, then the study's tables and
plots written beside them (jaxnet.experiments.transfer_study, jaxnet.experiments.task_study)."""
import contextlib
import json
import shutil
import time
from pathlib import Path


def _plain(config) -> dict:
    return json.loads(config.to_json())


def run_point(name: str, config, out: Path, log=print) -> dict:
    """Train `config` (any method) in out/runs/<name>, or reuse its cached result."""
    from jaxnet.methods import train

    result_file, workdir = out / "results" / f"{name}.json", out / "runs" / name
    if result_file.exists():
        cached = json.loads(result_file.read_text())
        if cached.get("config") == _plain(config):
            log(f"{name:<24} cached: top-1 {cached['metrics']['top1_acc']:.4f}")
            return cached["metrics"]
    shutil.rmtree(workdir, ignore_errors=True)  # another config wrote it: start again
    workdir.parent.mkdir(parents=True, exist_ok=True)
    start = time.time()
    with open(out / "runs" / f"{name}.log", "w") as f, contextlib.redirect_stdout(f), \
            contextlib.redirect_stderr(f):
        metrics = train(config, workdir)
    seconds = time.time() - start
    metrics = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
    metrics["seconds"] = seconds
    result_file.parent.mkdir(parents=True, exist_ok=True)
    result_file.write_text(json.dumps({"name": name, "config": _plain(config), "metrics": metrics},
                                      indent=1) + "\n")
    extra = "".join(f", {k} {metrics[k]:.3f}" for k in ("nmi", "ari", "loc_err", "miou") if k in metrics)
    log(f"{name:<24} top-1 {metrics['top1_acc']:.4f}{extra} ({seconds:.0f} s)")
    return metrics


def run_study(tool: str, out, quick: bool, points, tables, plots, log=print) -> dict:
    """Run (or reuse) every point of `points` ([(name, ..., config)]: the name first, the config
    last); write OUT/study.md (tables(results), then the command and the times), OUT/study.json
    and the figures plots(results) -> [files]; return {point: metrics}."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    results = {}
    for i, point in enumerate(points):
        name, config = point[0], point[-1]
        log(f"[{i + 1}/{len(points)}] {name}")
        results[name] = run_point(name, config, out, log)
    text = tables(results)
    seconds = time.time() - start
    text += (f"\nCommand: `python -m jaxnet {tool} --out={out}{' --quick' if quick else ''}`;"
             f" this invocation took {seconds / 60:.1f} min, the points' own times add up to"
             f" {sum(r.get('seconds', 0) for r in results.values()) / 60:.1f} min.\n")
    (out / "study.md").write_text(text)
    (out / "study.json").write_text(json.dumps(results, indent=1) + "\n")
    files = plots(results)
    log("\n" + text)
    log("plots: " + ", ".join(files))
    return results
