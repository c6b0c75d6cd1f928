"""Datasets for the QAT example: scikit-learn's handwritten digits (bundled, no download) or a folder of
images in class subfolders (PIL when installed; otherwise binary PGM / PPM and .npy arrays)."""
import os

import numpy as np
import torch
import torch.nn.functional as F

_NETPBM = {b"P5": 1, b"P6": 3}


def load_digits_split(seed, test_fraction=0.25):
    """(x_train, y_train, x_test, y_test): 8x8 digits as float tensors N x 1 x 8 x 8 in [0, 1], stratified split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images.astype(np.float32) / 16.0)[:, None]
    xtr, xte, ytr, yte = train_test_split(x, digits.target, test_size=test_fraction, random_state=seed,
                                          stratify=digits.target)
    return torch.from_numpy(xtr), torch.from_numpy(ytr).long(), torch.from_numpy(xte), torch.from_numpy(yte).long()


def _read_netpbm(path):
    with open(path, "rb") as f:
        data = f.read()
    tokens, pos = [], 0
    while len(tokens) < 4:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        tokens.append(data[pos:end])
        pos = end
    magic, width, height, maxval = tokens[0], int(tokens[1]), int(tokens[2]), int(tokens[3])
    if magic not in _NETPBM or maxval > 255:
        raise ValueError(f"{path}: only 8-bit binary PGM (P5) / PPM (P6) are read without PIL")
    channels = _NETPBM[magic]
    pixels = np.frombuffer(data, np.uint8, width * height * channels, pos + 1)
    return pixels.reshape(height, width, channels).astype(np.float32) / maxval


def _read_image(path):
    if path.endswith(".npy"):
        arr = np.load(path).astype(np.float32)
        return arr[..., None] if arr.ndim == 2 else arr
    try:
        from PIL import Image
    except ImportError:
        return _read_netpbm(path)
    with Image.open(path) as img:
        arr = np.asarray(img.convert("RGB" if img.mode in ("RGB", "RGBA", "CMYK", "YCbCr") else "L"), np.float32)
    return (arr[..., None] if arr.ndim == 2 else arr) / 255.0


def load_folder_split(root, seed, image_size, test_fraction=0.25):
    """(x_train, y_train, x_test, y_test, class_names) from root/<class>/<image files>, resized to
    image_size x image_size (area interpolation), split per class with a fixed seed."""
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    if not classes:
        raise ValueError(f"--data {root}: expected one subfolder per class")
    images, labels = [], []
    for label, name in enumerate(classes):
        folder = os.path.join(root, name)
        for file in sorted(os.listdir(folder)):
            img = torch.from_numpy(np.ascontiguousarray(_read_image(os.path.join(folder, file)))).permute(2, 0, 1)
            images.append(F.interpolate(img[None], size=(image_size, image_size), mode="area")[0])
            labels.append(label)
    channels = {img.shape[0] for img in images}
    if len(channels) != 1:
        raise ValueError(f"--data {root}: images mix channel counts {sorted(channels)}")
    x, y = torch.stack(images), torch.tensor(labels)
    gen = torch.Generator().manual_seed(seed)
    test = torch.zeros(len(y), dtype=torch.bool)
    for label in range(len(classes)):
        idx = torch.nonzero(y == label).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        test[idx[: max(1, int(round(len(idx) * test_fraction)))]] = True
    return x[~test], y[~test], x[test], y[test], classes
