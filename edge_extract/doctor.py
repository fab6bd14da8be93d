"""What a support person needs to know about this computer, as typed checks that say what is wrong.

Each check returns a `Check`; none prints, opens a network socket or reads a report. The ones
that read system files take the text as an argument, so tests can feed them any machine.
"""

from __future__ import annotations

import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from enum import Enum
from importlib import metadata
from pathlib import Path

from . import paths
from ._version import __version__
from .errors import EdgeExtractError
from .models.registry import Registry
from .runtime import physical_cores

BUILD_FEATURE_FLAGS = {
    "SSE3": "pni",
    "SSSE3": "ssse3",
    "AVX": "avx",
    "AVX2": "avx2",
    "F16C": "f16c",
    "FMA": "fma",
    "BMI2": "bmi2",
    "AVX_VNNI": "avx_vnni",
    "AVX512": "avx512f",
    "AVX512_VBMI": "avx512vbmi",
    "AVX512_VNNI": "avx512_vnni",
    "AVX512_BF16": "avx512_bf16",
    "AMX_INT8": "amx_int8",
}
"""llama.cpp's names for the x86 instruction sets it was compiled for -> /proc/cpuinfo flags."""

MEMORY_HEADROOM = 1 << 30
"""Beyond the model file: context cache, compute buffers, Python. A 1-thread extraction with the
default model peaks at 0.55 GB resident, mapped model included: 1 GiB leaves room for larger ones."""
DISK_MINIMUM = 100 * 10**6
"""Records are small, but a batch writes one file per report plus results.jsonl and results.csv."""


class Status(str, Enum):
    """How a check came out."""

    ok = "ok"
    warn = "warn"
    """Works, but worth knowing."""
    fail = "fail"
    """edge-extract will not work (or not reliably) until this is fixed."""


@dataclass(frozen=True)
class Check:
    """One finding.

    Attributes:
        name: what was checked ("model", "cpu", ...).
        status: ok, warn or fail.
        detail: what was found, in plain words.
        fix: what to do about it; empty when nothing needs doing.
    """

    name: str
    status: Status
    detail: str
    fix: str = ""


def check_version() -> Check:
    """edge-extract, llama-cpp-python, Python and the operating system."""
    system = f"Python {platform.python_version()}, {platform.system()} {platform.machine()}"
    try:
        llama = metadata.version("llama-cpp-python")
    except metadata.PackageNotFoundError:
        return Check(
            "version",
            Status.fail,
            f"edge-extract {__version__}, llama-cpp-python not installed, {system}",
            "reinstall edge-extract from its bundle",
        )
    return Check("version", Status.ok, f"edge-extract {__version__}, llama-cpp-python {llama}, {system}")


def check_model(registry: Registry, name: str | None) -> Check:
    """The model resolves and its file (and adapter) hash to the manifest's sha256."""
    try:
        resolved = registry.resolve(name)
    except EdgeExtractError as error:
        return Check(
            "model",
            Status.fail,
            str(error),
            "reinstall edge-extract from its bundle, or pick another model with --model",
        )
    manifest = resolved.manifest
    adapter = f", adapter {resolved.adapter_path.name} matches too" if resolved.adapter_path else ""
    if manifest.adapter is not None and resolved.adapter_path is None:
        adapter = f", the fold of base {manifest.sha256[:12]}... and adapter {manifest.adapter.sha256[:12]}..."
    detail = f"{resolved.name}: {resolved.path} (sha256 {resolved.sha256[:12]}... matches{adapter})"
    return Check("model", Status.ok, detail)


def cpu_flags(cpuinfo: str) -> set[str]:
    """The flags of the first processor in /proc/cpuinfo text."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return set(value.split())
    return set()


def build_features(info: str) -> list[str]:
    """The x86 instruction sets a llama.cpp build uses, from its system info ("AVX2 = 1 | ...")."""
    found = []
    for part in info.replace("\n", "|").split("|"):
        key, _, value = part.rpartition("=")
        key = key.split(":")[-1].strip()
        if value.strip() == "1" and key in BUILD_FEATURE_FLAGS:
            found.append(key)
    return found


def probe_build() -> tuple[str | None, str]:
    """llama.cpp's system info, read in a child process: a build compiled for instructions this CPU
    lacks dies of SIGILL when loaded, and the doctor must live to say so.

    Returns (info, "") or (None, why it could not be read).
    """
    code = "from edge_extract.runtime import system_info; print(system_info())"
    try:
        child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as error:
        return None, f"could not start Python to load llama.cpp: {error}"
    if child.returncode == -signal.SIGILL:
        return None, "llama.cpp crashed with 'illegal instruction' when loaded: it was built for a newer CPU"
    if child.returncode != 0:
        last = (child.stderr.strip().splitlines() or ["no message"])[-1]
        return None, f"llama.cpp could not be loaded: {last}"
    return child.stdout.strip(), ""


def check_cpu(cpuinfo: str | None, build_info: str | None, *, build_error: str = "") -> Check:
    """The CPU has every instruction set the llama.cpp build was compiled for."""
    reinstall = "reinstall from the bundle with `./install.sh --portable` (the AVX2 build)"
    if build_info is None:
        return Check("cpu", Status.fail, build_error or "llama.cpp could not be loaded", reinstall)
    features = build_features(build_info)
    built_for = f"llama.cpp build uses {' '.join(features) or 'no x86 extensions'}"
    if cpuinfo is None:
        return Check("cpu", Status.warn, f"cannot read this system's CPU features; {built_for}")
    flags = cpu_flags(cpuinfo)
    has = [name for name, flag in BUILD_FEATURE_FLAGS.items() if flag in flags]
    missing = [name for name in features if BUILD_FEATURE_FLAGS[name] not in flags]
    detail = f"CPU has {' '.join(has) or 'none of SSE3..AVX512'}; {built_for}"
    if missing:
        lacks = f"this CPU lacks {' '.join(missing)}: llama.cpp will crash with 'illegal instruction'"
        return Check("cpu", Status.fail, f"{lacks}. {detail}", reinstall)
    return Check("cpu", Status.ok, detail)


def check_threads() -> Check:
    """Cores extraction runs on by default."""
    cores, logical = physical_cores(), os.cpu_count() or 1
    detail = f"{cores} physical core(s), {logical} logical; extraction uses {cores} thread(s) by default"
    if cores < 2:
        return Check("threads", Status.warn, f"{detail}: expect slow extraction")
    return Check("threads", Status.ok, detail)


def available_memory(meminfo: str) -> int | None:
    """MemAvailable from /proc/meminfo text, in bytes (memory usable without swapping)."""
    for line in meminfo.splitlines():
        key, _, value = line.partition(":")
        if key == "MemAvailable":
            return int(value.split()[0]) * 1024
    return None


def check_memory(available: int | None, *, model_bytes: int) -> Check:
    """Enough free memory to load the model and its context."""
    need = model_bytes + MEMORY_HEADROOM
    if available is None:
        return Check(
            "memory", Status.warn, f"cannot tell free memory on this system; the model needs about {_gb(need)}"
        )
    detail = f"{_gb(available)} available; the model needs about {_gb(need)}"
    if available < need:
        return Check("memory", Status.fail, f"not enough memory: {detail}", "close other programs or add memory")
    return Check("memory", Status.ok, detail)


def check_disk(label: str, folder: Path, *, need: int) -> Check:
    """Free space on the disk holding `folder` (or the nearest folder above it that exists)."""
    existing = _nearest_existing(folder)
    try:
        free = shutil.disk_usage(existing).free
    except OSError as error:
        return Check(label, Status.fail, f"cannot read free space of {existing}: {error.strerror}")
    detail = f"{_gb(free)} free at {existing}"
    if free < need:
        return Check(label, Status.fail, f"{detail}; needs {_gb(need)}", f"free space on the disk holding {existing}")
    return Check(label, Status.ok, detail)


def check_output_folder(folder: Path) -> Check:
    """Records can be written into `folder` (created on first use when it does not exist yet)."""
    target = folder if folder.exists() else _nearest_existing(folder)
    if not target.is_dir():
        return Check(
            "output folder", Status.fail, f"cannot write to {folder}: {target} is not a folder", "choose another --out"
        )
    try:
        with tempfile.NamedTemporaryFile(dir=target, prefix=".edge-extract-doctor-"):
            pass
    except OSError as error:
        return Check(
            "output folder",
            Status.fail,
            f"cannot write to {folder}: {error.strerror}",
            "choose another --out, or ask for write access",
        )
    state = "writable" if target == folder else f"does not exist yet; {target} is writable, so it can be created"
    return Check("output folder", Status.ok, f"{folder} {state}")


def run_checks(*, out: Path, model: str | None = None, registry: Registry | None = None) -> list[Check]:
    """Every check, in the order a support person reads them."""
    registry = registry or Registry.default()
    model_bytes = _model_bytes(registry, model)
    build_info, build_error = probe_build()
    return [
        check_version(),
        check_model(registry, model),
        check_cpu(_read("/proc/cpuinfo"), build_info, build_error=build_error),
        check_threads(),
        check_memory(available_memory(_read("/proc/meminfo") or ""), model_bytes=model_bytes),
        check_disk("disk (model cache)", paths.cache_dir(), need=DISK_MINIMUM),
        check_disk("disk (output)", out, need=DISK_MINIMUM),
        check_output_folder(out),
    ]


def _model_bytes(registry: Registry, name: str | None) -> int:
    """The model file's size from its manifest, or of the GGUF given by path (0 when unknown: the
    model check reports why)."""
    if name and Path(name).is_file():
        return Path(name).stat().st_size
    try:
        manifest, _ = registry.get(name or registry.default_name())
    except EdgeExtractError:
        return 0
    return manifest.size or 0


def _nearest_existing(folder: Path) -> Path:
    folder = folder.absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _gb(size: int) -> str:
    return f"{size / 1e9:.1f} GB"
