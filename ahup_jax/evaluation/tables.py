"""Markdown tables shaped like the paper's: Table 1 columns, Table 4 per action, Table 5 per sequence."""
from __future__ import annotations

import math

COLUMNS = (("MPJPE", "mpjpe"), ("PA-MPJPE", "pa_mpjpe"), ("3DPCK", "pck150"), ("AUC", "auc"))


def _fmt(value) -> str:
  return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1f}"


def results_table(rows: dict[str, dict | None], title: str = "") -> str:
  """One row per run (e.g. mean pose, SAA, SAA + SPA): MPJPE, PA-MPJPE (mm), 3DPCK@150, AUC (%)."""
  lines = [f"### {title}", ""] if title else []
  lines += ["| method | " + " | ".join(c for c, _ in COLUMNS) + " |", "|---|" + "---|" * len(COLUMNS)]
  for name, metrics in rows.items():
    metrics = metrics or {}
    lines.append(f"| {name} | " + " | ".join(_fmt(metrics.get(k)) for _, k in COLUMNS) + " |")
  return "\n".join(lines) + "\n"


def group_table(metrics: dict, title: str = "") -> str:
  """Per-group (action / sequence) columns plus Avg; rows MPJPE, PA-MPJPE, 3DPCK, AUC (paper Tables 4 and 5)."""
  groups = metrics.get("groups") or {}
  if not groups:
    return ""
  names = list(groups)
  lines = [f"### {title}", ""] if title else []
  lines += ["| metric | " + " | ".join(names) + " | Avg |", "|---|" + "---|" * (len(names) + 1)]
  for label, key in COLUMNS:
    if key not in metrics:
      continue
    lines.append(f"| {label} | " + " | ".join(_fmt(groups[n].get(key)) for n in names) + f" | {_fmt(metrics[key])} |")
  return "\n".join(lines) + "\n"


def evaluation_report(metrics: dict, name: str) -> str:
  """The Markdown written beside metrics.json: the summary row and, when present, the per-group table."""
  return results_table({name: metrics}, title=f"{name} ({metrics['count']} samples)") + "\n" + group_table(
      metrics, title="per group")
