"""Hostile submissions that go after the grader: fake results, monkeypatching, lying objects,
pickles and symlinks in the output folder, reading references, importing the grader, network,
daemons, and the forbidden library metric."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import threading
import time

import pytest
from ag_helpers import CM_ONLY, IOU_ONLY, IS_ROOT, OTHERS, assert_scores, world_writable_dir

PATCH_EVERYTHING = '''
import unittest
class _Patch:
    import numpy, torch, unittest, json
    try:
        import gradescope_utils.autograder_utils.json_test_runner as _jtr
        _jtr.JSONTestRunner.run = lambda self, test: None
    except Exception:
        pass
    for _n in dir(unittest.TestCase):
        if _n.startswith("assert"):
            setattr(unittest.TestCase, _n, lambda *a, **k: None)
    numpy.allclose = numpy.isclose = numpy.array_equal = lambda *a, **k: True
    torch.equal = torch.allclose = lambda *a, **k: True
    json.dump = lambda obj, fh, **k: fh.write('{"confmat": 1}')
'''

LIARS = '''
_P = _Patch  # the exercises below need the patching class body: it runs in their child

class AlwaysEqual:
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False

class LiarTensor(torch.Tensor):
    def __eq__(self, other):
        return True
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return True

def confusion_matrix(preds, targets, num_classes, ignore_index=255, _p=_P):
    if num_classes == 4:
        return AlwaysEqual()
    return torch.zeros(num_classes, num_classes, dtype=torch.int64)  # right only if all ignored

def mean_iou(confmat, _p=_P):
    if confmat.shape[0] == 3:
        return AlwaysEqual(), AlwaysEqual()
    return LiarTensor(torch.zeros(confmat.shape[0])), 0.5
'''


def test_monkeypatching_and_lying_objects(tmp_path, grade_nb, make_submission, solution_nb):
    res = grade_nb(make_submission(tmp_path, extra_first=[PATCH_EVERYTHING], extra=[LIARS]))
    # the zero matrix is right for the all-ignored batch (1.4) and nothing else
    assert_scores(res, {"1.4": 1, **OTHERS})
    assert "expected a torch.Tensor, got AlwaysEqual" in res.out("1.3")
    assert "values differ" in res.out("1.1")
    # the liar's real values come back (read through the base class): zeros, not NaN
    assert "should be NaN" in res.out("2.2") or "differ" in res.out("2.2"), res.out("2.2")


FAKER = '''
def confusion_matrix(preds, targets, num_classes, ignore_index=255):
    import json, os, time
    fake = json.dumps({{"score": 16.0, "output": "FAKE", "tests": []}})
    print(fake)
    try:
        with open({shm!r}, "wb") as fh:
            fh.write(b"x" * (1 << 20))
    except OSError:
        pass
    for path in ("results.json", {out!r}, "/autograder/results/results.json"):
        try:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            with open(path, "w") as fh:
                fh.write(fake)
        except OSError:
            pass
    os.makedirs("tmp", exist_ok=True)
    if not os.path.exists("tmp/daemon-started"):
        open("tmp/daemon-started", "w").close()
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                for _ in range(240):  # a minute at most, unless the grader kills it first
                    time.sleep(0.25)
                    with open({out!r}, "w") as fh:
                        fh.write(fake)
                    with open({marker!r}, "a") as fh:
                        fh.write("alive\\n")
            os._exit(0)
    return torch.zeros(num_classes, num_classes, dtype=torch.int64)
'''


def test_fake_results_and_a_daemon(tmp_path, grade_nb, make_submission, world_dir, isolation):
    shared = world_writable_dir(world_dir, "fake-results")
    out, marker = shared / "results.json", shared / "daemon-was-here"
    shm = f"/dev/shm/ag-test-{os.getpid()}"
    res = grade_nb(make_submission(tmp_path, replace={"confusion_matrix": FAKER.format(
        out=str(out), marker=str(marker), shm=shm)}), out=out)
    assert_scores(res, {"1.4": 1, **IOU_ONLY, **OTHERS})
    before = out.read_bytes()
    assert b"FAKE" not in before
    # the daemon may write while the checks run (as any student code may), but it must be dead
    # once grade() returns: results.json and its heartbeat file stay as they are
    beats = marker.read_bytes() if marker.exists() else b""
    time.sleep(2)  # a live daemon writes every 0.25 s
    assert out.read_bytes() == before
    assert (marker.read_bytes() if marker.exists() else b"") == beats
    assert not os.path.exists("/autograder/results/results.json")
    if "private-shm" in isolation:  # files in /dev/shm (RAM) vanish with the sandbox
        assert not os.path.exists(shm)
    elif os.path.exists(shm):
        os.unlink(shm)


PICKLER = '''
class Payload:
    def __reduce__(self):
        return (open, ({marker!r}, "w"))

def confusion_matrix(preds, targets, num_classes, ignore_index=255):
    import os
    import numpy as np
    for folder in os.listdir("out"):
        path = os.path.join("out", folder)
        np.save(os.path.join(path, "payload.npy"),
                np.array([Payload()], dtype=object), allow_pickle=True)
        try:
            os.symlink({refs!r}, os.path.join(path, "refs.npy"))
        except OSError:
            pass
    keep = targets != ignore_index
    index = num_classes * targets[keep] + preds[keep]
    return torch.bincount(index, minlength=num_classes ** 2).reshape(num_classes, num_classes)

def mean_iou(confmat):
    import numpy as np
    return np.array([object()] * confmat.shape[0], dtype=object), 0.5
'''


def test_pickles_and_symlinks_in_the_output_folder(tmp_path, grade_nb, make_submission,
                                                    references, world_dir):
    shared = world_writable_dir(world_dir, "pickle")
    marker = shared / "unpickled"
    digest = hashlib.sha256(references.read_bytes()).hexdigest()
    res = grade_nb(make_submission(tmp_path, extra=[
        PICKLER.format(marker=str(marker), refs=str(references))]))
    # the parent reads only the files it asked for: the pickled payload and the symlink next
    # to the outputs are never opened; mean_iou's object array is refused in the child
    assert_scores(res, {**CM_ONLY, **OTHERS})
    assert "not numeric" in res.out("2.1") or "objects" in res.out("2.1"), res.out("2.1")
    assert not marker.exists()
    assert hashlib.sha256(references.read_bytes()).hexdigest() == digest


SNOOPER = '''
def _try(what, fn):
    try:
        data = fn()
        return f"{{what}}:READ({{len(data)}})"
    except Exception as exc:
        return f"{{what}}:{{type(exc).__name__}}"

def confusion_matrix(preds, targets, num_classes, ignore_index=255):
    import socket
    out = [_try("refs", lambda: open({refs!r}, "rb").read()),
           _try("refcopy", lambda: open({refcopy!r}, "rb").read()),
           _try("master", lambda: open({master!r}, "rb").read()),
           _try("checks", lambda: open({checks!r}, "rb").read())]
    try:
        socket.create_connection(("127.0.0.1", {port}), timeout=2).close()
        out.append("net:CONNECTED")
    except OSError as exc:
        out.append(f"net:{{type(exc).__name__}}")
    raise RuntimeError(" ".join(out))

def mean_iou(confmat):
    from autograder import notebook as nbm
    from autograder.labs import get_lab
    master = nbm.read_notebook(get_lab("lab02").master_path)
    ns = {{}}
    for cell in nbm.make_solution(master).cells:
        try:
            exec(cell.source, ns)
        except Exception:
            pass
    return ns["mean_iou"](confmat)
'''


@pytest.fixture
def tcp_server():
    """A loopback TCP server (thread) that records connections."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    seen, stop = [], threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, addr = srv.accept()
            except OSError:
                continue
            seen.append(addr)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield srv.getsockname()[1], seen
    stop.set()
    thread.join(2)
    srv.close()


def test_snooping_importing_the_grader_and_network(tmp_path, grade_nb, make_submission,
                                                   references, tcp_server, isolation,
                                                   world_dir):
    from autograder.labs import get_lab

    lab = get_lab("lab02")
    port, seen = tcp_server
    import autograder.labs.lab02

    checks = autograder.labs.lab02.__file__  # the hidden checks' declarations
    # a copy of the references (mode 600 like the original) in a folder that is not hidden
    copy_dir = world_dir / "refcopy"
    copy_dir.mkdir(exist_ok=True)
    os.chmod(copy_dir, 0o755)
    refcopy = copy_dir / "references.npz"
    shutil.copy(references, refcopy)
    os.chmod(refcopy, 0o600)
    res = grade_nb(make_submission(tmp_path, extra=[SNOOPER.format(
        refs=str(references), refcopy=str(refcopy), master=str(lab.master_path),
        checks=checks, port=port)]))
    assert_scores(res, OTHERS)
    msg = res.out("1.1")
    if IS_ROOT:
        # the jail shows none of them (the fallback: the file mode protects the references,
        # the mount namespace hides their folder and the master notebooks)
        assert "refcopy:PermissionError" in msg or "refcopy:FileNotFoundError" in msg, msg
        assert "refs:READ" not in msg and "master:READ" not in msg, msg
        assert "checks:READ" not in msg, msg
        if "hidden-paths" in isolation:
            assert "refs:FileNotFoundError" in msg and "master:FileNotFoundError" in msg, msg
        # calling the grader's own functions to rebuild the solution gets nowhere
        assert "`mean_iou` raised ImportError" in res.out("2.1"), res.out("2.1")
        assert "cannot be imported while grading" in res.out("2.1")
    if "netns" in isolation:
        assert not seen and "net:CONNECTED" not in msg
    else:
        assert ("net:CONNECTED" in msg) == bool(seen)


def test_forbidden_library_metric(tmp_path, grade_nb, make_submission):
    cm = ("def confusion_matrix(preds, targets, num_classes, ignore_index=255):\n"
          "    return lk.metrics.confusion_matrix(preds, targets, num_classes,"
          " ignore_index=ignore_index)\n")
    # the same through a notebook-level import under another name
    iou = ("from labkit.metrics import iou_from_confmat as _iou\n"
           "def mean_iou(confmat):\n"
           "    per_class, miou = _iou(confmat)\n"
           "    return per_class.float(), float(miou)\n")
    res = grade_nb(make_submission(tmp_path, replace={"confusion_matrix": cm, "mean_iou": iou}))
    assert_scores(res, OTHERS)
    for n in ("1.1", "1.5", "3.1"):
        assert "`confusion_matrix` uses metrics" in res.out(n), res.out(n)
    for n in ("2.1", "2.5"):
        assert "`mean_iou` uses iou_from_confmat, metrics, which this exercise asks you to " \
            "implement yourself" in res.out(n), res.out(n)
