"""Markdown tables shaped like the paper's (SPEC §8): Table 1 columns, Table 4 per action, Table 5 per sequence.

Every function takes metric dictionaries as returned by `metrics.evaluate` (keys mpjpe, pa_mpjpe, pck150, auc,
and "groups" {name: {...}}); a missing run or value renders as "–".
"""
from __future__ import annotations

import math
import re
from typing import Mapping, Sequence

# (column label, metric key) of the summary tables.
COLUMNS = (("MPJPE", "mpjpe"), ("PA-MPJPE", "pa_mpjpe"), ("3DPCK", "pck150"), ("AUC", "auc"))

# Table 4's column labels for the Human3.6M actions ("WalkT" is printed "WalkP." in the paper).
H36M_SHORT = {
    "Directions": "Dir", "Discussion": "Dis", "Eating": "Eat", "Greeting": "Gre", "Phoning": "Phon",
    "Posing": "Pose", "Purchases": "Pur", "Sitting": "Sit", "SittingDown": "SitD", "Smoking": "Smo",
    "Photo": "Phot", "Waiting": "Wait", "Walking": "Walk", "WalkDog": "WalkD", "WalkTogether": "WalkT",
}

# How a metric's rows are labelled in a per-group table: Table 4 prints "<method>" (MPJPE) and "<method> PA".
_ROW_SUFFIX = {"mpjpe": "", "pa_mpjpe": " PA", "pck150": "", "auc": " AUC"}


def fmt(value) -> str:
  """One decimal, or "–" for a missing / NaN value."""
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return "–"
  return f"{value:.1f}"


def short_group_name(name: str) -> str:
  """Dir, Dis, ... for H36M actions; S1..S20 for MuPoTS sequences TS1..TS20 (as Table 5); else unchanged."""
  if name in H36M_SHORT:
    return H36M_SHORT[name]
  match = re.fullmatch(r"TS(\d+)", name)
  return f"S{match.group(1)}" if match else name


def _markdown(header: Sequence[str], rows: Sequence[Sequence[str]], title: str) -> str:
  lines = [f"### {title}", ""] if title else []
  lines.append("| " + " | ".join(header) + " |")
  lines.append("|" + "---|" * len(header))
  lines += ["| " + " | ".join(row) + " |" for row in rows]
  return "\n".join(lines) + "\n"


def results_table(rows: Mapping[str, dict | None], title: str = "") -> str:
  """One test set, one row per run (e.g. "mean pose", "SAA", "SAA + SPA"): MPJPE, PA-MPJPE (mm), 3DPCK, AUC (%)."""
  body = [[name] + [fmt((metrics or {}).get(key)) for _, key in COLUMNS] for name, metrics in rows.items()]
  return _markdown(["method"] + [label for label, _ in COLUMNS], body, title)


def ablation_table(runs: Mapping[str, Mapping[str, dict | None]], testsets: Sequence[str], title: str = "") -> str:
  """Table 1 shape: rows = runs ({run: {testset: metrics}}), per test set PA-MPJPE, 3DPCK, AUC, then MPJPE."""
  keys = (("PA-MPJPE", "pa_mpjpe"), ("3DPCK", "pck150"), ("AUC", "auc"), ("MPJPE", "mpjpe"))
  header = ["Training data + strategy"] + [f"{testset} {label}" for testset in testsets for label, _ in keys]
  body = []
  for name, per_testset in runs.items():
    body.append([name] + [fmt(((per_testset or {}).get(testset) or {}).get(key))
                          for testset in testsets for _, key in keys])
  return _markdown(header, body, title)


def group_table(rows: Mapping[str, dict | None], metrics: Sequence[str] = ("mpjpe",), title: str = "") -> str:
  """Per-group columns + Avg (the pooled overall value); Table 4 = metrics ("mpjpe", "pa_mpjpe") on Human3.6M,
  Table 5 = ("pck150",) on MuPoTS (an AUC column is appended after Avg). Rows: one per (run, metric)."""
  names = next((list(m["groups"]) for m in rows.values() if m and m.get("groups")), [])
  if not names or not metrics:
    return ""
  with_auc = "pck150" in metrics
  header = ["Method"] + [short_group_name(n) for n in names] + ["Avg"] + (["AUC"] if with_auc else [])
  body = []
  for name, result in rows.items():
    result = result or {}
    groups = result.get("groups") or {}
    for key in metrics:
      row = [name + _ROW_SUFFIX.get(key, f" {key}")]
      row += [fmt((groups.get(group) or {}).get(key)) for group in names] + [fmt(result.get(key))]
      body.append(row + ([fmt(result.get("auc"))] if with_auc else []))
  return _markdown(header, body, title)


def diagnostics(result: dict) -> str:
  """The logged extras of SPEC §6.3: sample count, joints, alignment, mean |Δz| and per-axis signed error."""
  signed = result.get("mean_signed_error")
  parts = [f"samples: {result.get('count', '–')}", f"joints: {result.get('bone_type', '–')}",
           f"alignment: {result.get('pa', '–')}", f"mean |Δz| {fmt(result.get('z_err'))} mm"]
  if "z_err_pa" in result:
    parts.append(f"after alignment {fmt(result.get('z_err_pa'))} mm")
  if signed is not None:
    parts.append("mean signed error (x, y, z) = (" + ", ".join(fmt(v) for v in signed) + ") mm")
  return "; ".join(parts) + "\n"


def evaluation_report(result: dict, name: str, group_metrics: Sequence[str] = ("mpjpe",)) -> str:
  """The Markdown written beside metrics.json: summary row, diagnostics and the paper-shaped per-group table."""
  title = f"{name}: {result.get('protocol', '')} ({result.get('split', 'test')})"
  text = results_table({name: result}, title=title) + "\n" + diagnostics(result)
  table = group_table({name: result}, metrics=[k for k in group_metrics if k in result], title="per group")
  return text + ("\n" + table if table else "")
