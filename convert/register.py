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

import re
import shutil
from pathlib import Path
from typing import Literal

from edge_extract.decoding import DecodingSettings
from edge_extract.evaluation import load_run, read_predictions
from edge_extract.files import replacing, sha256_file
from edge_extract.models.manifest import DEFAULT_CONTEXT_SIZE, MODEL_NAME, Manifest, ValScores
from edge_extract.models.registry import Registry
from edge_extract.pipeline import Result
from edge_extract.prompt import CHAT_FORMATS
from edge_extract.runtime import check_gguf, has_gguf_magic
from edge_extract.ui import get_console, labelled

from .errors import ConvertError
from .from_gguf import gguf_path

SHARED_SOURCES = ("pypi", "pypi-chunks")
"""A base of these kinds is shared, not copied: the runtime finds its GGUF where the cache (pypi,
assembled on first use) or `models install` (pypi-chunks, which then installs it for the new
model too) put it."""


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
    registry: Registry | None = None,
) -> Manifest:
    """Write the manifest of `name` into the registry's last (user) folder and return it."""
    if not re.fullmatch(MODEL_NAME, name):
        raise ConvertError(f"bad model name {name!r}: letters, digits, '.', '_' and '-', first a letter or digit")
    if fold is not None and adapter is None:
        raise ConvertError("fold needs an adapter to fold into the model (--adapter)")
    if chat is not None and chat not in CHAT_FORMATS:
        raise ConvertError(f"unknown chat format {chat!r}: one of {', '.join(CHAT_FORMATS)}")
    registry = registry or Registry.default()
    root = registry.folders[-1]
    folder = root / name
    known = registry.manifests()
    if model not in known and not Path(model).expanduser().is_file():
        raise ConvertError(f"{model} is neither a registered model nor a GGUF file")
    prompt_format = chat or (known[model][0].prompt_format if model in known else None)
    if prompt_format is None:
        raise ConvertError(f"give the chat format of {model} (--chat): one of {', '.join(CHAT_FORMATS)}")
    settings = {
        "name": name,
        "description": description,
        "prompt_format": prompt_format,
        "context_size": context_size,
        "decoding": decoding or DecodingSettings(),
    }
    if model in known and known[model][0].adapter is not None:
        raise ConvertError(f"{model} runs with an adapter of its own: register over its base model instead")
    if adapter is not None:  # before anything is copied
        check_gguf_adapter(adapter)
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
        adapter_file = _copy_in(adapter, folder, root)
        fields["adapter"] = {"file": adapter_file, "sha256": sha256_file(root / adapter_file), "fold": fold}

    manifest = Manifest.model_validate(fields)
    written = registry.register(manifest)
    get_console().print(f"register: {name} -> {written}", soft_wrap=True)
    if name in known and known[name][1] != root:
        note = f"{name} now stands for this model instead of the built-in one; delete {written} to go back"
        get_console().print(labelled("warning:", "flag", note), soft_wrap=True)
    return manifest


def check_gguf_adapter(path: Path) -> None:
    """Refuse a file that is not a GGUF (a PEFT folder given by mistake, say). An adapter for
    another base is refused where it meets the base: the fold, or llama.cpp at load."""
    if not path.is_file():
        raise ConvertError(f"no such adapter file: {path}")
    if not has_gguf_magic(path):
        raise ConvertError(f"{path.name} is not a GGUF adapter: convert it with the adapter step first")


ELMTEX_VAL_SHA256 = "a2788386db42c0ec925f29398e3685557bea870e21ee89c11dd14f7c7b6c7045"
"""sha256 of elmtex-open/val.jsonl: `models list` shows scores on this one set, all of it
(ELMTEX_VAL_RECORDS), so they compare."""
ELMTEX_VAL_RECORDS = 55


def _settings_changed(manifest: Manifest, results: list[Result]) -> str:
    """The decoding settings and context size the run's first record was made with that differ from
    the manifest's now ("" when none). The repeat penalty is left out: a record retried after a
    runaway value carries the retry's."""
    if not results:
        return ""
    made = results[0].provenance.settings
    now = {**manifest.decoding.model_dump(exclude={"repeat_penalty"}), "n_ctx": manifest.context_size}
    return ", ".join(f"{key} {getattr(made, key)} against {now[key]}" for key in now if getattr(made, key) != now[key])


def record_val(name: str, run: Path, *, registry: Registry | None = None) -> Manifest:
    """Store in the manifest of `name` the val scores and speed of `run`, an `edge-extract eval run`
    folder of that very model as it runs by default (same files, naive prompt, schema decoder), on
    all of ELMTEX val with one thread, for `models list`. The manifest must be in the registry's
    last (user) folder."""
    registry = registry or Registry.default()
    manifest, folder = registry.get(name)
    if folder != registry.folders[-1]:
        raise ConvertError(f"{name} is built in: record-val writes only to the user models folder (or --models-dir)")
    metrics = load_run(run)
    info = metrics.run
    if info.model != name:
        raise ConvertError(f"{run} is an evaluation of {info.model}, not of {name}")
    if (info.strategy, info.decoder) != ("naive", "schema"):
        raise ConvertError(f"{run} ran {info.strategy} prompting with the {info.decoder} decoder, not as {name} runs")
    if info.data_sha256 != ELMTEX_VAL_SHA256:
        raise ConvertError(f"{run} scored {info.data}, not ELMTEX val.jsonl: scores on other sets would not compare")
    if info.threads != 1:  # seconds per report compare only at one thread count
        raise ConvertError(f"{run} ran with {info.threads} threads: `models list` shows runs with --threads 1")
    if info.records != ELMTEX_VAL_RECORDS:
        raise ConvertError(f"{run} scored {info.records} of the {ELMTEX_VAL_RECORDS} val reports: run all of them")
    if changed := _settings_changed(manifest, read_predictions(run)):
        raise ConvertError(f"{run} decoded with other settings than {name} has now ({changed}): run it again")
    registered = registry.resolve(name, verify=False).sha256
    if info.model_sha256 != registered:
        raise ConvertError(
            f"{run} scored another build of {name} (sha256 {info.model_sha256[:12]}) than the one registered "
            f"now ({registered[:12]}; an adapter folded or not makes another build): run it again"
        )
    item_f1, rouge_l = metrics.scores.micro.item_f1, metrics.scores.macro.rougeL
    if item_f1 is None or rouge_l is None:  # a gold set with no values to score
        raise ConvertError(f"{run} has no item F1 or ROUGE-L to show")
    val = ValScores(
        item_f1=round(item_f1, 4),
        rouge_l=round(rouge_l, 4),
        records=info.records,
        failed=metrics.failed,
        seconds_per_report=round(metrics.seconds_per_report, 2),
        threads=info.threads,
        peak_rss_mb=round(metrics.peak_rss_mb) if metrics.peak_rss_mb is not None else None,
    )
    scored = manifest.model_copy(update={"val": val})
    written = registry.register(scored)
    scores = f"item F1 {val.item_f1:.3f}, ROUGE-L {val.rouge_l:.3f}"
    get_console().print(f"record-val: {name} {scores} -> {written}", soft_wrap=True)
    return scored
