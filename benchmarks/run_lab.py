"""Run a lab's solution notebook end to end and keep what it measured.

Builds the solution copy from the master notebook, executes it with nbclient under a profile
(``smoke``, ``cpu`` or ``full``; see ``labkit.run_profile``), and writes the executed notebook and
the results JSON the notebook saves (``$LABKIT_RESULTS``) to ``dist/runs/<lab>-<profile>/``.
Prints wall time per cell group and the results.

    python benchmarks/run_lab.py lab01 --profile cpu --data ../shared/data/real
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lab", help="lab id, e.g. lab01")
    parser.add_argument("--profile", choices=("smoke", "cpu", "full"), default="cpu")
    parser.add_argument("--data", type=Path, default=None, help="LABKIT_DATA for the run")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    args = parser.parse_args()

    import nbclient

    from autograder import notebook as nbmod
    from autograder.labs import get_lab

    lab = get_lab(args.lab)
    out_dir = ROOT / "dist" / "runs" / f"{lab.id}-{args.profile}"
    out_dir.mkdir(parents=True, exist_ok=True)
    nb = nbmod.make_solution(nbmod.read_notebook(lab.master_path))
    env_backup = dict(os.environ)
    os.environ["LABKIT_PROFILE"] = args.profile
    os.environ["LABKIT_SMOKE"] = "1" if args.profile == "smoke" else "0"
    os.environ["LABKIT_RESULTS"] = str(out_dir / "results.json")
    os.environ.setdefault("MPLBACKEND", "Agg")
    if args.data is not None:
        os.environ["LABKIT_DATA"] = str(args.data.resolve())
    print(f"# run_lab {lab.id} profile={args.profile} python {platform.python_version()} "
          f"data={os.environ.get('LABKIT_DATA', '(default)')}", flush=True)
    start = time.perf_counter()
    client = nbclient.NotebookClient(
        nb, timeout=args.timeout, kernel_name="python3",
        resources={"metadata": {"path": str(lab.master_path.parent)}},
    )
    try:
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(env_backup)
        import nbformat

        nbformat.write(nb, str(out_dir / f"{lab.slug}.ipynb"))
    wall = time.perf_counter() - start
    print(f"executed in {wall:.1f} s -> {out_dir}")
    results = out_dir / "results.json"
    if results.exists():
        print(json.dumps(json.loads(results.read_text()), indent=2))


if __name__ == "__main__":
    main()
