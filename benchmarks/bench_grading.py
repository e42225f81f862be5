"""Grading cost of one submission: wall time and peak memory of the whole process tree.

Grades the solution copy of a lab (built from its master notebook) on ONE CPU (taskset) with
OMP_NUM_THREADS=1, sampling the memory (PSS: shared pages split among processes) of the grader
and all its descendants every
20 ms. Targets (Gradescope defaults: 1/2 vCPU, 768 MB, 10 min): < 60 s and < 700 MB.

    python benchmarks/bench_grading.py [--lab lab02] [--repeats 3] [--python PATH]

``--python`` grades with another interpreter, e.g. a venv with the CPU-only torch wheel that
Gradescope's setup.sh installs (the CUDA build's libraries alone take ~700 MB resident).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def tree_rss_bytes(root_pid: int, field: str = "Pss") -> int:
    """Sum of ``field`` over ``root_pid`` and its descendants (from /proc).

    ``Pss``/``Pss_Anon`` (from smaps_rollup) share each page among the processes mapping it:
    the grader's zygote and the children forked from it share torch's pages copy-on-write, which
    a sum of VmRSS/RssAnon would count once per process. ``VmRSS``/``RssAnon`` are read from
    status where smaps_rollup is missing."""
    parents, rss = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as fh:
                fields = dict(line.split(":", 1) for line in fh if ":" in line)
            parents[int(entry)] = int(fields["PPid"])
            if field.startswith("Pss"):
                with open(f"/proc/{entry}/smaps_rollup") as fh:
                    fields = dict(line.split(":", 1) for line in fh if ":" in line)
            rss[int(entry)] = int(fields.get(field, "0 kB").split()[0]) * 1024
        except (OSError, KeyError, ValueError):
            continue
    total = 0
    for pid in rss:
        p, depth = pid, 0
        while p and depth < 64:
            if p == root_pid:
                total += rss[pid]
                break
            p, depth = parents.get(p, 0), depth + 1
    return total


def measure(cmd: list[str], env: dict) -> tuple[float, int, int]:
    peak = peak_anon = 0
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    done = threading.Event()

    def sample():
        nonlocal peak, peak_anon
        while not done.is_set():
            peak = max(peak, tree_rss_bytes(proc.pid))
            peak_anon = max(peak_anon, tree_rss_bytes(proc.pid, "Pss_Anon"))
            time.sleep(0.02)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - start
    done.set()
    t.join()
    if proc.returncode != 0:
        raise SystemExit(f"grading failed:\n{err.decode()[-2000:]}")
    return wall, peak, peak_anon


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", default="lab02")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--python", default=sys.executable, help="interpreter that grades")
    parser.add_argument("--sleeper", action="store_true",
                        help="also grade a submission whose every exercise sleeps just under the "
                        "per-call limit on every call (the worst case of the time budget)")
    args = parser.parse_args()

    from autograder import notebook as nbmod
    from autograder.grade import compute_references, save_references
    from autograder.labs import get_lab

    lab = get_lab(args.lab)
    work = Path(tempfile.mkdtemp(prefix="bench-grading-"))
    os.chmod(work, 0o755)
    try:
        refs = work / "references.npz"
        save_references(compute_references(lab), refs)
        solution = nbmod.make_solution(nbmod.read_notebook(lab.master_path))
        sub = work / lab.notebook_name
        nbmod.nbformat.write(solution, str(sub))
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        cmd = ["taskset", "-c", "0", args.python, "-m", "autograder", "grade", lab.id, str(sub),
               "--references", str(refs), "--out", str(work / "results.json"), "--quiet"]
        if shutil.which("taskset") is None:
            cmd = cmd[3:]
        from labkit.utils import cpu_model

        cpu = cpu_model()
        torch_version = subprocess.run(
            [args.python, "-c", "import torch; print(torch.__version__)"],
            capture_output=True, text=True).stdout.strip()
        print(f"# bench_grading: {lab.id} solution copy, 1 CPU thread ({cpu}), "
              f"{args.python}, torch {torch_version}, running as uid {os.getuid()}")
        print(f"{'run':>4} {'wall s':>8} {'peak PSS MB':>12} {'peak anon MB':>13} "
              f"{'wall/60s':>9} {'PSS/700MB':>10}")
        walls, peaks = [], []
        for i in range(args.repeats):
            wall, peak, anon = measure(cmd, env)
            walls.append(wall)
            peaks.append(peak)
            print(f"{i + 1:>4} {wall:>8.2f} {peak / 2**20:>12.1f} {anon / 2**20:>13.1f} "
                  f"{wall / 60:>9.3f} {peak / 2**20 / 700:>10.3f}")
        import json

        score = json.loads((work / "results.json").read_text())["score"]
        print(f"max  {max(walls):>8.2f} {max(peaks) / 2**20:>17.1f}   (score of last run: {score:g})")
        ok = max(walls) < 60 and max(peaks) < 700 * 2**20
        print("targets < 60 s and < 700 MB:", "met" if ok else "NOT met")
        if args.sleeper:
            sleeper(lab, solution, work, cmd, env)
    finally:
        shutil.rmtree(work, ignore_errors=True)


SLOW = """
import functools as _functools, time as _time
def _slow(obj, seconds={seconds}):
    if isinstance(obj, type):
        def __init__(self, *args, **kwargs):
            _time.sleep(seconds)
            obj.__init__(self, *args, **kwargs)
        return type(obj.__name__, (obj,), {{"__init__": __init__}})
    @_functools.wraps(obj)
    def slowed(*args, **kwargs):
        _time.sleep(seconds)
        return obj(*args, **kwargs)
    return slowed
"""


def sleeper(lab, solution, work, cmd, env) -> None:
    """Grade the solution with every exercise slowed to just under the per-call limit."""
    import json

    from autograder.runner import budget_s, grading_limits

    limit = grading_limits().call_s
    nb = solution
    cells = [SLOW.format(seconds=limit - 0.5)] + [
        f"{ex.name} = _slow({ex.name})" for ex in lab.exercises]
    nb.cells += [nbmod_cell(c) for c in cells]
    sub = work / "sleeper" / lab.notebook_name
    sub.parent.mkdir()
    import nbformat

    nbformat.write(nb, str(sub))
    out = work / "sleeper.json"
    sleepy = [c if c != str(work / lab.notebook_name) else str(sub) for c in cmd]
    sleepy[sleepy.index("--out") + 1] = str(out)
    start = time.monotonic()
    subprocess.run(sleepy, env=env, check=True)
    wall = time.monotonic() - start
    data = json.loads(out.read_text())
    spent = sum("time budget" in t["output"] for t in data["tests"])
    print(f"sleeper: every call sleeps {limit - 0.5:.1f} s (per-call limit {limit:.0f} s); budget "
          f"{budget_s():.0f} s per submission; graded in {wall:.1f} s wall; "
          f"{spent}/{len(data['tests'])} checks 'not run: time budget spent'; "
          f"score {data['score']:g}")


def nbmod_cell(source: str):
    import nbformat

    return nbformat.v4.new_code_cell(source)


if __name__ == "__main__":
    main()
