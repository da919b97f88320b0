"""ahup_jax.convert_torch: official-layout PyTorch checkpoints → exports whose outputs match PyTorch's (fp32)."""
from __future__ import annotations

import functools
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is an optional extra (pip install -r requirements-torch.txt)")
from torch import nn  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from ahup_jax import checkpoint, convert_torch, models  # noqa: E402
from ahup_jax.evaluation import inference  # noqa: E402

J, DEPTH = 17, 64  # joints, depth bins of the official checkpoints
RTOL = 1e-4


# The official-layout PyTorch modules (torchvision ResNet, 3DMPPE head, ConvD / ConvD_C1, PAnet), shared with the
# side-by-side speed benchmark.
from benchmarks.torch_reference import (BasicBlock, Bottleneck, ConvD, ConvD_C1, HeadNet, PAnet,  # noqa: E402
                                        ResNet)


def pose_discriminator():
  """SPA's pose D (`D.d_fc1`, ...), present in the official SPA files but not converted."""
  net = nn.Module()
  net.D = nn.Sequential()
  for name, layer in [("d_fc1", nn.Linear(51, 100)), ("d_bn1", nn.BatchNorm1d(100)), ("d_relu1", nn.ReLU()),
                      ("d_fc2", nn.Linear(100, 50)), ("d_bn2", nn.BatchNorm1d(50)), ("d_relu2", nn.ReLU()),
                      ("d_fc3", nn.Linear(50, 1))]:
    net.D.add_module(name, layer)
  return net


def randomised(net: nn.Module, seed: int) -> nn.Module:
  """Random BN affine and running statistics (default init leaves them at 1/0), inference mode."""
  torch.manual_seed(seed)
  for m in net.modules():
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
      m.weight.data.uniform_(0.5, 1.5)
      m.bias.data.normal_(0, 0.1)
      m.running_mean.normal_(0, 0.1)
      m.running_var.uniform_(0.5, 1.5)
  return net.eval()


def soft_argmax_reference(heatmaps: torch.Tensor) -> np.ndarray:
  """[B, J·D, H, W] logits → [B, J, 3] (x, y, z) expectations over indices 0..size-1."""
  b, _, h, w = heatmaps.shape
  p = torch.softmax(heatmaps.reshape(b, J, -1), -1).reshape(b, J, DEPTH, h, w)
  xs = (p.sum((2, 3)) * torch.arange(w)).sum(-1)
  ys = (p.sum((2, 4)) * torch.arange(h)).sum(-1)
  zs = (p.sum((3, 4)) * torch.arange(DEPTH)).sum(-1)
  return torch.stack([xs, ys, zs], -1).numpy()


def assert_close(ours, reference, what):
  ours, reference = np.asarray(ours), np.asarray(reference)
  assert ours.shape == reference.shape, what
  error = np.abs(ours - reference).max() / np.abs(reference).max()
  assert error <= RTOL, f"{what}: max relative error {error:.2e}"


def nhwc(x: torch.Tensor) -> np.ndarray:
  return x.detach().numpy().transpose(0, 2, 3, 1)


def channels_last(heatmaps: torch.Tensor) -> np.ndarray:
  """HeadNet's [B, J·D, H, W] output as VolumetricHead's logits [B, H, W, J, D]."""
  b, _, h, w = heatmaps.shape
  return heatmaps.detach().numpy().reshape(b, J, DEPTH, h, w).transpose(0, 3, 4, 1, 2)


def images(seed=0):
  torch.manual_seed(seed)
  return torch.randn(2, 3, 64, 64) * 50  # the un-scaled ImageNet-normalised range of SPEC §2.1


@functools.partial(jax.jit, static_argnums=0)
def _inference(module, variables, x):
  return module.apply(variables, x, train=False)


def apply(module, variables, network, x):
  """Inference-mode `module` with `variables[...][network]` (compiled: op-by-op dispatch is slower)."""
  return _inference(module, {"params": variables["params"][network],
                             "batch_stats": variables["batch_stats"][network]}, jnp.asarray(x))


# ----------------------------------------------------------------------------------------------- tests
def test_deconv_kernel_is_flipped_and_transposed():
  torch.manual_seed(0)
  deconv = nn.ConvTranspose2d(8, 5, 4, 2, 1, bias=False)
  x = torch.randn(2, 8, 3, 4)
  kernel = convert_torch._deconv_kernel(deconv.weight.detach().numpy())
  ours = models.head.Deconv4x4(5).apply({"params": {"kernel": jnp.asarray(kernel)}}, jnp.asarray(nhwc(x)))
  assert_close(ours, nhwc(deconv(x)), "ConvTranspose2d(4, 2, 1)")


def test_official_saa_checkpoint_res50_sa(tmp_path):
  g = randomised(ResNet(Bottleneck, [3, 4, 6, 3]), 1)
  t = randomised(HeadNet(2048), 2)
  d = randomised(ConvD(2048, J), 3)
  optimizers = [torch.optim.Adam(net.parameters()).state_dict() for net in (g, t, d)]
  path = tmp_path / "checkpoint_14.pth"  # base_model.save_networks layout
  torch.save({"epoch": 14, "model_nms": ["G", "T"], "models": [g.state_dict(), t.state_dict(), d.state_dict()],
              "optimizers": optimizers}, path)
  convert_torch.main(["--kind", "saa", "--in", str(path), "--out", str(tmp_path / "export")])

  variables, config = checkpoint.load_export(str(tmp_path / "export"))
  assert (config.model.backbone, config.model.num_joints, config.model.depth_bins) == ("res50", J, DEPTH)
  assert (config.adapt.mode_D, config.adapt.n_layers_D, config.adapt.kn_D) == ("SA", 3, 1)
  x = images()
  with torch.no_grad():
    features, heatmaps = g(x), t(g(x))
    scores = d(features)
  backbone, head = models.build_pose_net(config.model)
  ours_features = apply(backbone, variables, "G", nhwc(x))
  assert_close(ours_features, nhwc(features), "features")
  ours_heatmaps = apply(head, variables, "T", ours_features)
  assert_close(ours_heatmaps, channels_last(heatmaps), "heatmaps")
  assert_close(models.soft_argmax(ours_heatmaps), soft_argmax_reference(heatmaps), "soft-argmax coordinates")
  disc = models.build_discriminator(config.model, config.adapt)
  assert_close(apply(disc, variables, "D", ours_features), nhwc(scores), "D scores")


def test_per_network_files_res18_dataparallel_c1(tmp_path):
  g = randomised(ResNet(BasicBlock, [2, 2, 2, 2]), 4)
  t = randomised(HeadNet(512), 5)
  d = randomised(ConvD_C1(512, 1, side=2), 6)
  files = []
  for name, net in [("G", g), ("T", t), ("D", d)]:
    state = {("module." + k if name == "G" else k): v for k, v in net.state_dict().items()}  # DataParallel G
    files.append(str(tmp_path / f"14_net_{name}.pth"))
    torch.save(state, files[-1])
  convert_torch.main(["--kind", "saa", "--in", *files, "--out", str(tmp_path / "export")])

  variables, config = checkpoint.load_export(str(tmp_path / "export"))
  assert (config.model.backbone, config.adapt.mode_D) == ("res18", "C1")
  x = images(1)
  with torch.no_grad():
    features = g(x)
    heatmaps = t(features)
    patch, image = d(features)
  backbone, head = models.build_pose_net(config.model)
  ours_features = apply(backbone, variables, "G", nhwc(x))
  assert_close(ours_features, nhwc(features), "features")
  assert_close(apply(head, variables, "T", ours_features), channels_last(heatmaps), "heatmaps")
  config.eval.flip_test = False  # the evaluation's predict function, as `--mode=eval --export_dir` runs it
  coords = jax.jit(inference.make_predict_fn(config))(variables, {"image": jnp.asarray(nhwc(x))})
  assert_close(coords, soft_argmax_reference(heatmaps), "soft-argmax coordinates")
  ours_patch, ours_image = apply(models.build_discriminator(config.model, config.adapt), variables, "D",
                                 ours_features)
  assert_close(ours_patch, nhwc(patch), "D patch scores")
  assert_close(ours_image, image.numpy(), "D image score")

  # The same G and T as one 3DMPPE snapshot ({"network": module.backbone.* / module.head.*}).
  network = {f"module.backbone.{k}": v for k, v in g.state_dict().items()}
  network |= {f"module.head.{k}": v for k, v in t.state_dict().items()}
  torch.save({"epoch": 14, "network": network, "optimizer": {}}, tmp_path / "snapshot_14.pth.tar")
  snapshot, _, _ = convert_torch.convert("saa", [str(tmp_path / "snapshot_14.pth.tar")])
  for collection in ("params", "batch_stats"):
    for net in ("G", "T"):
      np.testing.assert_equal(snapshot[collection][net], variables[collection][net])


def test_official_spa_checkpoint(tmp_path):
  f = randomised(PAnet(), 7)
  pose_d = randomised(pose_discriminator(), 8)
  path = tmp_path / "ScanAva_Human36M-p2.pth"  # train_PA_GD.py layout
  torch.save({"epoch": 70, "err": np.float64(61.5), "G": f.state_dict(), "D": pose_d.state_dict(),
              "optim_G": torch.optim.Adam(f.parameters()).state_dict(),
              "optim_D": torch.optim.Adam(pose_d.parameters()).state_dict()}, path)
  convert_torch.main(["--kind", "spa", "--in", str(path), "--out", str(tmp_path / "spa")])

  variables, config = checkpoint.load_export(str(tmp_path / "spa"))
  assert sorted(variables) == ["spa"] and config.spa.mode == 2
  poses = np.random.default_rng(0).uniform(0, 64, (8, J, 3)).astype(np.float32)
  with torch.no_grad():
    reference = f(torch.from_numpy(poses.reshape(8, -1))).numpy().reshape(8, J, 3)
  ours = models.SPANet(residual=True).apply(variables["spa"], jnp.asarray(poses), train=False)
  assert_close(ours, reference, "SPA poses")


def test_torchvision_weights_become_the_pretrained_backbone(tmp_path):
  g = randomised(ResNet(BasicBlock, [2, 2, 2, 2], with_fc=True), 9)
  torch.save(g.state_dict(), tmp_path / "resnet18-5c106cde.pth")
  convert_torch.main(["--kind", "resnet", "--in", str(tmp_path / "resnet18-5c106cde.pth"),
                      "--out", str(tmp_path / "res18")])

  backbone = convert_torch.load_pretrained_backbone(str(tmp_path / "res18"))
  x = images(2)
  with torch.no_grad():
    features = g(x)
  assert_close(_inference(models.ResNet("res18"), backbone, jnp.asarray(nhwc(x))), nhwc(features), "features")
  checkpoint.save_export(str(tmp_path / "spa_only"), {"spa": backbone})
  with pytest.raises(ValueError, match="holds no backbone G"):
    convert_torch.load_pretrained_backbone(str(tmp_path / "spa_only"))


def test_wrong_architectures_name_the_first_mismatching_key(tmp_path):
  g = ResNet(BasicBlock, [2, 2, 2, 2])
  g.layer1[0].conv2 = nn.Conv2d(64, 64, 5, 1, 2, bias=False)  # not a torchvision BasicBlock
  state = g.state_dict() | {"layer4.1.se.weight": torch.zeros(4)}
  torch.save(state, tmp_path / "odd.pth")
  with pytest.raises(ValueError, match=r"first mismatching key 'layer1\.0\.conv2\.weight'") as error:
    convert_torch.main(["--kind", "resnet", "--in", str(tmp_path / "odd.pth"), "--out", str(tmp_path / "x")])
  assert "'layer4.1.se.weight'" not in str(error.value) and "layer4.1.se.weight: unexpected key" in str(error.value)

  del state["layer4.1.se.weight"], state["layer1.0.conv2.weight"], state["layer2.0.bn1.running_var"]
  torch.save(state, tmp_path / "incomplete.pth")
  with pytest.raises(ValueError, match=r"(?s)first mismatching key 'layer1\.0\.conv2\.weight'.*"
                                       r"layer2\.0\.bn1\.running_var: missing"):
    convert_torch.convert("resnet", [str(tmp_path / "incomplete.pth")])

  torch.save({"G": PAnet(512).state_dict()}, tmp_path / "narrow_spa.pth")
  with pytest.raises(ValueError, match=r"first mismatching key 'w1\.weight'"):
    convert_torch.convert("spa", [str(tmp_path / "narrow_spa.pth")])

  torch.save(ResNet(BasicBlock, [2, 2, 2, 2]).state_dict(), tmp_path / "only_g.pth")
  with pytest.raises(ValueError, match=r"--kind saa needs networks \['G', 'T'\].*hold \['G'\]"):
    convert_torch.convert("saa", [str(tmp_path / "only_g.pth")])


def test_package_import_does_not_import_torch():
  code = "import sys, ahup_jax.convert_torch; assert 'torch' not in sys.modules"
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120,
                 cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
