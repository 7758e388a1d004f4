#!/usr/bin/env python3
"""Make the Captum reference fixtures in Tests/Fixtures/captum/{mlp,cnn}/.

For each bundled digits model (Models/digits-mlp -> mlp/, Models/digits-cnn ->
cnn/), with the first 4 test inputs of Models/digits-data and their labels as
targets, run Captum's gradient attribution methods on the model cast to
float64 (the weights and inputs are float32 values, so the cast is exact) and
save the results. Every random draw Captum makes is *passed in*: the draws are
saved as .npy files and forced into Captum's own code by replacing, for the
duration of one call, the exact functions it draws with (torch.normal in
noise_tunnel.py, numpy.random.choice in captum/_utils/common.py,
numpy.random.uniform in gradient_shap.py). Each forced call is checked (it
must happen exactly once, with the expected size), and each result is checked
against a manual float64 computation from the same draws.

The files, conventions and versions are described in README.md (next to this
script); quadrature.json holds the exact alphas/weights Captum uses.

Run (from anywhere):
    pip install -r scripts/requirements-fixtures.txt captum==0.9.0
    python Tests/Fixtures/captum/make_fixtures.py
"""

from __future__ import annotations

import contextlib
import json
import warnings
import os
import sys

import numpy as np
import torch

import captum
from captum.attr import (GradientShap, InputXGradient, IntegratedGradients,
                         NoiseTunnel, Saliency)
from captum.attr._utils.approximation_methods import approximation_parameters

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from export_torch import load  # noqa: E402

N_INPUTS = 4
IG_STEPS = 16
IG_METHODS = ["riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre"]
BASELINE_HIGH = 0.3          # baselines.npy ~ U[0, 0.3)
NT_SAMPLES = 8
NT_STDEV = 0.15              # absolute sigma of the SmoothGrad noise
EG_BASELINES = 16            # first 16 training inputs
EG_SAMPLES = 8
GS_STDEV = 0.1               # absolute sigma of GradientSHAP's input noise
MODELS = [("mlp", "Models/digits-mlp", 11), ("cnn", "Models/digits-cnn", 12)]


# --------------------------------------------------------------------------
# forcing Captum's random draws


@contextlib.contextmanager
def forced_draws(normal: np.ndarray | None = None, choice: np.ndarray | None = None,
                 uniform: np.ndarray | None = None):
    """Replace torch.normal / np.random.choice / np.random.uniform for one Captum call.

    Each given array is returned (once) by the corresponding call, after the
    call's size is checked against it; every replaced function must be called
    exactly once. The calls Captum 0.9.0 makes:
      noise_tunnel.py   noise = torch.normal(0, stdev_expanded)     stdev_expanded: [bsz*n, *shape]
      _utils/common.py  np.random.choice(num_ref_samples, n_samples * bsz).tolist()
      gradient_shap.py  np.random.uniform(0.0, 1.0, inputs[0].shape[0])   (bsz*n rows)
    """
    calls = {"normal": 0, "choice": 0, "uniform": 0}
    orig = (torch.normal, np.random.choice, np.random.uniform)

    def fake_normal(mean, std, *a, **k):
        assert not a and not k and isinstance(std, torch.Tensor) and float(mean) == 0.0, "unexpected torch.normal call"
        assert tuple(std.shape) == normal.shape, (std.shape, normal.shape)
        calls["normal"] += 1
        return torch.from_numpy(np.ascontiguousarray(normal)).to(dtype=std.dtype, device=std.device)

    def fake_choice(a, size=None, *rest, **k):
        assert not rest and not k and int(a) > int(choice.max()) and size == choice.size, (a, size)
        calls["choice"] += 1
        return np.asarray(choice, dtype=np.int64).reshape(-1).copy()

    def fake_uniform(low=0.0, high=1.0, size=None):
        assert low == 0.0 and high == 1.0 and size == uniform.size, (low, high, size)
        calls["uniform"] += 1
        return np.asarray(uniform, dtype=np.float64).reshape(-1).copy()

    if normal is not None:
        torch.normal = fake_normal
    if choice is not None:
        np.random.choice = fake_choice
    if uniform is not None:
        np.random.uniform = fake_uniform
    try:
        yield
    finally:
        torch.normal, np.random.choice, np.random.uniform = orig
    for name, arr in (("normal", normal), ("choice", choice), ("uniform", uniform)):
        if arr is not None and calls[name] != 1:
            raise RuntimeError(f"forced {name} draw was used {calls[name]} times, expected once")


# --------------------------------------------------------------------------
# manual references (float64)


def grads_at(model, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """d out[r, targets[r]] / d x[r] for every row r."""
    x = x.detach().clone().requires_grad_(True)
    model(x).gather(1, targets[:, None]).sum().backward()
    return x.grad.detach()


def captum_rule(method: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Captum's nodes and weights as its IG applies them.

    Riemann alphas come from torch.linspace in float32 (.tolist()); Gauss-Legendre
    alphas from numpy in float64. IG multiplies the gradients by
    torch.tensor(step_sizes).float(): every weight is rounded to float32.
    """
    sizes, alphas = approximation_parameters(method)
    return np.asarray(alphas(n), np.float64), np.float32(sizes(n)).astype(np.float64)


def spec_rule(method: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The rules of ../shared/specs/methods.md, exact in float64."""
    k = np.arange(n, dtype=np.float64)
    if method == "riemann_left":
        return k / n, np.full(n, 1.0 / n)
    if method == "riemann_right":
        return (k + 1) / n, np.full(n, 1.0 / n)
    if method == "riemann_middle":
        return (k + 0.5) / n, np.full(n, 1.0 / n)
    if method == "riemann_trapezoid":
        w = np.full(n, 1.0 / (n - 1))
        w[0] /= 2
        w[-1] /= 2
        return k / (n - 1), w
    if method == "gausslegendre":
        t, w = np.polynomial.legendre.leggauss(n)
        return (t + 1) / 2, w / 2
    raise ValueError(method)


def manual_ig(model, x, b, t, method, n, rule=captum_rule):
    a, w = rule(method, n)
    total = torch.zeros_like(x)
    for wk, ak in zip(w, a):
        total += float(wk) * grads_at(model, b + ak * (x - b), t)
    attr = (x - b) * total
    with torch.no_grad():
        fx = model(x).gather(1, t[:, None])[:, 0]
        fb = model(b).gather(1, t[:, None])[:, 0]
    delta = attr.flatten(1).sum(1) - (fx - fb)
    return attr, delta


def max_rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    return float((a - b).abs().max() / max(b.abs().max().item(), 1e-300))


# --------------------------------------------------------------------------


def make(name: str, model_dir: str, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    model32, cfg = load(os.path.join(ROOT, model_dir))
    model = model32.double().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    data = os.path.join(ROOT, "Models", "digits-data")
    x32 = np.load(os.path.join(data, "test_inputs.npy"))[:N_INPUTS].astype(np.float32)
    t32 = np.load(os.path.join(data, "test_labels.npy"))[:N_INPUTS].astype(np.int32)
    eg_base32 = np.load(os.path.join(data, "train_inputs.npy"))[:EG_BASELINES].astype(np.float32)
    shape = list(x32.shape[1:])

    base32 = rng.uniform(0.0, BASELINE_HIGH, size=x32.shape).astype(np.float32)
    noise32 = (rng.standard_normal((N_INPUTS, NT_SAMPLES, *shape)) * NT_STDEV).astype(np.float32)
    eg_idx = rng.integers(0, EG_BASELINES, size=(N_INPUTS, EG_SAMPLES)).astype(np.int32)
    eg_alpha = rng.uniform(0.0, 1.0, size=(N_INPUTS, EG_SAMPLES)).astype(np.float32)
    gs_noise32 = (rng.standard_normal((N_INPUTS, EG_SAMPLES, *shape)) * GS_STDEV).astype(np.float32)

    x = torch.from_numpy(x32).double()
    t = torch.from_numpy(t32).long()
    b = torch.from_numpy(base32).double()
    eg_base = torch.from_numpy(eg_base32).double()
    noise = torch.from_numpy(noise32).double()
    gs_noise = torch.from_numpy(gs_noise32).double()

    out: dict[str, np.ndarray] = {
        "inputs": x32, "targets": t32, "baselines": base32, "noise": noise32,
        "eg_baselines": eg_base32, "eg_baseline_index": eg_idx, "eg_alpha": eg_alpha, "gs_noise": gs_noise32,
    }
    checks: dict[str, float] = {}
    spec_vs_captum: dict[str, float] = {}

    # Integrated Gradients
    ig = IntegratedGradients(model)
    for method in IG_METHODS:
        attr, delta = ig.attribute(x, baselines=b, target=t, n_steps=IG_STEPS, method=method,
                                   return_convergence_delta=True)
        m_attr, m_delta = manual_ig(model, x, b, t, method, IG_STEPS)
        checks[f"ig_{method}"] = max_rel(attr, m_attr)
        checks[f"ig_{method}_delta_abs"] = float((delta - m_delta).abs().max())
        out[f"ig_{method}"] = attr.detach().numpy()
        out[f"ig_{method}_delta"] = delta.detach().numpy()
        s_attr, s_delta = manual_ig(model, x, b, t, method, IG_STEPS, rule=spec_rule)
        out[f"ig_{method}_spec"] = s_attr.numpy()
        out[f"ig_{method}_spec_delta"] = s_delta.numpy()
        spec_vs_captum[method] = max_rel(attr, s_attr)
    attr = ig.attribute(x, baselines=0.0, target=t, n_steps=IG_STEPS, method="gausslegendre")
    checks["ig_gausslegendre_zero"] = max_rel(attr, manual_ig(model, x, torch.zeros_like(x), t,
                                                              "gausslegendre", IG_STEPS)[0])
    out["ig_gausslegendre_zero"] = attr.detach().numpy()

    # Saliency, Input x Gradient
    g = grads_at(model, x, t)
    out["saliency"] = Saliency(model).attribute(x, target=t, abs=True).detach().numpy()
    out["saliency_signed"] = Saliency(model).attribute(x, target=t, abs=False).detach().numpy()
    out["input_x_gradient"] = InputXGradient(model).attribute(x, target=t).detach().numpy()
    checks["saliency"] = max_rel(out["saliency"], g.abs())
    checks["saliency_signed"] = max_rel(out["saliency_signed"], g)
    checks["input_x_gradient"] = max_rel(out["input_x_gradient"], x * g)

    # SmoothGrad family: NoiseTunnel(Saliency(abs=False)), noise forced to noise.npy
    # Captum expands with repeat_interleave: row r = i * n + s holds x[i] + noise[i, s].
    xs = x.repeat_interleave(NT_SAMPLES, 0) + noise.reshape(-1, *shape)
    gs = grads_at(model, xs, t.repeat_interleave(NT_SAMPLES)).reshape(N_INPUTS, NT_SAMPLES, *shape)
    mean, mean_sq = gs.mean(1), (gs * gs).mean(1)
    manual = {"smoothgrad": mean, "smoothgrad_sq": mean_sq, "vargrad": mean_sq - mean * mean}
    nt = NoiseTunnel(Saliency(model))
    for nt_type in ("smoothgrad", "smoothgrad_sq", "vargrad"):
        with forced_draws(normal=noise32.reshape(N_INPUTS * NT_SAMPLES, *shape)):
            attr = nt.attribute(x, nt_type=nt_type, nt_samples=NT_SAMPLES, stdevs=NT_STDEV,
                                target=t, abs=False)
        checks[nt_type] = max_rel(attr, manual[nt_type])
        out[nt_type] = attr.detach().numpy()
    # the patch took effect: with other noise the result must differ
    attr_free = nt.attribute(x, nt_type="smoothgrad", nt_samples=NT_SAMPLES, stdevs=NT_STDEV, target=t, abs=False)
    checks["smoothgrad_unforced_differs"] = max_rel(attr_free, manual["smoothgrad"])
    assert checks["smoothgrad_unforced_differs"] > 1e-3

    # Expected Gradients (stdevs = 0) and GradientSHAP (stdevs = 0.1)
    gshap = GradientShap(model)
    idx = torch.from_numpy(eg_idx.astype(np.int64)).reshape(-1)
    alpha = torch.from_numpy(eg_alpha).double().reshape(-1, *([1] * len(shape)))
    tt = t.repeat_interleave(EG_SAMPLES)
    for fname, stdev, nz in (("expected_gradients", 0.0, torch.zeros_like(gs_noise)),
                             ("gradient_shap", GS_STDEV, gs_noise)):
        xn = x.repeat_interleave(EG_SAMPLES, 0) + nz.reshape(-1, *shape)   # row i*n+s
        bb = eg_base[idx]
        pt = alpha * xn + (1.0 - alpha) * bb
        manual_attr = ((xn - bb) * grads_at(model, pt, tt)).reshape(N_INPUTS, EG_SAMPLES, *shape).mean(1)
        forced_noise = np.zeros((N_INPUTS * EG_SAMPLES, *shape), np.float32) if stdev == 0.0 \
            else gs_noise32.reshape(N_INPUTS * EG_SAMPLES, *shape)
        with forced_draws(normal=forced_noise, choice=eg_idx.reshape(-1), uniform=eg_alpha.reshape(-1)):
            attr = gshap.attribute(x, baselines=eg_base, n_samples=EG_SAMPLES, stdevs=stdev, target=t)
        checks[fname] = max_rel(attr, manual_attr)
        out[fname] = attr.detach().numpy()
    attr_free = gshap.attribute(x, baselines=eg_base, n_samples=EG_SAMPLES, stdevs=GS_STDEV, target=t)
    checks["gradient_shap_unforced_differs"] = max_rel(attr_free, torch.from_numpy(out["gradient_shap"]))
    assert checks["gradient_shap_unforced_differs"] > 1e-3

    for k, v in checks.items():
        if not k.endswith("_differs") and v > 1e-12:
            raise RuntimeError(f"{name}: Captum and the manual computation differ: {k} = {v:g}")

    out_dir = os.path.join(HERE, name)
    os.makedirs(out_dir, exist_ok=True)
    for k, a in out.items():
        if a.dtype == np.float64 or a.dtype == np.float32 or a.dtype == np.int32:
            np.save(os.path.join(out_dir, k + ".npy"), np.ascontiguousarray(a))
        else:
            raise TypeError(k, a.dtype)
    meta = {
        "model": model_dir,
        "seed": seed,
        "input_shape": shape,
        "targets": "test_labels[:4]; every method attributes logits[i, targets[i]] of input i",
        "shapes": {k: list(a.shape) for k, a in out.items()},
        "dtypes": {k: str(a.dtype) for k, a in out.items()},
        "ig": {"n_steps": IG_STEPS, "methods": IG_METHODS},
        "smoothgrad": {"nt_samples": NT_SAMPLES, "stdev_absolute": NT_STDEV,
                       "noise_row": "noise[i, s] is added to input i in sample s"},
        "gradient_shap": {"n_samples": EG_SAMPLES, "stdev_absolute": GS_STDEV,
                          "expected_gradients_stdev": 0.0},
        "captum_vs_manual_max_rel_err": checks,
        "ig_captum_vs_spec_rule_max_rel_diff": spec_vs_captum,
        "captum": captum.__version__,
        "torch": torch.__version__.split("+")[0],
        "numpy": np.__version__,
    }
    with open(os.path.join(out_dir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    return meta


def quadrature() -> dict:
    """Captum's nodes and weights at IG_STEPS as its IG applies them, and the spec's."""
    q = {}
    for method in IG_METHODS:
        sizes, _ = approximation_parameters(method)
        a, w = captum_rule(method, IG_STEPS)
        sa, sw = spec_rule(method, IG_STEPS)
        q[method] = {
            "alphas": a.tolist(),
            "weights": w.tolist(),
            "weights_before_float32_cast": [float(v) for v in sizes(IG_STEPS)],
            "spec_alphas": sa.tolist(),
            "spec_weights": sw.tolist(),
        }
    return {"n_steps": IG_STEPS, "captum": captum.__version__,
            "note": "alphas/weights: what Captum's IG uses (files ig_<method>.npy); "
                    "spec_*: ../shared/specs/methods.md in exact float64 (files ig_<method>_spec.npy)",
            "methods": q}


def main() -> int:
    torch.set_num_threads(2)
    warnings.filterwarnings("ignore", message="Input Tensor 0 did not already require gradients")
    torch.use_deterministic_algorithms(True)
    with open(os.path.join(HERE, "quadrature.json"), "w") as f:
        json.dump(quadrature(), f, indent=1)
        f.write("\n")
    for name, model_dir, seed in MODELS:
        meta = make(name, model_dir, seed)
        worst = max(v for k, v in meta["captum_vs_manual_max_rel_err"].items() if not k.endswith("_differs"))
        print(f"{name}: {len(meta['shapes'])} arrays, captum vs manual max rel err {worst:.2e}")
        print(f"     IG captum vs spec rule: {meta['ig_captum_vs_spec_rule_max_rel_diff']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
