#!/usr/bin/env python3
"""ONNX fixtures of the encoder families users classify text with beyond BERT, each
transformers' *ForSequenceClassification from its constructor (random weights, seeded):
vocabulary 100, hidden 32, 2 layers, 2 heads, intermediate 64, 3 labels, eager attention.
Exported by torch.onnx.export (TorchScript exporter, opset 17, dynamic batch, constant folding
on) with input_ids [N, 16] as the one input, into <name>/:

  roberta     position ids computed from the ids at run time (cumsum(ids != pad) * mask + pad),
              token type ids read from a buffer by them (GatherElements)
  albert      factorised embeddings (16 wide), shared layers, gelu_new (Pow 3 and Tanh)
  mpnet       relative-position buckets (Abs, Log, Min of constants) as attention bias
  deberta     DeBERTa-v2's disentangled attention (relative positions, Where fills)
  modernbert  rotary embeddings (Sin, Cos of positions), Split into q, k, v, GeGLU

References, float64 on the PyTorch model (its float32 weights cast exactly):
  ids.npy       [4, 16] int32: random ids in 5..99 (seeded), the first 2
  targets.npy   [4] int32: the model's argmax
  logits.npy    [4, 3]
  lig.npy       [4, 16, 32]: Captum's LayerIntegratedGradients on the model's embeddings module
                (its output), baseline ids all the pad token, Gauss-Legendre, 16 steps
  lig_delta.npy [4]
  meta.json     the ONNX value of the embeddings' output (the layer), the pad id, onnxruntime's
                largest relative difference to the float64 logits, the ops

Run: pip install torch captum transformers onnx onnxruntime
     python Tests/Fixtures/onnx/encoders/make_encoder_fixtures.py [NAME ...]
"""
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import torch
import transformers as T
from captum.attr import LayerIntegratedGradients

HERE = os.path.dirname(os.path.abspath(__file__))
SIZE = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, num_labels=3,
            attn_implementation="eager")


def families():
    """name -> (config, path of the embeddings module inside the classifier, pad id)."""
    return {
        "roberta": (T.RobertaConfig(max_position_embeddings=40, pad_token_id=1, **SIZE), "roberta.embeddings", 1),
        "albert": (T.AlbertConfig(embedding_size=16, max_position_embeddings=32, pad_token_id=0, **SIZE), "albert.embeddings", 0),
        "mpnet": (T.MPNetConfig(max_position_embeddings=40, pad_token_id=1, **SIZE), "mpnet.embeddings", 1),
        "deberta": (T.DebertaV2Config(max_position_embeddings=32, pad_token_id=0, **SIZE), "deberta.embeddings", 0),
        "modernbert": (T.ModernBertConfig(max_position_embeddings=32, pad_token_id=0, bos_token_id=2, eos_token_id=3, cls_token_id=2,
                                          sep_token_id=3, global_attn_every_n_layers=1, **SIZE), "model.embeddings", 0),
    }


class Logits(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids):
        return self.model(input_ids=input_ids).logits


def module(root, path):
    for part in path.split("."):
        root = getattr(root, part)
    return root


def main():
    only = set(sys.argv[1:])
    for k, (name, (config, emb_path, pad)) in enumerate(families().items()):
        if only and name not in only:
            continue
        torch.manual_seed(60 + k)
        clf = T.AutoModelForSequenceClassification.from_config(config).eval()
        model = Logits(clf).eval()
        ids = np.random.default_rng(60 + k).integers(5, 100, (4, 16)).astype(np.int64)
        ids[:, 0] = 2
        out = os.path.join(HERE, name)
        os.makedirs(out, exist_ok=True)
        path = os.path.join(out, "model.onnx")
        # The embeddings' output: recorded by a hook on the module, found in the file as the
        # value onnxruntime computes equal to it.
        emb = module(clf, emb_path)
        torch.onnx.export(model, (torch.from_numpy(ids),), path, input_names=["input_ids"], output_names=["logits"], opset_version=17,
                          dynamic_axes={"input_ids": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False, do_constant_folding=True)
        proto = onnx.load(path)
        store = {}
        h = emb.register_forward_hook(lambda m, i, o: store.__setitem__("e", o if isinstance(o, torch.Tensor) else o[0]))
        with torch.no_grad():
            model(torch.from_numpy(ids))
        h.remove()
        want = store["e"].numpy()
        probe = onnx.load(path)
        names = [o for n in probe.graph.node for o in n.output if o]
        probe.graph.output.extend([onnx.helper.make_empty_tensor_value_info(o) for o in names])
        values = ort.InferenceSession(probe.SerializeToString()).run(names, {"input_ids": ids})
        layer = next(n for n, v in zip(names, values) if v.shape == want.shape and np.abs(v - want).max() <= 1e-5 * np.abs(want).max())
        m64 = model.double()
        x = torch.from_numpy(ids)
        with torch.no_grad():
            logits = m64(x)
        rt = ort.InferenceSession(path).run(None, {"input_ids": ids})[0]
        ort_err = float(np.abs(rt - logits.numpy()).max() / np.abs(logits.numpy()).max())
        assert ort_err < 1e-5, (name, ort_err)
        t = logits.argmax(1)
        lig = LayerIntegratedGradients(m64, module(m64.model, emb_path))
        a, delta = lig.attribute(x, baselines=torch.full_like(x, pad), target=t, n_steps=16, method="gausslegendre",
                                 return_convergence_delta=True)
        np.save(os.path.join(out, "ids.npy"), ids.astype(np.int32))
        np.save(os.path.join(out, "targets.npy"), t.numpy().astype(np.int32))
        np.save(os.path.join(out, "logits.npy"), logits.numpy())
        np.save(os.path.join(out, "lig.npy"), a.numpy())
        np.save(os.path.join(out, "lig_delta.npy"), delta.numpy())
        meta = {"layer": layer, "pad": pad, "onnxruntime_max_relative_difference": ort_err,
                "ops": sorted({n.op_type for n in proto.graph.node}), "exporter_constant_folding": True}
        with open(os.path.join(out, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1, sort_keys=True)
        print(name, meta)


if __name__ == "__main__":
    main()
