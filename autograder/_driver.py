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


def _short(exc: BaseException) -> dict:
    tb = traceback.extract_tb(exc.__traceback__)
    student_frames = [f for f in tb if f.filename.startswith("<cell ")]
    where = ""
    if student_frames:
        f = student_frames[-1]
        where = f"{f.filename[1:-1]}, line {f.lineno}, in {f.name}"
    return {
        "type": type(exc).__name__,
        "message": str(exc)[:MAX_MSG],
        "where": where,
    }


def _write_json(path: str, obj) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(obj, fh, allow_nan=True)
    os.replace(tmp, path)


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

    spec = importlib.util.spec_from_file_location("_probes", os.path.join(sandbox, "probes.py"))
    probes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probes)

    import numpy as np

    # Student definitions, cell by cell: one failing cell does not stop the others.
    ns = {"__name__": "__student__", "__builtins__": __builtins__}
    cell_errors = []
    for index, source in request["cells"]:
        try:
            code = compile(source, f"<cell {index}>", "exec")
            exec(code, ns)  # noqa: S102 - this is the sandboxed child
        except BaseException as exc:  # SystemExit and KeyboardInterrupt included
            err = _short(exc)
            err["cell"] = index
            cell_errors.append(err)
    _write_json("out/cells.json", {"errors": cell_errors})

    for call in request["calls"]:
        cid = call["id"]
        folder = os.path.join("out", cid)
        os.makedirs(folder, exist_ok=True)
        inputs = {}
        for key in call.get("arrays", []):
            inputs[key] = np.load(os.path.join("in", cid, key + ".npy"), allow_pickle=False)
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
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
