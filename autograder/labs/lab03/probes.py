"""Lab 03 probes: run in the sandboxed child, call the student's code, return plain data.

Parts are built from the student's classes, loaded with the state dict made in the parent (names
and shapes as the stubs specify, ``strict=True``) and run in eval mode. The whole model is
labkit's scaffold around the graded class and the reference for the other parts (the child
cannot import ``transformers``: tests/labs/test_lab03.py shows that the reference logits of these
calls are Hugging Face's). Raw outputs only (tensors, numbers, names): every comparison is made
in the parent.
"""

import numpy as np
import torch
from torch import nn

from labkit.checking.probe_utils import (
    check_names_and_shapes,
    grad_out,
    number_out,
    parameters_out,
    requires_grad,
    tensor_out,
)

# imported here, once for every exercise's child (the probes are loaded before the children fork)
from labkit.models.segformer import MitConfig, SegFormer


def _state(inputs):
    """Parent-made weights (inputs "w.<name>"); BatchNorm counters travel as shape (1,)."""
    out = {}
    for k, v in inputs.items():
        if k.startswith("w."):
            t = torch.from_numpy(np.array(v))
            out[k[2:]] = t.reshape(()) if k.endswith("num_batches_tracked") else t
    return out


def _load(model, state, what):
    """Load ``state`` into ``model`` after comparing names and shapes (clear message if not)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"{what} must be an nn.Module, got {type(model).__name__}")
    check_names_and_shapes({k: tuple(v.shape) for k, v in model.state_dict().items()},
                           {k: tuple(v.shape) for k, v in state.items()}, what)
    model.load_state_dict(state, strict=True)
    return model.eval()


def _fmt(config):
    return ", ".join(f"{k}={v}" for k, v in config.items())


def patch_embed(ns, inputs, config):
    what = f"OverlapPatchEmbed({_fmt(config)})"
    model = _load(ns["OverlapPatchEmbed"](**config), _state(inputs), what)
    with torch.no_grad():
        out = model(torch.from_numpy(inputs["images"]))
    if not (isinstance(out, tuple) and len(out) == 3):
        raise TypeError(f"{what}.forward must return (tokens, H, W), got {type(out).__name__}")
    tokens, h, w = out
    return {"tokens": tensor_out(tokens, what),
            "hw": [number_out(v, f"{what}.forward's {n}") for n, v in (("H", h), ("W", w))],
            "hw_types": [type(v).__name__ for v in (h, w)]}


def tokens_module(ns, inputs, config, cls, hw):
    what = f"{cls}({_fmt(config)})"
    model = _load(ns[cls](**config), _state(inputs), what)
    with torch.no_grad():
        out = model(torch.from_numpy(inputs["tokens"]), int(hw[0]), int(hw[1]))
    return {"out": tensor_out(out, f"{what}.forward")}


def decoder(ns, inputs, config):
    what = f"AllMLPDecoder({_fmt(config)})"
    model = _load(ns["AllMLPDecoder"](**config), _state(inputs), what)
    feats = [torch.from_numpy(inputs[f"feat{i}"]) for i in range(len(config["in_dims"]))]
    with torch.no_grad():
        out = model(feats)
    return {"logits": tensor_out(out, f"{what}.forward")}


# ----------------------------------------------------------------------------- whole model

_NAMES = ("OverlapPatchEmbed", "EfficientSelfAttention", "MixFFN", "SegFormerBlock",
          "AllMLPDecoder")


def _segformer(ns, config, num_classes, part, drop_path=0.0):
    """labkit's scaffold around the classes in ``ns``.

    ``part`` is the graded exercise; the other classes in ``ns`` are the reference. A reference
    block builds its attention and Mix-FFN from the reference classes, so when ``part`` is one of
    those two, the student's class takes that place in every block."""
    embed_cls, attn_cls, ffn_cls, block_cls, decoder_cls = (ns[n] for n in _NAMES)

    def block(*, dim, heads, sr_ratio, mlp_ratio, drop_path):
        out = block_cls(dim=dim, heads=heads, sr_ratio=sr_ratio, mlp_ratio=mlp_ratio,
                        drop_path=drop_path)
        if part == "EfficientSelfAttention":
            out.attn = attn_cls(dim=dim, heads=heads, sr_ratio=sr_ratio)
        elif part == "MixFFN":
            out.ffn = ffn_cls(dim=dim, hidden_dim=int(dim * mlp_ratio))
        return out

    block.__name__ = "SegFormerBlock"
    return SegFormer(config=MitConfig(**config), num_classes=num_classes,
                     patch_embed_cls=embed_cls, attention_cls=attn_cls, mix_ffn_cls=ffn_cls,
                     block_cls=block, decoder_cls=decoder_cls, drop_path=drop_path)


def model(ns, inputs, config, num_classes, part):
    state = _state(inputs)
    images = torch.from_numpy(inputs["images"])
    net = _load(_segformer(ns, config, num_classes, part), state,
                f"SegFormer-{config['name']} with your {part}")
    with torch.no_grad():
        logits = net(images)
    return {"logits": tensor_out(logits, "SegFormer.forward"), "parameters": parameters_out(net)}


def model_grad(ns, inputs, config, num_classes, part):
    torch.manual_seed(0)
    net = _segformer(ns, config, num_classes, part, drop_path=0.1)
    net.train()
    images = torch.from_numpy(inputs["images"])
    targets = torch.from_numpy(inputs["targets"])
    logits = net(images)
    up = nn.functional.interpolate(logits, size=targets.shape[-2:], mode="bilinear",
                                   align_corners=False)
    nn.functional.cross_entropy(up, targets).backward()
    params = list(net.named_parameters())
    return {"logits": tensor_out(logits, "SegFormer.forward (train mode)"),
            "trainable": [n for n, p in params if requires_grad(p)],
            "with_grad": [n for n, p in params if grad_out(p) is not None]}
