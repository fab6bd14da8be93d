"""llama.cpp's own converters (convert_hf_to_gguf.py, convert_lora_to_gguf.py), run from the sdist of
exactly the llama-cpp-python version installed, with that sdist's gguf-py.

The scripts are not in the llama-cpp-python wheel and are not copied into this repository: the
sdist is fetched once with pip (or taken from EDGE_EXTRACT_LLAMA_SDIST, a local
llama_cpp_python-VERSION.tar.gz for offline machines and CI), and the few files the converters
need are extracted into the edge-extract cache. The PyPI `gguf` package is not used for them:
the release with the same number lacks names these scripts use.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from importlib.metadata import version
from pathlib import Path

from edge_extract import paths
from edge_extract.ui import get_console

from .errors import ConvertError

SDIST_ENV = "EDGE_EXTRACT_LLAMA_SDIST"
"""Path of a local llama_cpp_python-VERSION.tar.gz to use instead of downloading it."""

NEEDED = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "conversion/", "gguf-py/", "LICENSE")
"""What the converters need from vendor/llama.cpp/ in the sdist."""

DONE = ".complete"
"""Written last into the extracted folder: a half-extracted folder is never used."""


def llama_cpp_version() -> str:
    return version("llama-cpp-python")


def _fetch_sdist(target: Path, wanted: str) -> Path:
    override = os.environ.get(SDIST_ENV)
    name = f"llama_cpp_python-{wanted}.tar.gz"
    if override:
        sdist = Path(override).expanduser()
        if sdist.name != name:
            raise ConvertError(f"{SDIST_ENV} must name {name} (the installed llama-cpp-python), not {sdist.name}")
        if not sdist.is_file():
            raise ConvertError(f"{SDIST_ENV} points at a missing file: {sdist}")
        return sdist
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
    command += ["--dest", str(target), f"llama-cpp-python=={wanted}"]
    get_console().print(
        f"fetching the llama-cpp-python {wanted} source distribution for its converters", soft_wrap=True
    )
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0 or not (target / name).is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ConvertError(f"cannot download llama-cpp-python=={wanted} sources ({tail[0]}); set {SDIST_ENV}")
    return target / name


def converter_dir() -> Path:
    """vendor/llama.cpp of the installed llama-cpp-python's sdist, extracted once into the cache."""
    wanted = llama_cpp_version()
    root = paths.cache_dir() / f"llama-cpp-python-{wanted}"
    tree = root / "llama.cpp"
    if (tree / DONE).is_file():
        return tree
    root.mkdir(parents=True, exist_ok=True)
    sdist = _fetch_sdist(root, wanted)
    prefix = f"llama_cpp_python-{wanted}/vendor/llama.cpp/"
    staging = root / f".llama.cpp.{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with tarfile.open(sdist, "r:gz") as archive:
            members = []
            for member in archive:
                relative = member.name.removeprefix(prefix)
                if member.name.startswith(prefix) and relative.startswith(NEEDED) and "/tests/" not in relative:
                    member.name = relative
                    members.append(member)
            archive.extractall(staging, members=members, filter="data")
    except (OSError, tarfile.TarError) as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise ConvertError(f"cannot extract the llama.cpp converters from {sdist}: {error}") from error
    if not (staging / "convert_hf_to_gguf.py").is_file():
        shutil.rmtree(staging, ignore_errors=True)
        raise ConvertError(f"{sdist} has no vendor/llama.cpp/convert_hf_to_gguf.py")
    (staging / DONE).write_text(wanted + "\n")
    shutil.rmtree(tree, ignore_errors=True)
    os.replace(staging, tree)
    if sdist.parent == root:
        sdist.unlink()  # a downloaded copy: the extracted files are all that is used
    return tree


def run_script(script: str, args: list[str]) -> None:
    """Run one of the converters with the sdist's gguf-py first on the path; its log goes to the
    error message only when it fails (it is long, and it names every tensor)."""
    tree = converter_dir()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tree / "gguf-py"), os.environ.get("PYTHONPATH", "")]))
    env.pop("NO_LOCAL_GGUF", None)  # set, it would make the scripts skip their own gguf-py
    done = subprocess.run([sys.executable, str(tree / script), *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise ConvertError(f"{script} failed (exit {done.returncode}):\n{tail}")
