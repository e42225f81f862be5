"""Lab 06's own probes: CutMix draws by generator seed, rollout of a ViT's maps."""

import numpy as np
import torch

from labkit.checking import probe_utils as pu


def cutmix_draws(ns, inputs, alpha, seeds):
    """cutmix once per generator seed, the outputs stacked (``mixed_images``, ``targets_a``,
    ``targets_b``, ``lam``), then the inputs as they are after the calls (``after``)."""
    images, targets = (torch.from_numpy(inputs[k].copy()) for k in ("images", "targets"))
    keys, draws = ("mixed_images", "targets_a", "targets_b"), []
    for seed in seeds:  # each draw read at once (an in-place cutmix changes it later)
        d = ns["cutmix"](images, targets, alpha, generator=torch.Generator().manual_seed(seed))
        if not (isinstance(d, (tuple, list)) and len(d) == 4):
            raise TypeError("cutmix must return (mixed_images, targets_a, targets_b, lam)")
        draws.append([pu.tensor_out(x, k) for x, k in zip(d, keys)] + [pu.number_out(d[3], "lam")])
    out = {k: np.stack([d[i] for d in draws]) for i, k in enumerate(keys)}
    out["lam"] = [d[3] for d in draws]
    return pu.flatten([images, targets], "after", out)


def rollout_pipeline(ns, inputs, config):
    """attention_rollout of the maps of a ViT with fixed weights (``out``)."""
    with torch.no_grad():
        torch.manual_seed(0)
        _, maps = pu.fixed_weights(ns["ViT"](**config)).eval().forward_with_attention(
            torch.from_numpy(inputs["images"]))
        return pu.flatten(ns["attention_rollout"](list(maps)), "out", {})
