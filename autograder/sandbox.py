"""Run one exercise's part of a submission in a jailed child; bring back raw outputs only.

The jail, strongest first (``jail_level()`` says which one this machine reaches):

* **bubblewrap** (``bwrap``, a maintained tool made for this): an allow-list file system that
  shows only the Python runtime and its packages (read-only), the probe files and the box
  folder; a private, size-limited ``/tmp`` and ``/dev/shm``; new PID, network, IPC, UTS and user
  namespaces; no capabilities; dies with the grader. It runs as an unprivileged user when the
  grader is root.
* **fallback** where namespaces are unavailable (an unprivileged container): the unprivileged
  user, a private temp folder, and (as root) a network namespace and empty mounts over the
  grader's private folders; the references must then be unreadable to that user (the Gradescope
  ``run_autograder`` makes them so).

Always: rlimits (CPU, data, address space after imports, file size, open files, processes);
a memory cgroup where the grader can make one (it also counts memfd and tmpfs pages);
``OMP_NUM_THREADS=1``; seeded RNGs; the grader is a child subreaper and kills every descendant
when a job ends; wall-clock limits for the set-up and for each call, capped by the submission's
deadline.

Protocol: the child runs the exercise's statements, says ``ready``, then gets one call at a
time on stdin. After each ``done`` the parent stops the child's processes, reads that call's
files as hostile data (only the files it expects, regular files opened without following links
or blocking, size-capped, bounded JSON depth), and only then sends the next call: a child never
sees a later (hidden) call's inputs before an earlier call's outputs are in the parent's hands.
"""

from __future__ import annotations

import ctypes
import importlib.util
import io
import json
import os
import pwd
import re
import resource
import secrets
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from labkit.checking.spec import CallResult  # noqa: F401 - part of this module's API

DRIVER = Path(__file__).with_name("_driver.py")
MAX_JSON_BYTES = 1 << 20
MAX_NPY_BYTES = 64 << 20
MAX_CALL_BYTES = 128 << 20
MAX_ARRAYS = 64
MAX_JSON_DEPTH = 32
MAX_EVENT_BYTES = 64 << 10
_KEY_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,80}$")
JAIL_BOX = "/box"  # where the box appears inside bubblewrap

_CLONE_NEWNS = 0x00020000
_CLONE_NEWNET = 0x40000000
_MS_REC = 16384
_MS_PRIVATE = 1 << 18
_MS_RDONLY = 1
_MS_NOSUID = 2
_MS_NODEV = 4
_MS_REMOUNT = 32
_MS_BIND = 4096
_PR_SET_CHILD_SUBREAPER = 36

_libc = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True)
class Limits:
    """Resource limits for one child (seconds, bytes, counts)."""

    setup_s: float = 60.0  # wall-clock for start-up and the exercise's statements
    call_s: float = 20.0  # wall-clock for one probe call
    cpu_s: int = 300
    memory_bytes: int = 1536 << 20  # RLIMIT_DATA, and the cgroup limit with some room
    file_bytes: int = 16 << 20
    tmp_bytes: int = 64 << 20  # private /tmp and /dev/shm (tmpfs) each
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
class Job:
    """One child: an exercise's statements, the references of the others, its calls in order."""

    exercise: str
    statements: list[tuple[int, str, str]]  # (index, label, source) of the student's notebook
    calls: list[Call]
    reference: list[tuple[int, str, str]] = field(default_factory=list)  # other exercises
    partners: list[str] = field(default_factory=list)  # names taken from the reference
    forbidden: list[str] = field(default_factory=list)


@dataclass
class JobReport:
    results: dict[str, CallResult]
    statement_errors: dict[int, dict]  # statement index -> error (type, message, where)
    isolation: str
    log_tail: str = ""


# ----------------------------------------------------------------------------- processes


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
            ppid = int(data[data.rfind(b")") + 2:].split()[1])
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


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def kill_descendants() -> int:
    """SIGKILL every descendant of this process, repeatedly until none is left; returns count."""
    killed = 0
    for _ in range(50):
        pids = _descendants(os.getpid())
        if not pids:
            break
        _signal_all(pids, signal.SIGKILL)
        killed += len(pids)
        while True:  # reap zombies re-parented to us
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


# ----------------------------------------------------------------------------- jail


def _bwrap() -> str | None:
    if os.environ.get("AUTOGRADER_JAIL", "").lower() in {"fallback", "none", "off"}:
        return None
    return shutil.which("bwrap", path="/usr/bin:/bin:/usr/local/bin:" + os.environ.get("PATH", ""))


@cache
def _bwrap_works(bwrap: str, uid: int | None) -> bool:
    """Whether bubblewrap can create its namespaces here (it cannot in many containers)."""
    user = sandbox_user()

    def drop() -> None:
        if user is not None:
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)

    try:
        proc = subprocess.run(
            [bwrap, *_bwrap_base(Path("/nonexistent"), 1 << 20), "--", sys.executable, "-I",
             "-c", "pass"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, timeout=30, preexec_fn=drop)
        return proc.returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def jail_level() -> str:
    """``"bubblewrap"`` or ``"fallback"``: the isolation that grading reaches on this machine."""
    bwrap = _bwrap()
    user = sandbox_user()
    if bwrap and _bwrap_works(bwrap, user.pw_uid if user else None):
        return "bubblewrap"
    return "fallback"


def _runtime_paths() -> list[Path]:
    """What the child must see, read-only: the interpreter, its packages, labkit's folder."""
    from autograder.config import REPO_ROOT

    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve().parent,
             Path(np.__file__).resolve().parent.parent}
    for p in sys.path:
        if p and Path(p).is_dir() and ("site-packages" in p or "dist-packages" in p):
            paths.add(Path(p))
    spec = importlib.util.find_spec("labkit")
    if spec is not None and spec.origin:
        paths.add(Path(spec.origin).resolve().parent)
    out = []
    for p in sorted(paths):
        p = p.resolve() if p.exists() else p
        # never the repository (or a folder above it): its masters, .git and dist are private
        if p == REPO_ROOT or REPO_ROOT.is_relative_to(p) and p not in (Path("/usr"),):
            continue
        if p.exists():
            out.append(p)
    return out


def _bwrap_base(box: Path, tmp_bytes: int) -> list[str]:
    args = ["--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--hostname", "sandbox", "--proc", "/proc", "--dev", "/dev",
            "--size", str(tmp_bytes), "--tmpfs", "/tmp",
            "--size", str(tmp_bytes), "--tmpfs", "/dev/shm"]
    for top in ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / top
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    for etc in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime", "/etc/passwd",
                "/etc/group", "/etc/nsswitch.conf"):
        if os.path.exists(etc):
            args += ["--ro-bind", etc, etc]
    for p in _runtime_paths():
        if not str(p).startswith("/usr/"):
            args += ["--ro-bind", str(p), str(p)]
    # the hidden checks (an installed autograder, as on Gradescope): an empty folder in the jail
    labs = Path(__file__).resolve().with_name("labs")
    if any(labs.is_relative_to(p) for p in _runtime_paths()):
        args += ["--tmpfs", str(labs), "--remount-ro", str(labs)]
    if box.exists():  # at a fixed place outside /tmp, which the zygote empties
        args += ["--bind", str(box), JAIL_BOX, "--chdir", JAIL_BOX]
    return args


class _Cgroup:
    """A memory (and pids) cgroup for one child, where the grader may create one (v1 or v2).
    Counts what RLIMIT_AS misses: memfd, tmpfs and shared memory pages."""

    def __init__(self, memory_bytes: int, nproc: int):
        self.dirs: list[Path] = []
        if os.environ.get("AUTOGRADER_CGROUP", "1") == "0":
            return
        name = f"autograder-{os.getpid()}-{time.monotonic_ns()}"
        try:
            lines = Path("/proc/self/cgroup").read_text().splitlines()
        except OSError:
            return
        for line in lines:
            _, controllers, path = line.split(":", 2)
            for ctrl, files in (("memory", {"memory.limit_in_bytes": memory_bytes,
                                            "memory.memsw.limit_in_bytes": memory_bytes}),
                                ("pids", {"pids.max": nproc})):
                if ctrl in controllers.split(","):
                    self._make(Path("/sys/fs/cgroup") / ctrl / path.lstrip("/") / name, files)
            if controllers == "" and Path("/sys/fs/cgroup/cgroup.controllers").exists():
                self._make(Path("/sys/fs/cgroup") / path.lstrip("/") / name,
                           {"memory.max": memory_bytes, "memory.swap.max": 0, "pids.max": nproc})

    def _make(self, d: Path, files: dict) -> None:
        try:
            d.mkdir()
        except OSError:
            return
        ok = False
        for fname, value in files.items():
            try:
                (d / fname).write_text(str(value))
                ok = True
            except OSError:
                pass
        if ok:
            self.dirs.append(d)
        else:
            try:
                d.rmdir()
            except OSError:
                pass

    @property
    def active(self) -> bool:
        """A memory limit is in force (not only a pids one)."""
        return any((d / f).exists() for d in self.dirs
                   for f in ("memory.limit_in_bytes", "memory.max"))

    def join(self) -> None:
        """Called in the child before exec: move this process into the cgroup(s)."""
        for d in self.dirs:
            try:
                with open(d / "cgroup.procs", "w") as fh:
                    fh.write("0")
            except OSError:
                pass

    def _counts(self) -> list[int]:
        out = []
        for d in self.dirs:
            for fname, pattern in (("memory.failcnt", r"^(\d+)"),
                                   ("memory.events", r"oom_kill (\d+)")):
                try:
                    m = re.search(pattern, (d / fname).read_text())
                except OSError:
                    continue
                out.append(int(m.group(1)) if m else 0)
        return out

    def rebase(self) -> None:
        """Forget the out-of-memory events so far (a new submission starts)."""
        self.base = self._counts()

    def oom(self) -> bool:
        base = getattr(self, "base", None) or [0] * len(self._counts())
        return any(now > before for now, before in zip(self._counts(), base))

    def close(self) -> None:
        for d in self.dirs:
            for _ in range(50):
                try:
                    pids = [int(p) for p in (d / "cgroup.procs").read_text().split()]
                except OSError:
                    pids = []
                _signal_all(pids, signal.SIGKILL)
                try:
                    d.rmdir()
                    break
                except OSError:
                    time.sleep(0.02)


_AUDIT_ARCH = {"x86_64": (0xC000003E, 319), "aarch64": (0xC00000B7, 279)}


def _seccomp_no_memfd() -> bool:
    """Refuse ``memfd_create`` (EPERM) in this process and its children: anonymous files that
    RLIMIT_AS does not count, used when no memory cgroup can count them. A seven-instruction
    classic BPF filter (arch check, x32 ABI refused on x86_64); False where unsupported."""
    import platform
    import struct

    arch = _AUDIT_ARCH.get(platform.machine())
    if arch is None:
        return False
    audit, nr = arch
    ld, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    allow, deny = 0x7FFF0000, 0x00050000 | 1  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | EPERM
    prog = [(ld, 0, 0, 4), (jeq, 0, 3, audit), (ld, 0, 0, 0), (jge, 2, 0, 0x40000000),
            (jeq, 1, 0, nr), (ret, 0, 0, allow), (ret, 0, 0, deny)]
    raw = b"".join(struct.pack("HBBI", *ins) for ins in prog)
    buf = ctypes.create_string_buffer(raw)

    class _Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = _Prog(len(prog), ctypes.cast(buf, ctypes.c_void_p))
    if _libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        return False
    return _libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) == 0  # PR_SET_SECCOMP, FILTER


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


_TMP_DIRS = ("/tmp", "/var/tmp", "/dev/shm")


def _inside(path: Path, folder: Path) -> bool:
    try:
        Path(path).resolve().relative_to(folder.resolve())
        return True
    except (ValueError, OSError):
        return False


def _preexec(limits: Limits, user, cgroup: _Cgroup, fallback: bool, hide: list[str]):
    # RLIMIT_NPROC counts every task of the user: leave room for other graders' children
    nproc = limits.nproc + (_count_user_tasks(user.pw_uid) if user is not None else 0)
    runtime = [str(p) for p in _runtime_paths()] if fallback and user is not None else []

    def fn() -> None:
        os.setsid()
        cgroup.join()
        if fallback and user is not None:
            _libc.unshare(_CLONE_NEWNET)
            if _libc.unshare(_CLONE_NEWNS) == 0:
                _libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None)
                # private, size-limited temp folders (the box lives elsewhere, in /run); the
                # runtime the child needs inside one (a checkout in /tmp) is bound back, read-only
                for tmp in _TMP_DIRS:
                    if not os.path.isdir(tmp):
                        continue
                    inner = [(p, os.open(p, os.O_PATH | os.O_DIRECTORY)) for p in runtime
                             if _inside(Path(p), Path(tmp))]
                    if _libc.mount(b"tmpfs", tmp.encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV,
                                   f"size={limits.tmp_bytes},mode=1777".encode()) == 0:
                        for p, fd in inner:
                            os.makedirs(p, exist_ok=True)
                            _libc.mount(f"/proc/self/fd/{fd}".encode(), p.encode(), None,
                                        _MS_BIND | _MS_REC, None)
                            _libc.mount(None, p.encode(), None,
                                        _MS_BIND | _MS_REMOUNT | _MS_RDONLY, None)
                    for _, fd in inner:
                        os.close(fd)
                for path in hide:
                    if os.path.isdir(path):
                        _libc.mount(b"tmpfs", path.encode(), b"tmpfs", _MS_RDONLY, b"size=4k")
        for res, value in (
            (resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1)),
            (resource.RLIMIT_DATA, (limits.memory_bytes, limits.memory_bytes)),
            (resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes)),
            (resource.RLIMIT_NOFILE, (limits.nofile, limits.nofile)),
            (resource.RLIMIT_CORE, (0, 0)),
        ):
            resource.setrlimit(res, value)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        if not cgroup.active:
            _seccomp_no_memfd()
        if user is not None:
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))

    return fn


# ----------------------------------------------------------------------------- hostile files


def _open_regular(path: Path) -> int:
    """An fd on a regular file, opened without following links or blocking (FIFOs, devices)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise ValueError(f"{path.name} is not a regular file")
    return fd


def safe_read(path: Path, limit: int) -> bytes:
    """Read a regular file without following symlinks or blocking, at most ``limit`` bytes."""
    fd = _open_regular(path)
    try:
        if os.fstat(fd).st_size > limit:
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


def _depth_ok(obj, limit: int = MAX_JSON_DEPTH) -> bool:
    stack = [(obj, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return True


def load_json(data: bytes):
    """Parse untrusted JSON: bounded size (by the caller) and depth; raises ValueError."""
    try:
        obj = json.loads(data.decode("utf-8", "replace"))
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if not _depth_ok(obj):
        raise ValueError("JSON nested too deeply")
    return obj


def _folder_ok(folder: Path) -> bool:
    try:
        st = os.lstat(folder)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode)


def read_call(folder: Path) -> CallResult | None:
    """Parse one call's output folder; None when the child never finished it."""
    if not _folder_ok(folder):
        return None
    try:
        try:
            data = safe_read(folder / "error.json", MAX_JSON_BYTES)
        except FileNotFoundError:
            data = None
        if data is not None:
            err = load_json(data)
            if not isinstance(err, dict):
                raise ValueError("malformed error report")
            clean = {k: str(err.get(k, ""))[:600] for k in ("type", "message", "where")}
            if not clean["type"]:
                raise ValueError("malformed error report")
            return CallResult(error=clean)
        try:
            data = safe_read(folder / "result.json", MAX_JSON_BYTES)
        except FileNotFoundError:
            return None
        values = load_json(data)
        if not isinstance(values, dict):
            raise ValueError("result.json is not an object")
        keys = values.pop("__arrays__", [])
        if not isinstance(keys, list) or len(keys) > MAX_ARRAYS:
            raise ValueError("too many arrays")
        arrays, total = {}, 0
        for key in keys:
            if not isinstance(key, str) or not _KEY_RE.match(key):
                raise ValueError("bad array name")
            raw = safe_read(folder / f"{key}.npy", MAX_NPY_BYTES)
            total += len(raw)
            if total > MAX_CALL_BYTES:
                raise ValueError(f"the arrays are larger than {MAX_CALL_BYTES >> 20} MB in all")
            arr = np.load(io.BytesIO(raw), allow_pickle=False)
            if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biufc":
                raise ValueError(f"{key}.npy is not a numeric array")
            arrays[key] = arr
        return CallResult(values=values, arrays=arrays)
    except Exception as exc:  # anything malformed coming back is the submission's fault
        return CallResult(
            error={"type": "InvalidOutput", "message": f"unreadable result ({exc})", "where": ""}
        )


def _tail(path: Path, n: int = 2000) -> str:
    try:
        fd = _open_regular(path)
    except (OSError, ValueError):
        return ""
    try:
        size = os.fstat(fd).st_size
        os.lseek(fd, max(0, size - n), os.SEEK_SET)
        return os.read(fd, n).decode("utf-8", "replace")
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------- running


def _timeout(what: str) -> dict:
    return {"type": "Timeout", "message": f"stopped: {what} (an infinite loop, or far too slow?)",
            "where": ""}


class _Events:
    """Line-oriented reader of the child's event pipe, with deadlines (hostile input)."""

    def __init__(self, fd: int):
        self.fd, self.buf = fd, b""

    def drain(self) -> None:
        """Forget everything written so far (stale events of a dead child)."""
        self.buf = b""
        while select.select([self.fd], [], [], 0)[0]:
            if not os.read(self.fd, 1 << 16):
                break

    def next(self, deadline: float) -> dict | None:
        """The next event, ``None`` at the deadline; raises EOFError when the child is gone."""
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.5))
            if not ready:
                continue
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                raise EOFError
            self.buf += chunk
            if len(self.buf) > MAX_EVENT_BYTES and b"\n" not in self.buf:
                raise EOFError
        line, self.buf = self.buf.split(b"\n", 1)
        try:
            ev = load_json(line[:MAX_EVENT_BYTES])
        except ValueError:
            return {}
        return ev if isinstance(ev, dict) else {}


def _env(box: Path, seed: int, jailed: bool, private_tmp: list[str] | None = None) -> dict:
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(box),
        "TMPDIR": "/tmp",  # the child points it at its exercise folder outside bubblewrap
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "PYTHONHASHSEED": str(seed),
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
        "LABKIT_SMOKE": "1",
        "LABKIT_OFFLINE": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "LC_ALL": "C.UTF-8",
        "AUTOGRADER_JAILED": "1" if jailed else "0",
        # the temp folders that are the jail's own (bubblewrap, or the root fallback's mount
        # namespace): the zygote empties them before every exercise
        "AUTOGRADER_PRIVATE_TMP": ":".join(private_tmp or []),
    }


def _box_root(jailed: bool, user) -> str | None:
    """Where boxes live: the temp folder, except in the root fallback, which mounts private
    temp folders over /tmp, /var/tmp and /dev/shm (the box must stay visible: /run)."""
    if jailed or user is None or not os.path.isdir("/run") or not os.access("/run", os.W_OK):
        return None
    root = Path("/run/autograder")
    root.mkdir(mode=0o711, exist_ok=True)
    return str(root)


def _ns_pid(host_pid: int) -> int | None:
    """The innermost PID of a process (its PID inside the jail's PID namespace)."""
    try:
        for line in Path(f"/proc/{host_pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    except (OSError, ValueError, IndexError):
        pass
    return None


class Session:
    """One jail and one zygote for one submission: the zygote imports torch and the probes
    once (trusted code only), then forks a fresh child per exercise (and per restart). The
    zygote is not dumpable, so its children cannot ptrace it or read its memory; between two
    exercises every process of the jail but the zygote is killed."""

    def __init__(self, probes_file: Path, *, limits: Limits = Limits(), seed: int = 0,
                 deadline: float | None = None, hide: list[str] | None = None,
                 preload: list[str] | None = None):
        _become_subreaper()
        self.probes_file, self.limits, self.seed = probes_file, limits, seed
        self.deadline = deadline if deadline is not None else time.monotonic() + 3600
        self.hide = hide or []
        self.preload = list(preload or [])  # trusted modules the zygote imports at start
        self.user = sandbox_user()
        bwrap = _bwrap()
        self.jailed = bool(bwrap) and _bwrap_works(bwrap, self.user.pw_uid if self.user else None)
        self.bwrap = bwrap
        self.proc: subprocess.Popen | None = None
        self.events: _Events | None = None
        self.zygote: int | None = None  # host PID
        self.keep: set[int] = set()  # bwrap's processes and the zygote
        self.cgroup: _Cgroup | None = None
        self.outer: Path | None = None
        self.box: Path | None = None
        self.count = 0
        self.isolation = ""

    # ------------------------------------------------------------------ life cycle

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self) -> dict | None:
        """Start the jail and the zygote; a crash description when that fails."""
        self.close()
        limits = self.limits
        # a root-owned folder nobody can list, holding a box with an unguessable name: in the
        # fallback, another submission's child (same user) cannot find this one's files
        self.outer = Path(tempfile.mkdtemp(prefix="autograder-",
                                           dir=_box_root(self.jailed, self.user)))
        os.chmod(self.outer, 0o711)
        self.box = box = self.outer / secrets.token_hex(16)
        box.mkdir()
        shutil.copy(DRIVER, box / "_driver.py")
        shutil.copy(self.probes_file, box / "probes.py")
        (box / "preload.json").write_text(json.dumps(self.preload))
        # the box itself stays root's (read-only to the child: nothing persists there from one
        # exercise to the next); each exercise gets a folder of its own, owned by the child
        os.chmod(box, 0o755)
        for f in box.iterdir():
            os.chmod(f, 0o644)
        self.cgroup = _Cgroup(limits.memory_bytes + 2 * limits.tmp_bytes + (256 << 20),
                              limits.nproc)
        cmd = [sys.executable, "-I", str(box / "_driver.py"), str(box)]
        if self.jailed:
            cmd = [self.bwrap, *_bwrap_base(box, limits.tmp_bytes), "--", sys.executable, "-I",
                   f"{JAIL_BOX}/_driver.py", JAIL_BOX]
            self.isolation = ("bubblewrap (allow-list file system; new PID, network, IPC, user "
                              "namespaces; private /tmp and /dev/shm)")
        else:
            self.isolation = "fallback (no namespaces for bubblewrap: " + (
                "unprivileged user, network namespace, private temp folders, private folders "
                "hidden)" if self.user is not None else "same user as the grader, rlimits only)")
        self.isolation += (" + memory cgroup" if self.cgroup.active
                           else " + seccomp: no memfd_create")
        ev_r, ev_w = os.pipe()
        private = list(_TMP_DIRS) if self.jailed or self.user is not None else []
        env = dict(_env(box, self.seed, self.jailed, private), AUTOGRADER_EVENT_FD=str(ev_w),
                   AUTOGRADER_KEEP=":".join(str(p) for p in _runtime_paths()))
        log = open(box / "log.txt", "wb")
        try:
            self.proc = subprocess.Popen(
                cmd, cwd=box, env=env, stdin=subprocess.PIPE, stdout=log,
                stderr=subprocess.STDOUT, pass_fds=(ev_w,), close_fds=True,
                preexec_fn=_preexec(limits, self.user, self.cgroup, not self.jailed, self.hide))
        finally:
            os.close(ev_w)
            log.close()
        self.events = _Events(ev_r)
        end = min(time.monotonic() + limits.setup_s, self.deadline)
        try:
            ev = self.events.next(end)
            while ev is not None and ev.get("ev") != "zready":
                ev = self.events.next(end)
        except EOFError:
            ev = None
            return {"type": "Crash", "where": "", "message": "the grading process could not "
                    "start: " + _tail(box / "log.txt", 400)}
        if ev is None:
            return _timeout("starting the grading process took too long")
        ns_pid = _int(ev.get("pid"))
        self._find_zygote(ns_pid)
        return None

    def _find_zygote(self, ns_pid: int | None) -> None:
        assert self.proc is not None
        self.keep = {self.proc.pid}
        if not self.jailed:
            self.zygote = self.proc.pid
            return
        for _ in range(100):
            for pid in _descendants(self.proc.pid):
                if _ns_pid(pid) == ns_pid:
                    self.zygote = pid
            if self.zygote:
                break
            time.sleep(0.01)
        # bwrap's own processes: the ancestors of the zygote below the grader
        parents = _parents()
        p = self.zygote
        while p and p != os.getpid():
            self.keep.add(p)
            p = parents.get(p)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and self.events is not None

    def close(self) -> None:
        if self.proc is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            if self.proc.poll() is None:
                self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        kill_descendants()
        if self.events is not None:
            os.close(self.events.fd)
        if self.cgroup is not None:
            self.cgroup.close()
        if self.outer is not None:
            shutil.rmtree(self.outer, ignore_errors=True)
        self.proc = self.events = self.cgroup = self.outer = self.box = None
        self.zygote, self.keep = None, set()

    def _children(self) -> list[int]:
        """Every process of the jail but bwrap's and the zygote."""
        if self.proc is None:
            return []
        return [p for p in _descendants(os.getpid()) if p not in self.keep]

    def _kill_children(self) -> None:
        for _ in range(50):
            pids = self._children()
            if not pids:
                return
            _signal_all(pids, signal.SIGKILL)
            time.sleep(0.02)

    def new_submission(self, deadline: float) -> None:
        """Start grading another submission in this jail (a warm batch worker): every child
        process is killed and the jail's temp folders are emptied; outside bubblewrap the
        jail is replaced."""
        self.deadline = deadline
        if not self.alive():
            return
        self._kill_children()
        if not self.jailed:
            self.close()
            return
        try:
            time.sleep(0.01)
            self.events.drain()
            self._send({"wipe": True})
            end = time.monotonic() + 10
            while True:
                ev = self.events.next(end)
                if ev is None:
                    self.close()
                    return
                if ev.get("ev") == "wiped":
                    break
        except EOFError:
            self.close()
            return
        if self.cgroup is not None:
            self.cgroup.rebase()

    # ------------------------------------------------------------------ one exercise

    def run_job(self, job: Job) -> JobReport:
        """Run ``job`` (re-forking after a crash or a timeout) until every call has a result
        or the deadline passes; calls left then say so."""
        results: dict[str, CallResult] = {}
        errors: dict[int, dict] = {}
        dropped: set[int] = set()  # statements that hung or killed the child
        pending = list(job.calls)
        for _attempt in range(len(job.calls) + len(job.statements) + 2):
            if not pending or time.monotonic() >= self.deadline:
                break
            statements = [s for s in job.statements if s[0] not in dropped]
            once = self._attempt(job, statements, pending)
            errors.update(once["errors"])
            results.update(once["results"])
            pending = [c for c in pending if c.id not in results]
            crash = once["crash"]
            if not pending or crash is None:
                break
            if once["in_setup"]:
                culprit = once["running"]
                if culprit is not None and culprit not in dropped:
                    # one statement killed the child or hung: it fails, the rest goes on
                    errors[culprit] = dict(crash, where="")
                    dropped.add(culprit)
                    continue
                for c in pending:
                    results[c.id] = CallResult(error=crash)
                pending = []
                break
            culprit = pending[0]
            results[culprit.id] = CallResult(error=crash)
            pending = pending[1:]
            if crash.get("type") == "Timeout":
                # the same function would time out again on its other inputs
                for c in [c for c in pending if c.probe == culprit.probe]:
                    results[c.id] = CallResult(error=dict(crash, message=(
                        "not run: this function already timed out on an earlier check ("
                        + crash.get("message", "") + ")")))
                pending = [c for c in pending if c.probe != culprit.probe]
        for c in pending:
            results[c.id] = CallResult(error={
                "type": "NotRun", "where": "",
                "message": ("not run: the time budget of this submission was spent"
                            if time.monotonic() >= self.deadline
                            else "not run: too many crashes before it")})
        tail = _tail(self.box / "log.txt") if self.box is not None else ""
        return JobReport(results, errors, self.isolation, tail)

    def _attempt(self, job: Job, statements, calls: list[Call]) -> dict:
        out: dict = {"results": {}, "errors": {}, "crash": None, "in_setup": True,
                     "running": None}
        if not self.alive():
            crash = self._start()
            if crash is not None:
                out["crash"], out["in_setup"] = crash, False
                self.close()
                return out
        assert self.box is not None and self.proc is not None
        self.count += 1
        name = f"ex{self.count}"
        folder = self.box / name
        for sub in ("", "in", "out"):
            (folder / sub).mkdir(exist_ok=True)
        request = {"seed": self.seed, "memory_bytes": self.limits.memory_bytes,
                   "exercise": job.exercise, "statements": [list(s) for s in statements],
                   "reference": [list(s) for s in job.reference], "partners": job.partners,
                   "forbidden": job.forbidden}
        (folder / "request.json").write_text(json.dumps(request))
        _chown_tree(folder)
        start = time.monotonic()
        try:
            self._send({"fork": name})
            out["crash"] = self._converse(folder, calls, start, out)
            if out["crash"] is None:
                self._send({"end": True})
                if not self._wait_exit(time.monotonic() + 5):
                    self.close()
        except EOFError:
            out["crash"] = self._jail_died(start)
        if out["crash"] is not None and self.cgroup is not None and self.cgroup.oom():
            out["crash"] = {"type": "MemoryError", "where": "",
                            "message": "the process was killed: it used more memory than allowed"}
        self._kill_children()
        if out["crash"] is not None and self.alive() and not out.get("exited"):
            try:
                if not self._wait_exit(time.monotonic() + 5):
                    self.close()  # the zygote did not answer: a fresh jail next time
            except EOFError:
                self.close()
        shutil.rmtree(folder, ignore_errors=True)
        return out

    def _send(self, obj: dict) -> None:
        assert self.proc is not None
        try:
            self.proc.stdin.write((json.dumps(obj) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            raise EOFError from None

    def _wait_exit(self, end: float) -> bool:
        """Until the zygote says the child exited (its processes are killed at ``end``);
        False when the zygote does not say so even then."""
        assert self.events is not None
        for _ in range(2):
            while True:
                ev = self.events.next(end)
                if ev is None:
                    break
                if ev.get("ev") == "exited" and not self._children():
                    time.sleep(0.01)
                    self.events.drain()  # whatever the child wrote before it died
                    return True
            self._kill_children()
            end = time.monotonic() + 5
        return False

    def _converse(self, folder: Path, calls: list[Call], start: float, out: dict) -> dict | None:
        """Drive the child through its set-up and calls; a crash description or None."""
        assert self.events is not None
        setup_end = min(start + self.limits.setup_s, self.deadline)
        while True:  # set-up: statements, then "ready"
            ev = self.events.next(setup_end)
            if ev is None:
                return _timeout(f"the set-up took longer than {setup_end - start:.0f} s"
                                if setup_end < self.deadline else "the time budget ran out")
            kind = ev.get("ev")
            if kind == "start":
                out["running"] = _int(ev.get("i"))
            elif kind == "stmt":
                i = _int(ev.get("i"))
                if i is not None and isinstance(ev.get("error"), dict):
                    e = ev["error"]
                    out["errors"][i] = {k: str(e.get(k, ""))[:600]
                                        for k in ("type", "message", "where")}
                out["running"] = None
            elif kind == "exited" and not self._children():  # a forged one is ignored
                out["exited"] = True
                return _status_crash(ev.get("status"), start)
            elif kind == "ready":
                break
        out["in_setup"] = False
        for call in calls:
            sub = folder / "in" / call.id
            sub.mkdir()
            for key, arr in call.arrays.items():
                np.save(sub / f"{key}.npy", np.ascontiguousarray(arr), allow_pickle=False)
            _chown_tree(sub)
            self._send({"id": call.id, "probe": call.probe, "arrays": sorted(call.arrays),
                        "params": call.params})
            call_end = min(time.monotonic() + self.limits.call_s, self.deadline)
            while True:
                ev = self.events.next(call_end)
                if ev is None:
                    return _timeout(f"one check took longer than {self.limits.call_s:.0f} s"
                                    if call_end < self.deadline else "the time budget ran out")
                if ev.get("ev") == "exited" and not self._children():
                    out["exited"] = True
                    return _status_crash(ev.get("status"), start)
                if ev.get("ev") == "done" and ev.get("call") == call.id:
                    break
            frozen = self._children()
            _signal_all(frozen, signal.SIGSTOP)
            try:
                got = read_call(folder / "out" / call.id)
            finally:
                _signal_all(frozen, signal.SIGCONT)
            out["results"][call.id] = got or CallResult(error={
                "type": "InvalidOutput", "message": "the call left no result", "where": ""})
        return None

    def _jail_died(self, start: float) -> dict:
        rc = None
        if self.proc is not None:
            try:
                rc = self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        crash = _status_crash(None, start)
        if rc is not None and rc < 0:
            crash = _signal_crash(-rc)
        self.close()
        return crash


def _parents() -> dict[int, int]:
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                data = Path(f"/proc/{entry}/stat").read_bytes()
                out[int(entry)] = int(data[data.rfind(b")") + 2:].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    return out


def _signal_crash(signum: int) -> dict:
    known = signum in signal.Signals._value2member_map_
    sig = signal.Signals(signum).name if known else str(signum)
    hint = " (CPU time limit)" if sig == "SIGXCPU" else ""
    return {"type": "Killed", "message": f"the process was killed by {sig}{hint}", "where": ""}


def _status_crash(status, start: float) -> dict:
    """A crash description from a waitpid status reported by the zygote."""
    if isinstance(status, int) and not isinstance(status, bool) and os.WIFSIGNALED(status):
        return _signal_crash(os.WTERMSIG(status))
    elapsed = time.monotonic() - start
    return {"type": "Exit", "message": f"the process ended after {elapsed:.1f} s without a "
            "result (sys.exit/os._exit, a crash, or out of memory?)", "where": ""}


def run_job(job: Job, probes_file: Path, *, limits: Limits = Limits(), seed: int = 0,
            deadline: float | None = None, hide: list[str] | None = None) -> JobReport:
    """Run one job in a session of its own."""
    with Session(probes_file, limits=limits, seed=seed, deadline=deadline, hide=hide) as session:
        return session.run_job(job)


def _chown_tree(folder: Path) -> None:
    user = sandbox_user()
    if user is None:
        return
    for p in [folder, *folder.rglob("*")]:
        os.chown(p, user.pw_uid, user.pw_gid, follow_symlinks=False)


def _int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
