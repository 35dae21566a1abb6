"""A static HTML evaluation report a person can act on (one file; works from file://, no server,
no external JS or CSS): the summary table, the figures, the hierarchy metrics, per-class results
and a mistake browser with marks that export as a labels file.

Mistake browser: the most confident mistakes (`MistakeCollector`), each with its thumbnail, true
label, top-5 predictions with probabilities, and the class path (WordNet or class tree) of each.
A person marks an example as one of:
- "label is wrong"          -> exports [the chosen label]  (the top-1 prediction unless changed)
- "several labels fit"      -> exports the original labels + the labels the person added
- "prediction acceptable"   -> exports the original labels + the top-1 prediction
- "no label fits (exclude)" -> exports []  (left out of ReaL scoring)
"Export marks" downloads `marks.json` in the ReaL format of `jaxnet.evaluation.multilabel`: one
list per example of the split, in split order; unmarked examples keep their current labels
(`split_labels`: an int per example, or the labels file's lists when the evaluation used one, so
that a second round of marking starts from the first round's corrections and never drops them).
With a name in the bar's "annotator" field the export is `marks-NAME.json`, holding
{"annotator": NAME, "title", "exported", "reviewed": [the indices shown on the page], "labels":
[the ReaL list]}, which `eval.py --labels_file` reads as well, and which `python -m jaxnet
consensus` merges over several people counting only the reviewed examples as their judgements.
`eval.py --labels_file=marks.json` then re-scores with the corrections (`real_top1_acc`). Marks
are kept in the browser's localStorage (per report title) until exported or cleared; the name is
kept for every report.

Layout: the page scrolls inside `#main` above the export bar, so the bar never covers a control
at any window size.
"""
from __future__ import annotations

import base64
import datetime
import heapq
import html
import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from jaxnet import files

HIERARCHY_KEYS = {
    "hier_cost_top5": "ILSVRC-2010/11 hierarchical cost: the LCA height of truth and guess, "
                      "min over the top 5, mean over images (0 = a correct guess in the top 5)",
    "hier_cost_top1": "LCA height of truth and the top-1 guess, mean over images",
    "mistake_severity": "mean LCA height over top-1 mistakes (Bertinetto et al. 2020): how far "
                        "off the mistakes are",
    "mistake_within_parent": "share of top-1 mistakes that stay under the true class's parent",
}


def image_data_uri(image, max_side: int = 128) -> str:
    """A PNG data URI of a uint8 image [H, W], [H, W, 1], [H, W, 3] or [H, W, 4], shrunk to at
    most `max_side` pixels on its longer side."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"thumbnails are uint8 images, got {image.dtype}")
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    pil = Image.fromarray(image)
    if max(pil.size) > max_side:
        pil.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    pil.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class MistakeCollector:
    """Keeps the `k` most confident top-1 mistakes over a split, on the host.

    update(index [B], labels [B], probs [B, C], mask [B] optional): numpy (or device) arrays.
    records() -> [{index, label, top5, top5_probs, confidence}], most confident first; the caller
    adds each record's `image` (uint8, e.g. `source[index]["image"]`) before `write_report_page`.
    """

    def __init__(self, k: int = 60, top: int = 5):
        self.k, self.top = k, top
        self._heap: list = []

    def update(self, index, labels, probs, mask=None) -> None:
        if self.k <= 0:
            return
        index, labels, probs = np.asarray(index), np.asarray(labels), np.asarray(probs)
        valid = np.ones(len(index), bool) if mask is None else np.asarray(mask) > 0
        pred = probs.argmax(axis=-1)
        k = min(self.top, probs.shape[-1])
        for row in np.flatnonzero(valid & (pred != labels)):
            key = (float(probs[row, pred[row]]), -int(index[row]))  # ties: the lower index first
            if len(self._heap) == self.k and key <= self._heap[0][:2]:
                continue
            top = np.argsort(-probs[row], kind="stable")[:k]
            record = {"index": int(index[row]), "label": int(labels[row]), "top5": top.tolist(),
                      "top5_probs": probs[row, top].astype(float).tolist(), "confidence": key[0]}
            if len(self._heap) < self.k:
                heapq.heappush(self._heap, (*key, record))
            else:
                heapq.heapreplace(self._heap, (*key, record))

    def records(self) -> list[dict]:
        return [r for _, _, r in sorted(self._heap, key=lambda t: (-t[0], -t[1]))]


def _fmt(key: str, value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return html.escape(str(value))
    if isinstance(value, int):
        return f"{value:,}"
    text = f"{value:.4f}"
    if key.endswith(("_acc", "_err")) or key in ("ece", "ece_ts", "mistake_within_parent"):
        text += f" ({100 * value:.2f}%)"
    return text


def _figure_src(path, out_dir: Path, embed: bool) -> str:
    path = Path(path)
    if embed:
        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    return os.path.relpath(path, out_dir)


def _table(headers, rows, cls="") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def write_report_page(path, *, title: str, metrics: Mapping, class_names: Sequence[str],
                      split_labels: Sequence, mistakes: Sequence[Mapping] = (),
                      per_class: Mapping | None = None, figures: Mapping[str, str] | None = None,
                      class_paths: Sequence[Sequence[str]] | None = None,
                      embed_figures: bool = True, export_name: str = "marks.json") -> str:
    """Write the report page and return its path.

    metrics: the evaluation's results; scalars go to the summary table, hierarchy ones also to
      their own section. class_names: a name per class. split_labels: the label (int, or list
      of ints: a labels file's lists) of every example of the split, in split order (the
      export's unmarked rows and the base of the marked ones).
    mistakes: records {index, image (uint8), label, top5, top5_probs} (`MistakeCollector`).
    per_class: `PerClassMetric.finalize`'s dict. figures: caption -> PNG path (embedded as
      base64 unless embed_figures=False, then linked relative to the page).
    class_paths: a root-first list of node names per class (`ClassTree.path_names`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metrics = {k: v.item() if isinstance(v, np.generic) else v for k, v in metrics.items()}
    scalars = {k: v for k, v in metrics.items()
               if isinstance(v, (int, float, str)) and not isinstance(v, bool)}
    sections = ["<h2>Summary</h2>" + _table(
        ["metric", "value"], [[html.escape(k), _fmt(k, v)] for k, v in scalars.items()],
        "summary")]
    if figures:
        figs = "".join(
            f'<figure><img alt="{html.escape(cap)}" '
            f'src="{html.escape(_figure_src(p, path.parent, embed_figures))}">'
            f"<figcaption>{html.escape(cap)}</figcaption></figure>" for cap, p in figures.items())
        sections.append(f'<h2>Figures</h2><div class="figures">{figs}</div>')
    hier = [[html.escape(k), _fmt(k, metrics[k]), html.escape(doc)]
            for k, doc in HIERARCHY_KEYS.items() if metrics.get(k) is not None]
    if hier:
        sections.append("<h2>Hierarchy-aware metrics</h2>"
                        "<p>Heights in the class hierarchy: a leaf class is 0, a node is the "
                        "longest path down to a leaf. A low LCA height means a mistake between "
                        "near relatives.</p>" + _table(["metric", "value", "meaning"], hier))
    if per_class:
        sections.append(_per_class_section(per_class))
    data = {
        "names": [str(n) for n in class_names],
        "paths": [list(map(str, p)) for p in class_paths] if class_paths is not None else None,
        "base": [int(v) if np.ndim(v) == 0 else [int(x) for x in v] for v in split_labels],
        "mistakes": [{"index": int(m["index"]), "label": int(m["label"]),
                      "top5": [int(x) for x in m["top5"]],
                      "top5_probs": [float(x) for x in m["top5_probs"]],
                      "thumb": image_data_uri(m["image"]) if m.get("image") is not None else None}
                     for m in mistakes],
        "export_name": export_name,
        "title": title,
        "from_labels_file": any(np.ndim(v) != 0 for v in split_labels),
        "storage_key": f"jaxnet-marks:{title}:{len(split_labels)}",
    }
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    created = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    page = (_PAGE.replace("%TITLE%", html.escape(title)).replace("%CREATED%", created)
            .replace("%SECTIONS%", "\n".join(sections)).replace("%DATA%", payload)
            .replace("%NUM%", str(len(data["mistakes"]))))
    files.write_bytes(path, page.encode("utf-8"))  # whole or not at all
    return str(path)


def _per_class_section(per_class: Mapping) -> str:
    parts = ["<h2>Per-class results</h2>"]
    pairs = per_class.get("most_confused") or []
    if pairs:
        parts.append("<h3>Most confused pairs</h3>" + _table(
            ["true class", "predicted as", "count", "share of the true class"],
            [[html.escape(p["true_name"]), html.escape(p["pred_name"]), f"{p['count']:,}",
              f"{100 * p['share_of_true']:.1f}%"] for p in pairs]))
    classes = per_class.get("classes") or []
    if classes:
        topk = next((k for k in classes[0] if k.startswith("top") and k != "top1_acc"), None)
        rows = sorted(classes, key=lambda c: (c["top1_acc"] is None, c["top1_acc"] or 0.0))
        pct = lambda v: "" if v is None else f"{100 * v:.1f}%"  # noqa: E731
        parts.append(
            f"<details><summary>All {len(classes)} classes, worst top-1 first (click a header "
            f"to sort)</summary>" + _table(
                ["class", "name", "count", "top-1", topk.replace("_acc", "") if topk else ""],
                [[str(c["class"]), html.escape(c["name"]), f"{c['count']:,}",
                  pct(c["top1_acc"]), pct(c.get(topk)) if topk else ""] for c in rows],
                "sortable") + "</details>")
    return "\n".join(parts)


_PAGE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>%TITLE%</title>
<style>
html,body{height:100%}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;line-height:1.4;
 display:flex;flex-direction:column}
#main{flex:1 1 auto;min-height:0;overflow:auto}
.page{margin:0 auto;max-width:1200px;padding:0 16px 24px}
h1{margin:18px 0 4px}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
.muted{color:#777;font-size:.9em}
table{border-collapse:collapse;margin:8px 0}th,td{padding:4px 10px;border-bottom:1px solid #eee;
 text-align:left;vertical-align:top}th{background:#f6f6f6}table.summary td:nth-child(2){font-variant-numeric:tabular-nums}
table.sortable th{cursor:pointer}
.figures{display:flex;flex-wrap:wrap;gap:16px}figure{margin:0;max-width:100%}
figure img{max-width:560px;width:100%;border:1px solid #eee}figcaption{font-size:.9em;color:#555}
.card{display:flex;gap:14px;border:1px solid #ddd;border-radius:6px;padding:10px;margin:10px 0}
.card.marked{border-color:#2a7;background:#f4fbf7}
.thumb{width:112px;height:112px;object-fit:contain;image-rendering:pixelated;background:#000;flex:none}
.body{flex:1;min-width:0}.path{color:#777;font-size:.8em;overflow-wrap:anywhere}
ol.preds{margin:4px 0;padding-left:22px}ol.preds li{margin:2px 0}
.pred{cursor:pointer}.pred:hover .pname{text-decoration:underline}
.bar{display:inline-block;height:8px;background:#4c72b0;margin:0 6px;vertical-align:middle}
.chosen{font-weight:bold;color:#1a6}
.marks label{margin-right:12px;white-space:nowrap;display:inline-block}
@media (max-width:520px){.thumb{width:64px;height:64px}.card{gap:8px}.page{padding:0 8px 16px}}.extra{margin:6px 0}
.chip{display:inline-block;background:#e8f0fb;border-radius:10px;padding:1px 8px;margin:2px}
.chip button{border:none;background:none;cursor:pointer;padding:0 0 0 4px}
.exportas{font-family:ui-monospace,monospace;font-size:.85em;color:#555}
#bar{flex:none;background:#fff;border-top:1px solid #ccc;padding:8px 16px;
 display:flex;flex-wrap:wrap;gap:8px 12px;align-items:center;justify-content:center}
#bar input{width:12em}.current{color:#a50}
button{font:inherit}
</style></head>
<body>
<div id="main"><div class="page">
<h1>%TITLE%</h1>
<div class="muted">written %CREATED% by jaxnet</div>
%SECTIONS%
<h2>Mistake browser</h2>
<p>The %NUM% most confident top-1 mistakes. Mark an example, then <b>Export marks</b>: the file
lists the labels of every example of the split (ReaL format; unmarked examples keep their label)
and re-scores with <code>eval.py --labels_file=marks.json</code>. Click a prediction to choose it
as the label (label is wrong) or to add it (several labels fit). Put your name in the bar below
before exporting when several people mark the same report: each export is then
<code>marks-NAME.json</code>, and <code>python -m jaxnet consensus marks-*.json --num_classes=K
--out=merged.json</code> merges them.</p>
<p id="fromfile" hidden>This evaluation used a labels file: each example starts from its list there
(shown as <i>labels file</i>), unmarked examples keep it, and marks apply on top of it, so the
export keeps the corrections of earlier rounds.</p>
<datalist id="classlist"></datalist>
<div id="mistakes"></div>
</div></div>
<div id="bar"><label>annotator <input id="annotator" type="text" placeholder="your name"
 autocomplete="name"></label><span id="count">0 examples marked</span>
<button id="export" type="button">Export marks</button>
<button id="clear" type="button">Clear all marks</button></div>
<script id="data" type="application/json">%DATA%</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const KINDS = [["", "no mark"], ["wrong", "label is wrong"], ["several", "several labels fit"],
               ["acceptable", "prediction acceptable"], ["exclude", "no label fits (exclude)"]];
let marks = {};
try { marks = JSON.parse(localStorage.getItem(D.storage_key) || "{}"); } catch (e) { marks = {}; }
const byIndex = {};
D.mistakes.forEach(m => { byIndex[m.index] = m; });
for (const k of Object.keys(marks)) if (!(k in byIndex)) delete marks[k];

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const kid of kids) if (kid !== null) e.append(kid);
  return e;
}
const name = c => D.names[c] !== undefined ? D.names[c] : String(c);
const original = idx => { const b = D.base[idx]; return Array.isArray(b) ? b.slice() : [b]; };
const uniq = a => [...new Set(a)];
function pathText(c, relativeTo) {
  if (!D.paths) return "";
  const p = D.paths[c];
  if (relativeTo === undefined) return p.join(" \u203a ");
  const t = D.paths[relativeTo];
  let i = 0;
  while (i < p.length && i < t.length && p[i] === t[i]) i++;
  return "common ancestor: " + (i ? p[i - 1] : "(root)") + "  \u2192 " + p.slice(i).join(" \u203a ");
}
function exported(idx) {
  const m = marks[idx], r = byIndex[idx];
  if (!m) return original(idx);
  if (m.kind === "wrong") return [m.label];
  if (m.kind === "several") return uniq(original(idx).concat(m.added || []));
  if (m.kind === "acceptable") return uniq(original(idx).concat([r.top5[0]]));
  if (m.kind === "exclude") return [];
  return original(idx);
}
function parseClass(text) {
  const t = text.trim(), n = parseInt(t, 10);
  if (/^\d+/.test(t) && n >= 0 && n < D.names.length) return n;
  const i = D.names.findIndex(x => x.toLowerCase() === t.toLowerCase());
  return i >= 0 ? i : null;
}
function save() {
  try { localStorage.setItem(D.storage_key, JSON.stringify(marks)); } catch (e) {}
  const n = Object.keys(marks).length;
  document.getElementById("count").textContent = n + (n === 1 ? " example" : " examples") + " marked";
}
function setMark(idx, kind) {
  if (!kind) delete marks[idx];
  else if (kind === "wrong") marks[idx] = {kind, label: (marks[idx] && marks[idx].label !== undefined) ? marks[idx].label : byIndex[idx].top5[0]};
  else if (kind === "several") marks[idx] = {kind, added: (marks[idx] && marks[idx].added) || []};
  else marks[idx] = {kind};
  save(); render(idx);
}
function clickPrediction(idx, c) {
  const m = marks[idx];
  if (m && m.kind === "wrong") m.label = c;
  else if (m && m.kind === "several") m.added = m.added.includes(c) ? m.added.filter(x => x !== c) : m.added.concat([c]);
  else return;
  save(); render(idx);
}
function classInput(idx, onPick, label) {
  const input = el("input", {list: "classlist", placeholder: "class name or index", size: "28", "data-role": "class-input"});
  const go = () => { const c = parseClass(input.value); if (c === null) { input.setCustomValidity("unknown class"); input.reportValidity(); return; } input.value = ""; onPick(c); };
  input.addEventListener("keydown", e => { if (e.key === "Enter") go(); });
  return el("span", {}, input, " ", el("button", {type: "button", onclick: go, "data-role": "class-add"}, label));
}
function render(idx) {
  const r = byIndex[idx], m = marks[idx], card = document.getElementById("card-" + idx);
  card.replaceChildren();
  card.className = "card" + (m ? " marked" : "");
  card.append(r.thumb ? el("img", {class: "thumb", src: r.thumb, alt: "example " + idx}) : el("div", {class: "thumb"}));
  const body = el("div", {class: "body"});
  body.append(el("div", {}, el("b", {}, "#" + idx), "  true label: ", el("b", {}, name(r.label))));
  if (Array.isArray(D.base[idx])) {
    const cur = original(idx);
    body.append(el("div", {class: "current", "data-role": "current"}, "labels file: " +
      (cur.length ? cur.map(name).join(", ") : "excluded (no label fits)")));
  }
  if (D.paths) body.append(el("div", {class: "path"}, pathText(r.label)));
  const ol = el("ol", {class: "preds"});
  r.top5.forEach((c, k) => {
    const chosen = m && ((m.kind === "wrong" && m.label === c) || (m.kind === "several" && (m.added || []).includes(c)));
    const li = el("li", {class: "pred" + (chosen ? " chosen" : ""), "data-class": String(c),
                         onclick: () => clickPrediction(idx, c)},
      el("span", {class: "pname"}, name(c)), el("span", {class: "bar", style: "width:" + Math.round(120 * r.top5_probs[k]) + "px"}),
      (100 * r.top5_probs[k]).toFixed(1) + "%");
    if (D.paths) li.append(el("div", {class: "path", title: pathText(c)}, c === r.label ? "(the true class)" : pathText(c, r.label)));
    ol.append(li);
  });
  body.append(ol);
  const radios = el("div", {class: "marks"});
  for (const [kind, text] of KINDS) {
    const input = el("input", {type: "radio", name: "mark-" + idx, value: kind, "data-kind": kind || "none"});
    input.checked = (m ? m.kind : "") === kind;
    input.addEventListener("change", () => setMark(idx, kind));
    radios.append(el("label", {}, input, " " + text));
  }
  body.append(radios);
  if (m && m.kind === "wrong") {
    body.append(el("div", {class: "extra"}, "correct label: ", el("b", {}, name(m.label)), "  change to: ",
      classInput(idx, c => { m.label = c; save(); render(idx); }, "Set"), " or click a prediction"));
  } else if (m && m.kind === "several") {
    const chips = el("span", {});
    for (const c of original(idx)) chips.append(el("span", {class: "chip"}, name(c)));
    for (const c of m.added) chips.append(el("span", {class: "chip"}, name(c),
      el("button", {type: "button", title: "remove", onclick: () => { m.added = m.added.filter(x => x !== c); save(); render(idx); }}, "\u00d7")));
    body.append(el("div", {class: "extra"}, "labels: ", chips, "  add: ",
      classInput(idx, c => { if (!m.added.includes(c) && !original(idx).includes(c)) m.added.push(c); save(); render(idx); }, "Add")));
  }
  body.append(el("div", {class: "exportas"}, "exports as " + JSON.stringify(exported(idx))));
  card.append(body);
}
function exportMarks() {
  const out = D.base.map((b, i) => (String(i) in marks) ? exported(i) : (Array.isArray(b) ? b : [b]));
  const who = annotator.value.trim();
  const slug = who.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "");
  const payload = who ? {annotator: who, title: D.title, exported: new Date().toISOString(),
                         reviewed: D.mistakes.map(r => r.index), labels: out} : out;
  const file = who ? D.export_name.replace(/\.json$/, "") + "-" + (slug || "annotator") + ".json" : D.export_name;
  const blob = new Blob([JSON.stringify(payload)], {type: "application/json"});
  const a = el("a", {href: URL.createObjectURL(blob), download: file});
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}
const annotator = document.getElementById("annotator");
try { annotator.value = localStorage.getItem("jaxnet-annotator") || ""; } catch (e) {}
const rememberAnnotator = () => { try { localStorage.setItem("jaxnet-annotator", annotator.value); } catch (e) {} };
for (const event of ["input", "change"]) annotator.addEventListener(event, rememberAnnotator);
window.addEventListener("pagehide", rememberAnnotator);
document.getElementById("fromfile").hidden = !D.from_labels_file;
const list = document.getElementById("classlist");
D.names.forEach((n, i) => list.append(el("option", {value: i + " " + n})));
const root = document.getElementById("mistakes");
for (const r of D.mistakes) { root.append(el("div", {class: "card", id: "card-" + r.index, "data-index": String(r.index)})); render(r.index); }
document.getElementById("export").addEventListener("click", exportMarks);
document.getElementById("clear").addEventListener("click", () => {
  if (Object.keys(marks).length && !confirm("Clear all marks?")) return;
  marks = {}; save(); D.mistakes.forEach(r => render(r.index));
});
for (const table of document.querySelectorAll("table.sortable")) {
  table.querySelectorAll("th").forEach((th, col) => th.addEventListener("click", () => {
    const body = table.tBodies[0], rows = [...body.rows];
    const key = tr => { const t = tr.cells[col].textContent.replace(/[%,]/g, ""); const n = parseFloat(t); return isNaN(n) ? t : n; };
    const dir = th.dataset.dir === "asc" ? -1 : 1; th.dataset.dir = dir === 1 ? "asc" : "desc";
    rows.sort((a, b) => { const x = key(a), y = key(b); return (x < y ? -1 : x > y ? 1 : 0) * dir; });
    body.append(...rows);
  }));
}
save();
</script>
</body></html>
"""
