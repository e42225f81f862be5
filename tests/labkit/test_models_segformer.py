"""labkit.models.segformer (MiT configs, scaffold, HF names), segformer_loading and segformer_checks.

The scaffold needs the parts that students write in lab 03; labkit holds no solutions, so this
file has its own reference parts (tests are not shipped to students).
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from labkit.models import segformer as sf
from labkit.models import segformer_checks as sc
from labkit.models import segformer_loading as sl
from labkit.utils import count_params

transformers = pytest.importorskip("transformers")


# ----------------------------------------------------------------------------- reference parts


class PatchEmbed(nn.Module):
    def __init__(self, *, in_channels, dim, patch_size, stride):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, patch_size, stride, padding=patch_size // 2)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        x = self.proj(x)
        _, _, h, w = x.shape
        return self.norm(x.flatten(2).transpose(1, 2)), h, w


class Attention(nn.Module):
    def __init__(self, *, dim, heads, sr_ratio):
        super().__init__()
        self.heads, self.sr_ratio = heads, sr_ratio
        self.query, self.key, self.value = (nn.Linear(dim, dim) for _ in range(3))
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, sr_ratio, sr_ratio)
            self.norm = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, h, w):
        b, n, c = x.shape
        kv = x
        if self.sr_ratio > 1:
            kv = self.sr(x.transpose(1, 2).reshape(b, c, h, w)).flatten(2).transpose(1, 2)
            kv = self.norm(kv)

        def split(t):
            return t.reshape(b, -1, self.heads, c // self.heads).transpose(1, 2)

        out = F.scaled_dot_product_attention(split(self.query(x)), split(self.key(kv)),
                                             split(self.value(kv)))
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class FFN(nn.Module):
    def __init__(self, *, dim, hidden_dim):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.dwconv = nn.Conv2d(hidden_dim, hidden_dim, 3, padding=1, groups=hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x, h, w):
        x = self.fc1(x)
        b, n, c = x.shape
        x = self.dwconv(x.transpose(1, 2).reshape(b, c, h, w)).flatten(2).transpose(1, 2)
        return self.fc2(self.act(x))


class Block(nn.Module):
    def __init__(self, *, dim, heads, sr_ratio, mlp_ratio, drop_path):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim=dim, heads=heads, sr_ratio=sr_ratio)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = FFN(dim=dim, hidden_dim=int(dim * mlp_ratio))
        self.drop_path = sf.DropPath(drop_path)

    def forward(self, x, h, w):
        x = x + self.drop_path(self.attn(self.norm1(x), h, w))
        return x + self.drop_path(self.ffn(self.norm2(x), h, w))


class Decoder(nn.Module):
    def __init__(self, *, in_dims, dim, num_classes):
        super().__init__()
        self.linear_c = nn.ModuleList(nn.Linear(c, dim) for c in in_dims)
        self.fuse = nn.Sequential(nn.Conv2d(len(in_dims) * dim, dim, 1, bias=False),
                                  nn.BatchNorm2d(dim), nn.ReLU())
        self.classifier = nn.Conv2d(dim, num_classes, 1)

    def forward(self, features):
        size = features[0].shape[-2:]
        outs = []
        for f, lin in zip(features, self.linear_c, strict=True):
            b, _, h, w = f.shape
            x = lin(f.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(b, -1, h, w)
            outs.append(F.interpolate(x, size=size, mode="bilinear", align_corners=False))
        return self.classifier(self.fuse(torch.cat(outs[::-1], dim=1)))


PARTS = dict(patch_embed_cls=PatchEmbed, attention_cls=Attention, mix_ffn_cls=FFN,
             block_cls=Block, decoder_cls=Decoder)


def build(config="b0", num_classes=3, **kw):
    return sf.SegFormer(config=config, num_classes=num_classes, **PARTS, **kw)


def hf_model(config="b0", num_labels=3, seed=0):
    torch.manual_seed(seed)
    hf = transformers.SegformerForSemanticSegmentation(
        sf.to_hf_config(config, num_labels=num_labels))
    sc.randomize_weights_(hf, seed + 1)  # norm scales, biases, BatchNorm statistics: not defaults
    return hf.eval()


# ----------------------------------------------------------------------------- configs, scaffold


def test_configs_match_the_paper():
    assert set(sf.MIT_CONFIGS) == {f"b{i}" for i in range(6)}
    b0, b5 = sf.MIT_CONFIGS["b0"], sf.MIT_CONFIGS["b5"]
    assert b0.hidden_sizes == (32, 64, 160, 256) and b0.depths == (2, 2, 2, 2)
    assert b5.depths == (3, 6, 40, 3) and b5.decoder_dim == 768
    assert sf.MIT_CONFIGS["b1"].decoder_dim == 256 and sf.MIT_CONFIGS["b2"].decoder_dim == 768
    assert all(c.heads == (1, 2, 5, 8) and c.sr_ratios == (8, 4, 2, 1)
               for c in sf.MIT_CONFIGS.values())
    assert sf.get_config("mit-b2") is sf.MIT_CONFIGS["b2"]
    with pytest.raises(ValueError, match="unknown SegFormer config"):
        sf.get_config("b9")
    with pytest.raises(ValueError, match="divisible"):
        b0.replace(heads=(3, 2, 5, 8))


@pytest.mark.parametrize("size", [(64, 96), (45, 61)])
def test_scaffold_shapes(size):
    model = build().eval()
    x = torch.randn(1, 3, *size)
    feats = model.forward_features(x)
    assert [f.shape[1] for f in feats] == [32, 64, 160, 256]
    assert feats[0].shape[-2:] == (-(-size[0] // 4), -(-size[1] // 4))
    assert model(x).shape == (1, 3, *feats[0].shape[-2:])


def test_drop_path_rates_grow_linearly_and_only_train():
    model = build(drop_path=0.1)
    rates = [b.drop_path.p for s in model.stages for b in s.blocks]
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.1) and rates == sorted(rates)
    dp = sf.DropPath(0.5).eval()
    x = torch.randn(4, 3, 2)
    assert torch.equal(dp(x), x)
    dp.train()
    out = dp(x)
    assert all(torch.equal(o, torch.zeros_like(o)) or torch.allclose(o, 2 * xi)
               for o, xi in zip(out, x, strict=True))


def test_scaffold_checks_the_block_parts():
    class Other(nn.Module):
        def __init__(self, **kw):
            super().__init__()

    with pytest.raises(TypeError, match="attn must be a Other"):
        sf.SegFormer(config="b0", num_classes=3, **dict(PARTS, attention_cls=Other))


# ----------------------------------------------------------------------------- HF mapping


@pytest.mark.parametrize("config", ["b0", "b1"])
def test_mapping_report_is_complete(config):
    hf = hf_model(config, num_labels=4)
    model = build(config, num_classes=4)
    mapped, report = sl.hf_state_dict_to_labkit(hf.state_dict(), model=model)
    assert report.ok, str(report)
    assert len(mapped) == len(model.state_dict()) == len(hf.state_dict())
    assert count_params(model) == count_params(hf)
    model.load_state_dict(mapped, strict=True)


def test_mapping_without_model_and_legacy_names():
    hf = hf_model("b0")
    mapped, report = sl.hf_state_dict_to_labkit(hf.state_dict())
    assert not report.unexpected and len(mapped) == len(hf.state_dict())
    legacy = {
        "segformer.encoder.patch_embeddings.0.proj.weight": "stages.0.patch_embed.proj.weight",
        "segformer.encoder.patch_embeddings.1.layer_norm.bias": "stages.1.patch_embed.norm.bias",
        "segformer.encoder.block.2.1.attention.self.query.weight":
            "stages.2.blocks.1.attn.query.weight",
        "segformer.encoder.block.0.0.attention.self.sr.bias": "stages.0.blocks.0.attn.sr.bias",
        "segformer.encoder.block.0.0.attention.self.layer_norm.weight":
            "stages.0.blocks.0.attn.norm.weight",
        "segformer.encoder.block.0.1.attention.output.dense.weight":
            "stages.0.blocks.1.attn.proj.weight",
        "segformer.encoder.block.3.0.layer_norm_2.bias": "stages.3.blocks.0.norm2.bias",
        "segformer.encoder.block.1.0.mlp.dense1.weight": "stages.1.blocks.0.ffn.fc1.weight",
        "segformer.encoder.block.1.0.mlp.dwconv.dwconv.weight":
            "stages.1.blocks.0.ffn.dwconv.weight",
        "segformer.encoder.block.1.0.mlp.dense2.bias": "stages.1.blocks.0.ffn.fc2.bias",
        "segformer.encoder.layer_norm.3.weight": "stages.3.norm.weight",
        "decode_head.linear_c.2.proj.weight": "decoder.linear_c.2.weight",
        "decode_head.linear_fuse.weight": "decoder.fuse.0.weight",
        "decode_head.batch_norm.running_var": "decoder.fuse.1.running_var",
        "decode_head.batch_norm.num_batches_tracked": "decoder.fuse.1.num_batches_tracked",
        "decode_head.classifier.bias": "decoder.classifier.bias",
    }
    for hf_key, ours in legacy.items():
        assert sf.hf_key_to_labkit(hf_key) == ours, hf_key
    assert sf.hf_key_to_labkit("classifier.weight") is None  # MiT ImageNet head


def test_wrong_state_dict_is_a_clear_error():
    import torchvision

    with pytest.raises(ValueError, match="not a Hugging Face SegFormer state dict"):
        sl.hf_state_dict_to_labkit(torchvision.models.resnet18(weights=None).state_dict())
    with pytest.raises(TypeError, match="expected a state dict"):
        sl.hf_state_dict_to_labkit([1, 2])
    # right family, wrong size: B1 weights into a B0 model
    with pytest.raises(ValueError, match="does not fit"):
        sl.load_pretrained(build("b0"), hf_model("b1"))


@pytest.mark.parametrize("config", ["b0", "b1"])
def test_logits_match_hugging_face(config):
    hf = hf_model(config, num_labels=5, seed=3)
    model = build(config, num_classes=5).eval()
    report = sl.load_pretrained(model, hf, strict=True)
    assert report.ok
    x = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        ours, theirs = model(x), hf(pixel_values=x).logits
    assert ours.shape == theirs.shape == (1, 5, 16, 24)
    assert float(theirs.abs().max()) > 0.1  # not a trivially small output
    assert float((ours - theirs).abs().max()) < 1e-4


def test_compare_with_hf_localises_a_bug():
    hf = hf_model("b0", seed=1)
    model = build("b0").eval()
    sl.load_pretrained(model, hf, strict=True)
    x = torch.randn(1, 3, 40, 56)
    rows = sc.compare_with_hf(model, hf, x)
    assert rows[-1][0] == "decoder logits" and max(d for _, d in rows) < 1e-4
    with torch.no_grad():  # break stage 2's first Mix-FFN: stage 1 still matches
        model.stages[1].blocks[0].ffn.fc2.bias.add_(1.0)
    rows = dict(sc.compare_with_hf(model, hf, x))
    assert rows["stage 1 output (B,C,H,W)"] < 1e-4
    assert rows["stage 2 block 1 attention"] < 1e-4 and rows["stage 2 block 1 Mix-FFN"] > 0.5


def test_load_pretrained_from_files_and_encoder_only(tmp_path):
    hf = hf_model("b0", num_labels=3)
    hf.save_pretrained(tmp_path / "saved")
    model = build("b0", num_classes=3)
    assert sl.load_pretrained(model, tmp_path / "saved", strict=True).ok
    torch.save(hf.state_dict(), tmp_path / "weights.pt")
    assert sl.load_pretrained(build("b0", num_classes=3), tmp_path / "weights.pt").ok
    # an MiT ImageNet checkpoint: encoder only, plus a classification head
    enc = {k: v for k, v in hf.state_dict().items() if k.startswith("segformer.")}
    enc["classifier.weight"] = torch.zeros(1000, 256)
    report = sl.load_pretrained(build("b0", num_classes=7), enc)
    assert report.unexpected == ["classifier.weight"]
    assert report.missing and all(k.startswith("decoder.") for k in report.missing)
    with pytest.raises(ValueError, match="does not fit"):
        sl.load_pretrained(build("b0", num_classes=7), enc, strict=True)
    # another number of classes: the classifier is reported, the rest loads
    report = sl.load_pretrained(build("b0", num_classes=19), hf)
    assert [m.split(":")[0] for m in report.mismatched] == ["decoder.classifier.weight",
                                                            "decoder.classifier.bias"]


def test_load_pretrained_offline_hub_id_says_what_to_download(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True, raising=False)
    with pytest.raises(FileNotFoundError, match="huggingface-cli download nvidia/mit-b0"):
        sl.load_pretrained(build("b0"), "nvidia/mit-b0")
    with pytest.raises(FileNotFoundError, match="no such file"):
        sl.load_pretrained(build("b0"), tmp_path / "nothing.pt")


@pytest.mark.parametrize("kind, module, kw", [
    ("patch_embed", PatchEmbed(in_channels=3, dim=16, patch_size=7, stride=4),
     dict(dim=16, size=(37, 45))),
    ("patch_embed", PatchEmbed(in_channels=5, dim=8, patch_size=3, stride=2),
     dict(dim=8, in_channels=5, patch_size=3, stride=2, size=(15, 21))),
    ("attention", Attention(dim=16, heads=2, sr_ratio=2), dict(dim=16, heads=2, sr_ratio=2)),
    ("attention", Attention(dim=16, heads=4, sr_ratio=1), dict(dim=16, heads=4)),
    ("mix_ffn", FFN(dim=16, hidden_dim=64), dict(dim=16, mlp_ratio=4)),
    ("block", Block(dim=16, heads=2, sr_ratio=4, mlp_ratio=2, drop_path=0.1),
     dict(dim=16, heads=2, sr_ratio=4, mlp_ratio=2, size=(13, 11))),
    ("decoder", Decoder(in_dims=(8, 16, 24, 32), dim=16, num_classes=5),
     dict(dim=16, num_classes=5, size=(13, 9))),
])
def test_compare_part_with_hf(kind, module, kw):
    assert sc.compare_part_with_hf(kind, module, **kw) < 1e-5


def test_compare_part_with_hf_names_wrong_parameters():
    class Renamed(PatchEmbed):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.layer_norm = self.norm
            del self.norm

        def forward(self, x):
            x = self.proj(x)
            _, _, h, w = x.shape
            return self.layer_norm(x.flatten(2).transpose(1, 2)), h, w

    with pytest.raises(KeyError, match="norm.weight"):
        sc.compare_part_with_hf("patch_embed", Renamed(in_channels=3, dim=16, patch_size=7,
                                                       stride=4), dim=16)
    wrong = Attention(dim=16, heads=2, sr_ratio=2)
    assert sc.compare_part_with_hf("attention", wrong, dim=16, heads=1, sr_ratio=2) > 1e-3
