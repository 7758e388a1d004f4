#!/usr/bin/env python3
"""Export a PyTorch ``nn.Sequential`` to an Attrib model directory.

Makes ``OUT_DIR/config.json`` and ``OUT_DIR/model.safetensors`` in the
``attrib-sequential`` format described in ``docs/model-format.md``.

As a module::

    from export_torch import export, load
    export(model, input_shape=[1, 8, 8], out_dir="Models/my-model", labels=None)
    model2, config = load("Models/my-model")      # rebuilds the nn.Sequential

From the command line (the model file holds a whole pickled ``nn.Sequential``
saved with ``torch.save(model, path)``)::

    python scripts/export_torch.py MODEL.pt OUT_DIR --input-shape 1 8 8 [--labels a b c]
    python scripts/export_torch.py --check OUT_DIR     # reload a directory, run it

Requirements: ``pip install -r scripts/requirements-fixtures.txt``.

Only these layers are supported: Linear, Conv2d (with dilation and groups), ReLU, ReLU6,
MaxPool2d and AvgPool2d (with padding and ceil_mode),
Flatten, LayerNorm, GELU, Tanh, Sigmoid, Softplus, Embedding, Softmax,
LogSoftmax (with the restrictions in docs/model-format.md). Anything else makes
``export`` raise ``ValueError`` naming the layer index and the setting.

Before that, ``simplify`` rewrites what evaluation mode makes redundant, and says
so in a note per change: Dropout (every kind) and Identity are the identity in
eval mode and are dropped; BatchNorm1d/BatchNorm2d right after a Linear or Conv2d
is folded into it with its running statistics (w' = w·γ/√(σ²+ε),
b' = (b − μ)·γ/√(σ²+ε) + β). A BatchNorm anywhere else is an error naming it.

A file that holds a state_dict (weights without the architecture), or a model
whose class lives in the user's own script, gets a message with the fix
(``--import`` names the module that defines the class).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from typing import Any, Sequence

import torch
from torch import nn
from safetensors.torch import load_file, save_file

FORMAT = "attrib-sequential"
VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


# --------------------------------------------------------------------------
# helpers


def _pair(v: Any, idx: int, name: str, what: str) -> list[int]:
    if isinstance(v, int):
        return [v, v]
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(x, int) for x in v):
        return [int(v[0]), int(v[1])]
    raise ValueError(f"layer {idx} ({name}): unsupported {what}={v!r} (need an int or a pair of ints)")


def _err(idx: int, layer: nn.Module, msg: str) -> ValueError:
    return ValueError(f"layer {idx} ({type(layer).__name__}): unsupported setting: {msg}")


def _conv_padding(idx: int, layer: nn.Conv2d, kernel: list[int]) -> list[int]:
    p = layer.padding
    if isinstance(p, str):
        if p == "valid":
            return [0, 0]
        if p == "same":
            if any(k % 2 == 0 for k in kernel):
                raise _err(idx, layer, "padding='same' with an even kernel size (asymmetric padding)")
            return [(k - 1) // 2 for k in kernel]
        raise _err(idx, layer, f"padding={p!r}")
    return _pair(p, idx, "Conv2d", "padding")


def _layer_config(idx: int, layer: nn.Module, in_shape: tuple[int, ...]) -> dict:
    """Config entry of one layer. ``in_shape`` is the batched input shape of the layer."""
    t = type(layer)
    if t is nn.Linear:
        return {"type": "Linear", "in_features": layer.in_features,
                "out_features": layer.out_features, "bias": layer.bias is not None}
    if t is nn.Conv2d:
        kernel = _pair(layer.kernel_size, idx, "Conv2d", "kernel_size")
        stride = _pair(layer.stride, idx, "Conv2d", "stride")
        dil = _pair(layer.dilation, idx, "Conv2d", "dilation")
        if layer.padding_mode != "zeros":
            raise _err(idx, layer, f"padding_mode={layer.padding_mode!r} (only 'zeros')")
        if getattr(layer, "transposed", False) or any(getattr(layer, "output_padding", (0, 0))):
            raise _err(idx, layer, "transposed convolution")
        padding = _conv_padding(idx, layer, [d * (k - 1) + 1 for d, k in zip(dil, kernel)])
        out = {"type": "Conv2d", "in_channels": layer.in_channels,
               "out_channels": layer.out_channels, "kernel_size": kernel,
               "stride": stride, "padding": padding, "bias": layer.bias is not None}
        if dil != [1, 1]:
            out["dilation"] = dil
        if layer.groups != 1:
            out["groups"] = layer.groups
        return out
    if t in (nn.MaxPool2d, nn.AvgPool2d):
        name = t.__name__
        kernel = _pair(layer.kernel_size, idx, name, "kernel_size")
        stride = kernel if layer.stride is None or layer.stride == () else _pair(layer.stride, idx, name, "stride")
        padding = _pair(layer.padding, idx, name, "padding")
        if t is nn.MaxPool2d:
            if _pair(layer.dilation, idx, name, "dilation") != [1, 1]:
                raise _err(idx, layer, f"dilation={layer.dilation!r} (only 1)")
            if layer.return_indices:
                raise _err(idx, layer, "return_indices=True")
        else:
            if layer.divisor_override is not None:
                raise _err(idx, layer, f"divisor_override={layer.divisor_override!r} (only None)")
        out = {"type": name, "kernel_size": kernel, "stride": stride}
        if padding != [0, 0]:
            out["padding"] = padding
        if t is nn.AvgPool2d and (padding != [0, 0] or layer.ceil_mode):
            out["count_include_pad"] = bool(layer.count_include_pad)    # ceil_mode's last window may reach the padding
        if layer.ceil_mode:
            out["ceil_mode"] = True
        return out
    if t is nn.Flatten:
        if layer.start_dim != 1 or layer.end_dim != -1:
            raise _err(idx, layer, f"start_dim={layer.start_dim}, end_dim={layer.end_dim} (only 1, -1)")
        return {"type": "Flatten"}
    if t is nn.ReLU:
        return {"type": "ReLU"}
    if t is nn.ReLU6:
        return {"type": "ReLU6"}
    if t is nn.Tanh:
        return {"type": "Tanh"}
    if t is nn.Sigmoid:
        return {"type": "Sigmoid"}
    if t is nn.GELU:
        if layer.approximate not in ("none", "tanh"):
            raise _err(idx, layer, f"approximate={layer.approximate!r}")
        return {"type": "GELU", "approximate": layer.approximate}
    if t is nn.Softplus:
        if layer.beta != 1 or layer.threshold != 20:
            raise _err(idx, layer, f"beta={layer.beta}, threshold={layer.threshold} (only beta=1, threshold=20)")
        return {"type": "Softplus"}
    if t is nn.LayerNorm:
        shape = [int(s) for s in layer.normalized_shape]
        if tuple(in_shape[len(in_shape) - len(shape):]) != tuple(shape) or len(shape) >= len(in_shape):
            raise _err(idx, layer, f"normalized_shape={shape} does not match the trailing dimensions "
                                   f"of its input (batched shape {list(in_shape)})")
        if layer.elementwise_affine and layer.bias is None:
            raise _err(idx, layer, "elementwise_affine=True with bias=False")
        return {"type": "LayerNorm", "normalized_shape": shape, "eps": float(layer.eps),
                "elementwise_affine": bool(layer.elementwise_affine)}
    if t is nn.Embedding:
        if idx != 0:
            raise _err(idx, layer, "Embedding anywhere but layer 0")
        if layer.max_norm is not None:
            raise _err(idx, layer, f"max_norm={layer.max_norm} (only None)")
        # padding_idx and scale_grad_by_freq only change the weight gradient,
        # not the forward pass or gradients w.r.t. activations: ignored.
        return {"type": "Embedding", "num_embeddings": layer.num_embeddings,
                "embedding_dim": layer.embedding_dim}
    if t in (nn.Softmax, nn.LogSoftmax):
        d = layer.dim
        rank = len(in_shape)
        if d is None:
            raise _err(idx, layer, "dim=None (set dim=-1 explicitly)")
        if not (d == -1 or d == rank - 1):
            raise _err(idx, layer, f"dim={d} on a {rank}-D batched input (only the last dimension)")
        return {"type": t.__name__, "dim": -1}
    raise ValueError(f"layer {idx} ({t.__name__}): unsupported layer type")


_PARAMS = {
    "Linear": lambda c: ["weight"] + (["bias"] if c["bias"] else []),
    "Conv2d": lambda c: ["weight"] + (["bias"] if c["bias"] else []),
    "LayerNorm": lambda c: ["weight", "bias"] if c["elementwise_affine"] else [],
    "Embedding": lambda c: ["weight"],
}


def _example_input(layers_cfg: list[dict], input_shape: Sequence[int], batch: int,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    shape = [batch] + list(input_shape)
    if layers_cfg and layers_cfg[0]["type"] == "Embedding":
        return torch.randint(0, layers_cfg[0]["num_embeddings"], shape, generator=generator)
    return torch.randn(shape, generator=generator)


def _format_config(cfg: dict) -> str:
    """JSON with one layer per line (stable, diff-friendly)."""
    lines = ["{"]
    items = list(cfg.items())
    for k, (key, value) in enumerate(items):
        comma = "," if k < len(items) - 1 else ""
        if key == "layers":
            lines.append('  "layers": [')
            for j, layer in enumerate(value):
                lc = "," if j < len(value) - 1 else ""
                lines.append("    " + json.dumps(layer) + lc)
            lines.append("  ]" + comma)
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# simplify: what eval mode makes redundant

_DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)
_BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d)


def _fold_batchnorm(prev: nn.Module, bn: nn.Module) -> nn.Module:
    """A copy of ``prev`` (Linear or Conv2d) with ``bn`` (eval statistics) folded into it."""
    if not bn.track_running_stats or bn.running_mean is None:
        raise ValueError("track_running_stats=False (batch statistics at inference): nothing to fold")
    with torch.no_grad():
        scale = (bn.weight if bn.affine else torch.ones_like(bn.running_var)) / torch.sqrt(bn.running_var + bn.eps)
        shift = (bn.bias if bn.affine else torch.zeros_like(bn.running_mean)) - bn.running_mean * scale
        out = copy.deepcopy(prev)
        if out.weight.shape[0] != scale.shape[0]:
            raise ValueError(f"{bn.num_features} features after a layer with {out.weight.shape[0]} outputs")
        out.weight.mul_(scale.reshape([-1] + [1] * (out.weight.dim() - 1)).to(out.weight.dtype))
        bias = out.bias if out.bias is not None else torch.zeros(out.weight.shape[0], dtype=out.weight.dtype)
        new_bias = bias * scale + shift
        out.bias = nn.Parameter(new_bias.to(out.weight.dtype))
    return out


def simplify(model: nn.Sequential) -> tuple[nn.Sequential, list[str]]:
    """``model`` without the layers eval mode makes redundant, and a note per change.

    Dropout and Identity are dropped; a BatchNorm1d/2d right after a Linear/Conv2d is
    folded into it. The layer indices in the notes are ``model``'s."""
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"model must be an nn.Sequential, got {type(model).__name__}")
    layers: list[nn.Module] = []
    origin: list[int] = []           # index in ``model`` of each kept layer
    notes: list[str] = []
    for idx, layer in enumerate(model):
        name = type(layer).__name__
        if isinstance(layer, _DROPOUT) or type(layer) is nn.Identity:
            notes.append(f"layer {idx} ({name}) dropped: the identity in eval mode")
            continue
        if isinstance(layer, _BATCHNORM):
            prev = layers[-1] if layers else None
            ok = (type(prev) is nn.Linear and isinstance(layer, nn.BatchNorm1d)) or \
                 (type(prev) is nn.Conv2d and isinstance(layer, nn.BatchNorm2d))
            if not ok:
                where = f"after layer {origin[-1]} ({type(prev).__name__})" if prev is not None else "first"
                raise ValueError(f"layer {idx} ({name}) comes {where}: a BatchNorm is folded only into the "
                                 f"Linear (BatchNorm1d) or Conv2d (BatchNorm2d) right before it")
            try:
                layers[-1] = _fold_batchnorm(prev, layer)
            except ValueError as e:
                raise ValueError(f"layer {idx} ({name}): cannot fold into layer {origin[-1]}: {e}") from e
            notes.append(f"layer {idx} ({name}) folded into layer {origin[-1]} ({type(prev).__name__}) "
                         f"with its running statistics")
            continue
        layers.append(layer)
        origin.append(idx)
    return nn.Sequential(*layers).eval(), notes


# --------------------------------------------------------------------------
# export / load


def describe(model: nn.Sequential, input_shape: Sequence[int]) -> tuple[list[dict], list[list[int]]]:
    """Layer configs and per-layer output shapes (per sample). Raises ValueError if unsupported."""
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"model must be an nn.Sequential, got {type(model).__name__}")
    input_shape = [int(s) for s in input_shape]
    if not input_shape or any(s <= 0 for s in input_shape):
        raise ValueError(f"input_shape must be a non-empty list of positive ints, got {input_shape}")
    layers_cfg: list[dict] = []
    shapes: list[list[int]] = []
    first = model[0] if len(model) else None
    with torch.no_grad():
        if isinstance(first, nn.Embedding):
            x = torch.randint(0, first.num_embeddings, [2] + input_shape)
        else:
            p = next(model.parameters(), None)
            x = torch.randn([2] + input_shape, dtype=p.dtype if p is not None else torch.float32)
        for idx, layer in enumerate(model):
            layers_cfg.append(_layer_config(idx, layer, tuple(x.shape)))
            try:
                x = layer(x)
            except Exception as e:  # shape mismatch etc.
                raise ValueError(f"layer {idx} ({type(layer).__name__}): forward pass failed on "
                                 f"input of batched shape {list(x.shape)}: {e}") from e
            shapes.append(list(x.shape[1:]))
    return layers_cfg, shapes


def export(model: nn.Sequential, input_shape: Sequence[int], out_dir: str,
           labels: Sequence[str] | None = None) -> dict:
    """Write ``out_dir/config.json`` and ``out_dir/model.safetensors``; return the config dict.

    The directory is validated afterwards: it is loaded back and run on a
    random input of ``input_shape``; the outputs must match ``model``'s.
    """
    original = model.eval()
    model, notes = simplify(original)
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    input_shape = [int(s) for s in input_shape]
    layers_cfg, shapes = describe(model, input_shape)
    out_shape = shapes[-1] if shapes else input_shape

    # Tensors: exactly the state_dict (no buffers allowed), as contiguous F32.
    sd = model.state_dict()
    expected = []
    for idx, c in enumerate(layers_cfg):
        for pname in _PARAMS.get(c["type"], lambda c: [])(c):
            expected.append(f"{idx}.{pname}")
    if sorted(sd.keys()) != sorted(expected):
        extra = sorted(set(sd) - set(expected))
        missing = sorted(set(expected) - set(sd))
        raise ValueError(f"state_dict names do not match the layers: unexpected {extra}, missing {missing}")
    tensors = {k: sd[k].detach().to(device="cpu", dtype=torch.float32).contiguous().clone() for k in expected}
    for k, v in tensors.items():
        if not torch.isfinite(v).all():
            raise ValueError(f"tensor {k} has non-finite values")

    cfg: dict[str, Any] = {"format": FORMAT, "version": VERSION,
                           "input_shape": input_shape, "layers": layers_cfg}
    if labels is not None:
        labels = [str(s) for s in labels]
        if len(out_shape) != 1 or out_shape[0] != len(labels):
            raise ValueError(f"{len(labels)} labels given but the model's output per sample has shape {out_shape}")
        cfg["labels"] = labels

    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, CONFIG_NAME), "w") as f:
        f.write(_format_config(cfg))
    weights_path = os.path.join(out_dir, WEIGHTS_NAME)
    save_file(tensors, weights_path, metadata={"format": FORMAT})
    os.chmod(weights_path, 0o644)  # safetensors creates it 0600

    # Validate: reload, run both on the same random input.
    reloaded, _ = load(out_dir)
    g = torch.Generator().manual_seed(0)
    x = _example_input(layers_cfg, input_shape, 3, g)
    with torch.no_grad():
        ref = copy.deepcopy(original).float()(x)         # the user's model, before simplify
        got = reloaded(x)
    if ref.shape != got.shape or not torch.allclose(ref, got, rtol=1e-5, atol=1e-6):
        raise RuntimeError(f"validation failed: reloaded model differs from the original in {out_dir}")
    if not torch.isfinite(got).all():
        raise RuntimeError(f"validation failed: non-finite output in {out_dir}")
    return cfg


def _build_layer(c: dict) -> nn.Module:
    t = c["type"]
    if t == "Linear":
        return nn.Linear(c["in_features"], c["out_features"], bias=c["bias"])
    if t == "Conv2d":
        return nn.Conv2d(c["in_channels"], c["out_channels"], tuple(c["kernel_size"]),
                         stride=tuple(c["stride"]), padding=tuple(c["padding"]), bias=c["bias"],
                         dilation=tuple(c.get("dilation", [1, 1])), groups=c.get("groups", 1))
    if t == "MaxPool2d":
        return nn.MaxPool2d(tuple(c["kernel_size"]), stride=tuple(c["stride"]), padding=tuple(c.get("padding", [0, 0])),
                            ceil_mode=c.get("ceil_mode", False))
    if t == "AvgPool2d":
        return nn.AvgPool2d(tuple(c["kernel_size"]), stride=tuple(c["stride"]), padding=tuple(c.get("padding", [0, 0])),
                            count_include_pad=c.get("count_include_pad", True), ceil_mode=c.get("ceil_mode", False))
    if t == "Flatten":
        return nn.Flatten()
    if t == "ReLU":
        return nn.ReLU()
    if t == "ReLU6":
        return nn.ReLU6()
    if t == "Tanh":
        return nn.Tanh()
    if t == "Sigmoid":
        return nn.Sigmoid()
    if t == "Softplus":
        return nn.Softplus()
    if t == "GELU":
        return nn.GELU(approximate=c["approximate"])
    if t == "LayerNorm":
        return nn.LayerNorm(c["normalized_shape"], eps=c["eps"], elementwise_affine=c["elementwise_affine"])
    if t == "Embedding":
        return nn.Embedding(c["num_embeddings"], c["embedding_dim"])
    if t == "Softmax":
        return nn.Softmax(dim=c["dim"])
    if t == "LogSoftmax":
        return nn.LogSoftmax(dim=c["dim"])
    raise ValueError(f"unknown layer type {t!r}")


def load(model_dir: str) -> tuple[nn.Sequential, dict]:
    """Rebuild the ``nn.Sequential`` (float32, eval mode) and return it with its config."""
    with open(os.path.join(model_dir, CONFIG_NAME)) as f:
        cfg = json.load(f)
    if cfg.get("format") != FORMAT or cfg.get("version") != VERSION:
        raise ValueError(f"{model_dir}: not an {FORMAT} v{VERSION} directory")
    model = nn.Sequential(*[_build_layer(c) for c in cfg["layers"]])
    tensors = load_file(os.path.join(model_dir, WEIGHTS_NAME))
    model.load_state_dict(tensors, strict=True)
    return model.eval(), cfg


# --------------------------------------------------------------------------
# CLI


def _import(spec: str) -> None:
    """Import a module by name, or a .py file by path, making its classes visible to pickle
    both under its own name and under __main__ (where a script's classes are pickled)."""
    import importlib
    import importlib.util
    if spec.endswith(".py"):
        name = os.path.splitext(os.path.basename(spec))[0]
        sp = importlib.util.spec_from_file_location(name, spec)
        if sp is None or sp.loader is None:
            raise ValueError(f"--import {spec}: not a Python file")
        mod = importlib.util.module_from_spec(sp)
        sys.modules[name] = mod
        sp.loader.exec_module(mod)
    else:
        mod = importlib.import_module(spec)
    main_mod = sys.modules["__main__"]
    for k, v in vars(mod).items():
        if isinstance(v, type) and not hasattr(main_mod, k):
            setattr(main_mod, k, v)


def load_module(path: str, imports: list[str]) -> nn.Module:
    """The nn.Module pickled in ``path`` (torch.save(model, path)), or a ValueError that says
    what the file holds instead and how to fix it."""
    for spec in imports:
        _import(spec)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except (AttributeError, ModuleNotFoundError) as e:
        raise ValueError(
            f"{path}: the model's class is not importable here ({e}). It was defined in your own "
            f"script or package: pass --import MODULE (or --import path/to/script.py) naming where "
            f"it is defined, or save an nn.Sequential of torch.nn layers instead") from e
    except FileNotFoundError as e:
        raise ValueError(f"{path}: no such file") from e
    except Exception as e:  # noqa: BLE001 - a torch.load failure of any kind: say which file
        raise ValueError(f"{path}: not a file torch.load can read ({type(e).__name__}: {e})") from e
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(
            f"{path} holds a state_dict ({len(obj)} tensors such as {next(iter(obj))!r}): weights "
            f"without the architecture. Build the model in Python, load_state_dict, then either call "
            f"export_torch.export(model, input_shape, out_dir) or save the whole module with "
            f"torch.save(model, path) and run this again")
    if isinstance(obj, dict):
        keys = ", ".join(list(map(str, obj.keys()))[:5])
        raise ValueError(f"{path} holds a dict (keys {keys}), not a model: a training checkpoint? "
                         f"Load its model's state_dict into the module and call export_torch.export")
    if not isinstance(obj, nn.Module):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not an nn.Module")
    if not isinstance(obj, nn.Sequential):
        raise ValueError(
            f"{path} holds a {type(obj).__name__}, not an nn.Sequential: the attrib-sequential "
            f"format is a chain of layers. If its forward is a plain chain, rebuild it as "
            f"nn.Sequential(...) of the same layers; otherwise export it to ONNX (torch.onnx.export)")
    return obj


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", nargs="?", help="file saved with torch.save(nn.Sequential)")
    ap.add_argument("out_dir", nargs="?", help="model directory to write")
    ap.add_argument("--input-shape", type=int, nargs="+", help="one sample's shape, no batch dim")
    ap.add_argument("--labels", nargs="+", help="class names")
    ap.add_argument("--check", metavar="DIR", help="load DIR and run it on a random input")
    ap.add_argument("--import", dest="imports", metavar="MODULE", action="append",
                    help="import MODULE (a module name, or a path to a .py file) before loading MODEL, "
                         "so the classes it defines can be unpickled; repeatable")
    a = ap.parse_args(argv)
    if a.check:
        model, cfg = load(a.check)
        x = _example_input(cfg["layers"], cfg["input_shape"], 2)
        with torch.no_grad():
            y = model(x)
        print(f"{a.check}: {len(cfg['layers'])} layers, input {cfg['input_shape']} -> output {list(y.shape[1:])}")
        return 0
    if not (a.model and a.out_dir and a.input_shape):
        ap.error("MODEL, OUT_DIR and --input-shape are required (or use --check DIR)")
    try:
        model = load_module(a.model, a.imports or [])
        cfg = export(model, a.input_shape, a.out_dir, labels=a.labels)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {a.out_dir}: {len(cfg['layers'])} layers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
