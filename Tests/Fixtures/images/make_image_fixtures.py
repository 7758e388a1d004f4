#!/usr/bin/env python3
"""Image-input fixtures (issue 17): two small RGB PNGs and one grayscale PNG, and what the
model would see after attrib's preprocessing, computed by PyTorch:

    x = torch.from_numpy(png).permute(2, 0, 1)[None] / 255          # [1, C, h, w] in [0, 1]
    x = F.interpolate(x, size=(H, W), mode="bilinear", align_corners=False, antialias=False)
    x = (x - mean) / std                                             # per channel

with (H, W) = (8, 12), mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225) (preprocessing.json).
Writes a.png (20x14), b.png (5x7: upsampled), gray.png (9x9, one channel, read as RGB by
repeating it), expected.npy [3, 3, 8, 12] in file-name order (a, b, gray).

Run: python Tests/Fixtures/images/make_image_fixtures.py   (numpy, torch, pillow)
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
H, W = 8, 12
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def main():
    rng = np.random.default_rng(7)
    imgs = {"a.png": rng.integers(0, 256, (14, 20, 3), dtype=np.uint8), "b.png": rng.integers(0, 256, (7, 5, 3), dtype=np.uint8),
            "gray.png": rng.integers(0, 256, (9, 9), dtype=np.uint8)}
    out = []
    for name in sorted(imgs):
        arr = imgs[name]
        Image.fromarray(arr).save(os.path.join(HERE, "inputs", name))
        rgb = np.stack([arr] * 3, axis=-1) if arr.ndim == 2 else arr
        x = torch.from_numpy(rgb.astype(np.float64)).permute(2, 0, 1)[None] / 255
        x = F.interpolate(x, size=(H, W), mode="bilinear", align_corners=False, antialias=False)
        x = (x - torch.tensor(MEAN, dtype=torch.float64).view(1, 3, 1, 1)) / torch.tensor(STD, dtype=torch.float64).view(1, 3, 1, 1)
        out.append(x[0].numpy())
    np.save(os.path.join(HERE, "expected.npy"), np.stack(out))
    with open(os.path.join(HERE, "preprocessing.json"), "w") as f:
        json.dump({"mean": MEAN, "std": STD, "size": [H, W]}, f, indent=1)


if __name__ == "__main__":
    os.makedirs(os.path.join(HERE, "inputs"), exist_ok=True)
    main()
