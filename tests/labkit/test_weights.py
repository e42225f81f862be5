"""labkit.weights: local files first, downloads only when allowed, clear errors otherwise."""

import pytest
import torch

from labkit import weights as W


@pytest.fixture
def offline(tmp_path, monkeypatch):
    monkeypatch.setenv(W.WEIGHTS_ENV, str(tmp_path))
    monkeypatch.setenv(W.OFFLINE_ENV, "1")
    return tmp_path


def test_weights_root_follows_env_then_data_root(tmp_path, monkeypatch):
    monkeypatch.setenv(W.WEIGHTS_ENV, str(tmp_path / "w"))
    assert W.weights_root() == tmp_path / "w"
    monkeypatch.delenv(W.WEIGHTS_ENV)
    monkeypatch.setenv("LABKIT_DATA", str(tmp_path / "d"))
    assert W.weights_root() == tmp_path / "d" / "weights"


def test_torchvision_round_trip_reads_what_was_saved(offline):
    path = W.save_random_weights("resnet50_imagenet", seed=3)
    assert path == offline / "resnet50_imagenet.pth"
    state = W.load_state_dict("resnet50_imagenet")
    model = W.build_random("resnet50_imagenet", seed=3)
    assert state.keys() == model.state_dict().keys()
    assert torch.equal(state["conv1.weight"], model.state_dict()["conv1.weight"])
    other = W.build_random("resnet50_imagenet", seed=4)
    assert not torch.equal(other.state_dict()["conv1.weight"], state["conv1.weight"])


def test_hf_checkpoint_is_a_save_pretrained_folder(offline):
    path = W.save_random_weights("segformer_b0_cityscapes")
    assert (path / "config.json").exists()
    state = W.load_state_dict("segformer_b0_cityscapes")
    assert state["decode_head.classifier.weight"].shape[0] == 19


def test_missing_weights_offline_name_the_file_and_the_fix(offline):
    with pytest.raises(W.WeightsNotFoundError) as err:
        W.load_state_dict("maskrcnn_resnet50_fpn_coco")
    msg = str(err.value)
    assert str(offline / "maskrcnn_resnet50_fpn_coco.pth") in msg
    assert "MaskRCNN_ResNet50_FPN_Weights.COCO_V1" in msg and "LABKIT_OFFLINE" in msg


def test_failed_download_is_reported_not_raised_raw(offline, monkeypatch):
    def refuse(entry):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(W, "_download", refuse)
    with pytest.raises(W.WeightsNotFoundError, match="download failed.*no route to host"):
        W.load_state_dict("resnet50_imagenet", download=True)


def test_corrupt_file_is_named(offline):
    (offline / "resnet50_imagenet.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(W.WeightsNotFoundError, match="cannot be read"):
        W.load_state_dict("resnet50_imagenet")


def test_unknown_name_lists_the_catalogue():
    with pytest.raises(KeyError, match="resnet50_imagenet"):
        W.load_state_dict("resnet51")


def test_load_into_reports_matched_missing_unexpected_and_mismatched():
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    state = {"0.weight": torch.ones(3, 4), "0.bias": torch.ones(3),
             "1.weight": torch.ones(5, 3), "extra": torch.ones(1)}
    report = W.load_into(model, state)
    assert report["matched"] == ["0.weight", "0.bias"]
    assert report["missing"] == ["1.weight", "1.bias"]
    assert report["unexpected"] == ["extra"]
    assert report["mismatched"] == ["1.weight: checkpoint (5, 3) vs model (2, 3)"]
    assert torch.equal(model[0].weight, torch.ones(3, 4))
    renamed = W.load_into(model, {"first.bias": torch.zeros(3)},
                          rename=lambda k: k.replace("first.", "0."))
    assert renamed["matched"] == ["0.bias"] and torch.equal(model[0].bias, torch.zeros(3))


def test_read_state_dict_formats(tmp_path):
    from safetensors.torch import save_file

    state = {"a": torch.ones(2), "b": torch.zeros(1, 3)}
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "ckpt.pt")  # a labkit checkpoint
    (tmp_path / "saved").mkdir()
    save_file(state, str(tmp_path / "saved" / "model.safetensors"))  # a save_pretrained folder
    for source in (tmp_path / "ckpt.pt", tmp_path / "saved", str(tmp_path / "saved")):
        read = W.read_state_dict(source)
        assert read.keys() == state.keys() and torch.equal(read["a"], state["a"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="save_pretrained"):
        W.read_state_dict(tmp_path / "empty")


def test_weights_imports_no_model_module_and_names_hf_configs():
    import subprocess
    import sys

    code = ("import sys, labkit.weights as W; print('labkit.models' in sys.modules); "
            "c = W.hf_config('segformer_b2_cityscapes'); print(c.num_labels, *c.depths)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "19", "3", "4", "6", "3"]  # the config is named, not imported
    with pytest.raises(ValueError, match="torchvision checkpoint"):
        W.hf_config("resnet50_imagenet")
