"""The AHuP networks and losses in PyTorch, laid out as the official code (torchvision ResNet, 3DMPPE head, ConvD).

Used by the checkpoint importer's tests (official-layout state_dicts → orbax exports) and by
`benchmarks/torch_side.py` (the same SAA step and SPA epoch in PyTorch, timed beside ours). Needs the optional
`requirements-torch.txt` extra; nothing in `ahup_jax` imports it.
"""
from __future__ import annotations

import torch
from torch import nn

J = 17


class BasicBlock(nn.Module):
  expansion = 1

  def __init__(self, cin, planes, stride, downsample):
    super().__init__()
    self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(planes)
    self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(planes)
    self.downsample = downsample

  def forward(self, x):
    y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
    return torch.relu(y + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
  expansion = 4

  def __init__(self, cin, planes, stride, downsample):
    super().__init__()
    self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(planes)
    self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)  # torchvision v1.5: stride on the 3x3
    self.bn2 = nn.BatchNorm2d(planes)
    self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
    self.bn3 = nn.BatchNorm2d(planes * 4)
    self.downsample = downsample

  def forward(self, x):
    y = torch.relu(self.bn1(self.conv1(x)))
    y = self.bn3(self.conv3(torch.relu(self.bn2(self.conv2(y)))))
    return torch.relu(y + (x if self.downsample is None else self.downsample(x)))


STAGES = {"res18": (BasicBlock, (2, 2, 2, 2)), "res34": (BasicBlock, (3, 4, 6, 3)),
          "res50": (Bottleneck, (3, 4, 6, 3)), "res101": (Bottleneck, (3, 4, 23, 3)),
          "res152": (Bottleneck, (3, 8, 36, 3))}


class ResNet(nn.Module):
  """torchvision layout without avgpool; `fc` only for the ImageNet-file test (forward never uses it)."""

  def __init__(self, block, layers, with_fc=False):
    super().__init__()
    self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
    self.bn1 = nn.BatchNorm2d(64)
    cin = 64
    for stage, (planes, count) in enumerate(zip((64, 128, 256, 512), layers), start=1):
      blocks = []
      for i in range(count):
        stride = 2 if (i == 0 and stage > 1) else 1
        downsample = None
        if stride != 1 or cin != planes * block.expansion:
          downsample = nn.Sequential(nn.Conv2d(cin, planes * block.expansion, 1, stride, bias=False),
                                     nn.BatchNorm2d(planes * block.expansion))
        blocks.append(block(cin, planes, stride, downsample))
        cin = planes * block.expansion
      setattr(self, f"layer{stage}", nn.Sequential(*blocks))
    self.out_channels = cin
    if with_fc:
      self.fc = nn.Linear(cin, 1000)

  def forward(self, x):
    x = nn.functional.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 3, 2, 1)
    return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def resnet(backbone: str, with_fc: bool = False) -> ResNet:
  block, layers = STAGES[backbone]
  return ResNet(block, layers, with_fc)


class HeadNet(nn.Module):
  """3DMPPE's head: 3 × [ConvTranspose 4x4/2, BN, ReLU] + 1x1 conv to J·depth channels ([B, J·D, H, W] logits)."""

  def __init__(self, cin, depth=64):
    super().__init__()
    layers = []
    for _ in range(3):
      layers += [nn.ConvTranspose2d(cin, 256, 4, 2, 1, output_padding=0, bias=False), nn.BatchNorm2d(256),
                 nn.ReLU()]
      cin = 256
    self.deconv_layers = nn.Sequential(*layers)
    self.final_layer = nn.Conv2d(256, J * depth, 1)

  def forward(self, x):
    return self.final_layer(self.deconv_layers(x))


def conv_d_trunk(cin, ndf, n_layers, k):
  layers, mult = [nn.Conv2d(cin, ndf, k, 1, (k - 1) // 2), nn.LeakyReLU(0.2)], 1
  for n in range(1, n_layers):
    prev, mult = mult, min(2**n, 8)
    layers += [nn.Conv2d(ndf * prev, ndf * mult, k, 1, (k - 1) // 2), nn.BatchNorm2d(ndf * mult), nn.LeakyReLU(0.2)]
  return layers, mult


class ConvD(nn.Module):
  def __init__(self, cin, ch_out, n_layers=3, k=1, ndf=64):
    super().__init__()
    layers, mult = conv_d_trunk(cin, ndf, n_layers, k)
    self.model = nn.Sequential(*layers, nn.Conv2d(ndf * mult, ch_out, k, 1, (k - 1) // 2))

  def forward(self, x):
    return self.model(x)


class ConvD_C1(nn.Module):  # noqa: N801 (official class name)
  def __init__(self, cin, ch_out, side, n_layers=3, k=1, ndf=64):
    super().__init__()
    layers, mult = conv_d_trunk(cin, ndf, n_layers, k)
    layers += [nn.Conv2d(ndf * mult, ndf, k, 1, (k - 1) // 2), nn.BatchNorm2d(ndf), nn.LeakyReLU(0.2)]
    self.bb_D = nn.Sequential(*layers)
    self.head_C1 = nn.Sequential(nn.Linear(ndf * side * side, 20), nn.BatchNorm1d(20), nn.LeakyReLU(0.2),
                                 nn.Linear(20, 1))
    self.head_pch = nn.Conv2d(ndf, ch_out, k, 1, (k - 1) // 2)

  def forward(self, x):
    features = self.bb_D(x)
    return self.head_pch(features), self.head_C1(features.flatten(1))


class PAnet(nn.Module):
  """SPA f, mode 2: 51 → 1024 → 2 residual blocks → 51, plus the input (dropout 0.5 after each ReLU)."""

  class Stage(nn.Module):
    def __init__(self, size, dropout):
      super().__init__()
      self.w1, self.batch_norm1 = nn.Linear(size, size), nn.BatchNorm1d(size)
      self.w2, self.batch_norm2 = nn.Linear(size, size), nn.BatchNorm1d(size)
      self.dropout = nn.Dropout(dropout)

    def forward(self, x):
      y = self.dropout(torch.relu(self.batch_norm1(self.w1(x))))
      return x + self.dropout(torch.relu(self.batch_norm2(self.w2(y))))

  def __init__(self, size=1024, dropout=0.5):
    super().__init__()
    self.w1, self.batch_norm1 = nn.Linear(J * 3, size), nn.BatchNorm1d(size)
    self.linear_stages = nn.ModuleList([PAnet.Stage(size, dropout) for _ in range(2)])
    self.w2 = nn.Linear(size, J * 3)
    self.dropout = nn.Dropout(dropout)

  def forward(self, x):
    y = self.dropout(torch.relu(self.batch_norm1(self.w1(x))))
    for stage in self.linear_stages:
      y = stage(y)
    return self.w2(y) + x


def soft_argmax(logits: torch.Tensor, depth: int) -> torch.Tensor:
  """[B, J·D, H, W] logits → [B, J, 3] (x, y, z) expectations over indices 0..size−1 (SPEC §2.4)."""
  b, _, h, w = logits.shape
  p = torch.softmax(logits.reshape(b, J, -1), -1).reshape(b, J, depth, h, w)
  xs = (p.sum((2, 3)) * torch.arange(w, dtype=p.dtype)).sum(-1)
  ys = (p.sum((2, 4)) * torch.arange(h, dtype=p.dtype)).sum(-1)
  zs = (p.sum((3, 4)) * torch.arange(depth, dtype=p.dtype)).sum(-1)
  return torch.stack([xs, ys, zs], -1)


def coord_loss(pred, target, vis, have_depth, z_on: float):
  """SPEC §3.1: mean over B·J of (|Δx|v + |Δy|v + |Δz|·v·h·ζ) / 3."""
  weight = torch.stack([vis, vis, vis * have_depth[:, None] * z_on], -1)
  return ((pred - target).abs() * weight).sum(-1).div(3.0).mean()


def sa_lsgan_loss(scores, cells, targets, weights):
  """SA criterion (SPEC §3.3): Σ over samples and joints of (D at the joint's cell − target)² ÷ J.

  scores [B, J, h, w]; cells [B, J, 2] (row, col; −1 none); targets, weights [B]."""
  b, j = cells.shape[:2]
  valid = (cells >= 0).all(-1).float()
  rows, cols = cells[..., 0].clamp(min=0), cells[..., 1].clamp(min=0)
  values = scores[torch.arange(b)[:, None], torch.arange(j)[None, :], rows, cols]
  return (((values - targets[:, None]) ** 2) * valid * weights[:, None]).sum() / j
