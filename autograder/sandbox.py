"""Run untrusted student definitions in a limited child process; bring back plain data only.

Layers, strongest first (each one used when the platform allows it):

* a separate process in its own session, as an unprivileged user when the grader is root
  (``nobody`` or ``$AUTOGRADER_SANDBOX_USER``), in a fresh private folder;
* when root: new network namespace (no network at all) and a mount namespace that hides the
  grader's private paths (references, checks, master notebooks) behind empty tmpfs mounts and
  gives the child its own small ``/dev/shm``;
* rlimits: CPU seconds, data memory, file size, open files, process count, no core dumps;
  the driver adds an address-space cap after its imports (shared mappings escape
  RLIMIT_DATA); wall-clock timeout enforced by the parent; ``OMP_NUM_THREADS=1``; seeded RNGs;
* a cell that kills the process while the definitions run is skipped and the run restarted;
  a function that times out is not retried on its other checks;
* the parent is a child subreaper, so every descendant (a daemon that double-forks included)
  stays in its tree and is killed when a run ends;
* results come back only as ``result.json`` (size-capped) and ``.npy`` files loaded with
  ``allow_pickle=False``; symlinks and non-regular files are refused.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import pwd
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DRIVER = Path(__file__).with_name("_driver.py")
PROBE_UTILS = Path(__file__).with_name("labs") / "probe_utils.py"
MAX_JSON_BYTES = 1 << 20
MAX_NPY_BYTES = 64 << 20

_CLONE_NEWNS = 0x00020000
_CLONE_NEWNET = 0x40000000
_MS_REC = 16384
_MS_PRIVATE = 1 << 18
_MS_RDONLY = 1
_MS_NOSUID = 2
_MS_NODEV = 4
_PR_SET_CHILD_SUBREAPER = 36

_libc = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True)
class Limits:
    """Resource limits for one child run (seconds, bytes, counts)."""

    setup_s: float = 60.0  # wall-clock for start-up and the student's definitions
    call_s: float = 20.0  # wall-clock for one probe call
    wall_s: float = 300.0  # wall-clock for the whole child
    cpu_s: int = 300
    memory_bytes: int = 1536 << 20  # RLIMIT_DATA: heap + anonymous mappings
    file_bytes: int = 16 << 20
    nproc: int = 64
    nofile: int = 256


@dataclass
class Call:
    """One probe call: probe function name, numeric input arrays, JSON parameters."""

    id: str
    probe: str
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    # the one exercise this call grades: its child runs only that exercise's part of the
    # notebook, and every other exercise of the lab is the reference implementation there
    exercise: str = ""


@dataclass
class CallResult:
    """What came back for one call: plain values and arrays, or an error description."""

    values: dict = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    error: dict | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class RunReport:
    results: dict[str, CallResult]
    cell_errors: list[dict]
    isolation: list[str]
    stdout_tail: str
    defined: list[str] | None = None  # top-level names once the definitions ran (None: unknown)


def _become_subreaper() -> None:
    try:
        _libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except Exception:
        pass


def _descendants(root_pid: int) -> list[int]:
    """PIDs whose parent chain leads to ``root_pid`` (read from /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                data = fh.read()
            ppid = int(data[data.rfind(b")") + 2 :].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents[int(entry)] = ppid
    out = []
    for pid in parents:
        p, seen = pid, 0
        while p in parents and seen < 64:
            p = parents[p]
            seen += 1
            if p == root_pid:
                out.append(pid)
                break
    return out


def kill_descendants() -> int:
    """SIGKILL every descendant of this process, repeatedly until none is left; returns count."""
    killed = 0
    for _ in range(50):
        pids = _descendants(os.getpid())
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        # reap zombies re-parented to us
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
        time.sleep(0.02)
    return killed


def sandbox_user() -> pwd.struct_passwd | None:
    """The unprivileged account used when the grader runs as root (None otherwise)."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("AUTOGRADER_SANDBOX_USER", "nobody")
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise RuntimeError(
            f"the grader runs as root but the sandbox user {name!r} does not exist; create it "
            "(useradd --no-create-home --shell /usr/sbin/nologin sandbox) or set "
            "AUTOGRADER_SANDBOX_USER."
        ) from None


def _count_user_tasks(uid: int) -> int:
    n = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    n += len(os.listdir(f"/proc/{entry}/task"))
            except OSError:
                pass
    return n


def _preexec(limits: Limits, user, hide: list[str], nproc: int, status_fd: int):
    def fn() -> None:
        os.setsid()
        notes = []
        if user is not None:
            if _libc.unshare(_CLONE_NEWNET) == 0:
                notes.append("netns")
            if _libc.unshare(_CLONE_NEWNS) == 0:
                _libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None)
                # a private, small /dev/shm: files written there cannot fill the machine's RAM
                # and vanish with the run
                if os.path.isdir("/dev/shm") and _libc.mount(
                        b"tmpfs", b"/dev/shm", b"tmpfs", _MS_NOSUID | _MS_NODEV,
                        b"size=64m,mode=1777") == 0:
                    notes.append("private-shm")
                ok = 0
                for path in hide:
                    if os.path.isdir(path):
                        ok += _libc.mount(b"tmpfs", path.encode(), b"tmpfs", _MS_RDONLY,
                                          b"size=4k") == 0
                if ok:
                    notes.append("hidden-paths")
        for res, value in (
            (resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1)),
            (resource.RLIMIT_DATA, (limits.memory_bytes, limits.memory_bytes)),
            (resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes)),
            (resource.RLIMIT_NOFILE, (limits.nofile, limits.nofile)),
            (resource.RLIMIT_CORE, (0, 0)),
        ):
            resource.setrlimit(res, value)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        if user is not None:
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
            notes.append("unprivileged-user")
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        os.write(status_fd, (",".join(notes)).encode())
        os.close(status_fd)

    return fn


def _safe_read(path: Path, limit: int) -> bytes:
    """Read a regular file without following symlinks, at most ``limit`` bytes."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{path.name} is not a regular file")
        if st.st_size > limit:
            raise ValueError(f"{path.name} is larger than {limit} bytes")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise ValueError(f"{path.name} is larger than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _read_call(folder: Path) -> CallResult | None:
    """Parse one call's output folder; None when the child never finished it."""
    if not folder.is_dir() or folder.is_symlink():
        return None
    try:
        if (folder / "error.json").exists():
            err = json.loads(_safe_read(folder / "error.json", MAX_JSON_BYTES))
            if not isinstance(err, dict):
                raise ValueError("malformed error report")
            clean = {k: str(err.get(k, ""))[:600] for k in ("type", "message", "where")}
            if not clean["type"]:
                raise ValueError("malformed error report")
            return CallResult(error=clean)
        if not (folder / "result.json").exists():
            return None
        values = json.loads(_safe_read(folder / "result.json", MAX_JSON_BYTES))
        if not isinstance(values, dict):
            raise ValueError("result.json is not an object")
        arrays = {}
        import io

        for entry in sorted(folder.iterdir()):
            if entry.suffix == ".npy":
                data = _safe_read(entry, MAX_NPY_BYTES)
                arr = np.load(io.BytesIO(data), allow_pickle=False)
                if not isinstance(arr, np.ndarray) or arr.dtype == object:
                    raise ValueError(f"{entry.name} is not a numeric array")
                arrays[entry.stem] = arr
        return CallResult(values=values, arrays=arrays)
    except Exception as exc:  # anything malformed coming back is the submission's fault
        return CallResult(
            error={"type": "InvalidOutput", "message": f"unreadable result ({exc})", "where": ""}
        )


def _tail(path: Path, n: int = 2000) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - n))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def run_calls(
    cells: list[tuple[int, str]],
    calls: list[Call],
    probes_file: Path,
    *,
    limits: Limits = Limits(),
    seed: int = 0,
    hide: list[str] | None = None,
    max_restarts: int | None = None,
) -> RunReport:
    """Run ``calls`` against the student definitions in ``cells``; restart after a crash/timeout."""
    _become_subreaper()
    user = sandbox_user()
    results: dict[str, CallResult] = {}
    pending = list(calls)
    cell_errors: list[dict] = []
    skipped: list[dict] = []  # cells that killed the process while the definitions ran
    isolation: list[str] = []
    defined: list[str] | None = None
    tail = ""
    restarts = 0
    max_restarts = len(calls) + 1 if max_restarts is None else max_restarts
    while pending and restarts <= max_restarts:
        restarts += 1
        gone = {e["cell"] for e in skipped}
        live = [(i, s) for i, s in cells if i not in gone]
        report = _run_once(live, pending, probes_file, limits, seed, user, hide or [])
        cell_errors = report.cell_errors or cell_errors
        isolation = report.isolation or isolation
        defined = report.defined if report.defined is not None else defined
        tail = report.stdout_tail
        done = [c for c in pending if c.id in report.results]
        for c in done:
            results[c.id] = report.results[c.id]
        rest = [c for c in pending if c.id not in report.results]
        if rest and report.crash and report.crash.get("setup"):
            err = {k: v for k, v in report.crash.items() if k != "setup"}
            if report.crash_cell in {i for i, _ in live}:
                # one cell killed the process (os._exit, a loop in a class body...): run the
                # notebook again without it, so one cell does not zero everything
                why = err.get("message", "").split(" (while running the notebook's")[0]
                skipped.append({"cell": report.crash_cell, "type": err.get("type", "Crash"),
                                "message": why, "where": "", "skipped": True})
                restarts -= 1  # bounded by the number of cells, not by the calls
                continue
            for c in rest:
                results[c.id] = CallResult(error=err)
            rest = []
        if rest:
            # the first unfinished call is the one that killed the child: record it, go on
            culprit = rest[0]
            results[culprit.id] = CallResult(error=report.crash or {
                "type": "Crash", "message": "the process ended without a result", "where": ""})
            rest = rest[1:]
            if report.crash and report.crash.get("type") == "Timeout":
                # the same function would time out again on its other inputs: each retry
                # would cost a full call budget (and could exceed the platform's time limit)
                same = [c for c in rest if c.probe == culprit.probe]
                for c in same:
                    results[c.id] = CallResult(error=dict(report.crash, message=(
                        "not run: this function already timed out on an earlier check ("
                        + report.crash.get("message", "") + ")")))
                rest = [c for c in rest if c.probe != culprit.probe]
        pending = rest
    for c in pending:
        results[c.id] = CallResult(
            error={"type": "Crash", "message": "not run: too many crashes before it", "where": ""}
        )
    return RunReport(results, skipped + cell_errors, isolation, tail, defined)


@dataclass
class _Once:
    results: dict[str, CallResult]
    cell_errors: list[dict]
    isolation: list[str]
    stdout_tail: str
    crash: dict | None
    crash_cell: int | None = None  # the cell running when the process died during set-up
    defined: list[str] | None = None


def _watch(proc, box: Path, calls, limits: Limits, start: float) -> dict | None:
    """Wait for the child, enforcing the set-up, per-call and total wall-clock budgets."""
    out = box / "out"
    last_progress, done = None, -1
    while proc.poll() is None:
        now = time.monotonic()
        if now - start > limits.wall_s:
            return _timeout(f"the whole run took longer than {limits.wall_s:.0f} s")
        if last_progress is None:
            if (out / "cells.json").exists():
                last_progress = now
            elif now - start > limits.setup_s:
                return _timeout(f"imports and definitions took longer than {limits.setup_s:.0f} s")
        else:
            n = sum((out / c.id / "result.json").exists() or (out / c.id / "error.json").exists()
                    for c in calls)
            if n != done:
                done, last_progress = n, now
            elif now - last_progress > limits.call_s:
                return _timeout(f"one check took longer than {limits.call_s:.0f} s")
        time.sleep(0.05)
    return None


def _timeout(what: str) -> dict:
    return {"type": "Timeout", "message": f"stopped: {what} (an infinite loop, or far too slow?)",
            "where": ""}


def _within(path: Path, folder: Path) -> bool:
    """``path`` is ``folder`` or inside it (resolved)."""
    try:
        path.resolve().relative_to(Path(folder).resolve())
        return True
    except (ValueError, OSError):
        return False


def _run_once(cells, calls, probes_file, limits, seed, user, hide) -> _Once:
    box = Path(tempfile.mkdtemp(prefix="autograder-box-"))
    try:
        (box / "in").mkdir()
        (box / "out").mkdir()
        (box / "tmp").mkdir()
        shutil.copy(DRIVER, box / "_driver.py")
        shutil.copy(probes_file, box / "probes.py")
        shutil.copy(PROBE_UTILS, box / "probe_utils.py")
        request = {
            "seed": seed,
            "memory_bytes": limits.memory_bytes,
            "cells": [[i, s] for i, s in cells],
            "calls": [
                {"id": c.id, "probe": c.probe, "arrays": sorted(c.arrays), "params": c.params}
                for c in calls
            ],
        }
        (box / "request.json").write_text(json.dumps(request))
        for c in calls:
            (box / "in" / c.id).mkdir()
            for key, arr in c.arrays.items():
                np.save(box / "in" / c.id / f"{key}.npy", np.ascontiguousarray(arr),
                        allow_pickle=False)
        if user is not None:
            for p in [box, *box.rglob("*")]:
                os.chown(p, user.pw_uid, user.pw_gid)
        os.chmod(box, 0o700)
        # never hide what the child needs: its own folder, the interpreter, its packages
        # (labkit may be an editable install inside the repository) and the import path
        needed = [box, Path(sys.prefix), Path(sys.base_prefix), Path(np.__file__).parent,
                  *(Path(p) for p in sys.path if p)]
        spec = importlib.util.find_spec("labkit")
        if spec is not None and spec.origin:
            needed.append(Path(spec.origin).parent)
        hide = [str(Path(h).resolve()) for h in hide]
        hide = [h for h in hide if not any(_within(n, Path(h)) for n in needed)]
        nproc = limits.nproc + (0 if user is not None else _count_user_tasks(os.getuid()))
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(box),
            "TMPDIR": str(box / "tmp"),
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "PYTHONHASHSEED": str(seed),
            "PYTHONDONTWRITEBYTECODE": "1",
            "MPLBACKEND": "Agg",
            "LABKIT_SMOKE": "1",
            "CUDA_VISIBLE_DEVICES": "",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "LC_ALL": "C.UTF-8",
        }
        log = open(box / "log.txt", "wb")  # child output goes to a file capped by RLIMIT_FSIZE
        status_r, status_w = os.pipe()
        start = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-I", str(box / "_driver.py"), str(box)],
            cwd=box,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_preexec(limits, user, hide, nproc, status_w),
            pass_fds=(status_w,),
            close_fds=True,
        )
        os.close(status_w)
        log.close()
        crash = _watch(proc, box, calls, limits, start)
        rc = proc.poll()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        kill_descendants()
        proc.wait()
        elapsed = time.monotonic() - start
        with os.fdopen(status_r, "rb") as fh:
            isolation = [s for s in fh.read(256).decode(errors="replace").split(",") if s]
        if crash is None and rc != 0:
            if rc is not None and rc < 0:
                known = -rc in signal.Signals._value2member_map_
                sig = signal.Signals(-rc).name if known else str(-rc)
                hint = " (CPU time limit)" if sig == "SIGXCPU" else ""
                crash = {"type": "Killed", "message": f"the process was killed by {sig}{hint}",
                         "where": ""}
            else:
                crash = {
                    "type": "Exit",
                    "message": f"the process exited with code {rc} after {elapsed:.1f} s "
                    "(sys.exit/os._exit, or out of memory?)",
                    "where": "",
                }
        if crash is None and rc == 0 and not (box / "out" / "cells.json").exists():
            crash = {"type": "Exit", "message": "the process ended while running your definitions",
                     "where": ""}
        in_setup = not (box / "out" / "cells.json").exists()
        if crash is not None and in_setup:
            crash = dict(crash, message=crash["message"] + " (while running the notebook's "
                         "imports and definitions, before any check)", setup=True)
        crash_cell = None
        if crash is not None and in_setup:
            try:
                crash_cell = int(_safe_read(box / "out" / "current_cell", 32).decode())
            except Exception:
                crash_cell = None
        results = {}
        for c in calls:
            got = _read_call(box / "out" / c.id)
            if got is not None:
                results[c.id] = got
        cell_errors = []
        defined = None
        try:
            data = json.loads(_safe_read(box / "out" / "cells.json", MAX_JSON_BYTES))
            for e in data.get("errors", [])[:50]:
                cell_errors.append({k: str(e.get(k, ""))[:600]
                                    for k in ("cell", "type", "message", "where")})
            names = data.get("names")
            if isinstance(names, list):
                defined = [str(n)[:200] for n in names[:5000]]
        except Exception:
            pass
        return _Once(results, cell_errors, isolation, _tail(box / "log.txt"), crash, crash_cell,
                     defined)
    finally:
        kill_descendants()
        shutil.rmtree(box, ignore_errors=True)
