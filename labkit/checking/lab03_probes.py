"""Lab 03's own probes: the parts, and labkit's SegFormer scaffold around them, with every weight
drawn from its name (the order in which a class creates its layers does not matter)."""

import torch

from labkit.checking import probe_utils as pu
from labkit.models.segformer import MitConfig, SegFormer

PARTS = ("OverlapPatchEmbed", "EfficientSelfAttention", "MixFFN", "SegFormerBlock",
         "AllMLPDecoder")


def part(ns, inputs, cls, config, args=(), zero=0):
    """``ns[cls](**config)`` in eval mode on ``args`` (``zero``: the columns of ``fuse.0.weight``
    from ``zero`` on set to 0): its output (``out``) and parameters (``params``)."""
    model = pu.fixed_weights(ns[cls](**config)).eval()
    if zero:
        model.state_dict()["fuse.0.weight"][:, zero:] = 0
    with torch.no_grad():
        out = pu.flatten(model(*pu._arguments(list(args), inputs, {})), "out", {})
    return {**out, "params": pu.parameters_out(model)}


def model(ns, inputs, config, num_classes, part, train=False):
    """labkit's SegFormer of the five classes in ``ns`` (``part``: the graded one, the other four
    the reference's): the logits in eval mode and the parameters; ``train``: drop_path 0.1 and
    train mode, the logits and the parameters that get no gradient."""
    net = SegFormer(config=MitConfig(**config), num_classes=num_classes, drop_path=0.1 * train,
                    **dict(zip(("patch_embed_cls", "attention_cls", "mix_ffn_cls", "block_cls",
                                "decoder_cls"), (ns[p] for p in PARTS))))
    images = torch.from_numpy(inputs["images"])
    if not train:
        with torch.no_grad():
            logits = pu.fixed_weights(net).eval()(images)
        return {"logits": pu.tensor_out(logits, "SegFormer"), "params": pu.parameters_out(net)}
    torch.manual_seed(0)
    logits = pu.fixed_weights(net).train()(images)
    pu._backward(logits)
    return {"train": pu.tensor_out(logits, "SegFormer (train mode)"), "without_grad": [
        n for n, p in net.named_parameters() if pu.requires_grad(p) and pu.grad_out(p) is None]}
