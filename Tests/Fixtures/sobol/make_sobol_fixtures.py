#!/usr/bin/env python3
"""Reference values for SobolAttributionTests: Fel et al.'s Sobol attribution
("Look at the Variance!", NeurIPS 2021), written here from the paper's steps
and the conventions of the authors' code (github.com/fel-thomas/
Sobol-Attribution-Method, sobol_attribution_method/{sampling,estimators,
torch_perturbations,torch_explainer,utils}.py), in float64 with NumPy, on the
digits CNN (Models/digits-cnn, run in float64 through torch).

Conventions matched (and where they come from):
- design: qmc.Sobol(2d, scramble=False).random(N); A = first d columns, B = last d;
  C_i = A with column i from B; masks in the order [A; B; C_1; ...; C_d]
  (sampling.py ScipySobolSequence / _build_replicated_design), each mask
  reshaped to [1, s, s] (torch_explainer.py: reshape((-1, 1, s, s))).
- upsampling: torch interpolate(masks, input_shape), default mode nearest
  (torch_explainer._batch_forward); the bilinear option is torch's
  align_corners=False. Both written here in NumPy and checked against torch.
- perturbations (torch_perturbations.py): inpainting x*M + (1-M)*x0 with x0 = 0;
  blurring: the same with x0 = cv2.blur(x, (k, k)) (normalised box filter,
  anchor k//2, BORDER_REFLECT_101); amplitude x*(M - 0.5)*sigma (the code; the
  docstring's "X + (M - 0.5)*sigma" is not what it computes).
- score: the model output (here the logit) of the label (torch_explainer: [:, label]).
- Jansen (estimators.py): f0 = mean(a), var = sum((a - f0)^2)/(N - 1) (f(A) only,
  unbiased), ST_i = sum((a - c_i)^2) / (2 N var). Homma as there:
  (var - mean(a*c_i) + f0^2)/var.
- resize to the input (utils.py): cv2.resize(sti, shape, INTER_CUBIC): half-pixel
  centres, Keys kernel with A = -0.75, indices clamped at the border; written in
  NumPy and checked against torch's bicubic (the same convention) in float64.

Run from the repository root:
    /tmp/pywork/venv/bin/python Tests/Fixtures/sobol/make_sobol_fixtures.py
"""
import os
import sys

import numpy as np
import torch
from scipy.stats import qmc

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from export_torch import load  # noqa: E402

OUT = os.path.dirname(os.path.abspath(__file__))


def design(s, n, channels=1):
    d = channels * s * s
    ab = qmc.Sobol(2 * d, scramble=False).random(n)
    a, b = ab[:, :d], ab[:, d:]
    c = np.array([a.copy() for _ in range(d)])
    for i in range(d):
        c[i, :, i] = b[:, i]
    return np.concatenate([a, b, c.reshape(-1, d)], 0).reshape(-1, channels, s, s)


def nearest_index(size, g):
    return np.array([(dst * g) // size for dst in range(size)])


def upsample(masks, h, w, mode):
    g = masks.shape[-1]
    if mode == "nearest":
        iy, ix = nearest_index(h, g), nearest_index(w, g)
        return masks[:, :, iy][:, :, :, ix]
    def lin(size):
        src = np.maximum((np.arange(size) + 0.5) * g / size - 0.5, 0)
        i0 = np.floor(src).astype(int)
        i1 = np.minimum(i0 + 1, g - 1)
        return i0, i1, src - i0
    y0, y1, ly = lin(h)
    x0, x1, lx = lin(w)
    top = (1 - lx) * masks[:, :, y0][:, :, :, x0] + lx * masks[:, :, y0][:, :, :, x1]
    bot = (1 - lx) * masks[:, :, y1][:, :, :, x0] + lx * masks[:, :, y1][:, :, :, x1]
    return (1 - ly)[:, None] * top + ly[:, None] * bot


def box_blur(x, k):
    """cv2.blur(x, (k, k)) per channel plane: mean over the k x k window whose
    anchor is (k//2, k//2), BORDER_REFLECT_101 (numpy's 'reflect')."""
    a = k // 2
    out = np.empty_like(x)
    for ci in range(x.shape[0]):
        p = np.pad(x[ci], ((a, k - 1 - a), (a, k - 1 - a)), mode="reflect")
        h, w = x.shape[1:]
        out[ci] = sum(p[i:i + h, j:j + w] for i in range(k) for j in range(k)) / (k * k)
    return out


def cubic_weights(t, A=-0.75):
    w0 = ((A * (t + 1) - 5 * A) * (t + 1) + 8 * A) * (t + 1) - 4 * A
    w1 = ((A + 2) * t - (A + 3)) * t * t + 1
    w2 = ((A + 2) * (1 - t) - (A + 3)) * (1 - t) * (1 - t) + 1
    return np.stack([w0, w1, w2, 1 - w0 - w1 - w2], -1)


def cubic_matrix(size, g):
    """R [size, g] with resized = R @ x @ R'^T (cv2 INTER_CUBIC, one axis)."""
    r = np.zeros((size, g))
    for dst in range(size):
        f = (dst + 0.5) * g / size - 0.5
        i = int(np.floor(f))
        wts = cubic_weights(f - i)
        for k in range(4):
            r[dst, min(max(i - 1 + k, 0), g - 1)] += wts[k]
    return r


def resize_cubic(m, h, w):
    return cubic_matrix(h, m.shape[0]) @ m @ cubic_matrix(w, m.shape[1]).T


def jansen(y, n, d):
    a = y[:n]
    c = y[2 * n:].reshape(d, n)
    f0 = np.mean(a)
    var = np.sum((a - f0) ** 2) / (n - 1)
    return np.array([np.sum((a - c[i]) ** 2) / (2 * n * var) for i in range(d)])


def homma(y, n, d):
    a = y[:n]
    c = y[2 * n:].reshape(d, n)
    f0 = np.mean(a)
    var = np.sum((a - f0) ** 2) / (n - 1)
    return np.array([(var - np.sum(a * c[i]) / n + f0 ** 2) / var for i in range(d)])


def check_against_torch():
    g = torch.rand(3, 1, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for h in (8, 28, 7):
        for mode in ("nearest", "bilinear"):
            kw = {} if mode == "nearest" else {"align_corners": False}
            t = torch.nn.functional.interpolate(g, size=(h, h), mode=mode, **kw).numpy()
            assert np.allclose(upsample(g.numpy(), h, h, mode), t, atol=1e-12, rtol=0), (h, mode)
        t = torch.nn.functional.interpolate(g, size=(h, h), mode="bicubic", align_corners=False).numpy()
        mine = np.array([resize_cubic(p[0], h, h) for p in g.numpy()])
        assert np.allclose(mine, t[:, 0], atol=1e-12, rtol=0), h
    # float32 nearest, as the reference runs it: same indices for 8 -> 28 and 3 -> 8.
    for g_, h in ((8, 28), (3, 8), (4, 8), (8, 8)):
        idx = torch.arange(g_, dtype=torch.float32).reshape(1, 1, 1, g_)
        t = torch.nn.functional.interpolate(idx, size=(1, h), mode="nearest").numpy().ravel().astype(int)
        assert (t == nearest_index(h, g_)).all(), (g_, h)


def main():
    torch.manual_seed(0)
    check_against_torch()
    model, _ = load(os.path.join(ROOT, "Models", "digits-cnn"))
    model = model.double()
    x_all = np.load(os.path.join(ROOT, "Models", "digits-data", "test_inputs.npy")).astype(np.float64)
    labels_all = np.load(os.path.join(ROOT, "Models", "digits-data", "test_labels.npy")).astype(np.int64)
    inputs = [0, 1, 2]
    x = x_all[inputs]
    labels = labels_all[inputs]
    np.save(os.path.join(OUT, "inputs.npy"), x)
    np.save(os.path.join(OUT, "labels.npy"), labels.astype(np.int32))

    cases = {
        # name: grid, N, perturbation, parameter, mask upsampling
        "grid8": (8, 32, "inpainting", 0.0, "nearest"),
        "grid3_blur": (3, 16, "blur", 3, "nearest"),
        "grid4_amplitude": (4, 16, "amplitude", 1.0, "bilinear"),
    }
    for name, (s, n, kind, param, mode) in cases.items():
        masks = design(s, n)
        d = s * s
        assert masks.shape[0] == n * (d + 2)
        up = upsample(masks, 8, 8, mode)
        stis, hommas, resized, outputs = [], [], [], []
        for xi, label in zip(x, labels):
            if kind == "inpainting":
                xt = xi[None] * up + (1.0 - up) * (np.zeros_like(xi) + param)[None]
            elif kind == "blur":
                x0 = box_blur(xi, param)
                xt = xi[None] * up + (1.0 - up) * x0[None]
            else:
                xt = xi[None] * (up - 0.5) * param
            with torch.no_grad():
                y = model(torch.from_numpy(xt)).numpy()[:, label]
            sti = jansen(y, n, d)
            stis.append(sti.reshape(s, s))
            hommas.append(homma(y, n, d).reshape(s, s))
            resized.append(resize_cubic(sti.reshape(s, s), 8, 8))
            outputs.append(y)
        np.save(os.path.join(OUT, name + "_sti.npy"), np.array(stis))
        np.save(os.path.join(OUT, name + "_homma.npy"), np.array(hommas))
        np.save(os.path.join(OUT, name + "_resized.npy"), np.array(resized))
        np.save(os.path.join(OUT, name + "_outputs.npy"), np.array(outputs))
        print(name, "forward passes per input:", masks.shape[0], "sti[0] max", np.array(stis)[0].max())


if __name__ == "__main__":
    main()
