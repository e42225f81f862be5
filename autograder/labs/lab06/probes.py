"""Lab 06 probes: run in the sandboxed child, call the student's code, return plain data.

Modules are built from the student's classes, loaded with the state dict made in the parent
(names and shapes as the stubs specify) and run in eval mode. CutMix draws are analysed here into
per-draw facts (box, pixel agreement, lam); thresholds and references live in the parent.
"""

import math

import numpy as np
import torch
from probe_utils import as_tensor, check_names_and_shapes, number_out, tensor_out
from torch import nn


def _build(ns, name, config, inputs):
    """ns[name](**config) loaded with the parent's weights (inputs "w.<parameter name>")."""
    model = ns[name](**config)
    if not isinstance(model, nn.Module):
        raise TypeError(f"{name}(...) must be an nn.Module, got {type(model).__name__}")
    state = {k[2:]: torch.from_numpy(v) for k, v in inputs.items() if k.startswith("w.")}
    check_names_and_shapes({k: tuple(p.shape) for k, p in model.named_parameters()},
                           {k: tuple(v.shape) for k, v in state.items()}, f"{name}{config}")
    with torch.no_grad():
        params = dict(model.named_parameters())
        for k, v in state.items():
            params[k].copy_(v)
    return model.eval()


def patch_embed(ns, inputs, config):
    model = _build(ns, "PatchEmbed", config, inputs)
    with torch.no_grad():
        out = model(torch.from_numpy(inputs["images"]))
    proj = getattr(model, "proj", None)
    p = config["patch_size"]
    return {
        "tokens": tensor_out(out, "PatchEmbed.forward"),
        "proj_is_strided_conv": isinstance(proj, nn.Conv2d)
        and tuple(proj.kernel_size) == (p, p) and tuple(proj.stride) == (p, p),
        "num_patches": int(getattr(model, "num_patches", -1)),
    }


def attention(ns, inputs, config):
    model = _build(ns, "MultiHeadSelfAttention", config, inputs)
    x = torch.from_numpy(inputs["x"])
    with torch.no_grad():
        result = model(x)
        again = model(x)
    if not isinstance(result, tuple) or len(result) != 2:
        raise TypeError("MultiHeadSelfAttention.forward must return a tuple (out, attn)")
    out, attn = result
    deterministic = bool(torch.equal(as_tensor(out, "out"), as_tensor(again[0], "out")))
    return {"out": tensor_out(out, "out"), "attn": tensor_out(attn, "attn"),
            "eval_deterministic": deterministic}


def block(ns, inputs, config):
    model = _build(ns, "EncoderBlock", config, inputs)
    with torch.no_grad():
        result = model(torch.from_numpy(inputs["x"]))
    if not isinstance(result, tuple) or len(result) != 2:
        raise TypeError("EncoderBlock.forward must return a tuple (x, attn)")
    return {"x": tensor_out(result[0], "x"), "attn": tensor_out(result[1], "attn")}


def block_train_mode(ns, inputs, config):
    """Without dropout and drop path, train mode gives the eval output; gradients reach norm1."""
    model = _build(ns, "EncoderBlock", config, inputs)
    x = torch.from_numpy(inputs["x"])
    with torch.no_grad():
        ref = as_tensor(model(x)[0], "x")
    model.train()
    out = model(x)[0]
    out.float().sum().backward()
    grad = model.norm1.weight.grad if isinstance(getattr(model, "norm1", None), nn.Module) else None
    return {"max_diff": float((as_tensor(out, "x") - ref).abs().max()),
            "norm1_has_grad": grad is not None and bool(grad.abs().sum() > 0)}


def vit(ns, inputs, config):
    model = _build(ns, "ViT", config, inputs)
    images = torch.from_numpy(inputs["images"])
    with torch.no_grad():
        logits = model(images)
        result = model.forward_with_attention(images)
    if not isinstance(result, tuple) or len(result) != 2:
        raise TypeError("forward_with_attention must return a tuple (logits, attentions)")
    logits2, attentions = result
    if not isinstance(attentions, (list, tuple)) or not attentions:
        raise TypeError("forward_with_attention must return a non-empty list of attention maps")
    attn = torch.stack([as_tensor(a, "attention") for a in attentions])  # (L, B, heads, N, N)
    has_pos = any(n == "pos_embed" for n, _ in model.named_parameters())
    return {"logits": tensor_out(logits, "ViT.forward"),
            "logits_with_attention": tensor_out(logits2, "forward_with_attention"),
            "attentions": tensor_out(attn, "attentions"),
            "has_pos_embed": has_pos}


def vit_size(ns, inputs):
    torch.manual_seed(0)
    model = ns["ViT"]()
    names = sorted(n for n, _ in model.named_parameters())
    return {"params": int(sum(p.numel() for p in model.parameters())),
            "num_tensors": len(names)}


# ----------------------------------------------------------------------------- CutMix


def _call_cutmix(ns, images, targets, alpha, generator):
    result = ns["cutmix"](images, targets, alpha, generator=generator)
    if not isinstance(result, tuple) or len(result) != 4:
        raise TypeError("cutmix must return (mixed_images, targets_a, targets_b, lam)")
    mixed, ta, tb, lam = result
    return (as_tensor(mixed, "mixed_images"), as_tensor(ta, "targets_a"),
            as_tensor(tb, "targets_b"), number_out(lam, "lam"))


def _analyse(images, targets, mixed, ta, tb):
    """Per-draw facts: (box y1, y2, x1, x2 or -1s, violations, moved samples)."""
    B, _, H, W = images.shape
    if mixed.shape != images.shape:
        raise ValueError(f"mixed_images has shape {tuple(mixed.shape)}, expected "
                         f"{tuple(images.shape)}")
    if not torch.equal(ta, targets):
        raise ValueError("targets_a must be the original targets")
    same_labels = tb.shape == targets.shape and torch.equal(torch.sort(tb).values,
                                                            torch.sort(targets).values)
    if not same_labels:
        raise ValueError("targets_b must be a permutation of the targets")
    lookup = {int(t): i for i, t in enumerate(targets.tolist())}
    perm = [lookup[int(t)] for t in tb.tolist()]
    moved = [i for i in range(B) if perm[i] != i]
    if not moved:
        return (-1, -1, -1, -1), 0, 0
    idx = torch.tensor(moved)
    changed = (mixed[idx] != images[idx]).any(1).any(0)  # (H, W)
    box = torch.zeros(H, W, dtype=torch.bool)
    y1 = y2 = x1 = x2 = 0
    if changed.any():
        ys, xs = torch.nonzero(changed, as_tuple=True)
        y1, y2, x1, x2 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
        box[y1:y2, x1:x2] = True
    source = images[torch.tensor(perm)]
    inside = (mixed[:, :, box] == source[:, :, box]).flatten(1).all(1)
    outside = (mixed[:, :, ~box] == images[:, :, ~box]).flatten(1).all(1)
    violations = int((~inside).sum()) + int((~outside).sum())
    return (y1, y2, x1, x2), violations, len(moved)


def cutmix_draws(ns, inputs, alpha, draws):
    images = torch.from_numpy(inputs["images"])
    targets = torch.from_numpy(inputs["targets"])
    original = images.clone()
    boxes, lams, violations, observed = [], [], 0, 0
    for seed in range(draws):
        gen = torch.Generator().manual_seed(1000 + seed)
        mixed, ta, tb, lam = _call_cutmix(ns, images, targets, alpha, gen)
        box, bad, moved = _analyse(images, targets, mixed, ta, tb)
        violations += bad
        if moved:
            observed += 1
            boxes.append(box)
            lams.append(lam)
    H, W = images.shape[-2:]
    boxes = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    lams = np.array(lams, dtype=np.float64)
    area = (boxes[:, 1] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 2]) / (H * W)
    centre_x = (boxes[:, 2] + boxes[:, 3]) / 2
    has_box = area > 0
    return {
        "lam": lams,
        "box_area": area,
        "max_lam_error": float(np.abs(lams - (1 - area)).max()) if len(lams) else 0.0,
        "violations": violations,
        "observed": observed,
        "inputs_unchanged": bool(torch.equal(images, original)),
        "centre_x_std": float(centre_x[has_box].std()) if has_box.sum() > 1 else 0.0,
        "mean_lam": float(lams.mean()) if len(lams) else math.nan,
        "std_lam": float(lams.std()) if len(lams) else math.nan,
        "empty_share": float((~has_box).mean()) if len(lams) else math.nan,
    }


def cutmix_determinism(ns, inputs, alpha):
    images = torch.from_numpy(inputs["images"])
    targets = torch.from_numpy(inputs["targets"])
    runs = []
    for seed in (7, 7, 8):
        runs.append(_call_cutmix(ns, images, targets, alpha, torch.Generator().manual_seed(seed)))
    same = torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][2], runs[1][2]) \
        and runs[0][3] == runs[1][3]
    differ = not (torch.equal(runs[0][0], runs[2][0]) and torch.equal(runs[0][2], runs[2][2]))
    return {"same_seed_same_output": bool(same), "other_seed_differs": bool(differ)}


# ----------------------------------------------------------------------------- loss, rollout


def mixed_loss(ns, inputs, lam):
    logits = torch.from_numpy(inputs["logits"]).requires_grad_(True)
    loss = ns["cutmix_loss"](logits, torch.from_numpy(inputs["targets_a"]),
                             torch.from_numpy(inputs["targets_b"]), lam)
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise TypeError("cutmix_loss must return a scalar tensor")
    loss.backward()
    grad = logits.grad if logits.grad is not None else torch.full_like(logits, float("nan"))
    return {"loss": number_out(loss, "cutmix_loss"), "grad": tensor_out(grad, "gradient")}


def rollout(ns, inputs, head_fusion, discard_ratio):
    attentions = [torch.from_numpy(a) for a in inputs["attentions"]]
    copies = [a.clone() for a in attentions]
    mask = ns["attention_rollout"](attentions, head_fusion=head_fusion,
                                   discard_ratio=discard_ratio)
    unchanged = all(torch.equal(a, c) for a, c in zip(attentions, copies, strict=True))
    return {"mask": tensor_out(mask, "attention_rollout"), "inputs_unchanged": unchanged}


def rollout_pipeline(ns, inputs, config):
    model = _build(ns, "ViT", config, inputs)
    with torch.no_grad():
        _, attentions = model.forward_with_attention(torch.from_numpy(inputs["images"]))
        mask = ns["attention_rollout"](list(attentions))
    return {"mask": tensor_out(mask, "attention_rollout")}

