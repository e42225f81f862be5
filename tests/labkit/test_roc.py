"""labkit.metrics.roc_one_vs_rest and labkit.viz.plot_roc against torchmetrics and by hand."""

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torchmetrics.classification import BinaryAUROC, BinaryROC  # noqa: E402

from labkit import metrics, viz  # noqa: E402


def test_hand_computed_curve():
    # scores 0.9 (pos), 0.8 (neg), 0.7 (pos), 0.1 (neg): points (0,0) (0,.5) (.5,.5) (.5,1) (1,1)
    probs = torch.tensor([[0.1, 0.9], [0.2, 0.8], [0.3, 0.7], [0.9, 0.1]])
    targets = torch.tensor([1, 0, 1, 0])
    roc = metrics.roc_one_vs_rest(probs, targets)
    assert torch.allclose(roc.fpr[1], torch.tensor([0, 0, 0.5, 0.5, 1], dtype=torch.float64))
    assert torch.allclose(roc.tpr[1], torch.tensor([0, 0.5, 0.5, 1, 1], dtype=torch.float64))
    assert math.isinf(roc.thresholds[1][0]) and roc.thresholds[1][1] == pytest.approx(0.9)
    assert roc.auc[1] == pytest.approx(0.75)
    assert roc.auc[0] == pytest.approx(0.75)  # pairs (pos > neg): 0.2>0.1, 0.9>0.1, 0.9>0.3


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_torchmetrics_per_class(seed):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 4, 9, 11, generator=gen)
    targets = torch.randint(0, 4, (3, 9, 11), generator=gen)
    logits += 1.5 * torch.nn.functional.one_hot(targets, 4).permute(0, 3, 1, 2)  # informative
    probs = (logits * 4).round().softmax(1).round(decimals=2)  # ties on purpose
    targets[:, :2] = 255
    roc = metrics.roc_one_vs_rest(probs, targets)
    keep = targets != 255
    flat = probs.permute(0, 2, 3, 1)[keep]  # (N,4)
    for c in range(4):
        positive = (targets[keep] == c).long()
        fpr, tpr, _ = BinaryROC(thresholds=None)(flat[:, c], positive)
        auc = BinaryAUROC(thresholds=None)(flat[:, c], positive)
        assert float(roc.auc[c]) == pytest.approx(float(auc), abs=1e-6)
        # same curve: identical operating points (torchmetrics drops none either)
        ours = np.stack([roc.fpr[c].numpy(), roc.tpr[c].numpy()], 1)
        theirs = np.stack([fpr.double().numpy(), tpr.double().numpy()], 1)
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_missing_class_gives_nan_auc_and_bad_targets_raise():
    probs = torch.rand(10, 3).softmax(1)
    targets = torch.tensor([0, 1] * 5)
    roc = metrics.roc_one_vs_rest(probs, targets)
    assert math.isnan(float(roc.auc[2])) and not math.isnan(float(roc.auc[0]))
    with pytest.raises(ValueError, match="targets must be in"):
        metrics.roc_one_vs_rest(probs, torch.tensor([0, 1, 7] + [0] * 7))
    with pytest.raises(ValueError, match="expected probs"):
        metrics.roc_one_vs_rest(probs, targets[:3])


def test_perfect_scores_give_auc_one_and_plot_draws_every_class():
    targets = torch.randint(0, 3, (2, 6, 6), generator=torch.Generator().manual_seed(3))
    probs = torch.nn.functional.one_hot(targets, 3).permute(0, 3, 1, 2).float()
    roc = metrics.roc_one_vs_rest(probs, targets)
    np.testing.assert_allclose(roc.auc.numpy(), 1.0)
    fig = viz.plot_roc(roc, ["pet", "background", "border"])
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert labels[:3] == ["pet (AUC 1.000)", "background (AUC 1.000)", "border (AUC 1.000)"]
    with pytest.raises(ValueError, match="class names"):
        viz.plot_roc(roc, ["a"])
