"""Hostile behaviour while the checks run: infinite loops, huge allocations, fork bombs, floods
of output, bad outputs (NaN, Inf, wrong shapes and dtypes)."""

from __future__ import annotations

import time

from ag_helpers import CM_ONLY, FULL, IS_ROOT, OTHERS, assert_scores


def test_infinite_loop_in_one_exercise(tmp_path, grade_nb, make_submission, solution_source):
    start = time.monotonic()  # how long the solution takes on this machine, now
    assert_scores(grade_nb(make_submission(tmp_path, folder=tmp_path / "solution")), FULL)
    baseline = time.monotonic() - start
    iou = solution_source["mean_iou"].replace(
        "    confmat = confmat.double()", "    while True:\n        pass")
    start = time.monotonic()
    res = grade_nb(make_submission(tmp_path, replace={"mean_iou": iou},
                                   extra=["while True:\n    pass"]))
    elapsed = time.monotonic() - start
    assert_scores(res, {**CM_ONLY, **OTHERS})
    for n in ("2.1", "2.2", "2.3", "2.4", "2.5", "3.2"):
        assert "Timeout" in res.out(n) and "took longer than 3 s" in res.out(n), res.out(n)
    # each timed-out function (mean_iou, then the pipeline that calls it) costs one call budget
    # of 3 s and at most one restart of the child; one budget per check would cost 6 x 3 s and
    # five more restarts
    assert elapsed < baseline + 2 * 3 + 12, (elapsed, baseline)


def test_huge_allocations(tmp_path, grade_nb, make_submission, solution_source):
    cm = ("def confusion_matrix(preds, targets, num_classes, ignore_index=255):\n"
          "    return bytearray(10 << 30)\n")
    # torch on small inputs, an anonymous *shared* mapping (not counted by RLIMIT_DATA) else
    iou = ("import mmap\n"
           "def mean_iou(confmat):\n"
           "    if confmat.shape[0] == 3:\n"
           "        return torch.empty(10 << 30, dtype=torch.uint8), 0.0\n"
           "    m = mmap.mmap(-1, 10 << 30)\n"
           "    raise RuntimeError('mapped 10 GB without an error')\n")
    res = grade_nb(make_submission(tmp_path, replace={"confusion_matrix": cm, "mean_iou": iou}))
    assert_scores(res, OTHERS)
    assert "raised MemoryError" in res.out("1.1")
    assert "raised RuntimeError" in res.out("2.1") and "allocat" in res.out("2.1")
    assert "mapped 10 GB" not in res.text
    assert "raised OSError" in res.out("2.2") and "Cannot allocate memory" in res.out("2.2")


FORK_BOMB = '''
def confusion_matrix(preds, targets, num_classes, ignore_index=255):
    import os, time
    n = 0
    for _ in range(3000):  # bounded: RLIMIT_NPROC must stop it long before
        try:
            pid = os.fork()
        except OSError as exc:
            raise RuntimeError(f"fork refused after {n} children: {exc}")
        if pid == 0:
            time.sleep(0.5)
            os._exit(0)
        n += 1
    raise RuntimeError(f"forked {n} children without a limit")
'''

FLOOD = '''
def mean_iou(confmat):
    import sys
    chunk = "x" * (1 << 20)
    for _ in range(2048):  # at most 2 GB attempted; RLIMIT_FSIZE must stop it at 16 MB
        print(chunk)
    sys.stdout.flush()
    raise RuntimeError("printed 2 GB without an error")
'''


def test_fork_bomb_and_output_flood(tmp_path, grade_nb, make_submission, monkeypatch):
    # RLIMIT_NPROC is under test here, not the clock: forking a child that has imported torch
    # and torchvision takes tens of ms on a loaded machine, 64 of them can exceed 3 s
    monkeypatch.setenv("AUTOGRADER_CALL_S", "15")
    res = grade_nb(make_submission(tmp_path, replace={"confusion_matrix": FORK_BOMB,
                                                      "mean_iou": FLOOD}))
    assert_scores(res, OTHERS)
    for n in ("1.1", "1.2", "1.3", "1.4", "1.5"):
        assert "fork refused after" in res.out(n), res.out(n)
    assert "without a limit" not in res.text
    if IS_ROOT:
        count = int(res.out("1.1").split("fork refused after ")[1].split()[0])
        assert count <= 64
    for n in ("2.1", "2.2", "2.3", "2.4", "2.5"):
        assert "File too large" in res.out(n), res.out(n)
    assert "printed 2 GB" not in res.text


BAD_OUTPUTS_CM = '''
def confusion_matrix(preds, targets, num_classes, ignore_index=255):
    keep = targets != ignore_index
    index = num_classes * targets[keep] + preds[keep]
    cm = torch.bincount(index, minlength=num_classes ** 2).reshape(num_classes, num_classes)
    if num_classes == 3:
        return cm.float()  # wrong dtype
    return cm.diag()  # (K,) instead of (K, K)
'''

BAD_OUTPUTS_IOU = '''
def mean_iou(confmat):
    k = confmat.shape[0]
    if k == 3:
        return torch.full((k,), float("inf")), float("inf")
    confmat = confmat.double()
    tp = confmat.diag()
    per_class = tp / (confmat.sum(0) + confmat.sum(1) - tp)
    return per_class.float(), float("nan")
'''


def test_wrong_dtypes_shapes_nan_inf(tmp_path, grade_nb, make_submission):
    res = grade_nb(make_submission(tmp_path, replace={"confusion_matrix": BAD_OUTPUTS_CM,
                                                      "mean_iou": BAD_OUTPUTS_IOU}))
    assert_scores(res, OTHERS)
    assert "dtype float32, expected int64" in res.out("1.1")
    assert "shape (5,), expected (5, 5)" in res.out("1.2")
    assert "contains Inf" in res.out("2.1")
    assert "mIoU: got nan, expected" in res.out("2.3")
