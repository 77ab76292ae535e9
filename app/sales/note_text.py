"""Notes <-> CRM annotations: the pure parts (text, ids, bodies, matching).

A CRM note edited in the rich-text editor arrives as ``<div>`` lines; BC's
``CRM Annotation Coupling.ExtractNoteText`` turns it into plain lines, and
``plain_note_text`` does the same (same quirks: only bare ``<div>`` lines are split, a
text it cannot split is kept as it is). Annotation ids for notes pushed from the ERP are
derived from the note's ``system_id`` (uuid5), so a create replayed after a crash finds
its own row instead of making a second one.
"""

from __future__ import annotations

import html
import re
import uuid
from typing import Any

from app.dataverse import bind

NOTE_DESCRIPTION_LENGTH = 250  # note.description
NOTE_TEXT_LENGTH = 8000  # note.text
SUBJECT_LENGTH = 500  # annotation.subject
_ANNOTATION_NAMESPACE = uuid.UUID("8d0f5b9e-1c2a-4e3b-a4d5-6f7081920a3b")
_STYLE_TAGS = (
    "<br>", "<br/>", "<br />", "<i>", "</i>", "<b>", "</b>", "<u>", "</u>", "<s>", "</s>",
    "<strong>", "</strong>", "<em>", "</em>", "<small>", "</small>", "<hr>", "<hr/>",
    "<hr />", "<p>", "</p>", "</span>",
)  # fmt: skip
_SPAN = re.compile(r"<span[^>]*>")


def _plain_line(line: str) -> str:
    line = html.unescape(line)
    for tag in _STYLE_TAGS:
        line = line.replace(tag, "")
    return _SPAN.sub("", line)


def plain_note_text(text: str) -> str:
    """The plain text of a CRM note (BC's ExtractNoteText)."""
    end = text.rfind("</div>")
    if end < 0:
        return text
    plain, rest = "", text
    while end >= 0:
        rest = rest[:end]
        start = rest.rfind("div>")
        if start < 0:
            return text
        line = _plain_line(rest[start + 4 :])
        plain = line if plain == "" else f"{line}\n{plain}"
        end = rest.rfind("</div>")
    return plain


def annotation_id(note_system_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(_ANNOTATION_NAMESPACE, str(note_system_id))


def note_values(annotation: dict[str, Any]) -> dict[str, str]:
    """An annotation as the ERP note's ``description`` and ``text``."""
    return {
        "description": str(annotation.get("subject") or "")[:NOTE_DESCRIPTION_LENGTH],
        "text": plain_note_text(str(annotation.get("notetext") or ""))[:NOTE_TEXT_LENGTH],
    }


def annotation_body(description: str, text: str) -> dict[str, Any]:
    return {"subject": description[:SUBJECT_LENGTH], "notetext": text}


def new_annotation_body(description: str, text: str, order_id: uuid.UUID) -> dict[str, Any]:
    """A note on a salesorder, as BC creates it: not a document, regarding the order."""
    return {
        **annotation_body(description, text),
        "isdocument": False,
        "objecttypecode": "salesorder",
        "objectid_salesorder@odata.bind": bind("salesorders", order_id),
    }


def is_same_note(description: str, text: str, annotation: dict[str, Any]) -> bool:
    """Whether an annotation says what the note says (used to couple instead of copying)."""
    values = note_values(annotation)
    return (
        values["description"] == description[:NOTE_DESCRIPTION_LENGTH]
        and values["text"] == text[:NOTE_TEXT_LENGTH]
    )
