#!/usr/bin/env python3
"""JPEG-input fixtures (issue 17), written by Pillow, decoded by Pillow as the reference:

  jpeg/inputs/c420.jpg   32x24 RGB, 4:2:0 chroma subsampling (Pillow's default), quality 85
  jpeg/inputs/d444.jpeg  17x13 RGB, 4:4:4, quality 95, progressive
  jpeg/inputs/e.jpg      15x11 grayscale (one component), read as RGB by repeating it
  jpeg/decoded/NAME.npy  each file as np.asarray(Image.open(f).convert("RGB")) [h, w, 3] uint8
  jpeg/expected.npy      [3, 3, 8, 12]: torch interpolate + normalise of those pixels, as
                         make_image_fixtures.py computes for PNGs (preprocessing.json's mean/std)
  jpeg/truncated.jpg     c420.jpg cut to half its bytes (an error, not grey rows)

The images are smooth gradients with noise, so the decoders' IDCT and chroma upsampling matter.

Run: python Tests/Fixtures/images/make_jpeg_fixtures.py   (numpy, torch, pillow)
"""
import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "jpeg")
H, W = 8, 12
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def picture(h, w, rng, channels=3):
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([128 + 100 * np.sin(x / 5 + c) * np.cos(y / 7 - c) for c in range(channels)], -1)
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def main():
    rng = np.random.default_rng(11)
    os.makedirs(os.path.join(OUT, "inputs"), exist_ok=True)
    files = {
        "c420.jpg": (Image.fromarray(picture(24, 32, rng)), dict(quality=85)),
        "d444.jpeg": (Image.fromarray(picture(13, 17, rng)), dict(quality=95, subsampling=0, progressive=True)),
        "e.jpg": (Image.fromarray(picture(11, 15, rng, 1)[..., 0], mode="L"), dict(quality=90)),
    }
    decoded, planes = {}, []
    for name, (img, opts) in sorted(files.items()):
        path = os.path.join(OUT, "inputs", name)
        img.save(path, "JPEG", **opts)
        rgb = np.asarray(Image.open(path).convert("RGB"))
        decoded[name] = rgb
        x = torch.from_numpy(rgb.astype(np.float64)).permute(2, 0, 1)[None] / 255
        x = F.interpolate(x, size=(H, W), mode="bilinear", align_corners=False, antialias=False)
        x = (x - torch.tensor(MEAN, dtype=torch.float64)[None, :, None, None]) / torch.tensor(STD, dtype=torch.float64)[None, :, None, None]
        planes.append(x[0].numpy())
    os.makedirs(os.path.join(OUT, "decoded"), exist_ok=True)
    for k, v in decoded.items():
        np.save(os.path.join(OUT, "decoded", k + ".npy"), v)
    np.save(os.path.join(OUT, "expected.npy"), np.stack(planes))
    data = open(os.path.join(OUT, "inputs", "c420.jpg"), "rb").read()
    open(os.path.join(OUT, "truncated.jpg"), "wb").write(data[: len(data) // 2])
    print("wrote", sorted(os.listdir(os.path.join(OUT, "inputs"))), {k: v.shape for k, v in decoded.items()})


if __name__ == "__main__":
    main()
