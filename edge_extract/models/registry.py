"""Known models: the manifests in the built-in and user folders, the default model, and resolving a
name to checked files.

Built-in manifests live in `models/` (shipped inside the wheel); models the user adds live in the
user data folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .. import paths
from ..errors import ConfigError, ModelError, UnknownModelError
from ..files import atomic_write_text, sha256_file
from ..runtime import check_sha256
from ..ui import get_console, labelled
from .fold import fold_adapter
from .install import adhoc_model, assemble_from_chunks, assemble_from_package, import_gguf, pull_gguf
from .manifest import DEFAULT_CONTEXT_SIZE, Manifest, ResolvedModel, read_manifest

DEFAULT_MODEL = "gemma-3-270m-elmtex"
"""Used when neither --model nor EDGE_EXTRACT_MODEL names one: the embedded Gemma 3 270M with the
LoRA adapter fine-tuned for ELMTEX (the base alone cannot extract)."""


def verify_file(path: Path, expected: str) -> None:
    """Hash a file now and refuse it unless its sha256 is `expected`.

    Always the whole file: a size+mtime stamp would let bytes flipped in place (bit rot, with the
    mtime unchanged) pass.
    """
    if not path.is_file():
        raise ModelError(f"model file missing: {path}")
    check_sha256(path, expected=expected, actual=sha256_file(path))


_warned: set[Path] = set()


def _warn_once(file: Path, message: str) -> None:
    """One warning per unreadable manifest and process (the registry is read several times per command)."""
    if file not in _warned:
        _warned.add(file)
        get_console().print(labelled("warning:", "flag", f"{message} (left out)"), soft_wrap=True)


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
        """name -> (manifest, folder it was found in).

        A manifest in the user folder that cannot be read (hand-edited, or written by a newer
        edge-extract with fields this one does not know) is left out with a warning, so one bad
        file never stops every other model; a bad built-in manifest is a defect and raises.
        """
        found: dict[str, tuple[Manifest, Path]] = {}
        for folder in self.folders:
            for file in _manifest_files(folder):
                try:
                    manifest = read_manifest(file)
                except ConfigError as error:
                    if folder != self.folders[-1] or len(self.folders) == 1:
                        raise
                    _warn_once(file, str(error))
                    continue
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
        if manifest.source.kind == "pypi-chunks":
            # Not the cache: its packages are uninstalled once it is assembled, so it cannot be rebuilt offline.
            return self.folders[-1] / manifest.file
        return folder / manifest.file

    def install_command(self, manifest: Manifest, folder: Path) -> str | None:
        """The command that installs a model whose files are not in place and that edge-extract can fetch."""
        if manifest.source.kind == "pypi-chunks" and not self.model_path(manifest, folder).is_file():
            return f"edge-extract models install {manifest.name}"
        return None

    def resolve(self, name: str | None = None, *, verify: bool = True, fold: bool = True) -> ResolvedModel:
        """Find a model's files, assembling an embedded one on first use, and check its sha256.

        `verify=False` leaves the check to the caller: Runtime hashes the files while it loads them.
        `fold=False` gives the base and adapter as listed even where the manifest folds them (what a
        server is started with, or all a tokenizer needs), without building the fold.
        `name` may also be the path of a GGUF file, run as it is (its sha256 is recorded, not checked).
        """
        name = name or self.default_name()
        if name.endswith(".gguf") or os.sep in name:
            return adhoc_model(Path(name))
        manifest, folder = self.get(name)
        path = self.model_path(manifest, folder)
        if manifest.source.kind == "pypi" and not path.exists():
            assemble_from_package(manifest, path)
        if command := self.install_command(manifest, folder):
            raise ModelError(f"model {name} is not installed: {command}")
        if not path.is_file():
            raise ModelError(f"model file missing: {path}")
        if verify:
            verify_file(path, manifest.sha256)
        adapter_path = None
        if manifest.adapter is not None:
            adapter_path = folder / manifest.adapter.file
            if not adapter_path.is_file():
                raise ModelError(f"adapter file missing: {adapter_path}")
            if manifest.adapter.fold is not None and fold:
                folded, sha256 = self.folded(manifest, path, adapter_path, verify=verify)
                return ResolvedModel(manifest=manifest, path=folded, adapter_path=None, file_sha256=sha256)
            if verify:
                verify_file(adapter_path, manifest.adapter.sha256)
        return ResolvedModel(manifest=manifest, path=path, adapter_path=adapter_path)

    def folded(self, manifest: Manifest, base: Path, adapter: Path, *, verify: bool) -> tuple[Path, str]:
        """The cached GGUF with the manifest's adapter folded into its base, and its sha256: built
        on first use (from a verified base and adapter), and again when the cached file is not the
        one built (its sha256 is kept beside it)."""
        assert manifest.adapter is not None and manifest.adapter.fold is not None
        kind = manifest.adapter.fold
        # Named by both inputs, so a new adapter or base never runs an old fold.
        name = f"{manifest.name}-{manifest.sha256[:12]}-{manifest.adapter.sha256[:12]}-{kind.lower()}.gguf"
        path = paths.cache_dir() / "models" / name
        stamp = path.with_name(path.name + ".sha256")
        recorded = stamp.read_text(encoding="utf-8").strip() if stamp.is_file() and path.is_file() else None
        if recorded is not None and (not verify or sha256_file(path) == recorded):
            return path, recorded
        if not verify:  # resolve has hashed the base already when verifying
            verify_file(base, manifest.sha256)
        verify_file(adapter, manifest.adapter.sha256)
        note = f"folding its adapter into the base ({kind}), once, about a minute ..."
        get_console().print(labelled(f"{manifest.name}:", "muted", note))
        fold_adapter(base, adapter, path, scale=manifest.adapter.scale)
        recorded = sha256_file(path)
        atomic_write_text(stamp, recorded + "\n")
        return path, recorded

    def install(self, name: str, *, find_links: Path | None = None) -> tuple[ResolvedModel, bool | None]:
        """Install an optional model carried by chunk packages (pip, then assembly and sha256 check);
        the model, and whether its packages were uninstalled after (None: it was installed already)."""
        manifest, folder = self.get(name)
        if manifest.source.kind != "pypi-chunks":
            raise ConfigError(f"model {name} needs no install: {manifest.source.kind} models are ready once registered")
        if self.install_command(manifest, folder) is None:
            return self.resolve(name), None
        uninstalled = assemble_from_chunks(manifest, self.model_path(manifest, folder), find_links=find_links)
        return self.resolve(name, verify=False), uninstalled

    def register(self, manifest: Manifest) -> Path:
        """Write a manifest into the user models folder (the last, overriding folder)."""
        target = self.folders[-1] / f"{manifest.name}.json"
        atomic_write_text(target, manifest.model_dump_json(indent=2, exclude_none=True) + "\n", private=False)
        return target

    def import_file(
        self, source: Path, *, name: str, prompt_format: str | None = None, context_size: int = DEFAULT_CONTEXT_SIZE
    ) -> Manifest:
        """Check a GGUF (say, on a USB stick), copy it into the user models folder, register it."""
        manifest = import_gguf(
            source, self.folders[-1], name=name, prompt_format=prompt_format, context_size=context_size
        )
        self.register(manifest)
        return manifest

    def pull(
        self, repo: str, filename: str, *, name: str, prompt_format: str | None = None, revision: str | None = None
    ) -> Manifest:
        """Download a GGUF once from a hub into the user models folder and register it."""
        manifest = pull_gguf(
            repo, filename, self.folders[-1], name=name, prompt_format=prompt_format, revision=revision
        )
        self.register(manifest)
        return manifest
