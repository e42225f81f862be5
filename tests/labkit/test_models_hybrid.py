"""labkit.models.hybrid: the ResNet-ViT scaffold with any encoder block returning (x, attn)."""

import torch
from torch import nn

from labkit.models.hybrid import HybridViT
from labkit.models.resnet import resnet18_stem
from labkit.utils import count_flops


class _Block(nn.Module):
    """A minimal pre-norm block with torch's attention: tokens (B,N,dim) -> (tokens, attn)."""

    def __init__(self, dim, heads):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, x):
        h = self.norm(x)
        out, attn = self.attn(h, h, h, need_weights=True, average_attn_weights=False)
        return x + out, attn


def _hybrid(num_classes=100, dim=16, depth=2, heads=2, stages=3):
    stem = resnet18_stem(stages=stages)
    return HybridViT(stem=stem, stem_channels=stem.out_channels,
                     block_factory=lambda i: _Block(dim, heads), depth=depth, dim=dim,
                     num_classes=num_classes)


def test_shapes_tokens_and_attention():
    model = _hybrid().eval()
    assert model.grid == (8, 8) and model.num_patches == 64
    assert model.pos_embed.shape == (1, 65, 16) and model.cls_token.shape == (1, 1, 16)
    x = torch.rand(3, 3, 32, 32)
    logits, attns = model.forward_with_attention(x)
    assert logits.shape == (3, 100) and torch.allclose(model(x), logits)
    assert len(attns) == 2 and all(a.shape == (3, 2, 65, 65) for a in attns)
    assert len(model.blocks) == 2


def test_token_count_follows_the_stem():
    assert _hybrid(stages=2).num_patches == 256


def test_init_does_not_touch_the_stem_statistics():
    stem = resnet18_stem(stages=1)
    before = stem[1].running_mean.clone()
    HybridViT(stem=stem, stem_channels=64, block_factory=lambda i: _Block(8, 1), depth=1, dim=8)
    assert torch.equal(stem[1].running_mean, before) and stem.training


def test_flops_of_the_head_match_the_linear_formula():
    # the two models differ only in the head Linear(dim, K): 2 * B * dim * K FLOPs each
    x = torch.rand(2, 3, 32, 32)
    torch.manual_seed(0)
    big = count_flops(_hybrid(num_classes=100), x)
    torch.manual_seed(0)
    small = count_flops(_hybrid(num_classes=10), x)
    assert big - small == 2 * 2 * 16 * (100 - 10)


def test_backward_reaches_stem_and_blocks():
    model = _hybrid(depth=1)
    model(torch.rand(2, 3, 32, 32)).sum().backward()
    assert model.stem[0].weight.grad is not None and model.cls_token.grad is not None
    assert model.blocks[0].attn.in_proj_weight.grad is not None
