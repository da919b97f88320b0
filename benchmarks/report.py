"""BENCHMARKS.md from the results of benchmarks/run_all.py: machine, command, one table per instrument, targets."""
from __future__ import annotations

import statistics

GB = 1e9
USABLE = 0.75  # JAX preallocates 75 % of accelerator memory by default (XLA_PYTHON_CLIENT_MEM_FRACTION)
PAPER = {"gt": 13.097, "gt_spa": 13.101, "increase": 0.00031}  # SPEC §2.7 / Table 3 (GMAC / 1024³)


def _table(headers: list[str], rows: list[list]) -> list[str]:
  lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
  return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows] + [""]


def _pct(x: float) -> str:
  return f"{x:.0%}" if x >= 0.1 else f"{x:.1%}" if x >= 0.01 else f"{x:.3%}"


def beside(row: dict, run_start: float) -> float:
  """The ceiling (GFLOP/s) a row is divided by: the mean of the two measured just before and after it
  (`timing.bracketed`), or the run-start ceiling for results that lack them."""
  around = row.get("ceiling_gflops")
  return sum(around) / len(around) if around else run_start


def _around(row: dict) -> str:
  around = row.get("ceiling_gflops")
  return "–".join(f"{x:.0f}" for x in around) if around else "—"


def train_row_for_target(results: dict) -> dict | None:
  """The ResNet-50 256² fp32 train-step row the conv-ceiling target is about, if measured."""
  for row in results.get("train_step", []):
    if (row["backbone"], row["input"], row["dtype"]) == ("res50", 256, "float32"):
      return row
  return None


def targets(r: dict) -> list[dict]:
  """Each speed target (issues #10 and #16): what it asks, the measured figure, measured / target and
  pass | short | not measured."""
  c = r["ceilings"]
  out = []

  def add(name, wanted, measured, detail, shown=None):
    status = "not measured" if measured is None else ("pass" if measured >= wanted else "short")
    out.append({"target": name, "wanted": wanted, "measured": measured, "detail": detail or "", "status": status,
                "ratio": None if measured is None else measured / wanted,
                "shown": "—" if measured is None else shown or f"{measured:.2f}"})

  res50 = train_row_for_target(r)
  conv = res50 and beside(res50, c["conv3x3"]["gflops"])
  fraction = res50 and res50["achieved_gflops"] / conv
  add("train step ≥ 60 % of the 3x3-conv ceiling (ResNet-50 256², fp32)", 0.60, fraction,
      res50 and f"{res50['achieved_gflops']:.1f} of {conv:.1f} GFLOP/s (batch {res50['batch']}; conv ceiling "
                f"{_around(res50)} just before and after the row, {c['conv3x3']['gflops']:.1f} at the run's start)"
                + (f"; {res50['achieved_gflops'] / c['conv3x3']['training_gflops']:.0%} of the forward+gradient conv "
                   f"ceiling {c['conv3x3']['training_gflops']:.1f}" if "training_gflops" in c["conv3x3"] else ""),
      fraction and _pct(fraction))
  spa = r.get("spa_fit")
  matmul = spa and beside(spa, c["matmul"]["gflops"])
  fraction = spa and spa["achieved_gflops"] / matmul
  add("SPA fit ≥ 70 % of the matmul ceiling", 0.70, fraction,
      spa and f"{spa['achieved_gflops']:.1f} of {matmul:.1f} GFLOP/s (N = {spa['num_poses']}; matmul ceiling "
              f"{_around(spa)} just before and after the fit, {c['matmul']['gflops']:.1f} at the run's start)"
              + (f"; {spa['achieved_gflops'] / c['dense']['training_gflops']:.0%} of the dense-layer training "
                 f"ceiling {c['dense']['training_gflops']:.1f}" if "dense" in c else ""),
      fraction and _pct(fraction))
  feed = r.get("feed")
  add("input pipeline ≥ 2× the train step's consumption", 2.0, feed and feed["ratio"],
      feed and f"{feed['pipeline_images_per_s']:.0f} vs {feed['train_images_per_s']:.1f} images/s "
               f"({feed['config']})", feed and f"{feed['ratio']:.1f}×")
  compiles = [row["step_compiles"] for row in r.get("train_step", []) + r.get("scaling", [])]
  once = compiles and float(all(n == 1 for n in compiles))  # 1: every configuration compiled exactly once
  add("no recompilation (the train step compiles once per configuration)", 1.0, once if compiles else None,
      f"compilations of each timed step configuration: {compiles}; also tests/test_compile_count.py",
      once is not None and ("none" if once else "recompiled"))
  side = r.get("torch_side") or {}
  for row in side.get("rows", []):
    add(f"{row['config']} ≥ 1.5× PyTorch on the same CPU", 1.5, row["ratio"],
        f"{statistics.median(row['jax_per_s']):.1f} vs {statistics.median(row['torch_per_s']):.1f} {row['unit']}",
        f"{row['ratio']:.2f}×")
    if "ratio_bf16" in row:
      add(f"{row['config']} in bfloat16 ≥ 1.5× PyTorch fp32 on the same CPU", 1.5, row["ratio_bf16"],
          f"{statistics.median(row['jax_bf16_per_s']):.1f} vs {statistics.median(row['torch_per_s']):.1f} "
          f"{row['unit']}; model.dtype=\"bfloat16\", accuracy cost in docs/SPEED.md", f"{row['ratio_bf16']:.2f}×")
  return out


def markdown(r: dict) -> str:
  m, c = r["meta"], r["ceilings"]
  conv, mm = c["conv3x3"]["gflops"], c["matmul"]["gflops"]
  lines = ["# Benchmarks", "",
           f"Machine: {m['cpu']}, {m['cores']} cores; jax {m['jax']} on {m['backend']} ({m['devices']} device). "
           f"Date: {m['date']}. Load average at start: {m['load_at_start']}.", "",
           f"Command: `{m['command']}` ({m['size']} sizes; the full run rewrites this file and "
           f"`benchmarks/results.json`, `--quick` is a smoke test). Took {m['seconds']:.0f} s. Other load on the "
           "machine slows every figure: compare the load average with the core count.", "",
           "Timings are medians of synchronised calls after warm-up (min–max in brackets); FLOPs are XLA's cost "
           "analysis of the compiled program (multiply and add counted separately).", "",
           "## Ceilings (measured in this run)", ""]
  lines += _table(["kernel", "shape", "time (s)", "GFLOP/s"],
                  [[k, v["shape"], f"{v['step_s']:.4f}", f"{v['gflops']:.1f}"] for k, v in c.items()])
  passes = c["conv3x3"].get("gflops_by_pass")
  if passes:
    lines += [f"The same conv's gradients: w.r.t. the input {passes['grad_input']:.1f}, w.r.t. the kernel "
              f"{passes['grad_kernel']:.1f} GFLOP/s; forward + both gradients (what a conv-bound training step "
              f"can reach) {c['conv3x3']['training_gflops']:.1f} GFLOP/s.", ""]
  dense = c.get("dense", {}).get("gflops_by_pass")
  if dense:
    lines += [f"The dense layer (the SPA net's 1024-wide linears, products back to back in one program): forward "
              f"{dense['forward']:.1f}, input gradient {dense['grad_input']:.1f}, kernel gradient "
              f"{dense['grad_kernel']:.1f} GFLOP/s; all three (what a matmul-bound MLP training step can reach) "
              f"{c['dense']['training_gflops']:.1f} GFLOP/s.", ""]
  lines += ["## SAA train step", "", "The trainer's jitted step (`sharding.jit_train_step`, state donated and "
            "threaded through); the z-supervision switch happens inside the timed calls. \"of conv ceiling\" divides by "
            "the mean of the 3x3-conv forward ceiling measured just before and just after the row (next column): the "
            "machine's speed drifts between minutes.", ""]
  lines += _table(["backbone", "input", "batch", "D", "dtype", "step (s)", "images/s", "GFLOP/step",
                   "GFLOP/s", "conv ceiling before–after", "of conv ceiling", "compiles", "peak memory (GB)"],
                  [[t["backbone"], f"{t['input']}²", t["batch"], t["mode_D"], t["dtype"],
                    f"{t['step_s']:.3f} [{t['min_s']:.3f}–{t['max_s']:.3f}]", f"{t['images_per_s']:.1f}",
                    f"{t['gflop_per_step']:.1f}", f"{t['achieved_gflops']:.1f}", _around(t),
                    _pct(t["achieved_gflops"] / beside(t, conv)), t["step_compiles"],
                    f"{t['memory']['peak'] / GB:.2f}"]
                   for t in r["train_step"]])
  lines += _torch_side(r)
  lines += _profile(r)
  lines += ["## Inference step", "", "`inference.make_eval_step` (G+T, soft-argmax; flip test = a second pass on "
            "the mirrored crop).", ""]
  lines += _table(["backbone", "input", "batch", "flip test", "step (s)", "images/s", "GFLOP/step", "GFLOP/s",
                   "of conv ceiling"],
                  [[i["backbone"], f"{i['input']}²", i["batch"], "yes" if i["flip_test"] else "no",
                    f"{i['step_s']:.3f}", f"{i['images_per_s']:.1f}", f"{i['gflop_per_step']:.1f}",
                    f"{i['achieved_gflops']:.1f}", _pct(i["achieved_gflops"] / conv)] for i in r["inference"]["steps"]])
  s = r["inference"]["spa_overhead"]
  lines += [f"### SPA head overhead ({s['backbone']} {s['input']}², one image, no flip test)", "",
            "XLA counts every operation of the compiled forward and the real work of the transposed convs; the "
            "paper counts conv/linear multiply-accumulates only, transposed convs over their zero-dilated input, "
            "/ 1024³ (SPEC §2.7; its Table 3 is for res50 256²).", ""]
  lines += _table(["count", "G+T", "G+T+SPA", "increase"],
                  [["XLA (GFLOP)", f"{s['xla_gflop_gt']:.3f}", f"{s['xla_gflop_gt_spa']:.3f}",
                    _pct(s["xla_increase"])],
                   ["paper convention (GMAC/1024³)", f"{s['paper_gmac_gt']:.3f}", f"{s['paper_gmac_gt_spa']:.3f}",
                    _pct(s["paper_increase"])],
                   ["paper, reported", PAPER["gt"], PAPER["gt_spa"], _pct(PAPER["increase"])]])
  lines += ["## Input pipeline", "", "`pivot.make_train_dataset` on generated JPEGs: decode, full SPEC §5 "
            "augmentation, three pivoted training sets; measured alone (in training it shares the cores). From the "
            "image files (`data.source=files`) and from their TFDS builds (`data.source=tfds`, ArrayRecord read by "
            "example index), timed in alternating rounds; the median round.", ""]
  lines += _table(["crop", "source JPEG", "batch", "files images/s", "TFDS images/s", "TFDS ÷ files"],
                  [[f"{p['input_size']}²", f"{p['image_size']}²", p["batch_size"], f"{p['images_per_s']:.1f}",
                    f"{p['tfds_images_per_s']:.1f}" if "tfds_images_per_s" in p else "—",
                    f"{p['tfds_images_per_s'] / p['images_per_s']:.2f}" if "tfds_images_per_s" in p else "—"]
                   for p in r["input_pipeline"]])
  f = r["spa_fit"]
  lines += ["## SPA fit", "", f"`spa.fit.make_trainer`'s compiled epoch, batch {f['batch']}, timed after "
            "compilation; FLOPs = the epoch program + (steps − 1) × a one-step program "
            "(XLA counts a scan body once). \"of matmul ceiling\" divides by the mean of the matmul ceiling measured "
            "just before and just after the fit.", ""]
  dense_training = c.get("dense", {}).get("training_gflops")
  lines += _table(["poses", "steps/epoch", "epoch (s)", "70 epochs on 100k (min)", "GFLOP/epoch", "GFLOP/s",
                   "matmul ceiling before–after", "of matmul ceiling", "of dense-layer training ceiling"],
                  [[f["num_poses"], f["steps_per_epoch"], f"{f['epoch_s']:.2f}",
                    f"{f['estimated_70_epochs_100k_s'] / 60:.1f}", f"{f['gflop_per_epoch']:.0f}",
                    f"{f['achieved_gflops']:.1f}", _around(f), _pct(f["achieved_gflops"] / beside(f, mm)),
                    _pct(f["achieved_gflops"] / dense_training) if dense_training else "—"]])
  lines += _scaling(r) + _memory(r)
  lines += ["## Targets", ""]
  if m["size"] != "full":
    lines += [f"Sizes: {m['size']} (a smoke test); these figures say nothing about the targets.", ""]
  lines += _table(["target", "measured", "measured / target", "status", "detail"],
                  [[t["target"], t["shown"], "—" if t["ratio"] is None else f"{t['ratio']:.2f}", t["status"],
                    t["detail"]] for t in r["targets"]])
  return "\n".join(lines)


def _torch_side(r: dict) -> list[str]:
  """The side-by-side table: PyTorch and ahup_jax on the same batch, same cores, alternating rounds."""
  t = r.get("torch_side")
  if not t:
    return []
  lines = ["## Against PyTorch (the same step on the same CPU)", ""]
  if "skipped" in t:
    return lines + [f"Skipped: {t['skipped']}.", ""]
  m = r["meta"]
  lines += [f"`python -m benchmarks.torch_side`: the official step order in PyTorch {t['torch']} "
            "(`benchmarks/torch_reference.py`: G + T, soft-argmax, D update on detached features, G+T with L1 + "
            f"0.02·LSGAN-SA, Adam) against the trainer's compiled step, fp32, {t['threads']} threads each, on "
            f"{m['cpu']} ({m['cores']} cores), each side in its own worker process"
            + (f" (malloc: ours {t['malloc']['ahup_jax']}, PyTorch {t['malloc']['torch']}; ahup_jax/allocator.py)"
               if "malloc" in t else "") + ". Rounds alternate PyTorch and JAX; "
            "each cell lists the rounds' medians (from four rounds on: their median, range and count); "
            "ratio = median ahup_jax ÷ median PyTorch (> 1: ours faster).", ""]
  bf16 = any("ratio_bf16" in row for row in t["rows"])
  if bf16:
    lines += ["bf16 columns: our step with `model.dtype=\"bfloat16\"` (oneDNN's bfloat16 convolutions) in a third "
              "worker, against the same fp32 PyTorch step; its accuracy cost is in docs/SPEED.md.", ""]
  rates = lambda values: (" / ".join(f"{x:.1f}" for x in values) if len(values) <= 3 else
                          f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f}, {len(values)} rounds)")
  return lines + _table(
      ["row", "unit", "PyTorch", "ahup_jax", "ratio"] + (["ahup_jax bf16", "ratio bf16"] if bf16 else []),
      [[row["config"], row["unit"], rates(row["torch_per_s"]), rates(row["jax_per_s"]), f"{row['ratio']:.2f}"]
       + ([rates(row["jax_bf16_per_s"]), f"{row['ratio_bf16']:.2f}"] if "ratio_bf16" in row else
          (["–", "–"] if bf16 else []))
       for row in t["rows"]])


def _profile(r: dict) -> list[str]:
  p = r.get("profile")
  if not p:
    return []
  total = p["op_seconds"]
  lines = [f"### Where the {p['backbone']} {p['input']}² batch {p['batch']} {p['dtype']} step's time goes", "",
           "`python -m benchmarks.profile`: a jax.profiler trace of one step, each executed HLO op classified by what "
           "it computes and by its jax source (`op_name` metadata). Shares of the summed op time "
           f"({total:.2f} s; above the step's wall time where ops overlap on the cores). \"layout copy\" = fusions "
           "whose output is a transposed layout (for the gradient matmuls/convs), usually fused with BatchNorm's "
           "backward arithmetic.", ""]
  lines += _table(["what", "s / step", "share"], [[k, f"{v:.3f}", _pct(v / total)] for k, v in p["by_kind"].items()])
  lines += _table(["where", "s / step", "share"], [[k, f"{v:.3f}", _pct(v / total)] for k, v in p["by_region"].items()])
  lines += _table(["slowest ops", "s", "what", "shape", "source"],
                  [[t["op"], f"{t['seconds']:.3f}", t["kind"], f"`{t['shape'].split('{')[0]}`", t["source"] or "—"]
                   for t in p["top"]])
  return lines


def _scaling(r: dict) -> list[str]:
  rows = r["scaling"]
  lines = ["## Data-parallel scaling (simulated CPU devices)", "",
           f"{rows[0]['backbone']} {rows[0]['input']}², {rows[0]['per_device_batch']} images per device, one "
           "process per device count. The simulated devices share this machine's cores, so per-device throughput "
           "falls with N by construction; memory per device should stay flat.", ""]
  return lines + _table(["devices", "global batch", "step (s)", "images/s", "images/s per device", "efficiency",
                         "peak memory per device (MB)", "compiles"],
                        [[s["devices"], s["batch"], f"{s['step_s']:.3f}", f"{s['images_per_s']:.1f}",
                          f"{s['images_per_s_per_device']:.1f}", _pct(s["efficiency"]),
                          f"{s['memory']['peak'] / 1e6:.0f}", s["step_compiles"]] for s in rows])


def _memory(r: dict) -> list[str]:
  rows = r["memory"]
  head = rows[0]
  lines = ["## Fits in accelerator memory? (compile only)", "",
           f"{head['backbone']} {head['input']}², global batch {head['global_batch']}: the train step compiled "
           "for one device at per-device batches B and B / max(devices); the per-device peak (arguments + outputs "
           "− donated + temporaries) at n data-parallel devices is the program at batch B / n, interpolated "
           "linearly between the two compiles (exact rows marked). XLA:CPU's buffer assignment stands in for the "
           "accelerator's (±20 %). \"Fits\" = peak ≤ 75 % of the memory, JAX's default preallocation.", ""]
  return lines + _table(["remat_head", "devices", "per-device batch", "peak (GB)", "of 16 GB", "of 80 GB",
                         "fits 16 GB", "fits 80 GB", "compiled"],
                        [[m["remat_head"], m["devices"], f"{m['per_device_batch']:g}", f"{m['peak_gb']:.2f}",
                          _pct(m["of_16gb"]), _pct(m["of_80gb"]), "yes" if m["of_16gb"] <= USABLE else "no",
                          "yes" if m["of_80gb"] <= USABLE else "no", "yes" if m["measured"] else "interpolated"]
                         for m in rows])
