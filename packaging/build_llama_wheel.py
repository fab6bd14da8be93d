#!/usr/bin/env python3
"""Build the llama-cpp-python wheel edge-extract runs on, once, into a cache folder.

llama-cpp-python publishes no binary wheel for Linux, so pip compiles it (minutes) on every
install. This compiles it once, in one of two flavours, and later calls reuse the cached file:

  portable  AVX2 baseline (-DGGML_NATIVE=OFF plus AVX, AVX2, FMA, F16C, BMI2): runs on any
            x86-64 CPU with AVX2 (Intel Haswell, AMD Excavator/Zen and later, about 2015 on).
  native    -DGGML_NATIVE=ON: compiled for every instruction the build machine's CPU has (about
            1.4x faster prompt processing), and dies with "illegal instruction" on a CPU that lacks
            one of them. Its CPU flags are written beside the wheel, so an installer can check.

Usage (prints the wheel's path on the last line):
    python3 packaging/build_llama_wheel.py              # portable
    python3 packaging/build_llama_wheel.py --native     # native

The cache is the one scripts/setup.sh and CI use: ${EDGE_EXTRACT_BUILD_CACHE:-~/.cache/edge-extract-build},
with the source in sdist/ and the wheels in wheels/portable-avx2/ and wheels/native/. Stdlib only,
so any Python 3.10+ runs it; pip is the one of the interpreter that runs this script. On Windows
it needs Visual Studio Build Tools and CMake.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

COMMON_CMAKE_ARGS = [
    "-DLLAVA_BUILD=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_TOOLS=OFF",
    "-DLLAMA_BUILD_SERVER=OFF",
]
PORTABLE_CMAKE_ARGS = [
    "-DGGML_NATIVE=OFF",
    "-DGGML_AVX=ON",
    "-DGGML_AVX2=ON",
    "-DGGML_FMA=ON",
    "-DGGML_F16C=ON",
    "-DGGML_BMI2=ON",
]
NATIVE_CMAKE_ARGS = ["-DGGML_NATIVE=ON"]

PORTABLE_CPU_FLAGS = ["avx", "avx2", "fma", "f16c", "bmi2"]
"""/proc/cpuinfo flags the portable build executes: a CPU without one of them cannot run it."""

ISA_FLAGS = {
    "pni", "ssse3", "sse4_1", "sse4_2", "popcnt", "avx", "avx2", "fma", "f16c", "bmi1", "bmi2", "abm",
    "movbe", "aes", "pclmulqdq", "sha_ni", "adx", "gfni", "vaes", "vpclmulqdq", "avx_vnni", "avx_vnni_int8",
    "avx_ifma", "avx_ne_convert",
}  # fmt: skip
"""Instruction-set flags `-march=native` may compile in (plus every avx512* and amx* flag)."""

FLAVOURS = ("portable", "native")


def cache_dir() -> Path:
    """The build cache shared with scripts/setup.sh and CI."""
    value = os.environ.get("EDGE_EXTRACT_BUILD_CACHE")
    return Path(value).expanduser() if value else Path.home() / ".cache" / "edge-extract-build"


def pinned_version() -> str:
    """The llama-cpp-python version pyproject.toml pins (one place for the version)."""
    match = re.search(r'"llama-cpp-python==([^"]+)"', (REPO / "pyproject.toml").read_text(encoding="utf-8"))
    if match is None:
        raise SystemExit("pyproject.toml does not pin llama-cpp-python==VERSION")
    return match.group(1)


def cpu_flags(cpuinfo: str) -> set[str]:
    """The flags of the first CPU listed in /proc/cpuinfo text (empty when there is none)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return set(value.split())
    return set()


def isa_flags(flags: set[str]) -> list[str]:
    """The instruction-set extensions among CPU flags: what a native build may depend on."""
    return sorted(f for f in flags if f in ISA_FLAGS or f.startswith(("avx512", "amx")))


def wheel_folder(flavour: str, cache: Path) -> Path:
    return cache / "wheels" / ("portable-avx2" if flavour == "portable" else "native")


def cached_wheel(flavour: str, *, cache: Path, version: str) -> Path | None:
    found = sorted(wheel_folder(flavour, cache).glob(f"llama_cpp_python-{version}-*.whl"))
    return found[-1] if found else None


def build(flavour: str, *, cache: Path | None = None, python: str = sys.executable) -> Path:
    """Return the cached wheel of a flavour, compiling it first when there is none.

    A native wheel gets `<wheel>.cpu-flags` beside it: the build CPU's instruction-set flags.
    """
    if flavour not in FLAVOURS:
        raise SystemExit(f"unknown flavour {flavour!r}; known: {', '.join(FLAVOURS)}")
    cache = cache or cache_dir()
    version = pinned_version()
    existing = cached_wheel(flavour, cache=cache, version=version)
    if existing is not None:
        return existing
    native_flags: list[str] = []
    if flavour == "native":
        cpuinfo = Path("/proc/cpuinfo")
        if not cpuinfo.is_file():
            raise SystemExit("a native build needs /proc/cpuinfo (Linux) to record what it was compiled for")
        native_flags = isa_flags(cpu_flags(cpuinfo.read_text()))
    cmake_args = COMMON_CMAKE_ARGS + (PORTABLE_CMAKE_ARGS if flavour == "portable" else NATIVE_CMAKE_ARGS)
    env = {
        **os.environ,
        "CMAKE_ARGS": " ".join(cmake_args),
        "CMAKE_BUILD_PARALLEL_LEVEL": os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2)),
    }
    target = wheel_folder(flavour, cache)
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="llama-wheel-") as tmp:
        sys.stderr.write(f"compiling llama-cpp-python {version} ({flavour}); this takes several minutes\n")
        pip = [python, "-m", "pip", "--disable-pip-version-check"]
        sdist = cache / "sdist" / f"llama_cpp_python-{version}.tar.gz"
        if not sdist.is_file():
            download = [*pip, "download", "--no-deps", "--no-binary", ":all:", "-d", str(sdist.parent)]
            subprocess.run([*download, f"llama-cpp-python=={version}"], check=True)
        # --no-cache-dir: pip's wheel cache is keyed by the sdist, not by CMAKE_ARGS, so it would
        # hand a portable build back for a native request (and the other way round).
        subprocess.run([*pip, "wheel", "--no-deps", "--no-cache-dir", "-w", tmp, str(sdist)], check=True, env=env)
        built = next(Path(tmp).glob("llama_cpp_python-*.whl"))
        if native_flags:
            (target / f"{built.name}.cpu-flags").write_text(" ".join(native_flags) + "\n", encoding="utf-8")
        partial = target / f".{built.name}.part"
        shutil.copyfile(built, partial)
        os.replace(partial, target / built.name)
    return target / built.name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--native", action="store_true", help="compile for this machine's CPU")
    parser.add_argument("--cache", type=Path, default=None, help="build cache folder")
    args = parser.parse_args()
    sys.stdout.write(f"{build('native' if args.native else 'portable', cache=args.cache)}\n")


if __name__ == "__main__":
    main()
