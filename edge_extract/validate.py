"""Raw model text -> Record, or an OutputInvalidError saying exactly what is wrong. Fails closed:
nothing is guessed or reshaped, so a record that comes out of here is one the model really wrote."""

from __future__ import annotations

import json
import re

from pydantic import ValidationError

from .errors import OutputInvalidError, problems
from .schema import Record

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)
_FENCE = re.compile(r"```(?:json)?\s*\n?(.*?)```", re.DOTALL)


def _unwrap(raw: str) -> str:
    text = _THINK.sub("", raw).strip()
    fences = _FENCE.findall(text)
    if len(fences) > 1:
        raise OutputInvalidError(f"answer has {len(fences)} fenced blocks, expected one JSON object")
    return fences[0].strip() if fences else text


def parse_record(raw: str) -> Record:
    """Parse and validate a model answer.

    Raises:
        OutputInvalidError: empty answer, not JSON, not an object, or not the 15-field schema.
    """
    text = _unwrap(raw)
    if not text:
        raise OutputInvalidError("empty answer")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise OutputInvalidError(f"answer is not JSON: {error.msg} at character {error.pos}") from error
    if not isinstance(data, dict):
        raise OutputInvalidError(f"answer is a JSON {type(data).__name__}, not an object")
    try:
        return Record.model_validate(data)
    except ValidationError as error:
        found = problems(error, whole="record", limit=5)
        raise OutputInvalidError(f"answer does not fit the schema: {found}") from error
