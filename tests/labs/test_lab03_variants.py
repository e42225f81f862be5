"""Lab 03 style variants: correct code in other styles earns full marks; a typical mistake costs
only its own exercise's points (every other part is the reference in that exercise's child, the
whole-model checks included).

Three correct variants of every exercise (one notebook each, all five classes replaced) and two
wrong variants of every exercise (one notebook per variant number and per half of the exercises,
the other half left as in the solution), each with its exact per-exercise score.
``wrong_notebooks()`` gives the shared self-check test (tests/labs/test_selfcheck.py) wrong
variant 0 and wrong variant 1 of every exercise, each set in one notebook.
"""

import nbformat
import pytest

variants = pytest.importorskip("variants", reason="tests/labs/variants.py (the lead's helper) "
                                                  "has not landed yet")

LAB = "lab03"

# ----------------------------------------------------------------------------- OverlapPatchEmbed

PATCH_EMBED = [
    # padding from a module-level lambda; tokens by permute + reshape in a helper of another cell
    # (see BEFORE); H', W' from the conv's output
    '''
HALF = lambda k: k // 2  # noqa: E731


class OverlapPatchEmbed(nn.Module):
    def __init__(self, *, in_channels, dim, patch_size, stride):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, patch_size, stride, HALF(patch_size))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        x = self.proj(x)
        tokens, h, w = map_to_tokens(x)
        return self.norm(tokens), h, w
''',
    # H', W' from the convolution arithmetic; functional layer norm with the module's weights
    '''
class OverlapPatchEmbed(nn.Module):
    def __init__(self, *, in_channels, dim, patch_size, stride):
        super().__init__()
        self.k, self.s, self.p = patch_size, stride, patch_size // 2
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=(patch_size, patch_size),
                              stride=(stride, stride), padding=(self.p, self.p))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        H, W = x.shape[-2:]
        h = (H + 2 * self.p - self.k) // self.s + 1
        w = (W + 2 * self.p - self.k) // self.s + 1
        y = self.proj(x).reshape(x.shape[0], -1, h * w).permute(0, 2, 1)
        y = F.layer_norm(y, self.norm.normalized_shape, self.norm.weight, self.norm.bias,
                         self.norm.eps)
        return y, int(h), int(w)
''',
    # nn.Flatten built at module level, einsum transpose, sizes read from torch.Size
    '''
import functools

FLAT = nn.Flatten(2)
LN = functools.partial(nn.LayerNorm, eps=1e-5)


class OverlapPatchEmbed(nn.Module):
    def __init__(self, *, in_channels, dim, patch_size, stride):
        super().__init__()
        pad = [patch_size // 2] * 2
        self.proj = nn.Conv2d(in_channels, dim, patch_size, stride=stride, padding=tuple(pad))
        self.norm = LN(dim)

    def forward(self, x):
        y = self.proj(x)
        size = y.size()
        tokens = torch.einsum("bcn->bnc", FLAT(y))
        return self.norm(tokens), size[2], size[3]
''',
]
PATCH_EMBED_HELPER = '''
def map_to_tokens(x):
    """(B, C, H, W) -> ((B, H*W, C), H, W), row-major."""
    b, c, h, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(b, h * w, c), h, w
'''

PATCH_EMBED_WRONG = [
    # no padding: non-overlapping borders, H', W' too small
    '''
class OverlapPatchEmbed(nn.Module):
    def __init__(self, *, in_channels, dim, patch_size, stride):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=stride)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        x = self.proj(x)
        _, _, h, w = x.shape
        return self.norm(x.flatten(2).transpose(1, 2)), h, w
''',
    # tokens flattened column by column (W before H)
    '''
class OverlapPatchEmbed(nn.Module):
    def __init__(self, *, in_channels, dim, patch_size, stride):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=stride,
                              padding=patch_size // 2)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        x = self.proj(x)
        _, _, h, w = x.shape
        return self.norm(x.transpose(2, 3).flatten(2).transpose(1, 2)), h, w
''',
]

# ----------------------------------------------------------------------------- attention

ATTENTION = [
    # einsum scores, a softmax module built at module level, head split in a helper cell
    '''
SOFTMAX = nn.Softmax(dim=-1)


class EfficientSelfAttention(nn.Module):
    def __init__(self, *, dim, heads, sr_ratio):
        super().__init__()
        self.heads, self.r = heads, sr_ratio
        self.query, self.key, self.value = (nn.Linear(dim, dim) for _ in range(3))
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, sr_ratio, sr_ratio)
            self.norm = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, H, W):
        kv = x
        if self.r > 1:
            grid = x.permute(0, 2, 1).reshape(x.shape[0], x.shape[2], H, W)
            kv = self.norm(self.sr(grid).flatten(2).permute(0, 2, 1))
        q = heads_of(self.query(x), self.heads)
        k = heads_of(self.key(kv), self.heads)
        v = heads_of(self.value(kv), self.heads)
        attn = SOFTMAX(torch.einsum("bhnd,bhmd->bhnm", q, k) / math.sqrt(q.shape[-1]))
        out = torch.einsum("bhnm,bhmd->bhnd", attn, v)
        return self.proj(merge_heads(out))
''',
    # one head at a time in a loop, channel slices, torch.cat
    '''
class EfficientSelfAttention(nn.Module):
    def __init__(self, *, dim, heads, sr_ratio):
        super().__init__()
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        if sr_ratio != 1:
            self.sr = nn.Conv2d(dim, dim, kernel_size=sr_ratio, stride=sr_ratio)
            self.norm = nn.LayerNorm(dim)
        self.heads = heads
        self.reduce = sr_ratio != 1

    def forward(self, x, H, W):
        B, N, C = x.shape
        src = x
        if self.reduce:
            src = self.sr(x.transpose(1, 2).reshape(B, C, H, W))
            src = self.norm(src.reshape(B, C, -1).transpose(1, 2))
        q, k, v = self.query(x), self.key(src), self.value(src)
        d = C // self.heads
        outs = []
        for h in range(self.heads):
            sl = slice(h * d, (h + 1) * d)
            scores = q[..., sl] @ k[..., sl].transpose(1, 2) * d ** -0.5
            outs.append(torch.softmax(scores, dim=2) @ v[..., sl])
        return self.proj(torch.cat(outs, dim=-1))
''',
    # queries pre-scaled, F.softmax, unflatten/flatten for the heads, scale from numpy
    '''
import numpy as np


class EfficientSelfAttention(nn.Module):
    def __init__(self, *, dim, heads, sr_ratio):
        super().__init__()
        self.h = heads
        self.scale = float(np.power(dim // heads, -0.5))
        for name in ("query", "key", "value"):
            setattr(self, name, nn.Linear(dim, dim))
        self.sr_ratio = sr_ratio
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, kernel_size=sr_ratio, stride=sr_ratio)
            self.norm = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, H, W):
        b, n, c = x.shape
        if self.sr_ratio > 1:
            m = x.permute(0, 2, 1).unflatten(2, (H, W))
            kv = self.norm(self.sr(m).flatten(2).permute(0, 2, 1))
        else:
            kv = x
        q = (self.query(x) * self.scale).unflatten(-1, (self.h, -1)).permute(0, 2, 1, 3)
        k = self.key(kv).unflatten(-1, (self.h, -1)).permute(0, 2, 3, 1)
        v = self.value(kv).unflatten(-1, (self.h, -1)).permute(0, 2, 1, 3)
        out = F.softmax(q @ k, dim=-1) @ v
        return self.proj(out.permute(0, 2, 1, 3).flatten(2))
''',
]
ATTENTION_HELPERS = '''
def heads_of(t, heads):
    """(B, M, C) -> (B, heads, M, C // heads)."""
    b, m, c = t.shape
    return t.view(b, m, heads, c // heads).permute(0, 2, 1, 3)


def merge_heads(t):
    """(B, heads, M, d) -> (B, M, heads * d)."""
    b, h, m, d = t.shape
    return t.permute(0, 2, 1, 3).reshape(b, m, h * d)
'''

ATTENTION_WRONG = [
    # scores scaled by 1/sqrt(dim) instead of 1/sqrt(dim // heads)
    '''
class EfficientSelfAttention(nn.Module):
    def __init__(self, *, dim, heads, sr_ratio):
        super().__init__()
        self.heads, self.sr_ratio, self.dim = heads, sr_ratio, dim
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, kernel_size=sr_ratio, stride=sr_ratio)
            self.norm = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, H, W):
        b, n, c = x.shape
        kv = x
        if self.sr_ratio > 1:
            kv = self.norm(self.sr(x.transpose(1, 2).reshape(b, c, H, W)).flatten(2)
                           .transpose(1, 2))
        q = self.query(x).reshape(b, -1, self.heads, c // self.heads).transpose(1, 2)
        k = self.key(kv).reshape(b, -1, self.heads, c // self.heads).transpose(1, 2)
        v = self.value(kv).reshape(b, -1, self.heads, c // self.heads).transpose(1, 2)
        attn = (q @ k.transpose(-2, -1) / math.sqrt(self.dim)).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))
''',
    # softmax over the queries instead of the keys
    '''
class EfficientSelfAttention(nn.Module):
    def __init__(self, *, dim, heads, sr_ratio):
        super().__init__()
        self.heads, self.sr_ratio = heads, sr_ratio
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, kernel_size=sr_ratio, stride=sr_ratio)
            self.norm = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, H, W):
        b, n, c = x.shape
        d = c // self.heads
        kv = x
        if self.sr_ratio > 1:
            kv = self.norm(self.sr(x.transpose(1, 2).reshape(b, c, H, W)).flatten(2)
                           .transpose(1, 2))
        q = self.query(x).reshape(b, -1, self.heads, d).transpose(1, 2)
        k = self.key(kv).reshape(b, -1, self.heads, d).transpose(1, 2)
        v = self.value(kv).reshape(b, -1, self.heads, d).transpose(1, 2)
        attn = (q @ k.transpose(-2, -1) / math.sqrt(d)).softmax(dim=-2)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))
''',
]

# ----------------------------------------------------------------------------- MixFFN

MIX_FFN = [
    # functional GELU in forward (the module still defines act), unflatten for the map
    '''
class MixFFN(nn.Module):
    def __init__(self, *, dim, hidden_dim):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.dwconv = nn.Conv2d(hidden_dim, hidden_dim, 3, 1, 1, groups=hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x, H, W):
        y = self.fc1(x).transpose(1, 2).unflatten(2, (H, W))
        y = self.dwconv(y).flatten(2).transpose(1, 2)
        return self.fc2(F.gelu(y))
''',
    # activations from a dict comprehension; channels-last reshapes with permute
    '''
ACTIVATIONS = {name.lower(): getattr(nn, name) for name in ("GELU", "ReLU", "SiLU")}


class MixFFN(nn.Module):
    def __init__(self, *, dim, hidden_dim):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.dwconv = nn.Conv2d(in_channels=hidden_dim, out_channels=hidden_dim, kernel_size=3,
                                padding=1, groups=hidden_dim, bias=True)
        self.act = ACTIVATIONS["gelu"]()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x, H, W):
        b, n, _ = x.shape
        y = self.fc1(x).reshape(b, H, W, -1).permute(0, 3, 1, 2)
        y = self.dwconv(y).permute(0, 2, 3, 1).reshape(b, n, -1)
        return self.fc2(self.act(y))
''',
    # the depthwise convolution called functionally with the module's weights; a lambda
    '''
TO_MAP = lambda t, h, w: t.transpose(1, 2).reshape(t.shape[0], t.shape[2], h, w)  # noqa: E731


class MixFFN(nn.Module):
    def __init__(self, *, dim, hidden_dim):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.dwconv = nn.Conv2d(hidden_dim, hidden_dim, kernel_size=(3, 3), padding=(1, 1),
                                groups=hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.groups = hidden_dim

    def forward(self, x, H, W):
        m = TO_MAP(self.fc1(x), H, W)
        m = F.conv2d(m, self.dwconv.weight, self.dwconv.bias, padding=1, groups=self.groups)
        return self.fc2(self.act(m.flatten(2).transpose(1, 2)))
''',
]

MIX_FFN_WRONG = [
    # GELU before the depthwise convolution
    '''
class MixFFN(nn.Module):
    def __init__(self, *, dim, hidden_dim):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.dwconv = nn.Conv2d(hidden_dim, hidden_dim, 3, padding=1, groups=hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x, H, W):
        x = self.act(self.fc1(x))
        b, n, c = x.shape
        x = self.dwconv(x.transpose(1, 2).reshape(b, c, H, W))
        return self.fc2(x.flatten(2).transpose(1, 2))
''',
    # H and W swapped when the tokens are laid out as a map
    '''
class MixFFN(nn.Module):
    def __init__(self, *, dim, hidden_dim):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.dwconv = nn.Conv2d(hidden_dim, hidden_dim, 3, padding=1, groups=hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x, H, W):
        x = self.fc1(x)
        b, n, c = x.shape
        x = self.dwconv(x.transpose(1, 2).reshape(b, c, W, H))
        return self.fc2(self.act(x.flatten(2).transpose(1, 2)))
''',
]

# ----------------------------------------------------------------------------- SegFormerBlock

BLOCK = [
    # a residual helper in another cell (see BEFORE)
    '''
class SegFormerBlock(nn.Module):
    def __init__(self, *, dim, heads, sr_ratio, mlp_ratio, drop_path):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = EfficientSelfAttention(dim=dim, heads=heads, sr_ratio=sr_ratio)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = MixFFN(dim=dim, hidden_dim=int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path)

    def forward(self, x, H, W):
        x = residual(x, lambda t: self.attn(self.norm1(t), H, W), self.drop_path)
        return residual(x, lambda t: self.ffn(self.norm2(t), H, W), self.drop_path)
''',
    # the hidden width from a module-level lambda; both branches in a loop
    '''
HIDDEN = lambda d, r: int(d * r)  # noqa: E731


class SegFormerBlock(nn.Module):
    def __init__(self, *, dim, heads, sr_ratio, mlp_ratio, drop_path):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = EfficientSelfAttention(dim=dim, heads=heads, sr_ratio=sr_ratio)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = MixFFN(dim=dim, hidden_dim=HIDDEN(dim, mlp_ratio))
        self.drop_path = DropPath(drop_path)

    def forward(self, x, H, W):
        for norm, branch in ((self.norm1, self.attn), (self.norm2, self.ffn)):
            x = x + self.drop_path(branch(norm(x), H, W))
        return x
''',
    # keyword calls and intermediate names; DropPath's p taken from the keyword
    '''
class SegFormerBlock(nn.Module):
    def __init__(self, *, dim, heads, sr_ratio, mlp_ratio, drop_path):
        super().__init__()
        hidden = round(dim * mlp_ratio) if float(dim * mlp_ratio).is_integer() \\
            else int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(normalized_shape=dim)
        self.attn = EfficientSelfAttention(sr_ratio=sr_ratio, heads=heads, dim=dim)
        self.norm2 = nn.LayerNorm(normalized_shape=dim)
        self.ffn = MixFFN(hidden_dim=hidden, dim=dim)
        self.drop_path = DropPath(p=drop_path)

    def forward(self, x, H, W):
        attended = self.attn(self.norm1(x), H=H, W=W)
        x = x + self.drop_path(attended)
        fed = self.ffn(self.norm2(x), H=H, W=W)
        return x + self.drop_path(fed)
''',
]
BLOCK_HELPER = '''
def residual(x, branch, drop):
    return x + drop(branch(x))
'''

BLOCK_WRONG = [
    # post-norm instead of pre-norm
    '''
class SegFormerBlock(nn.Module):
    def __init__(self, *, dim, heads, sr_ratio, mlp_ratio, drop_path):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = EfficientSelfAttention(dim=dim, heads=heads, sr_ratio=sr_ratio)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = MixFFN(dim=dim, hidden_dim=int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path)

    def forward(self, x, H, W):
        x = self.norm1(x + self.drop_path(self.attn(x, H, W)))
        return self.norm2(x + self.drop_path(self.ffn(x, H, W)))
''',
    # norm1 reused before the Mix-FFN (norm2 never used)
    '''
class SegFormerBlock(nn.Module):
    def __init__(self, *, dim, heads, sr_ratio, mlp_ratio, drop_path):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = EfficientSelfAttention(dim=dim, heads=heads, sr_ratio=sr_ratio)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = MixFFN(dim=dim, hidden_dim=int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path)

    def forward(self, x, H, W):
        x = x + self.drop_path(self.attn(self.norm1(x), H, W))
        return x + self.drop_path(self.ffn(self.norm1(x), H, W))
''',
]

# ----------------------------------------------------------------------------- AllMLPDecoder

DECODER = [
    # the per-stage linear layers applied by einsum on the maps; reversed()
    '''
class AllMLPDecoder(nn.Module):
    def __init__(self, *, in_dims, dim, num_classes):
        super().__init__()
        self.linear_c = nn.ModuleList([nn.Linear(c, dim) for c in in_dims])
        self.fuse = nn.Sequential(nn.Conv2d(len(in_dims) * dim, dim, 1, bias=False),
                                  nn.BatchNorm2d(dim), nn.ReLU())
        self.classifier = nn.Conv2d(dim, num_classes, 1)

    def forward(self, features):
        size = tuple(features[0].shape[2:])
        maps = []
        for f, lin in zip(features, self.linear_c):
            m = torch.einsum("bchw,dc->bdhw", f, lin.weight) + lin.bias[None, :, None, None]
            maps.append(F.interpolate(m, size=size, mode="bilinear", align_corners=False))
        return self.classifier(self.fuse(torch.cat(list(reversed(maps)), dim=1)))
''',
    # channels-last linear layers in a comprehension; the upsampling from functools.partial
    '''
import functools

UPSAMPLE = functools.partial(F.interpolate, mode="bilinear", align_corners=False)


class AllMLPDecoder(nn.Module):
    def __init__(self, *, in_dims, dim, num_classes):
        super().__init__()
        self.linear_c = nn.ModuleList(map(lambda c: nn.Linear(c, dim), in_dims))
        self.fuse = nn.Sequential(
            nn.Conv2d(dim * len(in_dims), dim, kernel_size=1, bias=False),
            nn.BatchNorm2d(dim),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Conv2d(dim, num_classes, kernel_size=1)

    def forward(self, features):
        h, w = features[0].shape[-2:]
        maps = [UPSAMPLE(lin(f.permute(0, 2, 3, 1)).permute(0, 3, 1, 2), size=(h, w))
                for f, lin in zip(features, self.linear_c)]
        return self.classifier(self.fuse(torch.cat(maps[::-1], 1)))
''',
    # the fuse layers called one by one, functional ReLU, a loop from the last stage down
    '''
class AllMLPDecoder(nn.Module):
    def __init__(self, *, in_dims, dim, num_classes):
        super().__init__()
        self.linear_c = nn.ModuleList()
        for c in in_dims:
            self.linear_c.append(nn.Linear(c, dim))
        self.fuse = nn.Sequential(nn.Conv2d(len(in_dims) * dim, dim, 1, bias=False),
                                  nn.BatchNorm2d(dim), nn.ReLU())
        self.classifier = nn.Conv2d(dim, num_classes, 1)

    def forward(self, features):
        target = features[0].shape[-2:]
        parts = []
        for i in range(len(features) - 1, -1, -1):
            f = features[i]
            b, c, h, w = f.shape
            t = self.linear_c[i](f.reshape(b, c, h * w).transpose(1, 2))
            m = t.transpose(1, 2).reshape(b, -1, h, w)
            parts.append(F.interpolate(m, size=target, mode="bilinear"))
        x = self.fuse[1](self.fuse[0](torch.cat(parts, dim=1)))
        return self.classifier(F.relu(x))
''',
]

DECODER_WRONG = [
    # concatenated in stage order (stage 1 first)
    '''
class AllMLPDecoder(nn.Module):
    def __init__(self, *, in_dims, dim, num_classes):
        super().__init__()
        self.linear_c = nn.ModuleList(nn.Linear(c, dim) for c in in_dims)
        self.fuse = nn.Sequential(nn.Conv2d(len(in_dims) * dim, dim, 1, bias=False),
                                  nn.BatchNorm2d(dim), nn.ReLU())
        self.classifier = nn.Conv2d(dim, num_classes, 1)

    def forward(self, features):
        size = features[0].shape[-2:]
        maps = []
        for feat, linear in zip(features, self.linear_c):
            b, _, h, w = feat.shape
            x = linear(feat.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(b, -1, h, w)
            maps.append(F.interpolate(x, size=size, mode="bilinear", align_corners=False))
        return self.classifier(self.fuse(torch.cat(maps, dim=1)))
''',
    # align_corners=True
    '''
class AllMLPDecoder(nn.Module):
    def __init__(self, *, in_dims, dim, num_classes):
        super().__init__()
        self.linear_c = nn.ModuleList(nn.Linear(c, dim) for c in in_dims)
        self.fuse = nn.Sequential(nn.Conv2d(len(in_dims) * dim, dim, 1, bias=False),
                                  nn.BatchNorm2d(dim), nn.ReLU())
        self.classifier = nn.Conv2d(dim, num_classes, 1)

    def forward(self, features):
        size = features[0].shape[-2:]
        maps = []
        for feat, linear in zip(features, self.linear_c):
            b, _, h, w = feat.shape
            x = linear(feat.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(b, -1, h, w)
            maps.append(F.interpolate(x, size=size, mode="bilinear", align_corners=True))
        return self.classifier(self.fuse(torch.cat(maps[::-1], dim=1)))
''',
]

EXERCISES = ("OverlapPatchEmbed", "EfficientSelfAttention", "MixFFN", "SegFormerBlock",
             "AllMLPDecoder")
CORRECT = dict(zip(EXERCISES, (PATCH_EMBED, ATTENTION, MIX_FFN, BLOCK, DECODER), strict=True))
WRONG = dict(zip(EXERCISES, (PATCH_EMBED_WRONG, ATTENTION_WRONG, MIX_FFN_WRONG, BLOCK_WRONG,
                             DECODER_WRONG), strict=True))
# helpers "in another cell", placed before the exercise's cell (used by the first variants)
BEFORE = {"OverlapPatchEmbed": [PATCH_EMBED_HELPER], "EfficientSelfAttention": [ATTENTION_HELPERS],
          "SegFormerBlock": [BLOCK_HELPER]}

# what a wrong variant earns of its exercise's points (every other exercise: full marks)
WRONG_SCORES = {
    ("OverlapPatchEmbed", 0): 0.0,  # wrong H', W' everywhere (the train-mode logits too)
    ("OverlapPatchEmbed", 1): 0.125,  # wrong tokens; gradients still reach every parameter
    ("EfficientSelfAttention", 0): 0.25,  # wrong values; gradients fine
    ("EfficientSelfAttention", 1): 0.25,
    ("MixFFN", 0): 0.125,
    ("MixFFN", 1): 0.125,
    ("SegFormerBlock", 0): 0.25,
    ("SegFormerBlock", 1): 0.0,  # norm2 gets no gradient
    ("AllMLPDecoder", 0): 0.25,
    ("AllMLPDecoder", 1): 1.25,  # align_corners=True: the 1x1 stage-4 map of 5.3 is constant
}


@pytest.mark.parametrize("which", range(3))
def test_correct_variants_earn_full_marks(tmp_path, which):
    nb = variants.variant_notebook(
        LAB, replace={ex: CORRECT[ex][which] for ex in EXERCISES},
        before=BEFORE if which == 0 else {})
    results = variants.grade_variant(LAB, nb, tmp_path)
    scores = variants.exercise_scores(LAB, results)
    assert {ex: s for ex, s in scores.items() if s[0] != s[1]} == {}, \
        variants.failing_detail(results)


@pytest.mark.parametrize("which", range(2))
@pytest.mark.parametrize("half", [EXERCISES[0::2], EXERCISES[1::2]], ids=["odd", "even"])
def test_wrong_variants_lose_only_their_exercise(tmp_path, which, half):
    nb = variants.variant_notebook(LAB, replace={ex: WRONG[ex][which] for ex in half})
    results = variants.grade_variant(LAB, nb, tmp_path)
    scores = variants.exercise_scores(LAB, results)
    want = {ex: (WRONG_SCORES[ex, which] if ex in half else top, top)
            for ex, (_, top) in scores.items()}
    assert scores == want, variants.failing_detail(results)


def wrong_notebooks() -> list[tuple[nbformat.NotebookNode, set[str]]]:
    """Wrong variant k (k = 0, 1) of all five classes in one notebook each. A self-check runs on
    the notebook's own classes (the whole model 6.1 on all five, the block on its attention and
    Mix-FFN), so every class is wrong there, and each wrong variant fails every public check of
    its exercise in the autograder too (their scores above come from hidden checks only)."""
    return [(variants.variant_notebook(LAB, replace={ex: WRONG[ex][k] for ex in EXERCISES}),
             set(EXERCISES)) for k in range(2)]
