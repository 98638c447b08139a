#!/usr/bin/env python3
"""The PyTorch peer of `flyp bench step`: the same training steps — same shapes, random weights,
loss, optimizer, precision — with transformers' CLIPModel (the architecture flyp mirrors key by
key), timed the same way (median after 2 warm-up steps). Prints the same table.

The eval step is the image tower's forward pass in inference mode, features read back.
"mixed" is torch.autocast(float16) around the towers with a GradScaler, the loss in f32: what
flyp's --precision mixed does. "dev MiB" is torch.cuda.max_memory_reserved().
Usage: bench_peer.py --config tiny|vit-b-32|vit-b-16 --step flyp,finetune,eval --batch 32 --steps 5
       [--precision f32,mixed] [--device cpu|cuda] [--threads N]
Run it through scripts/bench-vs-pytorch, which makes its virtual environment (pinned versions).
"""
import argparse
import resource
import time

import torch
import torch.nn.functional as F
from transformers import CLIPConfig, CLIPModel


def config(name):
    if name == "tiny":  # flyp::train::bench::tiny_config
        return CLIPConfig(
            text_config=dict(hidden_size=128, intermediate_size=512, num_hidden_layers=4, num_attention_heads=2),
            vision_config=dict(hidden_size=192, intermediate_size=768, num_hidden_layers=4, num_attention_heads=3,
                               image_size=64, patch_size=8),
            projection_dim=128,
        )
    if name in ("vit-b-32", "vit-b-16"):
        patch = 32 if name.endswith("32") else 16
        return CLIPConfig(vision_config=dict(patch_size=patch), projection_dim=512)
    raise SystemExit(f"unknown config {name}")


def autocast(device, precision):
    return torch.autocast(device_type=device, dtype=torch.float16, enabled=precision == "mixed")


def time_eval(cfg, batch, steps, device, precision):
    model = CLIPModel(cfg).to(device).eval()
    s = cfg.vision_config.image_size
    pixels = torch.randn(batch, 3, s, s, device=device)
    times = []
    with torch.inference_mode():
        for i in range(2 + steps):
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            with autocast(device, precision):
                img = model.get_image_features(pixel_values=pixels)
            img = F.normalize(getattr(img, "pooler_output", img).float(), dim=-1)
            img.cpu()  # read back, as evaluation does
            if i >= 2:
                times.append(time.perf_counter() - start)
    times.sort()
    median = times[len(times) // 2]
    return median, batch / median


def time_steps(cfg, kind, batch, steps, device, precision):
    if kind == "eval":
        return time_eval(cfg, batch, steps, device, precision)
    model = CLIPModel(cfg).to(device).train()
    s = cfg.vision_config.image_size
    ctx = cfg.text_config.max_position_embeddings
    vocab = cfg.text_config.vocab_size
    pixels = torch.randn(batch, 3, s, s, device=device)
    ids = (torch.arange(batch * ctx, device=device) * 7919) % (vocab - 2)
    ids = ids.reshape(batch, ctx)
    ids[:, -1] = cfg.text_config.eos_token_id
    head = torch.nn.Parameter(torch.randn(1000, cfg.projection_dim, device=device) * 0.02)
    labels = torch.arange(batch, device=device) % 1000
    params = list(model.parameters()) + ([head] if kind == "finetune" else [])
    opt = torch.optim.AdamW(params, lr=1e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)
    scaler = torch.amp.GradScaler(device, enabled=precision == "mixed")
    times = []
    for i in range(2 + steps):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        if kind == "flyp":
            with autocast(device, precision):
                img = model.get_image_features(pixel_values=pixels)
                txt = model.get_text_features(input_ids=ids)
            img = getattr(img, "pooler_output", img).float()
            txt = getattr(txt, "pooler_output", txt).float()
            img = F.normalize(img, dim=-1)
            txt = F.normalize(txt, dim=-1)
            logits = model.logit_scale.exp() * img @ txt.t()
            target = torch.arange(batch, device=device)
            loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2
        else:
            with autocast(device, precision):
                img = model.get_image_features(pixel_values=pixels)
            img = F.normalize(getattr(img, "pooler_output", img).float(), dim=-1)
            loss = F.cross_entropy(img @ head.t() * 100.0, labels)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        if device == "cuda":
            torch.cuda.synchronize()
        if i >= 2:
            times.append(time.perf_counter() - start)
    times.sort()
    median = times[len(times) // 2]
    return median, batch / median


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--step", default="flyp,finetune,eval")
    ap.add_argument("--batch", default="32")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--precision", default="f32")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    print(f"training step, median of {a.steps} after 2 warm-up steps; device: PyTorch {torch.__version__} "
          f"{a.device} ({torch.get_num_threads()} threads)")
    print(f"{'config':<9} {'step':<9} {'precision':<9} {'batch':>6} {'ms/step':>10} {'images/s':>10} "
          f"{'host MiB':>10} {'dev MiB':>10}")
    for name in a.config.split(","):
        cfg = config(name)
        for kind in a.step.split(","):
            for precision in a.precision.split(","):
                for b in map(int, a.batch.split(",")):
                    if a.device == "cuda":
                        torch.cuda.empty_cache()
                        torch.cuda.reset_peak_memory_stats()
                    secs, rate = time_steps(cfg, kind, b, a.steps, a.device, precision)
                    host = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                    dev = f"{torch.cuda.max_memory_reserved() / 2**20:.0f}" if a.device == "cuda" else "-"
                    print(f"{name:<9} {kind:<9} {precision:<9} {b:>6} {secs * 1e3:>10.1f} {rate:>10.1f} "
                          f"{host:>10.0f} {dev:>10}")


if __name__ == "__main__":
    main()
