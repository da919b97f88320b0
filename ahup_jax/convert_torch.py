"""Official PyTorch AHuP / torchvision weights → ahup_jax orbax exports (SPEC §2.2–§2.5, §7.3).

  python -m ahup_jax.convert_torch --kind resnet --in resnet50-19c8e357.pth --out weights/res50_imagenet
  python -m ahup_jax.convert_torch --kind saa --in <exp>/model_dump/checkpoint_14.pth --out runs/official/export
  python -m ahup_jax.convert_torch --kind spa --in GD_PA/model_dump/ScanAva_Human36M-p2.pth --out runs/official/spa

Accepted files: plain state_dicts (torchvision ImageNet weights, per-network `<epoch>_net_G.pth` files), the
official SAA `checkpoint_<epoch>.pth` ({"models": [G, T, (D)], "model_nms", "optimizers", ...}), the SPA
`<source>_<target>[_best].pth` ({"G": PAnet, "D": pose discriminator, "optim_G", ...}), 3DMPPE-style
{"network": {"backbone.*", "head.*"}} snapshots, and dicts keyed "state_dict"/"G"/"T"/"D"; `module.` prefixes
(DataParallel) are removed. Each network is recognised from its keys, its architecture (ResNet depth, D
layout) inferred from the keys, and every tensor mapped through an explicit table onto our module names;
unknown, missing or mis-shaped tensors are all reported by name. torch is imported only to read the files.

The export (`checkpoint.save_export`) holds {"params": {...}, "batch_stats": {...}} with G and T (+ D) for
`--kind saa`, only G for `--kind resnet` (`config.model.pretrained_backbone`, read by
`load_pretrained_backbone`), only {"spa": {"params", "batch_stats"}} for `--kind spa`; plus a config.json
(configs/saa.py defaults with the inferred model fields) so `--mode=predict --export_dir=...` runs as is.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import re
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from ahup_jax import checkpoint, models
from ahup_jax.models.resnet import STAGES

KINDS = ("saa", "spa", "resnet")
StateDict = dict[str, np.ndarray]


# ----------------------------------------------------------------------------------------------- tensor layouts
def _conv_kernel(w: np.ndarray) -> np.ndarray:
  """Conv2d weight [O, I, kh, kw] → Flax kernel [kh, kw, I, O]."""
  return w.transpose(2, 3, 1, 0)


def _deconv_kernel(w: np.ndarray) -> np.ndarray:
  """ConvTranspose2d weight [I, O, kh, kw] → our kernel [kh, kw, I, O] for a plain conv over the dilated input.

  PyTorch's transposed conv equals a convolution of the zero-dilated input with the spatially flipped kernel
  (`models.head.Deconv4x4` / `nn.ConvTranspose(transpose_kernel=False)` apply the kernel unflipped).
  """
  return w[:, :, ::-1, ::-1].transpose(2, 3, 0, 1)


def _same(w: np.ndarray) -> np.ndarray:
  return w


# Per layer type: (PyTorch parameter suffix, our collection, our leaf name, layout transform).
_LAYER_LEAVES: dict[str, tuple[tuple[str, str, str, Callable[[np.ndarray], np.ndarray]], ...]] = {
    "conv": (("weight", "params", "kernel", _conv_kernel),),
    "conv_bias": (("weight", "params", "kernel", _conv_kernel), ("bias", "params", "bias", _same)),
    "deconv": (("weight", "params", "kernel", _deconv_kernel),),
    "linear": (("weight", "params", "kernel", np.transpose), ("bias", "params", "bias", _same)),
    "bn": (("weight", "params", "scale", _same), ("bias", "params", "bias", _same),
           ("running_mean", "batch_stats", "mean", _same), ("running_var", "batch_stats", "var", _same)),
}


@dataclasses.dataclass(frozen=True)
class Layer:
  """One PyTorch module (state_dict prefix) ↔ one of our submodules (path inside the network)."""
  torch_name: str
  ours: tuple[str, ...]
  kind: str  # a key of _LAYER_LEAVES


# ----------------------------------------------------------------------------------------------- name tables
def resnet_table(backbone: str) -> list[Layer]:
  """torchvision ResNet (`conv1`, `layer2.0.downsample.0`, ...) ↔ `models.ResNet` (`layer2_0/downsample_0`)."""
  block_kind, stage_sizes = STAGES[backbone]
  convs = ("conv1", "conv2") + (("conv3",) if block_kind == "bottleneck" else ())
  table = [Layer("conv1", ("conv1",), "conv"), Layer("bn1", ("bn1",), "bn")]
  for stage, num_blocks in enumerate(stage_sizes, start=1):
    for i in range(num_blocks):
      block = f"layer{stage}.{i}"
      for conv in convs:
        bn = "bn" + conv[-1]
        table += [Layer(f"{block}.{conv}", (f"layer{stage}_{i}", conv), "conv"),
                  Layer(f"{block}.{bn}", (f"layer{stage}_{i}", bn), "bn")]
      if i == 0 and (stage > 1 or block_kind == "bottleneck"):  # stride 2 or 64 → 256 channels
        table += [Layer(f"{block}.downsample.0", (f"layer{stage}_{i}", "downsample_0"), "conv"),
                  Layer(f"{block}.downsample.1", (f"layer{stage}_{i}", "downsample_1"), "bn")]
  return table


def head_table() -> list[Layer]:
  """HeadNet `deconv_layers.{0,1,3,4,6,7}` (ConvTranspose2d, BN; ReLUs at 2, 5, 8), `final_layer` ↔ VolumetricHead."""
  table = []
  for i in range(3):
    table += [Layer(f"deconv_layers.{3 * i}", (f"deconv_layers_{3 * i}",), "deconv"),
              Layer(f"deconv_layers.{3 * i + 1}", (f"deconv_layers_{3 * i + 1}",), "bn")]
  return table + [Layer("final_layer", ("final_layer",), "conv_bias")]


def discriminator_table(c1: bool, n_layers: int) -> list[Layer]:
  """ConvD `model.*` / ConvD_C1 `bb_D.*`, `head_pch`, `head_C1.*` Sequential indices ↔ `ConvD` / `ConvDC1`.

  Trunk: conv_0 at index 0 (LReLU 1), then conv_i, bn_i at 3i−1, 3i (LReLU 3i+1); ConvD's output conv follows
  at 3n−1; ConvD_C1's extra conv_n, bn_n sit at 3n−1, 3n and its heads are separate modules.
  """
  trunk = "bb_D" if c1 else "model"
  table = [Layer(f"{trunk}.0", ("conv_0",), "conv_bias")]
  for i in range(1, n_layers + (1 if c1 else 0)):
    table += [Layer(f"{trunk}.{3 * i - 1}", (f"conv_{i}",), "conv_bias"),
              Layer(f"{trunk}.{3 * i}", (f"bn_{i}",), "bn")]
  if not c1:
    return table + [Layer(f"model.{3 * n_layers - 1}", ("conv_out",), "conv_bias")]
  return table + [Layer("head_pch", ("conv_out",), "conv_bias"), Layer("head_C1.0", ("fc_0",), "linear"),
                  Layer("head_C1.1", ("fc_bn",), "bn"), Layer("head_C1.3", ("fc_1",), "linear")]


def spa_table(num_blocks: int) -> list[Layer]:
  """PAnet (`w1`, `batch_norm1`, `linear_stages.s.{w1,batch_norm1,w2,batch_norm2}`, `w2`) ↔ `SPANet`."""
  table = [Layer("w1", ("w1",), "linear"), Layer("batch_norm1", ("batch_norm1",), "bn")]
  for s in range(num_blocks):
    table += [Layer(f"linear_stages.{s}.w1", (f"stage_{s}_w1",), "linear"),
              Layer(f"linear_stages.{s}.batch_norm1", (f"stage_{s}_bn1",), "bn"),
              Layer(f"linear_stages.{s}.w2", (f"stage_{s}_w2",), "linear"),
              Layer(f"linear_stages.{s}.batch_norm2", (f"stage_{s}_bn2",), "bn")]
  return table + [Layer("w2", ("w2",), "linear")]


# ----------------------------------------------------------------------------------------------- architecture
def infer_backbone(state_dict: StateDict) -> str:
  """res18..res152 from the block counts per stage and the block type (conv3 only in Bottlenecks)."""
  counts = []
  for stage in range(1, 5):
    blocks = {int(m.group(1)) for k in state_dict if (m := re.match(rf"layer{stage}\.(\d+)\.", k))}
    counts.append(max(blocks) + 1 if blocks else 0)
  block_kind = "bottleneck" if "layer1.0.conv3.weight" in state_dict else "basic"
  for name, spec in STAGES.items():
    if spec == (block_kind, tuple(counts)):
      return name
  raise ValueError(f"cannot infer the ResNet depth: {block_kind} blocks per stage {tuple(counts)} match none of "
                   f"{ {k: v[1] for k, v in STAGES.items()} }")


@dataclasses.dataclass(frozen=True)
class DiscriminatorSpec:
  """What `models.make_discriminator` needs, read off a ConvD / ConvD_C1 state_dict."""
  c1: bool
  n_layers: int
  kernel: int
  ndf: int
  ch_out: int
  feature_side: int  # h = w of the features the C1 head's Linear was built for (8 at 256²)

  def mode(self, num_joints: int) -> str:
    if self.ch_out not in (1, num_joints):
      raise ValueError(f"D outputs {self.ch_out} channels; expected 1 (C/C1) or num_joints={num_joints} (SA/SA1)")
    return ("SA" if self.ch_out == num_joints else "C") + ("1" if self.c1 else "")


def infer_discriminator(state_dict: StateDict) -> DiscriminatorSpec:
  """ConvD (`model.*`) or ConvD_C1 (`bb_D.*`): depth from the last Sequential index, widths from the weights."""
  c1 = "bb_D.0.weight" in state_dict
  trunk = "bb_D" if c1 else "model"
  indices = [int(m.group(1)) for k in state_dict if (m := re.match(rf"{trunk}\.(\d+)\.", k))]
  if not indices:
    raise ValueError(f"no '{trunk}.N.*' layers in the discriminator state_dict")
  last = max(indices)  # ConvD: output conv at 3n−1; ConvD_C1: bn_n at 3n
  n_layers = last // 3 if c1 else (last + 1) // 3
  first = state_dict[f"{trunk}.0.weight"]
  out = state_dict["head_pch.weight" if c1 else f"model.{last}.weight"]
  side = 0
  if c1 and "head_C1.0.weight" in state_dict:
    side = int(round((state_dict["head_C1.0.weight"].shape[1] / first.shape[0]) ** 0.5))
  return DiscriminatorSpec(c1, max(n_layers, 1), int(first.shape[-1]), int(first.shape[0]), int(out.shape[0]), side)


def _abstract_variables(module, *inputs) -> dict:
  """{"params", "batch_stats"} shapes of `module` (no computation)."""
  return jax.eval_shape(lambda: module.init(jax.random.key(0), *inputs, train=False))


# ----------------------------------------------------------------------------------------------- conversion
def convert_network(state_dict: StateDict, table: list[Layer], abstract: dict, label: str,
                    ignore: tuple[str, ...] = ()) -> dict:
  """Maps one network's state_dict through `table` onto the tree of `abstract` (from `_abstract_variables`).

  Returns {"params", "batch_stats"} of float32 numpy arrays. Raises ValueError naming the first mismatching
  PyTorch key (in file order) and listing all: unknown keys, missing keys and shape mismatches. Keys ending in
  `num_batches_tracked` and those in `ignore` are dropped on purpose.
  """
  expected: dict[str, tuple[tuple[str, ...], Callable]] = {}
  for layer in table:
    for suffix, collection, leaf, transform in _LAYER_LEAVES[layer.kind]:
      expected[f"{layer.torch_name}.{suffix}"] = ((collection,) + layer.ours + (leaf,), transform)
  want = {tuple(k.key for k in path): leaf.shape for path, leaf in jax.tree_util.tree_flatten_with_path(abstract)[0]}

  problems: list[tuple[str, str]] = []  # (name, what is wrong)
  leaves = {}
  for key, value in state_dict.items():
    if key.endswith("num_batches_tracked") or key in ignore:
      continue
    if key not in expected:
      problems.append((key, f"unexpected key, shape {tuple(value.shape)}"))
      continue
    path, transform = expected[key]
    array = np.ascontiguousarray(transform(np.asarray(value, np.float32)))
    if path not in want:
      problems.append((key, f"maps to {'/'.join(path)}, which our module does not have"))
    elif array.shape != tuple(want[path]):
      problems.append((key, f"shape {tuple(value.shape)} converts to {array.shape}, but {'/'.join(path)} "
                            f"has {tuple(want[path])}"))
    else:
      leaves[path] = array
  problems += [(key, "missing") for key in expected if key not in state_dict]
  mapped = {path for path, _ in expected.values()}
  problems += [("/".join(path), "no PyTorch tensor maps onto this variable of ours")
               for path in want if path not in mapped]
  if problems:
    raise ValueError(f"{label}: state_dict does not match our architecture; first mismatching key "
                     f"'{problems[0][0]}'. All {len(problems)} problems:\n  "
                     + "\n  ".join(f"{name}: {what}" for name, what in problems))
  tree: dict = {}
  for path, array in leaves.items():
    node = tree
    for name in path[:-1]:
      node = node.setdefault(name, {})
    node[path[-1]] = array
  return {"params": tree.get("params", {}), "batch_stats": tree.get("batch_stats", {})}


def convert_backbone(state_dict: StateDict, label: str, ignore: tuple[str, ...] = ()) -> tuple[str, dict]:
  """G: (backbone name, variables). Input size does not change any shape; 64² keeps eval_shape trivial."""
  backbone = infer_backbone(state_dict)
  abstract = _abstract_variables(models.ResNet(backbone), jnp.zeros((1, 64, 64, 3)))
  return backbone, convert_network(state_dict, resnet_table(backbone), abstract, label, ignore)


def convert_head(state_dict: StateDict, label: str, in_channels: int, depth_bins: int) -> tuple[int, dict]:
  """T: (num_joints, variables); the final 1x1 conv has num_joints · depth_bins channels (joint-major)."""
  channels = state_dict["final_layer.weight"].shape[0]
  if channels % depth_bins:
    raise ValueError(f"{label}: final_layer has {channels} output channels, not a multiple of depth_bins="
                     f"{depth_bins} (pass --depth_bins)")
  num_joints = channels // depth_bins
  abstract = _abstract_variables(models.VolumetricHead(num_joints, depth_bins), jnp.zeros((1, 2, 2, in_channels)))
  return num_joints, convert_network(state_dict, head_table(), abstract, label)


def convert_discriminator(state_dict: StateDict, label: str, num_joints: int,
                          in_channels: int) -> tuple[DiscriminatorSpec, dict]:
  spec = infer_discriminator(state_dict)
  disc = models.make_discriminator(spec.mode(num_joints), num_joints=num_joints, n_layers=spec.n_layers,
                                   kernel=spec.kernel, ndf=spec.ndf)
  side = spec.feature_side or 8
  abstract = _abstract_variables(disc, jnp.zeros((1, side, side, in_channels)))
  return spec, convert_network(state_dict, discriminator_table(spec.c1, spec.n_layers), abstract, label)


def convert_spa(state_dict: StateDict, label: str) -> dict:
  """f (PAnet) → SPANet variables; SPANet is built with its defaults (1024 wide, 2 blocks) as inference does."""
  abstract = _abstract_variables(models.SPANet(), jnp.zeros((1, 17, 3)))
  return convert_network(state_dict, spa_table(models.SPANet.num_blocks), abstract, label)


# ----------------------------------------------------------------------------------------------- reading files
def read_checkpoint(path: str) -> Any:
  """torch.load of a .pth/.pth.tar on CPU with every tensor turned into a float32 numpy array.

  Loads with `weights_only=True` (no arbitrary unpickling); numpy scalars/arrays, as in the SPA files' `err`,
  are allowed.
  """
  try:
    import torch
  except ImportError:
    raise ImportError("reading PyTorch checkpoints needs torch: pip install -r requirements-torch.txt") from None
  multiarray = np._core.multiarray
  numpy_globals = [np.dtype, np.ndarray, multiarray.scalar, multiarray._reconstruct,
                   (multiarray.scalar, "numpy.core.multiarray.scalar"),  # pickled by numpy 1.x
                   (multiarray._reconstruct, "numpy.core.multiarray._reconstruct")]
  numpy_globals += [t for t in vars(np.dtypes).values() if isinstance(t, type) and issubclass(t, np.dtype)]
  with torch.serialization.safe_globals(numpy_globals):
    obj = torch.load(path, map_location="cpu", weights_only=True)

  def to_numpy(x):
    if isinstance(x, torch.Tensor):
      return x.detach().float().numpy()
    if isinstance(x, dict):
      return {k: to_numpy(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
      return [to_numpy(v) for v in x]
    return x

  return to_numpy(obj)


# Entries of wrapper dicts that may hold networks; optimizer/scheduler states and scalars are not searched.
_WRAPPER_KEYS = ("state_dict", "network", "model", "models", "net", "G", "T", "D", "netG", "netT", "netD")


def _is_state_dict(obj: Any) -> bool:
  return isinstance(obj, dict) and bool(obj) and all(isinstance(v, np.ndarray) for v in obj.values())


def find_state_dicts(obj: Any, where: str) -> list[tuple[str, StateDict]]:
  """Every network state_dict inside a loaded checkpoint, as (where it was found, {key: array})."""
  if _is_state_dict(obj):
    return [(where, obj)]
  if isinstance(obj, (list, tuple)):
    return [found for i, item in enumerate(obj) for found in find_state_dicts(item, f"{where}[{i}]")]
  if isinstance(obj, dict):
    found = [f for key in _WRAPPER_KEYS if key in obj for f in find_state_dicts(obj[key], f"{where}['{key}']")]
    if found:
      return found
    raise ValueError(f"{where}: no network state_dict found; top-level keys {sorted(map(str, obj))[:20]} "
                     f"(expected tensors, or one of {_WRAPPER_KEYS} holding them)")
  return []


def _strip_prefix(state_dict: StateDict) -> StateDict:
  return {re.sub(r"^(module\.)+", "", k): v for k, v in state_dict.items()}


def classify(state_dict: StateDict, where: str) -> dict[str, StateDict]:
  """Splits a state_dict into networks by their keys: G (ResNet), T (HeadNet), D (ConvD / ConvD_C1), spa (PAnet),
  spa_D (SPA's pose discriminator). 3DMPPE `backbone.*` / `head.*` wholes are split into G and T."""
  state_dict = _strip_prefix(state_dict)
  if any(k.startswith(("backbone.", "head.")) for k in state_dict):
    parts = {"G": {}, "T": {}}
    for key, value in state_dict.items():
      prefix, _, rest = key.partition(".")
      if prefix not in ("backbone", "head"):
        raise ValueError(f"{where}: key '{key}' is neither backbone.* nor head.*")
      parts["G" if prefix == "backbone" else "T"][rest] = value
    return parts
  keys = set(state_dict)
  if "conv1.weight" in keys and any(k.startswith("layer1.") for k in keys):
    return {"G": state_dict}
  if "final_layer.weight" in keys or any(k.startswith("deconv_layers.") for k in keys):
    return {"T": state_dict}
  if "model.0.weight" in keys or "bb_D.0.weight" in keys:
    return {"D": state_dict}
  if any(k.startswith("linear_stages.") for k in keys):
    return {"spa": state_dict}
  if any(k.startswith("D.d_fc") for k in keys):
    return {"spa_D": state_dict}
  raise ValueError(f"{where}: not a recognised AHuP network state_dict (first keys {sorted(keys)[:6]})")


def load_networks(paths: list[str]) -> dict[str, tuple[str, StateDict]]:
  """{network: (source label, state_dict)} over all files; a network found twice is an error."""
  networks: dict[str, tuple[str, StateDict]] = {}
  for path in paths:
    for where, state_dict in find_state_dicts(read_checkpoint(path), os.path.basename(path)):
      for name, part in classify(state_dict, where).items():
        if name in networks:
          raise ValueError(f"network {name} found twice: in {networks[name][0]} and in {where}")
        networks[name] = (where, part)
  return networks


# ----------------------------------------------------------------------------------------------- kinds
def _require(networks: dict, kind: str, required: tuple[str, ...], allowed: tuple[str, ...]) -> None:
  found = sorted(networks)
  missing = [n for n in required if n not in networks]
  extra = [n for n in networks if n not in allowed]
  if missing or extra:
    raise ValueError(f"--kind {kind} needs networks {list(required)} (optional: "
                     f"{[n for n in allowed if n not in required]}); the files hold {found}")


def export_config(backbone: str = "res50", num_joints: int = 17, depth_bins: int = 64,
                  disc: DiscriminatorSpec | None = None, spa_mode: int = 2) -> ml_collections.ConfigDict:
  """configs/saa.py defaults with the model fields the converted weights fix."""
  from configs import saa
  config = saa.get_config()
  config.model.backbone, config.model.num_joints, config.model.depth_bins = backbone, num_joints, depth_bins
  if disc is not None:
    config.adapt.mode_D, config.adapt.n_layers_D = disc.mode(num_joints), disc.n_layers
    config.adapt.kn_D, config.adapt.ndf = disc.kernel, disc.ndf
  config.spa.mode = spa_mode
  return config


def convert(kind: str, paths: list[str], *, depth_bins: int = 64,
            spa_mode: int = 2) -> tuple[dict, ml_collections.ConfigDict, list[str]]:
  """Reads `paths` and returns (export variables, export config, summary lines) for `kind` ∈ KINDS."""
  networks = load_networks(paths)
  summary = [f"{name}: {where}" for name, (where, _) in sorted(networks.items())]
  if kind == "resnet":
    _require(networks, kind, ("G",), ("G",))
    where, state_dict = networks["G"]
    backbone, g = convert_backbone(state_dict, where, ignore=("fc.weight", "fc.bias"))  # ImageNet classifier
    summary.append(f"G = {backbone} (torchvision classifier fc.* dropped)")
    return ({"params": {"G": g["params"]}, "batch_stats": {"G": g["batch_stats"]}},
            export_config(backbone), summary)
  if kind == "spa":
    _require(networks, kind, ("spa",), ("spa", "spa_D"))
    if "spa_D" in networks:  # λ_D_PA = 0 in every reported result; we have no pose discriminator to fill
      summary.append("pose discriminator (SPA 'D') not converted")
    where, state_dict = networks["spa"]
    return {"spa": convert_spa(state_dict, where)}, export_config(spa_mode=spa_mode), summary
  if kind != "saa":
    raise ValueError(f"--kind must be one of {KINDS}, got '{kind}'")
  _require(networks, kind, ("G", "T"), ("G", "T", "D"))
  backbone, g = convert_backbone(networks["G"][1], networks["G"][0])
  in_channels = models.feature_channels(backbone)
  num_joints, t = convert_head(networks["T"][1], networks["T"][0], in_channels, depth_bins)
  variables = {"params": {"G": g["params"], "T": t["params"]},
               "batch_stats": {"G": g["batch_stats"], "T": t["batch_stats"]}}
  summary.append(f"G = {backbone}, T = {num_joints} joints x {depth_bins} depth bins")
  disc = None
  if "D" in networks:
    disc, d = convert_discriminator(networks["D"][1], networks["D"][0], num_joints, in_channels)
    variables["params"]["D"] = d["params"]
    if d["batch_stats"]:
      variables["batch_stats"]["D"] = d["batch_stats"]
    summary.append(f"D = {disc.mode(num_joints)}, {disc.n_layers} layers, kernel {disc.kernel}, ndf {disc.ndf}")
  return variables, export_config(backbone, num_joints, depth_bins, disc), summary


def load_pretrained_backbone(directory: str) -> dict:
  """G's {"params", "batch_stats"} from an export written by `--kind resnet` (or any export holding G)."""
  variables, _ = checkpoint.load_export(directory)
  if "G" not in variables.get("params", {}):
    raise ValueError(f"{directory} holds no backbone G (found {sorted(variables)}); write one with "
                     "`python -m ahup_jax.convert_torch --kind resnet --in resnet50-19c8e357.pth --out DIR`")
  return {"params": variables["params"]["G"], "batch_stats": variables["batch_stats"]["G"]}


# ----------------------------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(prog="python -m ahup_jax.convert_torch", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--kind", required=True, choices=KINDS,
                      help="saa: G+T(+D) of an SAA model; spa: the SPA net f (PAnet); resnet: torchvision "
                           "ImageNet weights for config.model.pretrained_backbone")
  parser.add_argument("--in", dest="inputs", required=True, nargs="+", metavar="FILE",
                      help=".pth/.pth.tar files; networks may be split over several (e.g. 14_net_G.pth 14_net_T.pth)")
  parser.add_argument("--out", required=True, metavar="DIR", help="export directory to write (orbax + config.json)")
  parser.add_argument("--depth_bins", type=int, default=64,
                      help="depth bins of T (its final conv has num_joints x depth_bins channels); default 64")
  parser.add_argument("--spa_mode", type=int, default=2, choices=(1, 2),
                      help="SPA mode recorded in the config (2: y + f(y), 1: f(y)); not stored in the .pth")
  args = parser.parse_args(argv)
  variables, config, summary = convert(args.kind, args.inputs, depth_bins=args.depth_bins, spa_mode=args.spa_mode)
  checkpoint.save_export(args.out, variables, config)
  count = sum(int(np.size(x)) for x in jax.tree.leaves(variables))
  print("\n".join(summary + [f"wrote {count:,} numbers to {os.path.abspath(args.out)}"]))


if __name__ == "__main__":
  main()
