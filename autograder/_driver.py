"""Child-side driver: runs one exercise's part of a notebook, then the probe calls the parent sends.

Copied into a fresh box and run as ``python -I _driver.py BOX`` inside the jail (see
``autograder/sandbox.py``). It imports nothing from the grader. Protocol:

* ``request.json``: the seed, the reference statements (other exercises), the student's
  statements this exercise needs, names whose library versions must not be used;
* events, one JSON line each, on the file descriptor ``$AUTOGRADER_EVENT_FD``: ``start``/``stmt`` per statement,
  ``ready``, then ``done`` per call;
* calls, one JSON line each, on stdin; the call's arrays are in ``in/<call>/``; the raw outputs
  go to ``out/<call>/result.json`` (plain values, ``__arrays__`` lists the arrays) and
  ``out/<call>/<key>.npy`` (saved without pickle), or ``out/<call>/error.json``.

Nothing here is trusted: student code runs in this process and may change anything in it. The
parent reads each call's files as hostile data, the moment the call is done, before it sends
the next one, and computes every verdict itself.
"""

import importlib.util
import json
import os
import random
import sys
import traceback

MAX_MSG = 600

# Bound now: student code may monkeypatch json/os/open later.
_dumps, _loads, _replace, _open, _write = json.dumps, json.loads, os.replace, open, os.write
_EVENT_FD = int(os.environ.get("AUTOGRADER_EVENT_FD", "3"))


def _short(exc):
    tb = traceback.extract_tb(exc.__traceback__)
    student_frames = [f for f in tb if f.filename.startswith("<")]
    where = ""
    if student_frames:
        f = student_frames[-1]
        where = f"{f.filename[1:-1]}, line {f.lineno}, in {f.name}"
    try:
        message = str(exc)[:MAX_MSG]
    except Exception:  # noqa: BLE001 - a student exception whose __str__ fails
        message = "(the exception could not be shown)"
    try:
        name = str(type(exc).__name__)[:100]
    except Exception:  # noqa: BLE001
        name = "Exception"
    return {"type": name, "message": message, "where": where}


def _event(obj):
    try:
        _write(_EVENT_FD, (_dumps(obj, allow_nan=True) + "\n").encode("utf-8", "replace"))
    except Exception:  # noqa: BLE001 - the parent went away
        os._exit(0)


def _write_json(path, obj):
    tmp = path + ".tmp"
    with _open(tmp, "w") as fh:
        fh.write(_dumps(obj, allow_nan=True))
    _replace(tmp, path)


def _flush():
    """Flush student output; a full log (RLIMIT_FSIZE) must not stop the driver."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001
            pass


def _limit_address_space(extra_bytes):
    """RLIMIT_AS = what the imports already mapped + the memory budget + 2 GiB of slack."""
    if extra_bytes <= 0:
        return
    try:
        import resource

        with _open("/proc/self/status") as fh:
            size = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:"))
        limit = size + extra_bytes + (2 << 30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except Exception:  # noqa: BLE001 - best effort (not Linux)
        pass


class _Block:
    """Meta-path finder refusing some imports (the grader; libraries an exercise may not use)."""

    def __init__(self, names, why):
        self.names, self.why = tuple(names), why

    def find_spec(self, name, path=None, target=None):
        root = name.split(".")[0]
        if root in self.names or name in self.names:
            raise ImportError(self.why.format(name=name))
        return None


class ForbiddenCall(RuntimeError):
    """A library function the exercise asks the student to write themselves."""


def _forbid(names, exercise):
    """Replace the forbidden library functions by ones that raise ForbiddenCall, and refuse
    importing forbidden packages: a call through strings (getattr, __import__) fails too."""
    names = set(names)
    message = ("`{ex}` calls {what}, which this exercise asks you to implement yourself; the "
               "check gives no credit for it.")

    def raiser(what):
        def fn(*args, **kwargs):
            raise ForbiddenCall(message.format(ex=exercise, what=what))
        return fn

    try:  # load the labkit modules that hold forbidden names, so that they can be replaced
        import labkit

        subs = getattr(labkit, "_SUBMODULES", set())
        exports = getattr(labkit, "_EXPORTS", {})
        for name in names:
            module = name if name in subs else exports.get(name)
            if module:
                importlib.import_module(f"labkit.{module}")
    except Exception:  # noqa: BLE001 - labkit missing: nothing of it to replace
        pass
    packages = [n for n in names if n not in sys.modules and "." not in n]
    for mod_name, module in list(sys.modules.items()):
        if not mod_name.startswith("labkit") or module is None:
            continue
        whole = mod_name.split(".")[-1] in names
        for attr in list(vars(module)):
            if attr.startswith("_"):
                continue
            if attr in names or (whole and callable(getattr(module, attr, None))):
                try:
                    setattr(module, attr, raiser(f"{mod_name}.{attr}"))
                except Exception:  # noqa: BLE001
                    pass
    for name in names:
        if name in sys.modules and not name.startswith("labkit"):
            packages.append(name)
            del sys.modules[name]
    sys.meta_path.insert(0, _Block(packages, f"`{exercise}` may not use {{name}} (this exercise "
                                   "asks you to implement it yourself)"))


def _seed(seed):
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except Exception:  # noqa: BLE001
        pass
    try:
        import torch

        torch.manual_seed(seed)
        torch.set_num_threads(1)
    except Exception:  # noqa: BLE001
        pass


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _run_statements(statements, ns, report):
    for index, label, source in statements:
        if report:
            _event({"ev": "start", "i": index})
        try:
            exec(compile(source, f"<{label}>", "exec"), ns)  # noqa: S102 - the jailed child
            if report:
                _event({"ev": "stmt", "i": index})
        except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt too
            if report:
                _event({"ev": "stmt", "i": index, "error": _short(exc)})
            else:
                raise


class _Probes:
    """A probe by name: the lab's own first, then labkit's generic ones (``call``, ``module``)."""

    def __init__(self, *modules):  # resolved now, before any student code runs
        self.table = {}
        for module in reversed(modules):
            self.table.update({n: f for n, f in vars(module).items()
                               if callable(f) and not n.startswith("_")})

    def __getattr__(self, name):
        try:
            return self.table[name]
        except KeyError:
            raise AttributeError(f"no probe named {name!r}") from None


def _readline(fd):
    """One line from ``fd``, read byte by byte: nothing beyond it is consumed (the zygote
    and its children share stdin)."""
    data = bytearray()
    while True:
        ch = os.read(fd, 1)
        if not ch:
            return None if not data else bytes(data)
        if ch == b"\n":
            return bytes(data)
        data += ch


def exercise(box, folder, probes, np):
    """A forked child: one exercise's statements, then its calls until stdin closes."""
    os.chdir(folder)
    if os.environ.get("AUTOGRADER_JAILED") != "1":  # outside bubblewrap: temp files here
        import tempfile

        tmp = os.path.join(folder, "tmp")
        os.makedirs(tmp, exist_ok=True)
        os.environ["TMPDIR"] = tmp
        tempfile.tempdir = None
    os.environ["HOME"] = folder
    with _open(os.path.join(folder, "request.json")) as fh:
        request = _loads(fh.read())
    seed = int(request.get("seed", 0))
    _seed(seed)
    _save = np.save
    # the reference implementation of every other exercise, in its own namespace
    ref_ns = {"__name__": "__reference__", "__builtins__": __builtins__}
    _run_statements(request.get("reference", []), ref_ns, report=False)
    partners = {n: ref_ns[n] for n in request.get("partners", []) if n in ref_ns}
    if request.get("forbidden"):
        _forbid(request["forbidden"], request.get("exercise", "this exercise"))
    _limit_address_space(int(request.get("memory_bytes", 0)))

    ns = {"__name__": "__main__", "__builtins__": __builtins__}
    ns.update(partners)
    _run_statements(request["statements"], ns, report=True)
    ns.update(partners)
    own = request.get("exercise")
    if own in ns:  # the other exercises' references use the student's version of this one
        ref_ns[own] = ns[own]
    _flush()
    _event({"ev": "ready"})

    while True:
        line = _readline(0)
        if line is None:
            break
        call = _loads(line)
        if call.get("end"):
            break
        cid = str(call["id"])
        try:
            os.chdir(folder)
        except OSError:
            pass
        out = os.path.join(folder, "out", cid)
        os.makedirs(out, exist_ok=True)
        _seed(seed)
        try:
            inputs = {key: np.load(os.path.join(folder, "in", cid, key + ".npy"),
                                   allow_pickle=False) for key in call.get("arrays", [])}
            result = getattr(probes, call["probe"])(ns, inputs, **call.get("params", {}))
            if not isinstance(result, dict):
                raise TypeError("probe returned a non-dict")
            plain, arrays = {}, []
            for key, value in result.items():
                if isinstance(value, np.ndarray):
                    if value.dtype == object:
                        raise TypeError(f"output '{key}' is not numeric")
                    _save(os.path.join(out, f"{key}.npy"), value, allow_pickle=False)
                    arrays.append(key)
                else:
                    plain[key] = value
            plain["__arrays__"] = arrays
            _write_json(os.path.join(out, "result.json"), plain)
        except BaseException as exc:  # noqa: BLE001 - report anything, including SystemExit
            _write_json(os.path.join(out, "error.json"), _short(exc))
        _flush()
        _event({"ev": "done", "call": cid})


def _wipe():
    """Empty the jail's private temp folders (the tmpfs mounts the parent lists in
    ``$AUTOGRADER_PRIVATE_TMP``; never a folder of the machine's)."""
    import shutil

    keep = [k for k in os.environ.get("AUTOGRADER_KEEP", "").split(":") if k]
    for top in [t for t in os.environ.get("AUTOGRADER_PRIVATE_TMP", "").split(":") if t]:
        try:
            entries = os.listdir(top)
        except OSError:
            continue
        for entry in entries:
            path = os.path.join(top, entry)
            if any(k == path or k.startswith(path + "/") for k in keep):
                continue  # holds the runtime, bound back read-only (a checkout in /tmp)
            try:
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.remove(path)
            except OSError:
                pass


def main(box):
    """The zygote: trusted imports once, then one forked child per exercise on request."""
    os.chdir(box)
    _seed(0)
    # the generic probes (labkit's, imported before any student code) and the lab's own
    generic = importlib.import_module("labkit.checking.probe_utils")
    probes = _load("_probes", os.path.join(box, "probes.py"))
    probes = _Probes(probes, generic)
    import numpy as np

    # the modules the reference solution imports (trusted, installed packages): loaded once
    # here instead of once per exercise
    try:
        with _open(os.path.join(box, "preload.json")) as fh:
            preload = _loads(fh.read())
    except (OSError, ValueError):
        preload = []
    for name in preload:
        try:
            importlib.import_module(str(name))
        except BaseException:  # noqa: BLE001 - a missing optional package: the child says so
            pass
    sys.meta_path.insert(0, _Block(["autograder"], "the autograder package cannot be imported "
                                   "while grading"))
    for name in [m for m in sys.modules if m == "autograder" or m.startswith("autograder.")]:
        del sys.modules[name]
    try:  # children may not ptrace the zygote or read its memory (same user)
        import ctypes

        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except Exception:  # noqa: BLE001
        pass
    _flush()
    _event({"ev": "zready", "pid": os.getpid()})
    while True:
        line = _readline(0)
        if line is None:
            return
        command = _loads(line)
        if command.get("wipe"):  # a new submission: nothing of the last one stays
            _wipe()
            _event({"ev": "wiped"})
            continue
        name = os.path.basename(str(command.get("fork", "")))
        if not name:  # a line a killed child left unread: not a command
            continue
        folder = os.path.join(box, name)
        _wipe()  # nothing one exercise's child left in the temp folders reaches the next
        pid = os.fork()
        if pid == 0:
            try:
                exercise(box, folder, probes, np)
            except BaseException as exc:  # noqa: BLE001 - the set-up itself failed
                _event({"ev": "fatal", "error": _short(exc)})
            _flush()
            os._exit(0)
        _event({"ev": "forked", "pid": pid})
        _, status = os.waitpid(pid, 0)
        _event({"ev": "exited", "status": status})


if __name__ == "__main__":
    main(sys.argv[1])
    _flush()
    os._exit(0)
