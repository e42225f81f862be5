"""Child-side driver: runs a student's definitions and the probes, writes plain data only.

This file is copied into a fresh sandbox folder and run as ``python -I _driver.py SANDBOX`` in
a child process with resource limits (see ``autograder/sandbox.py``). It imports nothing from the
grader. It writes, per probe call, ``out/<call>/result.json`` (numbers, strings, lists) and
``out/<call>/<key>.npy`` (numeric arrays, saved without pickle), or ``out/<call>/error.json``.
Whatever it writes is untrusted: the parent validates everything it reads back.
"""

import importlib.util
import json
import os
import random
import sys
import traceback

MAX_MSG = 600

# Bound now: student code may monkeypatch json/os/open; the driver keeps using these.
_dumps, _replace, _open = json.dumps, os.replace, open


def _short(exc: BaseException) -> dict:
    tb = traceback.extract_tb(exc.__traceback__)
    student_frames = [f for f in tb if f.filename.startswith("<cell ")]
    where = ""
    if student_frames:
        f = student_frames[-1]
        where = f"{f.filename[1:-1]}, line {f.lineno}, in {f.name}"
    try:
        message = str(exc)[:MAX_MSG]
    except Exception:  # noqa: BLE001 - a student exception whose __str__ fails
        message = "(the exception could not be shown)"
    return {
        "type": str(type(exc).__name__)[:100],
        "message": message,
        "where": where,
    }


def _write_json(path: str, obj) -> None:
    tmp = path + ".tmp"
    with _open(tmp, "w") as fh:
        fh.write(_dumps(obj, allow_nan=True))
    _replace(tmp, path)


def _flush() -> None:
    """Flush student output; a full log (RLIMIT_FSIZE) must not stop the driver."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001
            pass


def _limit_address_space(extra_bytes: int) -> None:
    """RLIMIT_AS = what the imports already mapped + the memory budget + 2 GiB of slack.

    RLIMIT_DATA (set by the parent) does not count shared anonymous mappings
    (``mmap.mmap(-1, n)``); an address-space cap set after the imports covers them without
    having to guess how much address space torch reserves at import time.
    """
    if extra_bytes <= 0:
        return
    try:
        import resource

        with _open("/proc/self/status") as fh:
            size = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:"))
        limit = size + extra_bytes + (2 << 30)  # + room for lazy imports and thread arenas
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except Exception:  # noqa: BLE001 - best effort (not Linux)
        pass


class _BlockGrader:
    """Meta-path finder refusing ``import autograder`` (the grader is not for student code)."""

    def find_spec(self, name, path=None, target=None):
        if name == "autograder" or name.startswith("autograder."):
            raise ImportError("the autograder package cannot be imported while grading")
        return None


def _seed(seed: int) -> None:
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except Exception:
        pass
    try:
        import torch

        torch.manual_seed(seed)
        torch.set_num_threads(1)
    except Exception:
        pass


def main(sandbox: str) -> None:
    os.chdir(sandbox)
    with open("request.json") as fh:
        request = json.load(fh)
    seed = int(request.get("seed", 0))
    _seed(seed)

    # the probes' shared helpers, importable as `probe_utils` (the sandbox folder is not on sys.path)
    spec = importlib.util.spec_from_file_location(
        "probe_utils", os.path.join(sandbox, "probe_utils.py"))
    sys.modules["probe_utils"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sys.modules["probe_utils"])
    spec = importlib.util.spec_from_file_location("_probes", os.path.join(sandbox, "probes.py"))
    probes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probes)

    import numpy as np

    sys.meta_path.insert(0, _BlockGrader())
    for name in [m for m in sys.modules if m == "autograder" or m.startswith("autograder.")]:
        del sys.modules[name]
    _limit_address_space(int(request.get("memory_bytes", 0)))

    # Student definitions, cell by cell: one failing cell does not stop the others.
    ns = {"__name__": "__student__", "__builtins__": __builtins__}
    cell_errors = []
    for index, source in request["cells"]:
        try:  # which cell runs now: the parent skips it if it kills the process
            with _open(os.path.join(sandbox, "out", "current_cell"), "w") as fh:
                fh.write(str(int(index)))
        except Exception:  # noqa: BLE001
            pass
        try:
            code = compile(source, f"<cell {index}>", "exec")
            exec(code, ns)  # noqa: S102 - this is the sandboxed child
        except BaseException as exc:  # SystemExit and KeyboardInterrupt included
            err = _short(exc)
            err["cell"] = index
            cell_errors.append(err)
    names = sorted(k for k in ns if isinstance(k, str))[:2000]
    # absolute paths from here on: student code may have changed the working directory
    _write_json(os.path.join(sandbox, "out", "cells.json"), {"errors": cell_errors, "names": names})

    for call in request["calls"]:
        cid = call["id"]
        try:
            os.chdir(sandbox)
        except OSError:
            pass
        folder = os.path.join(sandbox, "out", cid)
        os.makedirs(folder, exist_ok=True)
        inputs = {}
        for key in call.get("arrays", []):
            path = os.path.join(sandbox, "in", cid, key + ".npy")
            inputs[key] = np.load(path, allow_pickle=False)
        _seed(seed)
        try:
            fn = getattr(probes, call["probe"])
            result = fn(ns, inputs, **call.get("params", {}))
            if not isinstance(result, dict):
                raise TypeError("probe returned a non-dict")
            plain = {}
            for key, value in result.items():
                if isinstance(value, np.ndarray):
                    if value.dtype == object:
                        raise TypeError(f"output '{key}' is not numeric")
                    np.save(os.path.join(folder, f"{key}.npy"), value, allow_pickle=False)
                else:
                    plain[key] = value
            _write_json(os.path.join(folder, "result.json"), plain)
        except BaseException as exc:  # noqa: BLE001 - report anything, including SystemExit
            _write_json(os.path.join(folder, "error.json"), _short(exc))
        _flush()


if __name__ == "__main__":
    main(sys.argv[1])
    _flush()
    os._exit(0)
