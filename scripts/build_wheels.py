"""Builds the two wheels of this repository: the store and the team.

    python scripts/build_wheels.py [--outdir dist]

writes ``adk_lossless_sessions-<version>-py3-none-any.whl`` (from ``multi_agent/pyproject.toml``)
and ``multi_agent_team-<version>-py3-none-any.whl`` (from ``pyproject.toml``). It builds from a
copy of the working tree's files (tracked and new, not ignored ones), so the repository gets no
``build/`` or ``*.egg-info`` folders. Prints the paths of the two wheels.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    return [name for name in listed if name and (ROOT / name).exists()]


def _isolation_needed() -> bool:
    """True unless setuptools>=77 and wheel are importable here (then builds are offline)."""
    if importlib.util.find_spec("wheel") is None:
        return True
    try:
        import setuptools
    except ImportError:
        return True
    return int(setuptools.__version__.split(".")[0]) < 77


def build(outdir: Path) -> list[Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="multi-agent-build-") as tmp:
        tree = Path(tmp) / "src"
        for name in _files():
            target = tree / name
            target.parent.mkdir(parents=True, exist_ok=True)
            source = ROOT / name
            if source.is_symlink():
                target.symlink_to(source.readlink())
            else:
                shutil.copy2(source, target)
        command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                   "--wheel-dir", str(outdir)]
        if not _isolation_needed():
            command.append("--no-build-isolation")
        before = set(outdir.glob("*.whl"))
        subprocess.run([*command, str(tree / "multi_agent"), str(tree)], check=True)
    built = sorted(set(outdir.glob("*.whl")) - before) or sorted(outdir.glob("*.whl"))
    return built


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outdir", type=Path, default=ROOT / "dist")
    args = parser.parse_args()
    try:
        wheels = build(args.outdir.resolve())
    except subprocess.CalledProcessError as exc:
        print(f"build_wheels: {exc}", file=sys.stderr)
        return 1
    for wheel in wheels:
        print(wheel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
