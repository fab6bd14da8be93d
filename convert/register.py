"""Put a converted GGUF (and adapter) into a models folder with its manifest, so
`edge-extract extract --model NAME` runs it.

    python -m convert register NAME runs/x/gguf/x-Q4_K_M.gguf --chat llama3
    python -m convert register NAME gemma-3-270m --adapter runs/y/gguf/y-adapter-f16.gguf \
        --fold Q8_0 --decoding absent_bias=2

The model is a GGUF file (copied into <models>/NAME/) or the name of a registered model that the
adapter applies to; an embedded (PyPI) or installed optional base stays where it is and is shared,
not copied.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Literal

from edge_extract.decoding import DecodingSettings
from edge_extract.evaluation import load_run
from edge_extract.files import replacing, sha256_file
from edge_extract.models.manifest import DEFAULT_CONTEXT_SIZE, Manifest, ValScores
from edge_extract.models.registry import Registry
from edge_extract.prompt import CHAT_FORMATS
from edge_extract.runtime import check_gguf, has_gguf_magic
from edge_extract.ui import get_console

from .errors import ConvertError
from .from_gguf import gguf_path

SHARED_SOURCES = ("pypi", "pypi-chunks")
"""A base of these kinds is shared, not copied: the runtime finds its GGUF where the cache or
`models install` put it, and the new model's `models install` installs it where it is missing."""


def _copy_in(source: Path, folder: Path, root: Path) -> str:
    """Copy a file into `folder` (atomically; skipped when it is already there); its path relative to `root`."""
    target = folder / source.name
    if source.resolve() != target.resolve():
        with replacing(target) as tmp:
            shutil.copyfile(source, tmp)
    return target.relative_to(root).as_posix()


def register(
    name: str,
    model: str,
    *,
    chat: str | None = None,
    adapter: Path | None = None,
    context_size: int = DEFAULT_CONTEXT_SIZE,
    description: str = "",
    decoding: DecodingSettings | None = None,
    fold: Literal["Q8_0"] | None = None,
    val_run: Path | None = None,
    registry: Registry | None = None,
) -> Manifest:
    """Write the manifest of `name` into the registry's last (user) folder and return it.

    `val_run`: an `edge-extract eval run` folder of this model on the validation set, whose scores
    and speed the manifest then carries for `models list`.
    """
    if fold is not None and adapter is None:
        raise ConvertError("fold needs an adapter to fold into the model (--adapter)")
    val = val_scores(val_run, name) if val_run is not None else None
    registry = registry or Registry.default()
    root = registry.folders[-1]
    folder = root / name
    known = registry.manifests()
    prompt_format = chat or (known[model][0].prompt_format if model in known else None)
    if prompt_format not in CHAT_FORMATS:
        raise ConvertError(f"give the chat format (--chat): one of {', '.join(CHAT_FORMATS)}")
    settings = {
        "name": name,
        "description": description,
        "prompt_format": prompt_format,
        "context_size": context_size,
        "decoding": decoding or DecodingSettings(),
        "val": val,
    }
    if model in known and known[model][0].adapter is not None:
        raise ConvertError(f"{model} runs with an adapter of its own: register over its base model instead")
    if model in known and known[model][0].source.kind in SHARED_SOURCES:
        fields = {**known[model][0].model_dump(), **settings}
    else:
        path = gguf_path(model, registry=registry)
        check_gguf(path)
        file = _copy_in(path, folder, root)
        fields = {
            **settings,
            "source": {"kind": "file"},
            "file": file,
            "sha256": sha256_file(root / file),  # of the copy: what the runtime will load
            "size": path.stat().st_size,
        }
    if adapter is not None:
        check_gguf_adapter(adapter)
        adapter_file = _copy_in(adapter, folder, root)
        fields["adapter"] = {"file": adapter_file, "sha256": sha256_file(root / adapter_file), "fold": fold}

    manifest = Manifest.model_validate(fields)
    written = registry.register(manifest)
    get_console().print(f"register: {name} -> {written}", soft_wrap=True)
    return manifest


def check_gguf_adapter(path: Path) -> None:
    """Refuse a file that is not a GGUF (a PEFT folder given by mistake, say)."""
    if not path.is_file():
        raise ConvertError(f"no such adapter file: {path}")
    if not has_gguf_magic(path):
        raise ConvertError(f"{path.name} is not a GGUF adapter: convert it with the adapter step first")


def val_scores(run: Path, name: str) -> ValScores:
    """The scores of an evaluation run of model `name` (metrics.json), as a manifest keeps them."""
    metrics = load_run(run)
    if metrics.run.model != name:
        raise ConvertError(f"{run} is an evaluation of {metrics.run.model}, not of {name}")
    item_f1, rouge_l = metrics.scores.micro.item_f1, metrics.scores.macro.rougeL
    if item_f1 is None or rouge_l is None:  # a gold set with no values to score
        raise ConvertError(f"{run} has no item F1 or ROUGE-L to show")
    return ValScores(
        item_f1=round(item_f1, 4),
        rouge_l=round(rouge_l, 4),
        records=metrics.run.records,
        seconds_per_report=round(metrics.seconds_per_report, 2),
        threads=metrics.run.threads,
        peak_rss_mb=round(metrics.peak_rss_mb) if metrics.peak_rss_mb is not None else None,
        data_sha256=metrics.run.data_sha256,
    )
