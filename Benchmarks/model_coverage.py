#!/usr/bin/env python3
"""Which models users bring load, and give PyTorch's numbers: torchvision's classifiers and
Hugging Face's sequence classifiers (random weights from the libraries' constructors), each
exported by torch.onnx.export (the TorchScript exporter, opset 17, dynamic batch, as
scripts/export_onnx.py exports), loaded by `attrib predict` and `attrib saliency --signed`
(vision) on 2 inputs, and compared with the module in float64:

  probs   max |p_attrib - p_torch64| / max p
  grad    the input gradient of logit 0 (vision): attrib's and PyTorch float32's largest
          error relative to the float64 gradient's largest entry, and the share of entries
          off by more than 1e-4 of it. A ReLU network's gradient jumps where a pre-activation
          crosses 0, and float32 rounding moves a few near-zero ones across: either side can
          show a jump (a block of entries off by 1e-3..1e-1) on a few units among millions,
          which is why both sides are printed.

A model that does not load prints attrib's error (the node, the op, why). Models are built in
the order given, each after torch.manual_seed(0).

Run: python3 Benchmarks/model_coverage.py [--attrib BIN] [--vision a,b] [--text a,b] [--size 224] [--dynamo]
(--dynamo: the other exporter, torch.onnx.export(dynamo=True), opset 18; the default exporter of
recent PyTorch)
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from export_onnx import batch_first_attention  # noqa: E402

VISION = ["resnet18", "resnet50", "wide_resnet50_2", "resnext50_32x4d", "vgg11", "densenet121", "squeezenet1_1", "googlenet",
          "inception_v3", "mobilenet_v2", "mobilenet_v3_small", "mnasnet0_5", "shufflenet_v2_x1_0", "efficientnet_b0",
          "efficientnet_v2_s", "regnet_y_400mf", "convnext_tiny", "vit_b_16", "swin_t", "maxvit_t"]
TEXT = ["bert", "distilbert", "roberta", "xlm_roberta", "albert", "electra", "mpnet", "deberta_v2", "modernbert", "gpt2", "llama"]


def text_config(name):
    import transformers as T
    small = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, vocab_size=1000,
                 max_position_embeddings=128, num_labels=5)
    dec = dict(pad_token_id=0, attn_implementation="eager")
    return {
        "bert": lambda: T.BertConfig(**small),
        "distilbert": lambda: T.DistilBertConfig(dim=64, n_layers=2, n_heads=4, hidden_dim=128, vocab_size=1000, max_position_embeddings=128, num_labels=5),
        "roberta": lambda: T.RobertaConfig(**small),
        "xlm_roberta": lambda: T.XLMRobertaConfig(**small),
        "albert": lambda: T.AlbertConfig(embedding_size=32, **small),
        "electra": lambda: T.ElectraConfig(embedding_size=32, **small),
        "mpnet": lambda: T.MPNetConfig(**small),
        "deberta_v2": lambda: T.DebertaV2Config(**small),
        "modernbert": lambda: T.ModernBertConfig(pad_token_id=0, bos_token_id=1, eos_token_id=2, cls_token_id=1, sep_token_id=2, **small),
        "gpt2": lambda: T.GPT2Config(n_embd=64, n_layer=2, n_head=4, vocab_size=1000, n_positions=128, num_labels=5, pad_token_id=0),
        "llama": lambda: T.LlamaConfig(num_key_value_heads=2, **small, **dec),
    }[name]()


DYNAMO = False     # --dynamo: torch.onnx.export(dynamo=True), opset 18, the batch a dynamic dimension


def export(model, x, path, names):
    if DYNAMO:
        torch.onnx.export(model, (x,), path, input_names=[names[0]], output_names=["logits"], opset_version=18,
                          dynamic_shapes=({0: torch.export.Dim("batch", min=1)},), dynamo=True)
        return
    torch.onnx.export(batch_first_attention(model), (x,), path, input_names=[names[0]], output_names=["logits"], opset_version=17,
                      dynamic_axes={names[0]: {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)


def attrib(binary, args):
    r = subprocess.run([binary] + args, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError((r.stderr.strip() or r.stdout.strip()).splitlines()[-1][:400])
    return r.stdout


def softmax64(logits):
    return torch.softmax(logits.double().reshape(logits.shape[0], -1), 1).numpy()


def vision(name, binary, size, tmp):
    import torchvision
    torch.manual_seed(0)
    kw = {"aux_logits": False, "init_weights": True} if name in ("googlenet", "inception_v3") else {}
    s = 299 if name == "inception_v3" else size
    model = getattr(torchvision.models, name)(weights=None, **kw).eval()
    if name.startswith("vit_"):
        torch.nn.init.normal_(model.heads.head.weight, std=0.02)    # torchvision starts the head at zero: no gradient
    x = torch.randn(2, 3, s, s)
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    export(model, torch.zeros(2, 3, s, s), os.path.join(d, "model.onnx"), ["input"])
    np.save(os.path.join(d, "x.npy"), x.numpy())
    m64 = copy.deepcopy(model).double()
    x64 = x.double().requires_grad_(True)
    out64 = m64(x64)
    out64[:, 0].sum().backward()
    g64 = x64.grad.numpy()
    x32 = x.clone().requires_grad_(True)
    model(x32)[:, 0].sum().backward()
    g32 = x32.grad.double().numpy()
    probs = np.array([p["probabilities"] for p in json.loads(attrib(binary, ["predict", "--device", "cpu", "--model", d, "--inputs", os.path.join(d, "x.npy"), "--json"]))])
    ref = softmax64(out64.detach())
    attrib(binary, ["saliency", "--device", "cpu", "--model", d, "--inputs", os.path.join(d, "x.npy"), "--target", "0", "--signed",
                    "--out", os.path.join(d, "sal"), "--force", "--no-heatmaps", "--quiet"])
    g = np.load(os.path.join(d, "sal", "attributions.npy")).reshape(g64.shape)
    scale = np.abs(g64).max()
    ea, et = np.abs(g - g64) / scale, np.abs(g32 - g64) / scale
    return (f"probs {np.abs(probs - ref).max() / ref.max():.1e}  grad: attrib {ea.max():.1e} ({(ea > 1e-4).mean() * 100:.2f}% > 1e-4)"
            f"  torch32 {et.max():.1e} ({(et > 1e-4).mean() * 100:.2f}%)")


def text(name, binary, tmp):
    import transformers as T
    torch.manual_seed(0)
    clf = T.AutoModelForSequenceClassification.from_config(text_config(name)).eval()

    class Logits(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = clf

        def forward(self, ids):
            return self.m(input_ids=ids).logits
    model = Logits().eval()
    ids = torch.randint(3, 1000, (2, 16))
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    export(model, ids, os.path.join(d, "model.onnx"), ["input_ids"])
    np.save(os.path.join(d, "ids.npy"), ids.numpy())
    with torch.no_grad():
        ref = softmax64(copy.deepcopy(model).double()(ids))
    probs = np.array([p["probabilities"] for p in json.loads(attrib(binary, ["predict", "--device", "cpu", "--model", d, "--inputs", os.path.join(d, "ids.npy"), "--json"]))])
    return f"probs {np.abs(probs - ref).max() / ref.max():.1e}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--attrib", default=os.path.join(ROOT, ".build", "release", "attrib"))
    ap.add_argument("--vision", default=",".join(VISION))
    ap.add_argument("--text", default=",".join(TEXT))
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--dynamo", action="store_true", help="export with torch.onnx.export(dynamo=True) (opset 18) instead")
    a = ap.parse_args()
    global DYNAMO
    DYNAMO = a.dynamo
    import transformers
    import torchvision
    print(f"attrib {attrib(a.attrib, ['--version']).strip()}; torch {torch.__version__}, torchvision {torchvision.__version__}, "
          f"transformers {transformers.__version__}; exporter: {'dynamo (opset 18)' if a.dynamo else 'TorchScript (opset 17)'}")
    with tempfile.TemporaryDirectory() as tmp:
        for kind, names, run in (("vision", a.vision, lambda n: vision(n, a.attrib, a.size, tmp)), ("text", a.text, lambda n: text(n, a.attrib, tmp))):
            for name in [n for n in names.split(",") if n]:
                t = time.time()
                try:
                    line = "ok    " + run(name)
                except RuntimeError as e:
                    line = f"FAILS {e}"
                except Exception as e:  # the export itself (PyTorch's exporter)
                    line = f"EXPORT {type(e).__name__}: {str(e).splitlines()[0][:200]}"
                print(f"{kind:6} {name:20} {line}  ({time.time() - t:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
