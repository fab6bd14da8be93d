"""The ELMTEX record: 15 string fields, items joined by "; ", "N/A" when absent.

This is the layout of the published ELMTEX dataset (`{"report": ..., "summary": {...}}`),
so files written by one side read unchanged on the other.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

NA = "N/A"
"""The value of a field the report does not mention."""

ITEM_SEPARATOR = "; "
"""Several items in one field are joined by this."""

GENDERS: tuple[str, ...] = ("Male", "Female", NA)
"""The only values `gender` may take."""

FIELD_MAX_CHARS: dict[str, int] = {
    # About 1.25x the longest value in elmtex-open (train, train-extra and val; raised where
    # train-extra's longest value did not fit), so a real value fits and a runaway one is cut;
    # the decoders read these bounds.
    "life_style": 300,
    "family_history": 620,
    "social_history": 420,
    "medical_surgical_history": 890,
    "signs_symptoms": 900,
    "comorbidities": 300,
    "diagnostic_techniques_procedures": 1000,
    "diagnosis": 570,
    "laboratory_values": 920,
    "pathology": 780,
    "pharmacological_therapy": 660,
    "interventional_therapy": 860,
    "patient_outcome_assessment": 770,
    "age": 48,
    "gender": 6,
}

FIELDS: tuple[str, ...] = tuple(FIELD_MAX_CHARS)
"""The 15 keys in the published order."""


def _field(name: str) -> Any:
    return Field(default=NA, min_length=1, max_length=FIELD_MAX_CHARS[name])


class Record(BaseModel):
    """One ELMTEX summary of a clinical report."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    life_style: str = _field("life_style")
    family_history: str = _field("family_history")
    social_history: str = _field("social_history")
    medical_surgical_history: str = _field("medical_surgical_history")
    signs_symptoms: str = _field("signs_symptoms")
    comorbidities: str = _field("comorbidities")
    diagnostic_techniques_procedures: str = _field("diagnostic_techniques_procedures")
    diagnosis: str = _field("diagnosis")
    laboratory_values: str = _field("laboratory_values")
    pathology: str = _field("pathology")
    pharmacological_therapy: str = _field("pharmacological_therapy")
    interventional_therapy: str = _field("interventional_therapy")
    patient_outcome_assessment: str = _field("patient_outcome_assessment")
    age: str = _field("age")
    gender: Literal["Male", "Female", "N/A"] = NA

    def values(self) -> dict[str, str]:
        """The 15 fields in the published order."""
        return {name: getattr(self, name) for name in FIELDS}


class Example(BaseModel):
    """A line of an ELMTEX-layout JSONL file: a report and, when annotated, its summary.

    Other keys of the published files (id, source, licence, doi, url) are kept as they are.
    """

    model_config = ConfigDict(extra="allow")

    report: str
    summary: Record | None = None
    id: str | None = None


def items(value: str) -> list[str]:
    """Split a field value into its items; "N/A" and blanks give none.

    Example:
        >>> items("fever; cough ;")
        ['fever', 'cough']
    """
    if value.strip() == NA:
        return []
    return [part.strip() for part in value.split(";") if part.strip()]


def record_json_schema() -> dict[str, Any]:
    """JSON schema of the record, with a `maxLength` on every string.

    llama.cpp's schema-to-grammar needs the bound: without it a string can grow until max_tokens.
    """
    return Record.model_json_schema()
