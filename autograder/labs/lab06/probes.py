"""Lab 06 probes: run in the sandboxed child, call the student's code, return raw outputs.

Modules are built from the student's classes, loaded with the state dict made in the parent
(names and shapes as the stubs specify) and run in eval mode. Every probe returns what the
student's objects returned (base-class arrays, numbers, shapes, names) and nothing else: no
expected value and no verdict lives here, every comparison is made by the parent (checks.py).
Exceptions propagate (the parent sees their type and message). The child that runs the calls of
one exercise binds every other exercise of the lab to the reference implementation, so the
probes simply call ``ns[...]``.
"""

import numpy as np
import torch
from torch import nn

from labkit.checking.probe_utils import (
    check_names_and_shapes,
    grad_out,
    number_out,
    parameters_out,
    shape_of,
    tensor_out,
)


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


def _pair(result, what, names):
    """The two items of a returned (a, b) tuple or list (TypeError otherwise)."""
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise TypeError(f"{what} must return a tuple ({names})")
    return result[0], result[1]


def _ints(value):
    """A tuple/list of ints (a module attribute such as kernel_size) as a list, else None."""
    if isinstance(value, (tuple, list)) and all(isinstance(v, int) for v in value):
        return [int(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return [int(value)]
    return None


def patch_embed(ns, inputs, config):
    model = _build(ns, "PatchEmbed", config, inputs)
    with torch.no_grad():
        out = model(torch.from_numpy(inputs["images"]))
    proj = getattr(model, "proj", None)
    num_patches = getattr(model, "num_patches", None)
    return {
        "tokens": tensor_out(out, "PatchEmbed.forward"),
        "proj_classes": [f"{c.__module__}.{c.__qualname__}" for c in type(proj).__mro__],
        "proj_kernel_size": _ints(getattr(proj, "kernel_size", None)),
        "proj_stride": _ints(getattr(proj, "stride", None)),
        "num_patches": None if num_patches is None else number_out(num_patches,
                                                                    "PatchEmbed.num_patches"),
    }


def attention(ns, inputs, config):
    model = _build(ns, "MultiHeadSelfAttention", config, inputs)
    x = torch.from_numpy(inputs["x"])
    with torch.no_grad():
        out, attn = _pair(model(x), "MultiHeadSelfAttention.forward", "out, attn")
        again, _ = _pair(model(x), "MultiHeadSelfAttention.forward", "out, attn")
    return {"out": tensor_out(out, "out"), "attn": tensor_out(attn, "attn"),
            "out_again": tensor_out(again, "out")}


def block(ns, inputs, config):
    model = _build(ns, "EncoderBlock", config, inputs)
    with torch.no_grad():
        x, attn = _pair(model(torch.from_numpy(inputs["x"])), "EncoderBlock.forward", "x, attn")
    return {"x": tensor_out(x, "x"), "attn": tensor_out(attn, "attn")}


def block_train_mode(ns, inputs, config):
    """The eval and the train-mode output (no dropout, no drop path) and norm1's gradient."""
    model = _build(ns, "EncoderBlock", config, inputs)
    x = torch.from_numpy(inputs["x"])
    with torch.no_grad():
        x_eval, _ = _pair(model(x), "EncoderBlock.forward", "x, attn")
    model.train()
    x_train, _ = _pair(model(x), "EncoderBlock.forward", "x, attn")
    x_train.float().sum().backward()
    grad = grad_out(dict(model.named_parameters())["norm1.weight"])
    result = {"x_eval": tensor_out(x_eval, "x"), "x_train": tensor_out(x_train, "x")}
    if grad is not None:
        result["norm1_grad"] = grad
    return result


def vit(ns, inputs, config):
    model = _build(ns, "ViT", config, inputs)
    images = torch.from_numpy(inputs["images"])
    with torch.no_grad():
        logits = model(images)
        logits2, attentions = _pair(model.forward_with_attention(images),
                                    "forward_with_attention", "logits, attentions")
    if not isinstance(attentions, (list, tuple)):
        raise TypeError("forward_with_attention must return a list of attention maps, got "
                        f"{type(attentions).__name__}")
    maps = [tensor_out(a, "attention map") for a in attentions]
    result = {"logits": tensor_out(logits, "ViT.forward"),
              "logits_with_attention": tensor_out(logits2, "forward_with_attention"),
              "attention_shapes": [list(m.shape) for m in maps]}
    if maps and all(m.shape == maps[0].shape for m in maps):
        result["attentions"] = np.stack(maps)  # (L, B, heads, N+1, N+1)
    return result


def vit_size(ns, inputs):
    torch.manual_seed(0)
    return {"parameters": parameters_out(ns["ViT"]())}


# ----------------------------------------------------------------------------- CutMix


def _cutmix(ns, images, targets, alpha, seed):
    """One call with a generator seeded ``seed``: (mixed, targets_a, targets_b, lam) raw."""
    result = ns["cutmix"](images, targets, alpha, generator=torch.Generator().manual_seed(seed))
    if not isinstance(result, (tuple, list)) or len(result) != 4:
        raise TypeError("cutmix must return (mixed_images, targets_a, targets_b, lam)")
    mixed, ta, tb, lam = result
    return (tensor_out(mixed, "mixed_images"), tensor_out(ta, "targets_a"),
            tensor_out(tb, "targets_b"), number_out(lam, "lam"))


def _stacked(draws, key, what):
    arrays = [d[key] for d in draws]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise TypeError(f"{what} has different shapes from one call to the next: "
                        f"{sorted(shapes)[:3]}")
    return np.stack(arrays)


def cutmix_draws(ns, inputs, alpha, draws):
    """``draws`` calls with generators seeded 1000, 1001, ...: every output, stacked."""
    images = torch.from_numpy(inputs["images"].copy())
    targets = torch.from_numpy(inputs["targets"].copy())
    out = []
    for seed in range(1000, 1000 + draws):
        mixed, ta, tb, lam = _cutmix(ns, images, targets, alpha, seed)
        out.append({"mixed": mixed, "targets_a": ta, "targets_b": tb, "lam": lam})
    return {"mixed": _stacked(out, "mixed", "mixed_images"),
            "targets_a": _stacked(out, "targets_a", "targets_a"),
            "targets_b": _stacked(out, "targets_b", "targets_b"),
            "lam": np.array([d["lam"] for d in out], dtype=np.float64),
            "images_after": tensor_out(images, "the input images"),
            "targets_after": tensor_out(targets, "the input targets")}


def cutmix_determinism(ns, inputs, alpha):
    """Three calls: generator seeds 7, 7 and 8."""
    images = torch.from_numpy(inputs["images"].copy())
    targets = torch.from_numpy(inputs["targets"].copy())
    result = {}
    for i, seed in enumerate((7, 7, 8)):
        mixed, _, tb, lam = _cutmix(ns, images, targets, alpha, seed)
        result.update({f"mixed_{i}": mixed, f"targets_b_{i}": tb, f"lam_{i}": lam})
    return result


# ----------------------------------------------------------------------------- loss, rollout


def mixed_loss(ns, inputs, lam):
    logits = torch.from_numpy(inputs["logits"]).requires_grad_(True)
    loss = ns["cutmix_loss"](logits, torch.from_numpy(inputs["targets_a"]),
                             torch.from_numpy(inputs["targets_b"]), lam)
    if not isinstance(loss, torch.Tensor):
        raise TypeError(f"cutmix_loss must return a scalar tensor, got {type(loss).__name__}")
    result = {"loss": number_out(loss, "cutmix_loss"), "loss_shape": shape_of(loss)}
    loss.backward()
    grad = grad_out(logits)
    if grad is not None:
        result["grad"] = grad
    return result


def rollout(ns, inputs, head_fusion, discard_ratio):
    attentions = [torch.from_numpy(a) for a in inputs["attentions"].copy()]
    mask = ns["attention_rollout"](attentions, head_fusion=head_fusion,
                                   discard_ratio=discard_ratio)
    return {"mask": tensor_out(mask, "attention_rollout"),
            "attentions_after": np.stack([tensor_out(a, "attention map") for a in attentions])}


def rollout_pipeline(ns, inputs, config):
    """Rollout of the (reference) ViT's attention maps on fixed weights and images."""
    model = _build(ns, "ViT", config, inputs)
    with torch.no_grad():
        _, attentions = model.forward_with_attention(torch.from_numpy(inputs["images"]))
        mask = ns["attention_rollout"](list(attentions))
    return {"mask": tensor_out(mask, "attention_rollout")}
