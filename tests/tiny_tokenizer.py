"""A SentencePiece tokenizer made in a test, in the HF layout, for the chatml chat format: what
the conversion tests build their tiny model on, and what `convert prepare` needs to read examples."""

from __future__ import annotations

import io
import json
from pathlib import Path

CHAT_TOKENS = ["<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tokenizer(folder: Path, texts: list[str]) -> None:
    """A SentencePiece BPE vocabulary in the HF layout, tokenized alike by HF and llama.cpp.

    The traps: chat tokens must be control symbols (else llama.cpp splits them), no dummy
    prefix (else one side adds a leading space), and add_bos_token / add_eos_token /
    add_prefix_space written out (else each side assumes its own default, silently).
    """
    import sentencepiece as spm
    from transformers import AutoTokenizer

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter([line for text in texts for line in text.split("\n") if line.strip()]),
        model_writer=model,
        vocab_size=600,
        model_type="bpe",
        byte_fallback=True,
        add_dummy_prefix=False,
        control_symbols=CHAT_TOKENS,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        character_coverage=1.0,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        max_sentence_length=100_000,
        num_threads=1,
        minloglevel=2,
    )
    staging = folder / "sp"
    staging.mkdir(parents=True)
    (staging / "tokenizer.model").write_bytes(model.getvalue())
    settings = {"add_bos_token": True, "add_eos_token": False, "add_prefix_space": False}
    config = {"tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
    (staging / "tokenizer_config.json").write_text(json.dumps({**config, **settings, "legacy": False}))
    AutoTokenizer.from_pretrained(staging).save_pretrained(folder)  # writes tokenizer.json
    # The HF re-save drops tokenizer.model and these keys; llama.cpp reads both.
    (folder / "tokenizer.model").write_bytes(model.getvalue())
    saved = json.loads((folder / "tokenizer_config.json").read_text())
    saved.update(settings, chat_template=CHAT_TEMPLATE)
    (folder / "tokenizer_config.json").write_text(json.dumps(saved, indent=2))
