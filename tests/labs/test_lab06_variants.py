"""Lab 06 style variants: correct code in other styles earns full marks; a typical mistake costs
only its own exercise's points (every other exercise is graded with the reference there).

Three correct variants of every exercise (one notebook each, all seven exercises replaced) and
three wrong variants of every exercise, each with its exact per-exercise score: wrong variants 1
and 2 in one notebook per half of the exercises (the other half as in the solution), wrong
variant 3 of every exercise together in one notebook. Eight notebooks graded in all.
``wrong_notebooks()`` gives the shared self-check test (tests/labs/test_selfcheck.py) variants 1
and 2 of every exercise, each set in one notebook.
"""

import nbformat
import pytest

variants = pytest.importorskip("variants", reason="tests/labs/variants.py (the lead's helper) "
                                                  "has not landed yet")

LAB = "lab06"

# the DropPath module the notebook gives in the EncoderBlock cell (a replaced cell keeps it)
DROP_PATH = '''
class DropPath(nn.Module):
    def __init__(self, p=0.0):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep
'''

# ----------------------------------------------------------------------------- PatchEmbed

PATCH_EMBED = [
    # functional convolution with the module's weights; a module-level constant built by a call
    '''
FLATTEN_GRID = nn.Flatten(start_dim=2)


class PatchEmbed(nn.Module):
    def __init__(self, *, img_size=32, patch_size=4, in_channels=3, dim=192):
        super().__init__()
        grid, rest = divmod(img_size, patch_size)
        if rest:
            raise ValueError("img_size must be a multiple of patch_size")
        self.patch_size = patch_size
        self.num_patches = grid * grid
        self.proj = nn.Conv2d(in_channels, dim, (patch_size, patch_size),
                              stride=(patch_size, patch_size))

    def forward(self, images):
        x = F.conv2d(images, self.proj.weight, self.proj.bias, stride=self.patch_size)
        return FLATTEN_GRID(x).permute(0, 2, 1)
''',
    # patches cut by reshaping (a helper in another cell), projected with einsum
    '''
class PatchEmbed(nn.Module):
    def __init__(self, *, img_size=32, patch_size=4, in_channels=3, dim=192):
        super().__init__()
        if img_size % patch_size != 0:
            raise ValueError(f"{img_size} is not a multiple of {patch_size}")
        self.p = patch_size
        self.num_patches = (img_size // patch_size) ** 2
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, images):
        patches = to_patches(images, self.p)  # (B, N, C*p*p)
        weight = self.proj.weight.flatten(1)  # (dim, C*p*p)
        return torch.einsum("bnk,dk->bnd", patches, weight) + self.proj.bias
''',
    # nn.Unfold and a matrix product; num_patches from math.pow
    '''
TOKENS_LAST = (0, 2, 1)


class PatchEmbed(nn.Module):
    def __init__(self, *, img_size=32, patch_size=4, in_channels=3, dim=192):
        super().__init__()
        if img_size % patch_size:
            raise ValueError("patch_size must divide img_size")
        self.num_patches = int(math.pow(img_size // patch_size, 2))
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)
        self.unfold = nn.Unfold(kernel_size=patch_size, stride=patch_size)

    def forward(self, images):
        cols = self.unfold(images)  # (B, C*p*p, N), row-major patches
        w = self.proj.weight.reshape(self.proj.out_channels, -1)
        return (w @ cols + self.proj.bias[:, None]).permute(*TOKENS_LAST)
''',
]
PATCH_EMBED_BEFORE = {1: ['''
def to_patches(images, p):
    # (B, C, H, W) -> (B, N, C*p*p), patches in row-major order, features as (C, p, p)
    B, C, H, W = images.shape
    x = images.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(B, (H // p) * (W // p), C * p * p)
''']}
PATCH_EMBED_WRONG = [
    # column-major patch order
    '''
class PatchEmbed(nn.Module):
    def __init__(self, *, img_size=32, patch_size=4, in_channels=3, dim=192):
        super().__init__()
        self.num_patches = (img_size // patch_size) ** 2
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, images):
        return self.proj(images).transpose(2, 3).flatten(2).transpose(1, 2)
''',
    # forgets the transpose: (B, dim, N) instead of (B, N, dim)
    '''
class PatchEmbed(nn.Module):
    def __init__(self, *, img_size=32, patch_size=4, in_channels=3, dim=192):
        super().__init__()
        self.num_patches = (img_size // patch_size) ** 2
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, images):
        return self.proj(images).flatten(2)
''',
    # overlapping patches: stride half the patch (more tokens than the stub says)
    '''
class PatchEmbed(nn.Module):
    def __init__(self, *, img_size=32, patch_size=4, in_channels=3, dim=192):
        super().__init__()
        self.num_patches = (img_size // patch_size) ** 2
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch_size,
                              stride=max(1, patch_size // 2))

    def forward(self, images):
        return self.proj(images).flatten(2).transpose(1, 2)
''',
]

# ----------------------------------------------------------------------------- attention

ATTENTION = [
    # q, k, v by chunk, heads by view, einsum; one dropout module used twice
    '''
class MultiHeadSelfAttention(nn.Module):
    def __init__(self, *, dim, heads, dropout=0.0):
        super().__init__()
        if dim % heads:
            raise ValueError("heads must divide dim")
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def split(self, t):
        B, N, _ = t.shape
        return t.view(B, N, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x):
        q, k, v = map(self.split, self.qkv(x).chunk(3, dim=-1))
        scores = torch.einsum("bhnd,bhmd->bhnm", q, k) / math.sqrt(self.head_dim)
        attn = scores.softmax(-1)
        out = torch.einsum("bhnm,bhmd->bhnd", self.drop(attn), v)
        return self.drop(self.proj(out.transpose(1, 2).flatten(2))), attn
''',
    # a loop over heads, a softmax lambda, functional dropout gated by self.training
    '''
SOFTMAX = lambda s: (s - s.logsumexp(-1, keepdim=True)).exp()


class MultiHeadSelfAttention(nn.Module):
    def __init__(self, *, dim, heads, dropout=0.0):
        super().__init__()
        if dim % heads != 0:
            raise ValueError(f"dim {dim} / heads {heads}")
        self.dim, self.heads, self.p = dim, heads, dropout
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        hd = self.dim // self.heads
        q_all, k_all, v_all = self.qkv(x).split(self.dim, dim=-1)
        outs, maps = [], []
        for h in range(self.heads):
            sl = slice(h * hd, (h + 1) * hd)
            a = SOFTMAX(q_all[..., sl] @ k_all[..., sl].transpose(1, 2) * hd ** -0.5)
            maps.append(a)
            outs.append(F.dropout(a, self.p, self.training) @ v_all[..., sl])
        out = self.proj(torch.cat(outs, dim=-1))
        return F.dropout(out, self.p, self.training), torch.stack(maps, dim=1)
''',
    # unbind, matmul, F.softmax, the scale as a buffer from a module-level function constant
    '''
INV_SQRT = torch.rsqrt


class MultiHeadSelfAttention(nn.Module):
    def __init__(self, *, dim, heads, dropout=0.0):
        super().__init__()
        if dim % heads:
            raise ValueError("dim must be divisible by heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.attn_drop = nn.Dropout(dropout)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(dropout)
        self.register_buffer("scale", INV_SQRT(torch.tensor(float(dim // heads))),
                             persistent=False)

    def forward(self, x):
        B, N, D = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.heads, D // self.heads).unbind(dim=2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        attn = F.softmax(torch.matmul(q, k.transpose(-1, -2)) * self.scale, dim=-1)
        out = torch.matmul(self.attn_drop(attn), v).permute(0, 2, 1, 3).reshape(B, N, D)
        return self.proj_drop(self.proj(out)), attn
''',
]
ATTENTION_WRONG = [
    # scaled by sqrt(dim) instead of sqrt(head_dim) (right only with one head)
    '''
class MultiHeadSelfAttention(nn.Module):
    def __init__(self, *, dim, heads, dropout=0.0):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.attn_drop = nn.Dropout(dropout)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x):
        B, N, D = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1) / math.sqrt(D)).softmax(dim=-1)
        out = (self.attn_drop(attn) @ v).transpose(1, 2).reshape(B, N, D)
        return self.proj_drop(self.proj(out)), attn
''',
    # softmax over the queries (dim -2) instead of the keys
    '''
class MultiHeadSelfAttention(nn.Module):
    def __init__(self, *, dim, heads, dropout=0.0):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.attn_drop = nn.Dropout(dropout)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x):
        B, N, D = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1) * self.head_dim ** -0.5).softmax(dim=-2)
        out = (self.attn_drop(attn) @ v).transpose(1, 2).reshape(B, N, D)
        return self.proj_drop(self.proj(out)), attn
''',
    # heads split before q, k, v: (B, N, heads, 3, head_dim)
    '''
class MultiHeadSelfAttention(nn.Module):
    def __init__(self, *, dim, heads, dropout=0.0):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.attn_drop = nn.Dropout(dropout)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x):
        B, N, D = x.shape
        q, k, v = self.qkv(x).reshape(B, N, self.heads, 3, self.head_dim).permute(3, 0, 2, 1, 4)
        attn = (q @ k.transpose(-2, -1) * self.head_dim ** -0.5).softmax(dim=-1)
        out = (self.attn_drop(attn) @ v).transpose(1, 2).reshape(B, N, D)
        return self.proj_drop(self.proj(out)), attn
''',
]

# ----------------------------------------------------------------------------- EncoderBlock

BLOCK = [
    # the MLP from a helper in another cell; nn.Identity when there is no drop path
    DROP_PATH + '''

class EncoderBlock(nn.Module):
    def __init__(self, *, dim, heads, mlp_ratio=4.0, dropout=0.0, drop_path=0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MultiHeadSelfAttention(dim=dim, heads=heads, dropout=dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = make_mlp(dim, int(dim * mlp_ratio), dropout)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x):
        a, attn = self.attn(self.norm1(x))
        x = x + self.drop_path(a)
        return x + self.drop_path(self.mlp(self.norm2(x))), attn
''',
    # the activation from a dict built by a comprehension; two DropPath modules
    DROP_PATH + '''

ACTIVATIONS = {name: cls for name, cls in (("gelu", nn.GELU), ("relu", nn.ReLU))}


class EncoderBlock(nn.Module):
    def __init__(self, *, dim, heads, mlp_ratio=4.0, dropout=0.0, drop_path=0.0):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = MultiHeadSelfAttention(dim=dim, heads=heads, dropout=dropout)
        self.mlp = nn.Sequential(*[nn.Linear(dim, hidden), ACTIVATIONS["gelu"](),
                                   nn.Dropout(dropout), nn.Linear(hidden, dim),
                                   nn.Dropout(dropout)])
        self.path_attn, self.path_mlp = DropPath(drop_path), DropPath(drop_path)

    def forward(self, x):
        y, attn = self.attn(self.norm1(x))
        x = torch.add(x, self.path_attn(y))
        x = torch.add(x, self.path_mlp(self.mlp(self.norm2(x))))
        return x, attn
''',
    # functional layer norm with the modules' parameters; the MLP layer by layer
    DROP_PATH + '''

class EncoderBlock(nn.Module):
    def __init__(self, *, dim, heads, mlp_ratio=4.0, dropout=0.0, drop_path=0.0):
        super().__init__()
        self.dim = dim
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MultiHeadSelfAttention(dim=dim, heads=heads, dropout=dropout)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="none"),
                                 nn.Dropout(dropout), nn.Linear(hidden, dim), nn.Dropout(dropout))
        self.drop_path = DropPath(drop_path)

    def _ln(self, x, norm):
        return F.layer_norm(x, (self.dim,), norm.weight, norm.bias, norm.eps)

    def forward(self, x):
        out, attn = self.attn(self._ln(x, self.norm1))
        x = x + self.drop_path(out)
        h = self._ln(x, self.norm2)
        for layer in self.mlp:
            h = layer(h)
        return x + self.drop_path(h), attn
''',
]
BLOCK_BEFORE = {0: ['''
def make_mlp(dim, hidden, p):
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(p),
                         nn.Linear(hidden, dim), nn.Dropout(p))
''']}
_BLOCK_INIT = '''
class EncoderBlock(nn.Module):
    def __init__(self, *, dim, heads, mlp_ratio=4.0, dropout=0.0, drop_path=0.0):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MultiHeadSelfAttention(dim=dim, heads=heads, dropout=dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, dim), nn.Dropout(dropout))
        self.drop_path = DropPath(drop_path)
'''
BLOCK_WRONG = [
    # post-norm (the original Transformer) instead of pre-norm
    DROP_PATH + _BLOCK_INIT + '''
    def forward(self, x):
        out, attn = self.attn(x)
        x = self.norm1(x + self.drop_path(out))
        return self.norm2(x + self.drop_path(self.mlp(x))), attn
''',
    # the MLP reads the un-normalised tokens (norm2 unused)
    DROP_PATH + _BLOCK_INIT + '''
    def forward(self, x):
        out, attn = self.attn(self.norm1(x))
        x = x + self.drop_path(out)
        return x + self.drop_path(self.mlp(x)), attn
''',
    # no residual around the attention
    DROP_PATH + _BLOCK_INIT + '''
    def forward(self, x):
        out, attn = self.attn(self.norm1(x))
        x = self.drop_path(out)
        return x + self.drop_path(self.mlp(self.norm2(x))), attn
''',
]

# ----------------------------------------------------------------------------- ViT

VIT = [
    # register_parameter(None), drop-path rates from linspace, cls token by repeat, norm on it
    '''
class ViT(nn.Module):
    def __init__(self, *, img_size=32, patch_size=4, num_classes=100, dim=192, depth=6, heads=3,
                 mlp_ratio=2.0, dropout=0.0, drop_path=0.0, pos_embed=True):
        super().__init__()
        self.patch_embed = PatchEmbed(img_size=img_size, patch_size=patch_size, in_channels=3,
                                      dim=dim)
        n = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        if pos_embed:
            self.pos_embed = nn.Parameter(torch.zeros(1, n + 1, dim))
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
        else:
            self.register_parameter("pos_embed", None)
        self.dropout = nn.Dropout(dropout)
        rates = [r.item() for r in torch.linspace(0, drop_path, depth)]
        self.blocks = nn.ModuleList([EncoderBlock(dim=dim, heads=heads, mlp_ratio=mlp_ratio,
                                                  dropout=dropout, drop_path=r) for r in rates])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    def forward_with_attention(self, images):
        x = self.patch_embed(images)
        x = torch.cat([self.cls_token.repeat(x.size(0), 1, 1), x], dim=1)
        if self.pos_embed is not None:
            x = x + self.pos_embed
        x = self.dropout(x)
        maps = []
        for blk in self.blocks:
            x, a = blk(x)
            maps.append(a)
        return self.head(self.norm(x[:, 0])), maps

    def forward(self, images):
        return self.forward_with_attention(images)[0]
''',
    # blocks from map + lambda, initialisation by a helper in another cell, a zero constant
    '''
NO_POSITION = 0.0


class ViT(nn.Module):
    def __init__(self, *, img_size=32, patch_size=4, num_classes=100, dim=192, depth=6, heads=3,
                 mlp_ratio=2.0, dropout=0.0, drop_path=0.0, pos_embed=True):
        super().__init__()
        self.patch_embed = PatchEmbed(img_size=img_size, patch_size=patch_size, in_channels=3,
                                      dim=dim)
        tokens = self.patch_embed.num_patches + 1
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, tokens, dim) * 0.02) if pos_embed else None
        self.pos_drop = nn.Dropout(p=dropout)
        step = drop_path / max(1, depth - 1)
        self.blocks = nn.ModuleList(map(
            lambda i: EncoderBlock(dim=dim, heads=heads, mlp_ratio=mlp_ratio, dropout=dropout,
                                   drop_path=step * i), range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        self.apply(init_linear)

    def forward_with_attention(self, images):
        tokens = self.patch_embed(images)
        x = torch.cat((self.cls_token.expand(tokens.shape[0], -1, -1), tokens), 1)
        x = self.pos_drop(x + (self.pos_embed if self.pos_embed is not None else NO_POSITION))
        attentions = ()
        for block in self.blocks:
            x, attn = block(x)
            attentions += (attn,)
        return self.head(self.norm(x)[:, 0]), list(attentions)

    def forward(self, images):
        return self.forward_with_attention(images)[0]
''',
    # pos_embed sliced to the tokens, the head by F.linear, forward by unpacking
    '''
class ViT(nn.Module):
    def __init__(self, *, img_size=32, patch_size=4, num_classes=100, dim=192, depth=6, heads=3,
                 mlp_ratio=2.0, dropout=0.0, drop_path=0.0, pos_embed=True):
        super().__init__()
        self.patch_embed = PatchEmbed(img_size=img_size, patch_size=patch_size, in_channels=3,
                                      dim=dim)
        self.use_pos = pos_embed
        self.cls_token = nn.Parameter(nn.init.trunc_normal_(torch.empty(1, 1, dim), std=0.02))
        self.pos_embed = (nn.Parameter(nn.init.trunc_normal_(
            torch.empty(1, self.patch_embed.num_patches + 1, dim), std=0.02))
            if pos_embed else None)
        self.drop = nn.Dropout(dropout)
        blocks = []
        for i in range(depth):
            rate = 0.0 if depth == 1 else drop_path * i / (depth - 1)
            blocks.append(EncoderBlock(dim=dim, heads=heads, mlp_ratio=mlp_ratio,
                                       dropout=dropout, drop_path=rate))
        self.blocks = nn.ModuleList(blocks)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward_with_attention(self, images):
        x = self.patch_embed(images)
        B = x.shape[0]
        x = torch.cat([self.cls_token.expand(B, 1, -1), x], dim=1)
        if self.use_pos:
            x = x + self.pos_embed[:, : x.shape[1]]
        x = self.drop(x)
        attentions = []
        for block in self.blocks:
            x, a = block(x)
            attentions.append(a)
        cls = self.norm(x)[:, 0]
        return F.linear(cls, self.head.weight, self.head.bias), attentions

    def forward(self, images):
        logits, _ = self.forward_with_attention(images)
        return logits
''',
]
VIT_BEFORE = {1: ['''
def init_linear(module):
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        nn.init.zeros_(module.bias)
''']}
_VIT_INIT = '''
class ViT(nn.Module):
    def __init__(self, *, img_size=32, patch_size=4, num_classes=100, dim=192, depth=6, heads=3,
                 mlp_ratio=2.0, dropout=0.0, drop_path=0.0, pos_embed=True):
        super().__init__()
        self.patch_embed = PatchEmbed(img_size=img_size, patch_size=patch_size, in_channels=3,
                                      dim=dim)
        n = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, n + 1, dim)) if pos_embed else None
        self.blocks = nn.ModuleList(EncoderBlock(dim=dim, heads=heads, mlp_ratio=mlp_ratio)
                                    for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, images):
        return self.forward_with_attention(images)[0]

    def _tokens(self, images):
        x = self.patch_embed(images)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return x if self.pos_embed is None else x + self.pos_embed
'''
VIT_WRONG = [
    # mean of all tokens instead of the class token
    _VIT_INIT + '''
    def forward_with_attention(self, images):
        x, attentions = self._tokens(images), []
        for block in self.blocks:
            x, attn = block(x)
            attentions.append(attn)
        return self.head(self.norm(x).mean(dim=1)), attentions
''',
    # the final LayerNorm is defined but never applied
    _VIT_INIT + '''
    def forward_with_attention(self, images):
        x, attentions = self._tokens(images), []
        for block in self.blocks:
            x, attn = block(x)
            attentions.append(attn)
        return self.head(x[:, 0]), attentions
''',
    # only the last block's attention map is returned
    _VIT_INIT + '''
    def forward_with_attention(self, images):
        x = self._tokens(images)
        for block in self.blocks:
            x, attn = block(x)
        return self.head(self.norm(x)[:, 0]), [attn]
''',
]

# ----------------------------------------------------------------------------- cutmix

CUTMIX = [
    # a boolean box mask and torch.where; a helper in another cell draws the integers
    '''
def cutmix(images, targets, alpha, *, generator=None):
    if not alpha > 0:
        raise ValueError("alpha must be positive")
    B, _, H, W = images.shape
    lam = np.random.default_rng(rand_int(2**31 - 1, generator)).beta(alpha, alpha)
    perm = torch.randperm(B, generator=generator)
    r = math.sqrt(1.0 - lam)
    ch, cw = int(H * r), int(W * r)
    cy, cx = rand_int(H, generator), rand_int(W, generator)
    y1, y2 = np.clip([cy - ch // 2, cy + ch // 2], 0, H)
    x1, x2 = np.clip([cx - cw // 2, cx + cw // 2], 0, W)
    inside = torch.zeros(H, W, dtype=torch.bool)
    inside[y1:y2, x1:x2] = True
    mixed = torch.where(inside, images[perm], images)
    return mixed, targets, targets[perm], 1.0 - float(inside.sum()) / (H * W)
''',
    # another order of draws, the centre from torch.rand, index_select; a constant by a call
    '''
MAX_SEED = np.iinfo(np.int64).max


def cutmix(images, targets, alpha, *, generator=None):
    if alpha <= 0:
        raise ValueError(f"alpha={alpha}")
    n, _, h, w = images.shape
    cy = int(torch.rand(1, generator=generator).item() * h)
    cx = int(torch.rand(1, generator=generator).item() * w)
    seed = int(torch.randint(0, MAX_SEED, (1,), generator=generator))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    perm = torch.argsort(torch.rand(n, generator=generator))
    cut_h, cut_w = int(h * (1 - lam) ** 0.5), int(w * (1 - lam) ** 0.5)
    y1, y2 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, h)
    x1, x2 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, w)
    mixed = images.clone()
    mixed[..., y1:y2, x1:x2] = images.index_select(0, perm)[..., y1:y2, x1:x2]
    lam = 1 - (y2 - y1) * (x2 - x1) / (h * w)
    return mixed, targets, targets[perm], lam
''',
    # one image at a time
    '''
def cutmix(images, targets, alpha, *, generator=None):
    if alpha <= 0:
        raise ValueError("alpha <= 0")
    B, C, H, W = images.shape
    beta_seed = torch.randint(0, 2**31 - 1, (1,), generator=generator).item()
    lam = np.random.default_rng(beta_seed).beta(alpha, alpha)
    perm = torch.randperm(B, generator=generator).tolist()
    cut = np.sqrt(1.0 - lam)
    half_h, half_w = int(H * cut) // 2, int(W * cut) // 2
    cy = torch.randint(H, (1,), generator=generator).item()
    cx = torch.randint(W, (1,), generator=generator).item()
    y1, y2 = min(max(cy - half_h, 0), H), min(max(cy + half_h, 0), H)
    x1, x2 = min(max(cx - half_w, 0), W), min(max(cx + half_w, 0), W)
    mixed = images.detach().clone()
    for i, j in enumerate(perm):
        mixed[i, :, y1:y2, x1:x2] = images[j, :, y1:y2, x1:x2]
    area = (y2 - y1) * (x2 - x1)
    return mixed, targets, targets[torch.tensor(perm)], float(1 - area / (H * W))
''',
]
CUTMIX_BEFORE = {0: ['''
def rand_int(high, generator):
    return int(torch.randint(0, high, (1,), generator=generator).item())
''']}
CUTMIX_WRONG = [
    # pastes into the input batch itself (no copy)
    '''
def cutmix(images, targets, alpha, *, generator=None):
    B, _, H, W = images.shape
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    perm = torch.randperm(B, generator=generator)
    cut_h, cut_w = int(H * math.sqrt(1 - lam)), int(W * math.sqrt(1 - lam))
    cy = int(torch.randint(0, H, (1,), generator=generator))
    cx = int(torch.randint(0, W, (1,), generator=generator))
    y1, y2 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, H)
    x1, x2 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, W)
    mixed = images
    mixed[:, :, y1:y2, x1:x2] = images[perm, :, y1:y2, x1:x2]
    return mixed, targets, targets[perm], 1.0 - (y2 - y1) * (x2 - x1) / (H * W)
''',
    # lam from the Beta draw, not recomputed from the clipped box
    '''
def cutmix(images, targets, alpha, *, generator=None):
    B, _, H, W = images.shape
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    perm = torch.randperm(B, generator=generator)
    cut_h, cut_w = int(H * math.sqrt(1 - lam)), int(W * math.sqrt(1 - lam))
    cy = int(torch.randint(0, H, (1,), generator=generator))
    cx = int(torch.randint(0, W, (1,), generator=generator))
    y1, y2 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, H)
    x1, x2 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, W)
    mixed = images.clone()
    mixed[:, :, y1:y2, x1:x2] = images[perm, :, y1:y2, x1:x2]
    return mixed, targets, targets[perm], lam
''',
    # the box side from 1 - lam instead of sqrt(1 - lam), the centre from the global RNG
    '''
def cutmix(images, targets, alpha, *, generator=None):
    B, _, H, W = images.shape
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    perm = torch.randperm(B, generator=generator)
    cut_h, cut_w = int(H * (1 - lam)), int(W * (1 - lam))
    cy, cx = int(torch.randint(0, H, (1,))), int(torch.randint(0, W, (1,)))
    y1, y2 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, H)
    x1, x2 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, W)
    mixed = images.clone()
    mixed[:, :, y1:y2, x1:x2] = images[perm, :, y1:y2, x1:x2]
    return mixed, targets, targets[perm], 1.0 - (y2 - y1) * (x2 - x1) / (H * W)
''',
]

# ----------------------------------------------------------------------------- cutmix_loss

CUTMIX_LOSS = [
    # per-sample losses mixed, then the mean
    '''
def cutmix_loss(logits, targets_a, targets_b, lam):
    ce_a = F.cross_entropy(logits, targets_a, reduction="none")
    ce_b = F.cross_entropy(logits, targets_b, reduction="none")
    return (lam * ce_a + (1 - lam) * ce_b).mean()
''',
    # log-softmax and gather through a lambda constant
    '''
NLL = lambda logp, t: -logp.gather(1, t[:, None]).squeeze(1).mean()


def cutmix_loss(logits, targets_a, targets_b, lam):
    logp = torch.log_softmax(logits, dim=1)
    return lam * NLL(logp, targets_a) + (1.0 - lam) * NLL(logp, targets_b)
''',
    # soft targets from one-hot vectors
    '''
def cutmix_loss(logits, targets_a, targets_b, lam):
    k = logits.shape[1]
    soft = lam * F.one_hot(targets_a, k).float() + (1 - lam) * F.one_hot(targets_b, k).float()
    return torch.sum(-soft * F.log_softmax(logits, dim=-1), dim=1).mean()
''',
]
CUTMIX_LOSS_WRONG = [
    # lam on the wrong targets
    '''
def cutmix_loss(logits, targets_a, targets_b, lam):
    return (1 - lam) * F.cross_entropy(logits, targets_a) + lam * F.cross_entropy(logits, targets_b)
''',
    # summed instead of averaged over the batch
    '''
def cutmix_loss(logits, targets_a, targets_b, lam):
    return (lam * F.cross_entropy(logits, targets_a, reduction="sum")
            + (1 - lam) * F.cross_entropy(logits, targets_b, reduction="sum"))
''',
    # the majority label only (right at lam = 0 and lam = 1)
    '''
def cutmix_loss(logits, targets_a, targets_b, lam):
    return F.cross_entropy(logits, targets_a if lam >= 0.5 else targets_b)
''',
]

# ----------------------------------------------------------------------------- rollout

ROLLOUT = [
    # head fusion from a dict of lambdas; discarding by argsort; (A + I) row-normalised directly
    '''
FUSE = {"mean": lambda a: a.mean(1), "max": lambda a: a.max(1).values,
        "min": lambda a: a.min(1).values}


def attention_rollout(attentions, head_fusion="mean", discard_ratio=0.0):
    if head_fusion not in FUSE:
        raise ValueError(f"unknown head_fusion {head_fusion!r}")
    if not len(attentions):
        raise ValueError("no attention maps")
    result = None
    for attn in attentions:
        A = FUSE[head_fusion](attn.detach())
        B, N, _ = A.shape
        if discard_ratio > 0:
            flat = A.reshape(B, N * N)
            lowest = flat.argsort(dim=1)[:, : int(discard_ratio * N * N)]
            keep = torch.ones_like(flat).scatter(1, lowest, 0.0)
            keep[:, 0] = 1.0
            A = (flat * keep).reshape(B, N, N)
        A = A + torch.eye(N)
        A = A / A.sum(-1, keepdim=True)
        result = A if result is None else A @ result
    mask = result[:, 0, 1:]
    return mask / mask.max(dim=1, keepdim=True).values
''',
    # NumPy in float64, einsum and functools.reduce
    '''
from functools import reduce


def _fuse_heads(attn, how):
    arr = attn.detach().cpu().numpy().astype(np.float64)
    return {"mean": np.mean, "max": np.max, "min": np.min}[how](arr, axis=1)


def attention_rollout(attentions, head_fusion="mean", discard_ratio=0.0):
    if head_fusion not in ("mean", "max", "min"):
        raise ValueError(head_fusion)
    if len(attentions) == 0:
        raise ValueError("empty")
    layers = []
    for attn in attentions:
        a = _fuse_heads(attn, head_fusion)
        B, N, _ = a.shape
        k = int(discard_ratio * N * N)
        if discard_ratio > 0 and k > 0:
            for b in range(B):
                flat = a[b].reshape(-1)
                corner = flat[0]
                flat[np.argpartition(flat, k)[:k]] = 0.0
                flat[0] = corner
        a = (a + np.eye(N)) / 2
        layers.append(a / a.sum(-1, keepdims=True))
    rollout = reduce(lambda acc, a: np.einsum("bij,bjk->bik", a, acc), layers[1:], layers[0])
    mask = rollout[:, 0, 1:]
    return torch.from_numpy(mask / mask.max(-1, keepdims=True)).float()
''',
    # a threshold at the k-th value; the product by torch.bmm over the reversed layers
    '''
import functools


def attention_rollout(attentions, head_fusion="mean", discard_ratio=0.0):
    fusions = {"mean": torch.mean, "max": torch.amax, "min": torch.amin}
    if head_fusion not in fusions:
        raise ValueError("head_fusion must be mean, max or min")
    if len(attentions) < 1:
        raise ValueError("need at least one layer")
    mats = []
    with torch.no_grad():
        for attn in attentions:
            A = fusions[head_fusion](attn, dim=1)
            B, N, _ = A.shape
            k = int(discard_ratio * N * N)
            if k > 0:
                flat = A.reshape(B, -1)
                kth = flat.kthvalue(k, dim=1, keepdim=True).values
                drop = flat <= kth
                drop[:, 0] = False
                A = flat.masked_fill(drop, 0.0).view(B, N, N)
            A = 0.5 * (A + torch.eye(N, dtype=A.dtype))
            mats.append(A / A.sum(dim=2, keepdim=True))
        R = functools.reduce(torch.bmm, mats[::-1])
    mask = R[:, 0, 1:]
    return mask / mask.amax(1, keepdim=True)
''',
]
_ROLLOUT_HEAD = '''
def attention_rollout(attentions, head_fusion="mean", discard_ratio=0.0):
    rollout = None
    for attn in attentions:
        fused = {"mean": attn.mean(1), "max": attn.amax(1), "min": attn.amin(1)}[head_fusion]
        B, N, _ = fused.shape
        if discard_ratio > 0:
            flat = fused.reshape(B, N * N).clone()
            lowest = flat.topk(int(discard_ratio * N * N), dim=-1, largest=False).indices
            corner = flat[:, 0].clone()
            flat.scatter_(1, lowest, 0.0)
            flat[:, 0] = corner
            fused = flat.reshape(B, N, N)
'''
ROLLOUT_WRONG = [
    # columns normalised instead of rows
    _ROLLOUT_HEAD + '''
        a = (fused + torch.eye(N)) / 2
        a = a / a.sum(dim=-2, keepdim=True)
        rollout = a if rollout is None else a @ rollout
    mask = rollout[:, 0, 1:]
    return mask / mask.amax(dim=-1, keepdim=True)
''',
    # each new layer multiplied from the right (right only with a single layer)
    _ROLLOUT_HEAD + '''
        a = (fused + torch.eye(N)) / 2
        a = a / a.sum(dim=-1, keepdim=True)
        rollout = a if rollout is None else rollout @ a
    mask = rollout[:, 0, 1:]
    return mask / mask.amax(dim=-1, keepdim=True)
''',
    # the residual (identity) is left out
    _ROLLOUT_HEAD + '''
        a = fused / fused.sum(dim=-1, keepdim=True)
        rollout = a if rollout is None else a @ rollout
    mask = rollout[:, 0, 1:]
    return mask / mask.amax(dim=-1, keepdim=True)
''',
]

# ----------------------------------------------------------------------------- the suite

FULL = {"PatchEmbed": 4, "MultiHeadSelfAttention": 5, "EncoderBlock": 5, "ViT": 7, "cutmix": 7,
        "cutmix_loss": 2, "attention_rollout": 7}
CORRECT = {"PatchEmbed": PATCH_EMBED, "MultiHeadSelfAttention": ATTENTION, "EncoderBlock": BLOCK,
           "ViT": VIT, "cutmix": CUTMIX, "cutmix_loss": CUTMIX_LOSS,
           "attention_rollout": ROLLOUT}
BEFORE = {"PatchEmbed": PATCH_EMBED_BEFORE, "EncoderBlock": BLOCK_BEFORE, "ViT": VIT_BEFORE,
          "cutmix": CUTMIX_BEFORE}
WRONG = {"PatchEmbed": PATCH_EMBED_WRONG, "MultiHeadSelfAttention": ATTENTION_WRONG,
         "EncoderBlock": BLOCK_WRONG, "ViT": VIT_WRONG, "cutmix": CUTMIX_WRONG,
         "cutmix_loss": CUTMIX_LOSS_WRONG, "attention_rollout": ROLLOUT_WRONG}
# the exact score of each wrong variant (the exercise's other points are those it still earns)
WRONG_SCORES = {
    "PatchEmbed": [0, 0, 0],
    "MultiHeadSelfAttention": [1, 0, 1],  # one head: sqrt(dim) = sqrt(head_dim), same layout
    "EncoderBlock": [1, 1, 1],  # 3.4 (train mode = eval mode, gradients reach norm1) still holds
    "ViT": [1, 1, 4],  # the default size (4.6) is right; [2]: the logits are right too
    "cutmix": [0, 1, 4],  # [2]: one clean box with the right lam, wrong statistics and seeding
    "cutmix_loss": [0, 0, 1],  # [2]: right at lam = 0 and 1
    "attention_rollout": [0, 1, 1],  # [1], [2]: right with a single layer
}
ODD = ("PatchEmbed", "EncoderBlock", "cutmix", "attention_rollout")
EVEN = ("MultiHeadSelfAttention", "ViT", "cutmix_loss")


def _grade(tmp_path, replace, before):
    nb = variants.variant_notebook(LAB, replace=replace, before=before)
    results = variants.grade_variant(LAB, nb, tmp_path)
    return variants.exercise_scores(LAB, results), results


def test_variant_tables_are_complete():
    for table in (CORRECT, WRONG):
        assert set(table) == set(FULL) and all(len(v) >= 3 for v in table.values())
    assert set(ODD) | set(EVEN) == set(FULL) and not set(ODD) & set(EVEN)
    assert all(all(s < FULL[ex] for s in WRONG_SCORES[ex]) for ex in FULL)


@pytest.mark.parametrize("k", range(3))
def test_correct_variants_earn_full_marks(k, tmp_path):
    scores, results = _grade(tmp_path, {ex: src[k] for ex, src in CORRECT.items()},
                             {ex: b[k] for ex, b in BEFORE.items() if k in b})
    assert scores == {ex: (m, m) for ex, m in FULL.items()}, variants.failing_detail(results)


@pytest.mark.parametrize("k", range(2))
@pytest.mark.parametrize("half", ["odd", "even"])
def test_wrong_variants_lose_only_their_exercise(k, half, tmp_path):
    wrong = ODD if half == "odd" else EVEN
    scores, results = _grade(tmp_path, {ex: WRONG[ex][k] for ex in wrong}, {})
    expected = {ex: ((WRONG_SCORES[ex][k] if ex in wrong else m), m) for ex, m in FULL.items()}
    assert scores == expected, variants.failing_detail(results)


def test_third_wrong_variants_each_cost_their_own_points(tmp_path):
    """Every exercise wrong at once: each is still graded against the reference of the others."""
    scores, results = _grade(tmp_path, {ex: WRONG[ex][2] for ex in FULL}, {})
    assert scores == {ex: (WRONG_SCORES[ex][2], m) for ex, m in FULL.items()}, variants.failing_detail(results)


def wrong_notebooks() -> list[tuple[nbformat.NotebookNode, set[str]]]:
    """Wrong variants 1 and 2 of every exercise, each set in one notebook, for the test comparing
    the in-kernel self-check with the public checks. A self-check runs on the notebook's own
    classes, so an exercise that uses a wrong one (EncoderBlock uses MultiHeadSelfAttention, ViT
    uses all three modules) must itself be wrong there and fail every public check in both places,
    as variants 1 and 2 do (ViT's third passes 4.1 where the other modules are the reference's)."""
    return [(variants.variant_notebook(LAB, replace={ex: WRONG[ex][k] for ex in FULL}),
             set(FULL)) for k in range(2)]


def test_self_check_catches_rollout_multiplied_from_the_right():
    """The issue's bug: a rollout that multiplies each new layer from the right passed the old
    hand-written self-check; the public checks (the self-check now) fail it, and say why."""
    import torch

    from labkit.checking.kernel import public_lab, run_public

    def verdicts(source):
        ns = {"torch": torch}
        exec(source, ns)
        report = run_public(public_lab(LAB), ns, ["attention_rollout"])
        return {v.number: (v.passed, v.output) for v in report.verdicts}

    assert all(passed for passed, _ in verdicts(ROLLOUT[0]).values())
    wrong = verdicts(ROLLOUT_WRONG[1])  # rollout = rollout @ a
    assert set(wrong) == {"7.1", "7.2"} and not any(passed for passed, _ in wrong.values())
    assert all("multiplied from the left" in output for _, output in wrong.values())
