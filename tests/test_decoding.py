"""Schema-driven decoding gives valid JSON whatever the model writes inside a value.

A scripted stand-in for the model is used here because a real model cannot be made to write a
chosen adversarial value; test_extract.py runs the same decoder on the real model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest

from edge_extract.decoding import DecodingSettings, SchemaDecoder, json_string_content, skeleton_before
from edge_extract.errors import ConfigError
from edge_extract.models.registry import DEFAULT_MODEL, Registry
from edge_extract.schema import FIELD_MAX_CHARS, FIELDS, NA
from edge_extract.validate import parse_record

from .fakes import fake_manifest

EOS = 0
MULTI = ['",', '\\"', "\\\\", "; ", "fever", "cough", "Male", "Female", "N/A", "é".encode()[:1], "é".encode()[1:]]


class ScriptedModel:
    """A byte-level toy model that wants to write `script[field]` and then a closing quote."""

    def __init__(self, script: dict[str, str], *, eos_in: str | None = None) -> None:
        pieces: list[bytes] = [b""] + [bytes([b]) for b in range(1, 256)]
        pieces += [p if isinstance(p, bytes) else p.encode() for p in MULTI]
        self.pieces = pieces
        self.script = {name: script.get(name, NA).encode() + b'"' for name in FIELDS}
        self.eos_in = eos_in
        self.context: list[int] = []

    n_ctx = 100_000

    @property
    def n_past(self) -> int:
        return len(self.context)

    def tokenize(self, text: str, *, add_bos: bool = False) -> list[int]:
        data, out = text.encode(), []
        while data:
            best = max(
                (i for i, p in enumerate(self.pieces) if p and data.startswith(p)), key=lambda i: len(self.pieces[i])
            )
            out.append(best)
            data = data[len(self.pieces[best]) :]
        return out

    def piece(self, token: int) -> bytes:
        return self.pieces[token]

    def is_end_of_generation(self, token: int) -> bool:
        return token == EOS

    def _logits(self) -> np.ndarray:
        text = b"".join(self.pieces[t] for t in self.context)
        field = max(FIELDS, key=lambda name: text.rfind(f'"{name}": "'.encode()))
        written = text[text.rfind(f'"{field}": "'.encode()) + len(field) + 5 :]
        wanted = self.script[field][len(written) :] or b'"'
        logits = np.zeros(len(self.pieces), dtype=np.float32)
        if field == self.eos_in and written:
            logits[EOS] = 1.0
        else:
            candidates = [i for i, p in enumerate(self.pieces) if p and wanted.startswith(p)]
            logits[max(candidates, key=lambda i: len(self.pieces[i]))] = 1.0
        return logits

    def start(self, tokens: Sequence[int]) -> np.ndarray:
        self.context = list(tokens)
        return self._logits()

    def feed(self, tokens: Sequence[int]) -> np.ndarray:
        self.context += list(tokens)
        return self._logits()

    def truncate(self, n_tokens: int) -> None:
        del self.context[n_tokens:]


def decode(script: dict[str, str], **kwargs):
    model = ScriptedModel(script, eos_in=kwargs.pop("eos_in", None))
    values, stats = SchemaDecoder(model, settings=DecodingSettings(**kwargs)).decode(model.tokenize("prompt:"))
    record = parse_record(json.dumps(values))  # the pipeline's own validation: fail closed
    return record.values(), stats, model


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        (r"he said \"no\"", 'he said "no"'),
        (r"C:\\temp", "C:\\temp"),
        (r"pH \q 7.1", r"pH \q 7.1"),
        ("café 37.5 °C", "café 37.5 °C"),
        (r"first\nsecond", "first second"),
        (r"tab\there \u00e9", "tab here é"),
        ("  ; ", NA),
        ("", NA),
    ],
    ids=["escaped-quotes", "backslash", "invalid-escape", "unicode", "escaped-newline", "escapes", "blank", "empty"],
)
def test_adversarial_values_give_valid_records(written, expected):
    values, _, _ = decode({"diagnosis": written, "gender": "Female"})
    assert values["diagnosis"] == expected
    assert values["gender"] == "Female"
    assert values["life_style"] == NA


def test_a_raw_newline_ends_the_value():
    values, _, _ = decode({"signs_symptoms": "fever\ncough"})
    assert values["signs_symptoms"] == "fever"


def test_end_of_generation_ends_the_value():
    values, _, _ = decode({"pathology": "granuloma"}, eos_in="pathology")
    assert values["pathology"] == "g"


def test_long_value_is_cut_at_its_bound_and_flagged():
    values, stats, _ = decode({"comorbidities": "abcdefghij" * 100, "diagnosis": "0123456789" * 100}, loop_repeats=0)
    assert 100 < len(values["comorbidities"]) <= FIELD_MAX_CHARS["comorbidities"]
    assert 100 < len(values["diagnosis"]) <= FIELD_MAX_CHARS["diagnosis"]
    assert stats.capped_fields == ["comorbidities", "diagnosis"]


def test_values_are_capped_by_the_context_room_left():
    model = ScriptedModel({"signs_symptoms": "abcdefghij" * 60, "age": "45 years", "gender": "Male"})
    model.n_ctx = 400
    values, stats = SchemaDecoder(model, settings=DecodingSettings(loop_repeats=0)).decode(model.tokenize("p"))
    assert len(model.context) <= model.n_ctx
    assert "signs_symptoms" in stats.capped_fields
    assert values["age"] == "45 years" and values["gender"] == "Male"  # later fields still fit


def test_repetition_loop_is_cut_back_to_one_occurrence():
    values, stats, model = decode(
        {"signs_symptoms": "fever; cough; " * 40}, repeat_penalty=1.0, stop_at_restated_item=False
    )
    assert values["signs_symptoms"] == "fever; cough"
    assert stats.looped_fields == ["signs_symptoms"]
    # the context was rewound too: the next field's skeleton follows the first occurrence
    text = b"".join(model.piece(t) for t in model.context).decode()
    assert 'fever; cough; ", "comorbidities": "' in text


def test_skeleton_is_fed_not_sampled():
    _, stats, model = decode({"age": "45 years", "gender": "Male"})
    text = b"".join(model.piece(t) for t in model.context).decode()
    assert text.startswith("prompt:" + skeleton_before(0))
    assert all(f'"{name}": "' in text for name in FIELDS)
    assert stats.generated_tokens < stats.fed_tokens


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(b'a \\"b\\"', 'a "b"'), (b"cut \\", "cut"), (b"\xc3", ""), (b"x\\u12", "x\\u12")],
    ids=["escaped", "half-escape", "half-utf8", "short-unicode-escape"],
)
def test_json_string_content_never_fails(raw, expected):
    assert json_string_content(raw) == expected


class HesitantModel(ScriptedModel):
    """Prefers N/A for comorbidities, with "fever" a close second where the value starts."""

    def _logits(self) -> np.ndarray:
        logits = super()._logits()
        if b"".join(self.pieces[t] for t in self.context).endswith(b'"comorbidities": "'):
            logits[self.tokenize("fever")[0]] = 0.5
        return logits


@pytest.mark.parametrize(("bias", "expected"), [(0.0, NA), (0.4, NA), (0.8, "fever")])
def test_absent_bias_trades_na_for_the_runner_up(bias, expected):
    model = HesitantModel({"comorbidities": NA})
    values, _ = SchemaDecoder(model, settings=DecodingSettings(absent_bias=bias)).decode(model.tokenize("p"))
    assert values["comorbidities"] == expected
    assert values["life_style"] == NA  # only a close call flips: a clear N/A stays


def test_a_restated_item_ends_the_list_without_retries():
    script = {
        "signs_symptoms": "fever; cough; Fever; dyspnea",
        "diagnosis": "a;b",
        "pathology": "fever; granuloma of the left lung; x; granuloma of the left lung and more",
        "comorbidities": "asthma; asthma of childhood; asthma",
    }
    values, stats, model = decode(script, restated_item_retries=0)
    assert values["signs_symptoms"] == "fever; cough"
    assert values["diagnosis"] == "a;b"  # nothing repeated: the text stays as written
    assert values["pathology"] == "fever; granuloma of the left lung; x"  # a long item restated unfinished
    assert values["comorbidities"] == "asthma; asthma of childhood"  # a restated last item is dropped too
    assert stats.looped_fields == ["signs_symptoms", "pathology"]
    text = b"".join(model.piece(t) for t in model.context).decode()
    assert 'fever; cough", "comorbidities": "' in text  # the context was rewound with the text


class RestatingModel(ScriptedModel):
    """Writes "fever; cough; dyspnea" as signs_symptoms, but would rather restate "fever" (a token
    of its own, or byte by byte with `split`) after "cough; "."""

    def __init__(self, *, split: bool = False) -> None:
        super().__init__({"signs_symptoms": "fever; cough; dyspnea"})
        self.split = split

    def _logits(self) -> np.ndarray:
        logits = super()._logits()
        text = b"".join(self.pieces[t] for t in self.context)
        wants = {b"cough; fever"[:end]: "fever;"[end - 7] for end in range(8, 13)}  # "f" -> "e", ...
        if text.endswith(b"cough; "):
            logits[:] = 0.0
            logits[self.tokenize("f" if self.split else "fever")[0]] = 2.0
            logits[self.tokenize("d")[0]] = 1.0  # the runner-up: the next new item
        for written, then in wants.items():
            if text.endswith(written):
                logits[:] = 0.0
                logits[self.tokenize(then)[0]] = 1.0
        return logits


@pytest.mark.parametrize("split", [False, True], ids=["one-token", "two-tokens"])
def test_a_restated_item_is_dropped_and_the_list_goes_on(split):
    model = RestatingModel(split=split)
    values, stats = SchemaDecoder(model, settings=DecodingSettings(loop_repeats=0)).decode(model.tokenize("p"))
    assert values["signs_symptoms"] == "fever; cough; dyspnea"  # the runner-up after the bar
    assert stats.restated_items >= 1 and stats.looped_fields == []
    text = b"".join(model.piece(t) for t in model.context).decode()
    assert 'fever; cough; dyspnea", "comorbidities": "' in text  # nothing restated left in the context


def test_a_restated_item_ends_the_list_once_the_retries_are_spent():
    model = RestatingModel()
    settings = DecodingSettings(loop_repeats=0, restated_item_retries=0)
    values, stats = SchemaDecoder(model, settings=settings).decode(model.tokenize("p"))
    assert values["signs_symptoms"] == "fever; cough"
    assert stats.restated_items == 0 and stats.looped_fields == ["signs_symptoms"]


def test_without_the_stop_repeated_items_are_still_dropped():
    values, _, _ = decode({"signs_symptoms": "fever; cough; Fever; dyspnea"}, stop_at_restated_item=False)
    assert values["signs_symptoms"] == "fever; cough; dyspnea"


def test_a_whole_number_from_a_manifest_is_an_int_setting():
    """JSON manifests used to carry every setting as a float; 32.0 must still slice token lists."""
    settings = fake_manifest(decoding={"repeat_last_n": 32.0}).decoding
    assert settings.repeat_last_n == 32 and isinstance(settings.repeat_last_n, int)
    model = ScriptedModel({"signs_symptoms": "fever; cough; " * 40})
    values, _ = SchemaDecoder(model, settings=settings).decode(model.tokenize("prompt:"))
    assert values["signs_symptoms"] == "fever; cough"


@pytest.mark.parametrize(
    ("decoding", "problem"),
    [({"repeat_last_n": 32.5}, "fractional part"), ({"absent_bais": 2.0}, "Extra inputs are not permitted")],
    ids=["fraction-for-an-int", "misspelt"],
)
def test_a_manifest_with_a_bad_decoding_setting_is_refused(tmp_path, decoding, problem):
    manifest = {**json.loads(fake_manifest().model_dump_json()), "decoding": decoding}
    (tmp_path / "fake.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(ConfigError, match=problem):
        Registry((tmp_path,)).get("fake")


def test_manifests_keep_the_settings_chosen_for_the_model_only():
    shipped, folder = Registry.default().get(DEFAULT_MODEL)
    written = json.loads((folder / f"{DEFAULT_MODEL}.json").read_text(encoding="utf-8"))["decoding"]
    assert 0 < len(written) < len(DecodingSettings.model_fields)
    assert shipped.decoding == DecodingSettings(**written)
    assert json.loads(shipped.model_dump_json())["decoding"] == written  # the layout of models/*.json
