#!/usr/bin/env python3
"""ONNX fixtures: small PyTorch models with seeded random weights exported by
torch.onnx.export (the TorchScript exporter, opset 17, a dynamic batch dimension), with
references computed in float64 by PyTorch (the float32 weights cast exactly) and checked
against onnxruntime (float32):

  resmlp/   x [N, 64] -> fc1 -> Tanh -> fc2 -> (+ x) -> ReLU -> fc3 [N, 10]: a skip connection,
            which the Sequential format cannot hold.
  bncnn/    Conv2d 3x3 -> BatchNorm2d (random running statistics) -> ReLU -> MaxPool 2 ->
            Conv2d 3x3 stride 2 -> Sigmoid -> GlobalAveragePool -> Flatten -> Linear(8 -> 10)
            (folding of BatchNormalization into the convolution).
  fieldcnn/ a dilated convolution, max pooling with pads, a grouped convolution followed by
            BatchNormalization (folded into the groups), a depthwise one, average pooling with
            pads and count_include_pad=0.
  tinyresnet/ ResNet-18's op pattern, small (TinyResNet below), on 3x32x32 inputs drawn
            N(0, 1), targets = the digits labels; exported with constant folding on, as users
            export: Identity nodes share folded constants.
  tinymobilenet/ MobileNetV3's op pattern, small (TinyMobileNet below): HardSwish,
            HardSigmoid, a squeeze-and-excitation gate multiplied over the channels, a depthwise
            convolution; the same inputs and export as tinyresnet.
  tinyvit/  Hugging Face's ViTForImageClassification (transformers' constructor, random
            weights): 32x32 images in 8x8 patches, 2 layers, 2 heads, hidden 32, eager
            attention; the exporter's shape arithmetic around the dynamic batch (Shape, Gather,
            Unsqueeze, Concat, ConstantOfShape, Equal, Where, Expand), LayerNormalization, the
            exact GELU as Erf, the class token concatenated and read back by Gather. The same
            inputs and export as tinyresnet.
  tvvit/    torchvision's VisionTransformer (its constructor, random weights; the head, which
            it starts at zero, drawn N(0, 0.5²)): 32x32 images in 8x8 patches, 2 layers, 2 heads,
            hidden 16, MLP 32. Its nn.MultiheadAttention moves
            the batch axis as PyTorch computes it, so it is exported as scripts/export_onnx.py
            exports it (BatchFirstAttention, the same function with the same parameters); the
            references come from the original module. The same inputs and export as tinyresnet.
            tvvit/raw/model.onnx is the module exported directly by the TorchScript exporter:
            the engine follows its moved batch axis (ONNXBatchLayout.swift).
  tinydensenet/ torchvision's DenseNet (its constructor: growth 8, blocks (2, 2), 16 initial
            features; random running statistics in every BatchNorm2d) on 3x32x32: its norms
            read concatenations and follow ReLUs, so no convolution absorbs them. Then pooling
            with ceil_mode (average with and without count_include_pad, where the last window
            hangs past the padding; max), a Linear with a BatchNorm1d after it and another
            after a ReLU (TinyDenseNet below). The same inputs and export as tinyresnet.
  tinymobilenetv2/ torchvision's MobileNetV2 (its constructor, width 0.25, three inverted-residual
            stages) on 3x32x32: ReLU6 as ONNX Clip(0, 6), depthwise convolutions, residual adds.
            The same inputs and export as tinyresnet.
  tinyswin/ torchvision's SwinTransformer (its constructor: patch 4, embedding 16, depths
            (2, 2), heads (2, 2), window 4; random weights) on 3x32x32: windows merged with
            the batch, the shifted window's roll and its attention mask built by the exporter's
            shape arithmetic (ScatterND, Transpose of constants, a reversed Slice), Pad, patch
            merging's strided slices. The same inputs and export as tinyresnet.

Every directory but tinyswin also holds dynamo/model.onnx (+ model.onnx.data): the same module
exported by torch.onnx.export(dynamo=True) (opset 18, a dynamic batch dimension, weights as
external data), checked against onnxruntime like model.onnx; the references are the same. (That
exporter writes Swin's strided slices as a gather indexed by a range over the batch size, which
the engine does not fold.)

Each directory: model.onnx; inputs.npy (the first 4 digits test inputs), targets.npy (labels);
logits.npy [4, 10]; input_grads.npy (d logit[target] / d input) [4, ...]; meta.json with
onnxruntime's largest relative difference to the float64 logits; ig.npy and ig_delta.npy,
Captum's IntegratedGradients in float64 (Gauss-Legendre, 16 steps, zero baseline, target =
label) on the PyTorch model, for attrib's IG on the ONNX file. resmlp/ also holds the
hook references, by the ONNX value names recorded in meta.json:
  capture.npy       the Tanh output                       (forward hook)
  patched.npy       logits with the Tanh output replaced by the corrupt inputs' (forward hook
                    returning the other run's value); corrupt = inputs reversed
  stopped_grads.npy d logit[target] / d input with the gradient at fc2's output zeroed
                    (a tensor hook returning zeros): only the skip path is left
  inner_grads.npy   d logit[target] / d (Tanh output)

Run: pip install -r scripts/requirements-fixtures.txt onnx==1.23.2 onnxruntime transformers
     python Tests/Fixtures/onnx/make_onnx_fixtures.py [NAME ...]   (default: every fixture)
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import torch
from captum.attr import IntegratedGradients
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from export_onnx import batch_first_attention  # noqa: E402  (the export users run)


class ResMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.act, self.fc2, self.relu, self.fc3 = nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)

    def forward(self, x):
        return self.fc3(self.relu(self.fc2(self.act(self.fc1(x))) + x))


def bncnn() -> nn.Sequential:
    bn = nn.BatchNorm2d(8)
    with torch.no_grad():
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.2, 0.2)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), bn, nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.Sigmoid(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 10))


def fieldcnn() -> nn.Sequential:
    bn = nn.BatchNorm2d(8)
    with torch.no_grad():
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=2, dilation=2), nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1),
                         nn.Conv2d(8, 8, 3, padding=1, groups=2), bn, nn.Tanh(), nn.Conv2d(8, 8, 3, padding=1, groups=8),
                         nn.Sigmoid(), nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), nn.Flatten(), nn.Linear(32, 10))


class BasicBlock(nn.Module):
    """torchvision's ResNet block, small: conv3x3-BN-ReLU-conv3x3-BN, + the shortcut (a 1x1
    stride-2 conv with BN where the shape changes), ReLU."""
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.down = None if stride == 1 and cin == cout else \
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(y + (x if self.down is None else self.down(x)))


class TinyResNet(nn.Module):
    """ResNet-18's op pattern at a tenth of its width on 3x32x32 inputs: 7x7 stride-2 stem, BN,
    ReLU, 3x3 stride-2 max pooling, two blocks (the second downsamples), global average
    pooling, a Linear head. Exported with constant folding on (torch.onnx.export's default, as
    users export): BN is folded by the exporter, and identical folded constants (the fresh BNs'
    zero biases) are shared through Identity nodes, as in torchvision's ResNet-18 export."""
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 7, 2, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        self.block1, self.block2 = BasicBlock(8, 8, 1), BasicBlock(8, 16, 2)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.block2(self.block1(self.stem(x)))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class TinyMobileNet(nn.Module):
    """MobileNetV3's op pattern, small: a 3x3 stride-2 stem with Hardswish, an inverted
    residual block (1x1 expand, 3x3 depthwise, squeeze-and-excitation with a Hardsigmoid gate
    multiplied over the channels, 1x1 project, + the input), a 1x1 conv with Hardswish, global
    average pooling, Linear-Hardswish-Linear. BatchNorms with random statistics, folded by the
    exporter (constant folding on)."""
    def __init__(self):
        super().__init__()
        def bn(c):
            b = nn.BatchNorm2d(c)
            with torch.no_grad():
                b.running_mean.uniform_(-0.3, 0.3)
                b.running_var.uniform_(0.5, 1.5)
                b.weight.uniform_(0.5, 1.5)
                b.bias.uniform_(-0.2, 0.2)
            return b
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), bn(8), nn.Hardswish())
        self.expand = nn.Sequential(nn.Conv2d(8, 16, 1, bias=False), bn(16), nn.Hardswish())
        self.dw = nn.Sequential(nn.Conv2d(16, 16, 3, 1, 1, groups=16, bias=False), bn(16), nn.ReLU())
        self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(16, 4, 1), nn.ReLU(), nn.Conv2d(4, 16, 1), nn.Hardsigmoid())
        self.project = nn.Sequential(nn.Conv2d(16, 8, 1, bias=False), bn(8))
        self.last = nn.Sequential(nn.Conv2d(8, 24, 1, bias=False), bn(24), nn.Hardswish())
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(24, 32), nn.Hardswish(), nn.Linear(32, 10))

    def forward(self, x):
        x = self.stem(x)
        y = self.dw(self.expand(x))
        y = self.project(y * self.se(y))
        x = self.last(x + y)
        return self.head(nn.functional.adaptive_avg_pool2d(x, 1))


def tvvit() -> nn.Module:
    from torchvision.models.vision_transformer import VisionTransformer
    m = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32, num_classes=10)
    nn.init.normal_(m.heads.head.weight, std=0.5)     # torchvision starts the head at zero: logits would all be 0
    nn.init.normal_(m.heads.head.bias, std=0.1)
    return m


class TinyViT(nn.Module):
    """transformers' ViTForImageClassification, returning the logits alone."""
    def __init__(self):
        super().__init__()
        from transformers import ViTConfig, ViTForImageClassification
        self.vit = ViTForImageClassification(ViTConfig(image_size=32, patch_size=8, num_channels=3, num_hidden_layers=2,
                                                       num_attention_heads=2, hidden_size=32, intermediate_size=64,
                                                       num_labels=10, attn_implementation="eager"))

    def forward(self, x):
        return self.vit(pixel_values=x).logits


def random_statistics(model: nn.Module) -> nn.Module:
    """Every BatchNorm with running statistics and affine parameters drawn away from the
    identity, so that a norm the engine mishandles shows in the logits."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model


class TinyDenseNet(nn.Module):
    """DenseNet's features (torchvision's constructor), then ceil_mode pooling and a head with
    BatchNorm1d after a Linear and after a ReLU."""
    def __init__(self):
        super().__init__()
        from torchvision.models import DenseNet
        self.features = DenseNet(growth_rate=8, block_config=(2, 2), num_init_features=16, bn_size=2).features   # [C, 4, 4]
        c = self.features.norm5.num_features
        # 4x4 -> 3x3: the last window starts in the padding and hangs one past it.
        self.avg_in = nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=True)
        self.avg_ex = nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
        self.max = nn.MaxPool2d(2, stride=2, ceil_mode=True)                                                  # 3x3 -> 2x2
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * c, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.BatchNorm1d(32), nn.Linear(32, 10))
        random_statistics(self)

    def forward(self, x):
        f = torch.relu(self.features(x))
        return self.head(self.max(self.avg_in(f) + self.avg_ex(f)))


def tinymobilenetv2() -> nn.Module:
    from torchvision.models import MobileNetV2
    return random_statistics(MobileNetV2(num_classes=10, width_mult=0.25,
                                         inverted_residual_setting=[[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 1, 2]]))


def tinyswin() -> nn.Module:
    from torchvision.models.swin_transformer import SwinTransformer
    return SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[2, 2], num_heads=[2, 2], window_size=[4, 4],
                           stochastic_depth_prob=0.0, num_classes=10)


def export(model: nn.Module, x: torch.Tensor, out: str, fold: bool = False) -> onnx.ModelProto:
    """Without constant folding (so BatchNormalization stays a node for the engine to fold),
    unless `fold`."""
    path = os.path.join(out, "model.onnx")
    torch.onnx.export(model, (x,), path, input_names=["input"], output_names=["logits"], opset_version=17,
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False,
                      do_constant_folding=fold)
    return onnx.load(path)


def dynamo_export(model: nn.Module, x: torch.Tensor, out: str) -> None:
    """torch.onnx.export's other exporter (torch.export, then onnxscript): no Shape arithmetic
    around the batch (a -1 in Reshape holds it), ReduceMean for adaptive pooling, bool masks."""
    os.makedirs(out, exist_ok=True)
    torch.onnx.export(model, (x,), os.path.join(out, "model.onnx"), input_names=["input"], output_names=["logits"],
                      opset_version=18, dynamic_shapes=({0: torch.export.Dim("batch", min=1)},), dynamo=True)


def input_grads(model, x, t):
    x = x.clone().requires_grad_(True)
    g, = torch.autograd.grad(model(x).gather(1, t.view(-1, 1)).sum(), x)
    return g


def main() -> None:
    data = os.path.join(ROOT, "Models", "digits-data")
    x32 = np.load(os.path.join(data, "test_inputs.npy")).astype(np.float32)[:4]
    t = np.load(os.path.join(data, "test_labels.npy")).astype(np.int64)[:4]
    tt = torch.from_numpy(t)
    rgb = np.random.default_rng(34).standard_normal((4, 3, 32, 32)).astype(np.float32)
    only = set(sys.argv[1:])
    for name, make, xs in (("resmlp", ResMLP, x32.reshape(4, 64)), ("bncnn", bncnn, x32), ("fieldcnn", fieldcnn, x32),
                           ("tinyresnet", TinyResNet, rgb), ("tinymobilenet", TinyMobileNet, rgb), ("tinyvit", TinyViT, rgb),
                           ("tvvit", tvvit, rgb), ("tinydensenet", TinyDenseNet, rgb), ("tinyswin", tinyswin, rgb),
                           ("tinymobilenetv2", tinymobilenetv2, rgb)):
        if only and name not in only:
            continue
        torch.manual_seed({"resmlp": 31, "bncnn": 32, "fieldcnn": 33, "tinyresnet": 34, "tinymobilenet": 35, "tinyvit": 36,
                           "tvvit": 37, "tinydensenet": 38, "tinyswin": 39, "tinymobilenetv2": 40}[name])
        model = make().eval()
        out = os.path.join(HERE, name)
        os.makedirs(out, exist_ok=True)
        fold = name.startswith("tiny") or name == "tvvit"
        if name == "tvvit":
            # The model as torch.onnx.export writes it, attention moving the batch axis.
            os.makedirs(os.path.join(out, "raw"), exist_ok=True)
            export(model, torch.from_numpy(xs), os.path.join(out, "raw"), fold=True)
        dynamo = name != "tinyswin"
        if dynamo:
            dynamo_export(model, torch.from_numpy(xs), os.path.join(out, "dynamo"))
        proto = export(batch_first_attention(model), torch.from_numpy(xs), out, fold=fold)
        m64 = model.double()
        for p in m64.parameters():
            p.requires_grad_(False)
        x = torch.from_numpy(xs.astype(np.float64))
        with torch.no_grad():
            logits = m64(x)
        rt = ort.InferenceSession(os.path.join(out, "model.onnx")).run(None, {"input": xs})[0]
        ort_err = float(np.abs(rt - logits.numpy()).max() / np.abs(logits.numpy()).max())
        assert ort_err < 1e-5, (name, ort_err)
        ort_dynamo = None
        if dynamo:
            rt = ort.InferenceSession(os.path.join(out, "dynamo", "model.onnx")).run(None, {"input": xs})[0]
            ort_dynamo = float(np.abs(rt - logits.numpy()).max() / np.abs(logits.numpy()).max())
            assert ort_dynamo < 1e-5, (name, ort_dynamo)
        np.save(os.path.join(out, "inputs.npy"), xs)
        np.save(os.path.join(out, "targets.npy"), t.astype(np.int32))
        np.save(os.path.join(out, "logits.npy"), logits.numpy())
        np.save(os.path.join(out, "input_grads.npy"), input_grads(m64, x, tt).numpy())
        ig, delta = IntegratedGradients(m64).attribute(x, baselines=0, target=tt, n_steps=16, method="gausslegendre",
                                                       return_convergence_delta=True)
        np.save(os.path.join(out, "ig.npy"), ig.numpy())
        np.save(os.path.join(out, "ig_delta.npy"), delta.numpy())
        meta = {"onnxruntime_max_relative_difference": ort_err, "dynamo_onnxruntime_max_relative_difference": ort_dynamo, "ops": sorted({n.op_type for n in proto.graph.node}),
                "exporter_constant_folding": fold}
        if name == "resmlp":
            tanh = next(n.output[0] for n in proto.graph.node if n.op_type == "Tanh")
            fc2 = next(n.output[0] for n in proto.graph.node if n.op_type == "Gemm" and "fc2" in n.name)
            meta.update({"capture": tanh, "stop": fc2})
            store = {}
            h = m64.act.register_forward_hook(lambda mod, i, o: store.__setitem__("a", o))
            with torch.no_grad():
                m64(x)
                captured = store["a"].clone()
                m64(x.flip(0))
                corrupt = store["a"].clone()
            h.remove()
            h = m64.act.register_forward_hook(lambda mod, i, o: corrupt)
            with torch.no_grad():
                patched = m64(x)
            h.remove()
            # Stop-gradient at fc2's output: a tensor hook that zeroes its gradient.
            def zero_grad(mod, i, o):
                o.register_hook(lambda g: torch.zeros_like(g))
            h = m64.fc2.register_forward_hook(zero_grad)
            stopped = input_grads(m64, x, tt)
            h.remove()
            # The gradient at the Tanh output.
            def keep(mod, i, o):
                o.retain_grad()
                store["inner"] = o
            h = m64.act.register_forward_hook(keep)
            xi = x.clone().requires_grad_(True)
            m64(xi).gather(1, tt.view(-1, 1)).sum().backward()
            h.remove()
            np.save(os.path.join(out, "capture.npy"), captured.numpy())
            np.save(os.path.join(out, "patched.npy"), patched.numpy())
            np.save(os.path.join(out, "stopped_grads.npy"), stopped.numpy())
            np.save(os.path.join(out, "inner_grads.npy"), store["inner"].grad.numpy())
        with open(os.path.join(out, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1, sort_keys=True)
        print(name, meta)


if __name__ == "__main__":
    main()
