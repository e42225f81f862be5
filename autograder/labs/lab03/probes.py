"""Lab 03 probes: run in the sandboxed child, call the student's code, return plain data.

Parts are built from the student's classes, loaded with the state dict made in the parent (names
and shapes as the stubs specify, ``strict=True``) and run in eval mode. The whole model is
labkit's scaffold around the student's classes; the same weights also go into Hugging Face's
``SegformerForSemanticSegmentation`` (built offline from its config), whose logits are returned
next to the student's. No expected values live here.
"""

import numpy as np
import torch
from probe_utils import check_names_and_shapes, tensor_out
from torch import nn


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
    hw = []
    for v in (h, w):
        if isinstance(v, torch.Tensor) and v.numel() == 1:
            v = int(torch.Tensor.item(v))
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{what}.forward: H and W must be ints, got {type(v).__name__}")
        hw.append(int(v))
    return {"tokens": tensor_out(tokens, what), "hw": hw}


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


def _segformer(ns, config, num_classes, drop_path=0.0):
    from labkit.models.segformer import MitConfig, SegFormer

    return SegFormer(config=MitConfig(**config), num_classes=num_classes,
                     patch_embed_cls=ns["OverlapPatchEmbed"],
                     attention_cls=ns["EfficientSelfAttention"], mix_ffn_cls=ns["MixFFN"],
                     block_cls=ns["SegFormerBlock"], decoder_cls=ns["AllMLPDecoder"],
                     drop_path=drop_path)


def _hf_logits(config, num_classes, state, images):
    """Hugging Face's SegFormer with the same weights (mapped by name), eval mode."""
    from transformers import SegformerForSemanticSegmentation

    from labkit.models.segformer import MitConfig, hf_key_to_labkit, to_hf_config

    hf = SegformerForSemanticSegmentation(
        to_hf_config(MitConfig(**config), num_labels=num_classes))
    hf_state = {k: state[hf_key_to_labkit(k)] for k in hf.state_dict()}
    hf.load_state_dict(hf_state, strict=True)
    hf.eval()
    with torch.no_grad():
        return hf(pixel_values=images).logits


def model(ns, inputs, config, num_classes):
    state = _state(inputs)
    images = torch.from_numpy(inputs["images"])
    net = _load(_segformer(ns, config, num_classes), state,
                f"SegFormer-{config['name']} built from your classes")
    with torch.no_grad():
        logits = net(images)
    out = {"logits": tensor_out(logits, "SegFormer.forward"),
           "params": int(sum(p.numel() for p in net.parameters()))}
    del net
    out["hf_logits"] = tensor_out(_hf_logits(config, num_classes, state, images), "HF")
    return out


def model_grad(ns, inputs, config, num_classes):
    torch.manual_seed(0)
    net = _segformer(ns, config, num_classes, drop_path=0.1)
    net.train()
    images = torch.from_numpy(inputs["images"])
    targets = torch.from_numpy(inputs["targets"])
    logits = net(images)
    up = nn.functional.interpolate(logits, size=targets.shape[-2:], mode="bilinear",
                                   align_corners=False)
    nn.functional.cross_entropy(up, targets).backward()
    no_grad = sorted(n for n, p in net.named_parameters() if p.requires_grad and p.grad is None)
    return {"shape": [int(s) for s in logits.shape], "params_without_grad": no_grad[:8],
            "n_without_grad": len(no_grad),
            "finite": bool(torch.isfinite(logits).all())}
