"""A hybrid ResNet-ViT: a convolutional stem makes the tokens, transformer blocks mix them.

Dosovitskiy et al., "An Image is Worth 16x16 Words", ICLR 2021, https://arxiv.org/abs/2010.11929
(section 3.1, "Hybrid Architecture"): the patch embedding is applied to the feature map of a CNN
with patch size 1, so every feature-map position becomes one token.

The scaffold owns only the parts that are new in the hybrid (the 1x1 projection of the feature
map, the class token, the positional embedding, the final LayerNorm and the head); the encoder
blocks come from ``block_factory``, e.g. the pre-norm block a lab asks students to write.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["HybridViT"]


class HybridViT(nn.Module):
    """images (B,3,H,W) -> stem -> (B,C,h,w) -> 1x1 conv -> (B,h*w,dim) tokens -> blocks -> logits.

    ``stem``: any module mapping images to a feature map with ``stem_channels`` channels (e.g.
    :func:`labkit.models.resnet.resnet18_stem`). ``block_factory(i)`` builds the ``i``-th of
    ``depth`` encoder blocks; each maps tokens (B,N,dim) to ``(tokens, attn)`` with ``attn``
    (B,heads,N,N). The number of tokens is found by running the stem once on a
    (1,3,img_size,img_size) input. ``forward`` returns logits (B,num_classes);
    ``forward_with_attention`` returns ``(logits, [attn of each block])``.
    """

    def __init__(
        self,
        *,
        stem: nn.Module,
        stem_channels: int,
        block_factory: Callable[[int], nn.Module],
        depth: int,
        dim: int,
        num_classes: int = 100,
        img_size: int = 32,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.stem = stem
        self.proj = nn.Conv2d(stem_channels, dim, kernel_size=1)
        with torch.no_grad():
            was_training = stem.training
            stem.eval()
            h, w = stem(torch.zeros(1, 3, img_size, img_size)).shape[-2:]
            stem.train(was_training)
        self.grid = (int(h), int(w))
        self.num_patches = int(h) * int(w)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_patches + 1, dim))
        self.pos_drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(block_factory(i) for i in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    def tokens(self, images: torch.Tensor) -> torch.Tensor:
        """images (B,3,H,W) -> tokens (B,1+h*w,dim) with the class token first, positions added."""
        x = self.proj(self.stem(images))  # (B, dim, h, w)
        x = x.flatten(2).transpose(1, 2)  # (B, h*w, dim)
        cls = self.cls_token.expand(x.shape[0], -1, -1)  # (B, 1, dim)
        return self.pos_drop(torch.cat([cls, x], dim=1) + self.pos_embed)

    def forward_with_attention(
        self, images: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(logits (B,num_classes), list of attention weights (B,heads,N,N), one per block)."""
        x = self.tokens(images)
        attentions = []
        for block in self.blocks:
            x, attn = block(x)
            attentions.append(attn)
        return self.head(self.norm(x)[:, 0]), attentions

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (B,3,H,W) -> logits (B,num_classes)."""
        return self.forward_with_attention(images)[0]
