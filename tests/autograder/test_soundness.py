"""Grader soundness: one test per attack class of a cheating student (issue "Grader 2,
soundness"), on lab02, run as root (CI) in the bubblewrap jail and, for the isolation tests,
once more with the jail unavailable (the fallback path).

Every attack below worked on the grader of session 2: verdicts computed next to student code,
a stub that only raises, solutions readable from the child, files and memory outside the box,
a parent that loaded every file it found or blocked on a FIFO, hidden inputs shown in a visible
check, time limits that added up past Gradescope's, forbidden calls through strings.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from ag_helpers import CM_ONLY, FULL, IOU_ONLY, IS_ROOT, OTHERS, assert_scores, sandbox_uid

from labkit.checking import probe_utils

ROOT_ONLY = pytest.mark.skipif(not IS_ROOT, reason="the jail drops to another user only as root")


@pytest.fixture(params=["bubblewrap", "fallback"])
def jail(request, monkeypatch):
    """Both isolation paths: the bubblewrap jail and the fallback without namespaces."""
    from autograder.sandbox import jail_level

    if request.param == "fallback":
        monkeypatch.setenv("AUTOGRADER_JAIL", "fallback")
    elif jail_level() != "bubblewrap":
        pytest.skip("bubblewrap cannot create namespaces on this machine")
    return request.param


# ----------------------------------------------------------------------------- verdicts


FORGER = '''
import sys as _sys
class _Forge:
    # walks up to the driver while the notebook runs: swaps the probe and the writer
    _f = _sys._getframe()
    while _f is not None:
        _g = _f.f_globals
        if "_write_json" in _g:
            _g["_write_json"] = lambda path, obj: open(path, "w").write(
                '{"miou": 0.5, "__arrays__": []}')
        _f = _f.f_back
    _p = _sys.modules.get("_probes")
    if _p is not None:
        import numpy as _np
        _p.mean_iou = lambda ns, inputs: {"per_class_iou": _np.full(3, 0.5), "miou": 0.5}
'''


def test_forged_probe_and_writer_earn_nothing(tmp_path, grade_nb, make_submission):
    stub = "def mean_iou(confmat):\n    raise NotImplementedError\n" + FORGER
    res = grade_nb(make_submission(tmp_path, replace={"mean_iou": stub}))
    assert_scores(res, {**CM_ONLY, **OTHERS})


def test_probe_utils_read_through_lying_subclasses_and_patches(monkeypatch):
    class Liar(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            return torch.ones(3)

        @property
        def requires_grad(self):
            return True

    x = torch.arange(6.0).reshape(2, 3).as_subclass(Liar)
    monkeypatch.setattr(torch, "equal", lambda *a, **k: True)
    monkeypatch.setattr(torch.Tensor, "tolist", lambda self: [0])
    monkeypatch.setattr(torch.Tensor, "numpy", lambda self: np.zeros(1))
    out = probe_utils.tensor_out(x, "x")
    assert type(out) is np.ndarray and out.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert probe_utils.requires_grad(x) is False
    assert probe_utils.shape_of(x) == [2, 3] and probe_utils.dtype_of(x) == "float32"


LYING_DICE = '''
class _Lying(torch.Tensor):
    @property
    def requires_grad(self):
        return True
    def backward(self, *a, **k):
        return None

def dice_loss(logits, targets, ignore_index=255):
    value = _reference_dice(logits.detach(), targets, ignore_index)
    return value.as_subclass(_Lying)
'''


def test_lying_requires_grad_earns_no_gradient_points(tmp_path, grade_nb, make_submission,
                                                     solution_nb):
    from ag_helpers import defining_cell

    source = solution_nb.cells[defining_cell(solution_nb, "dice_loss")].source
    renamed = source.replace("def dice_loss(", "def _reference_dice(")
    res = grade_nb(make_submission(tmp_path, replace={"dice_loss": renamed + "\n" + LYING_DICE}))
    # the value is right, but the real flag says it is detached: nothing flows back to the
    # logits, and the contract (a differentiable loss) fails on every dice_loss check
    assert res.check("6.1")["score"] == 0 and res.check("6.2")["score"] == 0
    assert_scores(res, {n: s for n, s in FULL.items() if not n.startswith("6.")})


def test_a_stub_that_only_raises_value_error_earns_nothing(tmp_path, grade_nb, make_submission):
    unet = ("class UNet(nn.Module):\n"
            "    def __init__(self, *args, **kwargs):\n"
            "        raise ValueError('not implemented')\n")
    res = grade_nb(make_submission(tmp_path, replace={"UNet": unet}))
    unet_checks = [n for n in FULL if n.startswith("5.")]
    assert_scores(res, {n: s for n, s in FULL.items() if n not in unet_checks})


# ----------------------------------------------------------------------------- the box


SNOOP = '''
import os as _os, subprocess as _sp
def mean_iou(confmat):
    seen = []
    for name, path in {paths!r}.items():
        try:
            with open(path, "rb") as fh:
                fh.read(10)
            seen.append(name + ":READ")
        except Exception as exc:
            seen.append(name + ":" + type(exc).__name__)
    try:
        out = _sp.run(["git", "-C", {repo!r}, "show", "HEAD:" + {master_rel!r}],
                      capture_output=True, timeout=10)
        seen.append("git:" + ("READ" if out.returncode == 0 and out.stdout else "FAILED"))
    except Exception as exc:
        seen.append("git:" + type(exc).__name__)
    raise RuntimeError("SNOOP " + " ".join(seen))
'''


@ROOT_ONLY
def test_solutions_and_the_repository_are_out_of_reach(tmp_path, grade_nb, make_submission,
                                                        references, jail):
    from autograder.config import REPO_ROOT
    from autograder.labs import get_lab

    lab = get_lab("lab02")
    other = Path("/work/shared/DESIGN.md")
    paths = {"master": str(lab.master_path), "git": str(REPO_ROOT / ".git" / "HEAD"),
             "refs": str(references), "readme": str(REPO_ROOT / "README.md")}
    if other.exists():
        paths["other_checkout"] = str(other)
    res = grade_nb(make_submission(tmp_path, replace={"mean_iou": SNOOP.format(
        paths=paths, repo=str(REPO_ROOT), master_rel=str(lab.master_path.relative_to(
            REPO_ROOT)))}))
    msg = res.out("2.1")
    assert "SNOOP" in msg, msg
    if jail == "bubblewrap":  # an allow-list: nothing of the machine's files at all
        assert ":READ" not in msg, msg
    else:  # the fallback hides a deny-list: the solutions, the references, the repository's .git
        for name in ("master", "refs", "git"):
            assert f"{name}:READ" not in msg, msg
    assert_scores(res, {**CM_ONLY, **OTHERS})


LEAVE = '''
import os as _os, socket as _socket
def confusion_matrix(preds, targets, num_classes, ignore_index=255):
    report = []
    for folder in ("/tmp", "/var/tmp", "/dev/shm", _os.path.expanduser("~")):
        try:
            with open(_os.path.join(folder, "ag-junk-{tag}"), "wb") as fh:
                for _ in range(8):
                    fh.write(b"x" * (1 << 20))
            report.append(folder + ":WROTE")
        except Exception as exc:
            report.append(folder + ":" + type(exc).__name__)
    try:
        s = _socket.socket(_socket.AF_UNIX)
        s.connect({sock!r})
        s.sendall(b"escaped")
        report.append("unix:CONNECTED")
    except Exception as exc:
        report.append("unix:" + type(exc).__name__)
    hogs = []
    for _ in range(400):  # 6 GB of memfd pages held at once, 15 MB per file (RLIMIT_FSIZE)
        fd = _os.memfd_create("hog")
        for _ in range(15):
            _os.write(fd, b"y" * (1 << 20))
        hogs.append(fd)
    raise RuntimeError("LEFT " + " ".join(report))
'''


@pytest.fixture(params=["cgroup", "seccomp"])
def memory_cap(request, monkeypatch):
    """A memory cgroup where the grader can make one; otherwise a seccomp filter refusing
    memfd_create (which RLIMIT_AS does not count)."""
    if request.param == "seccomp":
        monkeypatch.setenv("AUTOGRADER_CGROUP", "0")
    return request.param


@ROOT_ONLY
def test_the_child_cannot_leave_the_box(tmp_path, grade_nb, make_submission, jail, isolation,
                                        memory_cap):
    sock_dir = tmp_path / "sock"
    sock_dir.mkdir()
    os.chmod(tmp_path, 0o755)
    os.chmod(sock_dir, 0o777)
    sock_path = str(sock_dir / "grader.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(sock_path)
    os.chmod(sock_path, 0o777)
    server.listen(1)
    server.settimeout(0.2)
    got = []

    def accept():
        end = time.monotonic() + 300
        while time.monotonic() < end and not got:
            try:
                conn, _ = server.accept()
                got.append(conn.recv(100))
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    tag = f"{os.getpid()}-{time.monotonic_ns()}"
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    res = grade_nb(make_submission(tmp_path, replace={"confusion_matrix": LEAVE.format(
        tag=tag, sock=sock_path)}))
    server.close()
    assert_scores(res, {**IOU_ONLY, **OTHERS})
    assert not got, "a filesystem UNIX socket outside the box was reachable"
    for folder in ("/tmp", "/var/tmp", "/dev/shm"):
        assert not os.path.exists(os.path.join(folder, f"ag-junk-{tag}")), folder
    # the grader itself never held the child's memory
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 512 * 1024
    msg = res.out("1.1")
    # the hog never completes: the cgroup kills it (the kernel may pick the zygote first), or
    # memfd_create is refused where no cgroup can be made, or the open-files limit stops it
    assert "LEFT" not in msg, msg
    assert any(w in msg for w in ("memory", "killed", "Killed", "not permitted",
                                  "Too many open files", "without a result")), msg


# ----------------------------------------------------------------------------- hostile files


FILES = '''
import os as _os, threading as _threading, time as _time
def _sabotage(root):
    end = _time.time() + 20
    while _time.time() < end:
        for dirpath, _dirs, files in _os.walk(root):
            for f in files:
                p = _os.path.join(dirpath, f)
                if f == "result.json" or f.endswith(".npy"):
                    try:
                        _os.remove(p)
                        _os.mkfifo(p)
                    except OSError:
                        pass
        _time.sleep(0.001)

def confusion_matrix(preds, targets, num_classes, ignore_index=255):
    out = _os.path.join(_os.getcwd(), "out")
    for dirpath, dirs, _files in _os.walk(out):
        for d in dirs:
            p = _os.path.join(dirpath, d, "junk.npy")
            with open(p, "wb") as fh:  # a sparse 3 GB .npy that nobody asked for
                fh.truncate(3 << 30)
    _threading.Thread(target=_sabotage, args=(out,), daemon=True).start()
    return torch.zeros(num_classes, num_classes, dtype=torch.int64)
'''


def test_the_parent_reads_only_what_it_asked_for(tmp_path, grade_nb, make_submission):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.monotonic()
    res = grade_nb(make_submission(tmp_path, replace={"confusion_matrix": FILES}))
    assert time.monotonic() - start < 300
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 512 * 1024
    assert res.check("1.4")["score"] in (0, FULL["1.4"])  # all-ignored: zeros are right
    assert_scores(res, {**IOU_ONLY, **OTHERS, "1.4": res.check("1.4")["score"]})


def test_a_fifo_as_the_notebook_does_not_block(tmp_path, grade_nb):
    folder = tmp_path / "submission"
    folder.mkdir()
    os.mkfifo(folder / "lab02_segmentation.ipynb")
    start = time.monotonic()
    res = grade_nb(folder)
    assert time.monotonic() - start < 60
    assert res["score"] == 0 and "not a regular file" in res["output"], res["output"]


HIDDEN = '''
import os as _os
def mean_iou(confmat):
    seen = []
    for dirpath, _dirs, files in _os.walk(_os.path.dirname(_os.getcwd())):
        seen += [_os.path.join(dirpath, f) for f in files]
    for name in ("request.json",):
        try:
            seen.append(open(name).read())
        except OSError:
            pass
    raise RuntimeError("SEEN " + " ".join(seen)[:500])
'''


def test_hidden_inputs_never_reach_a_visible_check(tmp_path, grade_nb, make_submission, jail):
    res = grade_nb(make_submission(tmp_path, replace={"mean_iou": HIDDEN}))
    visible = [t for t in res["tests"]
               if t["visibility"] == "visible" and t["number"] in IOU_ONLY]
    assert visible and all("SEEN" in t["output"] for t in visible), visible
    for t in visible:  # the calls of the hidden mean_iou checks (2.3-2.5)
        for cid in ("iou_single_class", "iou_empty", "iou_random"):
            assert cid not in t["output"], (cid, t["output"])
        assert "[[0, 0], [0, 12]]" not in t["output"]


# ----------------------------------------------------------------------------- time


SLOW = '''
import time as _time
def mean_iou(confmat):
    _time.sleep(2.9)  # just under the per-call limit of these tests (3 s)
    raise NotImplementedError
'''


def test_a_time_budget_per_submission(tmp_path, grade_nb, make_submission, monkeypatch):
    # mean_iou's six calls would take 17 s: the 15 s budget runs out in mean_iou
    monkeypatch.setenv("AUTOGRADER_BUDGET_S", "15")
    start = time.monotonic()
    res = grade_nb(make_submission(tmp_path, replace={"mean_iou": SLOW}))
    spent = time.monotonic() - start
    assert spent < 15 + 60, spent  # the budget, plus the parent's own work
    outputs = " ".join(t["output"] for t in res["tests"])
    assert "time budget" in outputs, outputs
    for n in CM_ONLY:  # exercise 1 ran before the slow one
        assert res.check(n)["score"] == FULL[n]


LOOPS = "class Forever{i}:\n    while True:\n        pass\n"


def test_endless_class_bodies_no_exercise_needs_never_run(tmp_path, grade_nb, make_submission):
    start = time.monotonic()
    res = grade_nb(make_submission(tmp_path, extra=[LOOPS.format(i=i) for i in range(8)]))
    assert time.monotonic() - start < 300
    assert_scores(res, FULL)
    assert "Statements the grader did not run" in res["output"] and "class Forever0" in res["output"]


def test_an_endless_class_body_an_exercise_needs_costs_only_that_exercise(
        tmp_path, grade_nb, make_submission, solution_source):
    source = LOOPS.format(i=0) + solution_source["mean_iou"].replace(
        "def mean_iou(confmat", "def mean_iou(confmat, _hang=Forever0")
    res = grade_nb(make_submission(tmp_path, replace={"mean_iou": source}))
    assert_scores(res, {**CM_ONLY, **OTHERS})
    assert "Timeout" in res["output"] or "took longer" in res["output"], res["output"]


# ----------------------------------------------------------------------------- forbidden


def test_forbidden_calls_through_strings_are_caught_at_run_time(tmp_path, grade_nb,
                                                                 make_submission):
    iou = ("def mean_iou(confmat):\n"
           "    mod = __import__('labkit.' + 'met' + 'rics', fromlist=['x'])\n"
           "    per_class, miou = getattr(mod, 'iou_' + 'from_confmat')(confmat)\n"
           "    return per_class.float(), float(miou)\n")
    res = grade_nb(make_submission(tmp_path, replace={"mean_iou": iou}))
    assert_scores(res, {**CM_ONLY, **OTHERS})
    assert "implement yourself" in res.out("2.1"), res.out("2.1")


def test_no_sandbox_process_is_left(tmp_path, grade_nb, make_submission):
    daemon = ("import subprocess as _sp\n"
              "def mean_iou(confmat):\n"
              "    _sp.Popen(['sleep', '600'], start_new_session=True)\n"
              "    raise NotImplementedError\n")
    grade_nb(make_submission(tmp_path, replace={"mean_iou": daemon}))
    uid = sandbox_uid()
    if uid is not None:
        out = subprocess.run(["pgrep", "-u", str(uid), "-f", "sleep 600"],
                             capture_output=True, text=True)
        assert not out.stdout.strip(), out.stdout
