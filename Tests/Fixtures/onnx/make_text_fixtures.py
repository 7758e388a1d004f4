#!/usr/bin/env python3
"""ONNX text-model fixture: tinybert/, Hugging Face's BertForSequenceClassification from
transformers' constructor (random weights, torch.manual_seed(37)): vocabulary 100, hidden 32,
2 layers, 2 heads, eager attention, 3 labels. Exported by torch.onnx.export (TorchScript
exporter, opset 17, dynamic batch, constant folding on) with input_ids [N, 16] as the one input.

References, in float64 on the PyTorch model (its float32 weights cast exactly):
  ids.npy        [4, 16] int32, random ids in 1..99 (seeded), with [CLS]-like 2 first
  targets.npy    [4] int32, the model's argmax
  logits.npy     [4, 3]
  lig.npy        [4, 16, 32]: Captum's LayerIntegratedGradients on model.bert.embeddings
                 (the embeddings' output, after their LayerNorm), baseline ids all 0 (the pad
                 token), Gauss-Legendre, 16 steps
  lig_delta.npy  [4]: its convergence deltas
  meta.json      the ONNX value name of the embeddings' output (the layer), onnxruntime's
                 largest relative difference to the float64 logits
  dynamo/        the same model exported by torch.onnx.export(dynamo=True) (opset 18, dynamic
                 batch, weights as external data); meta.json names its embeddings' output too
  vocab.txt      100 made-up tokens ([PAD], [UNK], [CLS], [SEP], [MASK], then w5 … w99), so that
                 `attrib layer-ig` shows tokens beside their scores

Run: pip install torch captum transformers onnx onnxruntime
     python Tests/Fixtures/onnx/make_text_fixtures.py
"""
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
import torch
from captum.attr import LayerIntegratedGradients
from transformers import BertConfig, BertForSequenceClassification

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tinybert")


class Logits(torch.nn.Module):
    def __init__(self, bert):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids):
        return self.bert(input_ids=input_ids).logits


def main():
    torch.manual_seed(37)
    bert = BertForSequenceClassification(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                                    intermediate_size=64, max_position_embeddings=64, num_labels=3,
                                                    attn_implementation="eager")).eval()
    model = Logits(bert).eval()
    ids = np.random.default_rng(37).integers(1, 100, (4, 16)).astype(np.int64)
    ids[:, 0] = 2
    os.makedirs(HERE, exist_ok=True)
    path = os.path.join(HERE, "model.onnx")
    torch.onnx.export(model, (torch.from_numpy(ids),), path, input_names=["input_ids"], output_names=["logits"], opset_version=17,
                      dynamic_axes={"input_ids": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False, do_constant_folding=True)
    proto = onnx.load(path)
    layer = next(n.output[0] for n in proto.graph.node if n.op_type == "LayerNormalization" and "embeddings" in n.name)
    # The other exporter names nodes by op: the embeddings' LayerNorm is the graph's first.
    os.makedirs(os.path.join(HERE, "dynamo"), exist_ok=True)
    dpath = os.path.join(HERE, "dynamo", "model.onnx")
    torch.onnx.export(model, (torch.from_numpy(ids),), dpath, input_names=["input_ids"], output_names=["logits"], opset_version=18,
                      dynamic_shapes=({0: torch.export.Dim("batch", min=1)},), dynamo=True)
    dynamo_layer = next(n.output[0] for n in onnx.load(dpath).graph.node if n.op_type == "LayerNormalization")
    m64 = model.double()
    x = torch.from_numpy(ids)
    with torch.no_grad():
        logits = m64(x)
    rt = ort.InferenceSession(path).run(None, {"input_ids": ids})[0]
    ort_err = float(np.abs(rt - logits.numpy()).max() / np.abs(logits.numpy()).max())
    assert ort_err < 1e-5, ort_err
    rt = ort.InferenceSession(dpath).run(None, {"input_ids": ids})[0]
    ort_dynamo = float(np.abs(rt - logits.numpy()).max() / np.abs(logits.numpy()).max())
    assert ort_dynamo < 1e-5, ort_dynamo
    t = logits.argmax(1)
    lig = LayerIntegratedGradients(m64, m64.bert.bert.embeddings)
    a, delta = lig.attribute(x, baselines=torch.zeros_like(x), target=t, n_steps=16, method="gausslegendre", return_convergence_delta=True)
    np.save(os.path.join(HERE, "ids.npy"), ids.astype(np.int32))
    np.save(os.path.join(HERE, "targets.npy"), t.numpy().astype(np.int32))
    np.save(os.path.join(HERE, "logits.npy"), logits.numpy())
    np.save(os.path.join(HERE, "lig.npy"), a.numpy())
    np.save(os.path.join(HERE, "lig_delta.npy"), delta.numpy())
    with open(os.path.join(HERE, "vocab.txt"), "w") as f:
        f.write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(5, 100)]) + "\n")
    meta = {"layer": layer, "dynamo_layer": dynamo_layer, "dynamo_onnxruntime_max_relative_difference": ort_dynamo,
            "onnxruntime_max_relative_difference": ort_err, "ops": sorted({n.op_type for n in proto.graph.node}),
            "exporter_constant_folding": True}
    with open(os.path.join(HERE, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
    print(meta)


if __name__ == "__main__":
    main()
