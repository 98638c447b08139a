#!/usr/bin/env python3
"""Make the demo's data: the bundled experiment (assets/emoji-subset) and the demo model's
pretraining pairs (data/emoji-demo), split by emoji code point so that nothing leaks.

The design (README, "How the demo is designed") in code; deterministic (random.Random(0)):
- Emoji: every emoji of emoji-datasource 16.0.0 with both a Twemoji and a Noto image, except the
  Component category (skin tones, hair styles); one image per emoji and style (no skin-tone
  variants).
- Classes (the third round's label set): the emoji's emoji-datasource subcategory when that
  subcategory holds at least 15 of the emoji and is not one of its "other-…" subcategories,
  otherwise "other <category>" (49 classes). The split below is stratified by the Unicode
  category, as in the first two rounds, so every set holds the same emoji as before; only the
  labels are finer.
- Styles: Twemoji and Noto (64 px PNGs of emoji-datasource), and the SVG sets noto-v1, emojione,
  fxemoji and streamline-emojis (iconify, rasterised to 64 px by resvg). An SVG icon is matched to
  its code point by its name (the emoji's CLDR label, Unicode name or a shortcode); unmatched icons
  are not used.
- Split by code point, stratified by category and by how many of the unseen styles have the
  emoji: 23 % test emoji, 26 % fine-tuning emoji (80 % train, 20 % val, stratified by category),
  51 % pretraining emoji.
- Pretraining sees Twemoji, Noto and noto-v1 images of the pretraining emoji only. emojione,
  fxemoji and streamline-emojis are never in pretraining or fine-tuning: the "unseen styles".
- Bundled (--subset): twemoji/{train,val,test}/<class>/<code>.png (ID: the fine-tuning emoji in
  train/val, the test emoji in test); noto/<class>/<code>.png (OOD: the test emoji in Noto, a
  style seen in pretraining on other emoji); unseen-styles/<class>/<code>-<style>.png (OOD: the
  test emoji in the three unseen styles); pretraining.txt (the code points the demo model was
  pretrained on); captions.csv (captions of the twemoji/train images, for tests of `flyp pretrain`);
  classes.csv (each class and its Unicode category).
- Pretraining (--out): emoji-demo/pretrain/<style>/<code>.png and emoji-demo/pretrain.csv with
  three captions per image, from emojibase-data's English name and keywords and the category, as
  alt text on emoji sites reads: "⟨name⟩", "⟨name⟩, a ⟨category⟩ emoji" and
  "an emoji of ⟨category⟩: ⟨name⟩, ⟨keywords⟩".
"""
import argparse
import collections
import csv
import json
import random
import re
import shutil
from pathlib import Path

TEST_TUNE_PRETRAIN = (0.23, 0.26, 0.51)  # fractions of the emoji, per stratum
SUBCATEGORY_MIN = 15  # a subcategory with fewer emoji is folded into "other <category>"
SETS = {  # iconify set → npm package and version (pinned; scripts/fetch-datasets fetches them)
    "noto-v1": ("@iconify-json/noto-v1", "1.2.5"),
    "emojione": ("@iconify-json/emojione", "1.2.3"),
    "fxemoji": ("@iconify-json/fxemoji", "1.2.2"),
    "streamline-emojis": ("@iconify-json/streamline-emojis", "1.2.4"),
}
PRETRAIN_STYLES = ["twemoji", "noto", "noto-v1"]
HELD_OUT_STYLES = ["emojione", "fxemoji", "streamline-emojis"]  # the "unseen styles" OOD set


def slug(text):
    return "_".join(text.lower().replace("&", "and").split())


def key(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def universe(datasource, emojibase):
    """code → {category, label, tags, png: {style: path}} for every usable emoji, and a name → code map."""
    entries = json.loads((datasource["twemoji"] / "emoji.json").read_text())
    base = {e["hexcode"]: e for e in json.loads((emojibase / "en/data.json").read_text())}
    shortcodes = [json.loads(p.read_text()) for p in sorted((emojibase / "en/shortcodes").glob("*.json"))]
    emoji, names = {}, {}
    for e in entries:
        code = e["unified"]
        pngs = {
            "twemoji": datasource["twemoji"] / "img/twitter/64" / e["image"],
            "noto": datasource["noto"] / "img/google/64" / e["image"],
        }
        if e["category"] == "Component" or not all(p.is_file() for p in pngs.values()):
            continue
        b = base.get(code) or base.get(code.replace("-FE0F", ""))
        label = b["label"] if b else e["name"].lower()
        tags = (b or {}).get("tags") or []
        emoji[code] = {"category": slug(e["category"]), "subcategory": e["subcategory"], "label": label,
                       "tags": tags, "png": pngs}
        aliases = [label, e["name"] or ""] + e.get("short_names", [])
        for table in shortcodes:
            found = table.get(b["hexcode"]) if b else None
            aliases += found if isinstance(found, list) else [found] if found else []
        for alias in aliases:
            if alias:
                names.setdefault(key(alias), code)
                names.setdefault(key(alias).replace("-", ""), code)
    sizes = collections.Counter(e["subcategory"] for e in emoji.values())
    for e in emoji.values():
        # emoji-datasource's own "other-…" subcategories join their category's "other" class.
        fine = sizes[e["subcategory"]] >= SUBCATEGORY_MIN and not e["subcategory"].startswith("other-")
        e["class"] = slug(e["subcategory"].replace("-", " ")) if fine else "other_" + e["category"]
    return emoji, names


def icons(package, names):
    """code → SVG text of the set's icon for it (the first icon whose name matches the emoji)."""
    data = json.loads((package / "icons.json").read_text())
    width, height = data.get("width", 16), data.get("height", 16)
    found = {}
    for name, icon in data["icons"].items():
        code = names.get(name) or names.get(name.replace("-", ""))
        if code is None or code in found:
            continue
        w, h = icon.get("width", width), icon.get("height", height)
        left, top = icon.get("left", 0), icon.get("top", 0)
        found[code] = (
            f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
            f'viewBox="{left} {top} {w} {h}" width="64" height="64">{icon["body"]}</svg>'
        )
    return found


def split(codes, fractions, rng):
    codes = sorted(codes)
    rng.shuffle(codes)
    cuts, start = [], 0
    for f in fractions[:-1]:
        cuts.append(codes[start : start + round(len(codes) * f)])
        start += len(cuts[-1])
    return cuts + [codes[start:]]


def write_image(style, code, emoji, svgs, dst):
    import resvg_py

    dst.parent.mkdir(parents=True, exist_ok=True)
    if style in emoji[code]["png"]:
        shutil.copyfile(emoji[code]["png"][style], dst)
    else:
        dst.write_bytes(bytes(resvg_py.svg_to_bytes(svg_string=svgs[style][code], width=64, height=64)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", type=Path, required=True, help="scripts/fetch-datasets' cache (data/.cache)")
    ap.add_argument("--out", type=Path, required=True, help="the data folder: writes OUT/emoji-demo")
    ap.add_argument("--subset", type=Path, help="write the bundled experiment here (assets/emoji-subset)")
    a = ap.parse_args()
    def npm(name, version):  # the folder scripts/fetch-datasets unpacks a package into
        return a.cache / f"npm-{name.replace('/', '+')}-{version}" / "package"

    datasource = {
        "twemoji": npm("emoji-datasource-twitter", "16.0.0"),
        "noto": npm("emoji-datasource-google", "16.0.0"),
    }
    emoji, names = universe(datasource, npm("emojibase-data", "17.0.0"))
    svgs = {style: icons(npm(*package), names) for style, package in SETS.items()}
    svgs = {style: {c: s for c, s in found.items() if c in emoji} for style, found in svgs.items()}

    rng = random.Random(0)
    strata = {}
    for code, e in emoji.items():
        held_out = sum(code in svgs[style] for style in HELD_OUT_STYLES)
        strata.setdefault((e["category"], held_out), []).append(code)
    test, tune, pretrain = [], [], []
    for stratum in sorted(strata):
        t, f, p = split(strata[stratum], TEST_TUNE_PRETRAIN, rng)
        test += t
        tune += f
        pretrain += p
    by_cat = {}
    for code in tune:
        by_cat.setdefault(emoji[code]["category"], []).append(code)
    train, val = [], []
    for cat in sorted(by_cat):
        tr, va = split(by_cat[cat], (0.8, 0.2), rng)
        train += tr
        val += va

    folder = a.out / "emoji-demo"
    shutil.rmtree(folder, ignore_errors=True)
    rows = []
    for style in PRETRAIN_STYLES:
        for code in sorted(pretrain):
            if style in emoji[code]["png"] or code in svgs.get(style, {}):
                dst = folder / "pretrain" / style / f"{code.lower()}.png"
                write_image(style, code, emoji, svgs, dst)
                e = emoji[code]
                path = dst.relative_to(folder).as_posix()
                category = e["category"].replace("_and_", " and ").replace("_", " ")
                keywords = ", ".join(e["tags"] or [e["label"]])
                rows.append([path, e["category"], e["label"]])
                rows.append([path, e["category"], f"{e['label']}, a {category} emoji"])
                rows.append([path, e["category"], f"an emoji of {category}: {e['label']}, {keywords}"])
    with open(folder / "pretrain.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "caption"])
        w.writerows(rows)
    images = len({r[0] for r in rows})
    print(f"{folder}/pretrain.csv: {len(pretrain)} emoji, {images} images, {len(rows)} captions")

    if a.subset:
        shutil.rmtree(a.subset / "twemoji", ignore_errors=True)
        for old in ["noto", "unseen-styles", "emojione", "captions.csv", "classes.csv", "pretraining.txt"]:
            p = a.subset / old
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        parts = [("twemoji/train", train, "twemoji"), ("twemoji/val", val, "twemoji"),
                 ("twemoji/test", test, "twemoji"), ("noto", test, "noto")]
        for part, codes, style in parts:
            for code in sorted(codes):
                dst = a.subset / part / emoji[code]["class"] / f"{code.lower()}.png"
                write_image(style, code, emoji, svgs, dst)
            print(f"{a.subset}/{part}: {len(codes)} images")
        unseen = 0
        for style in HELD_OUT_STYLES:
            for code in sorted(c for c in test if c in svgs[style]):
                name = f"{code.lower()}-{style}.png"
                write_image(style, code, emoji, svgs, a.subset / "unseen-styles" / emoji[code]["class"] / name)
                unseen += 1
        print(f"{a.subset}/unseen-styles: {unseen} images ({', '.join(HELD_OUT_STYLES)})")
        print(f"{a.subset}: {len({e['class'] for e in emoji.values()})} classes")
        with open(a.subset / "classes.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["class", "category"])
            w.writerows(sorted({(e["class"], e["category"]) for e in emoji.values()}))
        (a.subset / "pretraining.txt").write_text("".join(f"{c.lower()}\n" for c in sorted(pretrain)))
        with open(a.subset / "captions.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", "label", "caption"])
            for code in sorted(train):
                e = emoji[code]
                w.writerow([f"twemoji/train/{e['class']}/{code.lower()}.png", e["class"], e["label"]])


if __name__ == "__main__":
    main()
