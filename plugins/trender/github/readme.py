"""Decode README payloads from the GitHub contents API into text."""

from __future__ import annotations

import base64
import binascii
import codecs
from typing import Any

NOTE_BOM_REMOVED = "utf-8 BOM removed"
NOTE_UTF16 = "decoded as utf-16"
NOTE_CP1252 = "decoded as cp1252"
NOTE_LATIN1 = "decoded as latin-1"
NOTE_NUL_REMOVED = "nul characters removed"
NOTE_TOO_LARGE = "content not provided (file too large)"
NOTE_INVALID_BASE64 = "content not valid base64"
NOTE_NO_CONTENT = "content missing"

# Files over 1 MB come back with encoding "none" and an empty content field.
ENCODING_NOT_PROVIDED = "none"
ENCODING_BASE64 = "base64"

_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def _join(notes: list[str]) -> str | None:
    """Combine decoding notes into one string, or None when there are none."""
    return "; ".join(notes) if notes else None


def _decode_bytes(data: bytes) -> tuple[str, list[str]]:
    """Decode README bytes, trying UTF-8, UTF-16 (with BOM), cp1252 and latin-1 in turn."""
    notes: list[str] = []
    text: str | None = None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
        notes.append(NOTE_BOM_REMOVED)
    elif data.startswith(_UTF16_BOMS):
        try:
            text = data.decode("utf-16")
            notes.append(NOTE_UTF16)
        except UnicodeDecodeError:
            text = None
    if text is None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            try:
                text = data.decode("cp1252")
                notes.append(NOTE_CP1252)
            except UnicodeDecodeError:
                text = data.decode("latin-1")
                notes.append(NOTE_LATIN1)
    if "\x00" in text:
        text = text.replace("\x00", "")
        notes.append(NOTE_NUL_REMOVED)
    return text, notes


def decode_readme_raw(body: bytes | str) -> tuple[str, str | None]:
    """Decode a README fetched with the raw media type; return (text, note)."""
    if isinstance(body, str):
        if "\x00" in body:
            return body.replace("\x00", ""), NOTE_NUL_REMOVED
        return body, None
    text, notes = _decode_bytes(body)
    return text, _join(notes)


def decode_readme_payload(payload: dict[str, Any]) -> tuple[str | None, str | None]:
    """Decode the JSON form of a README (``content`` + ``encoding``); return (text, note).

    Problems are reported in the note instead of raising: the text is None when the content
    is absent, withheld because the file is too large, or not valid base64.
    """
    encoding = payload.get("encoding")
    content = payload.get("content")
    if encoding == ENCODING_NOT_PROVIDED:
        return None, NOTE_TOO_LARGE
    if not isinstance(content, str):
        return None, NOTE_NO_CONTENT
    if encoding not in (ENCODING_BASE64, None):
        return None, f"unsupported content encoding {encoding!r}"
    # GitHub wraps the base64 text with a newline every 60 characters.
    compact = "".join(content.split())
    try:
        data = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return None, NOTE_INVALID_BASE64
    text, notes = _decode_bytes(data)
    return text, _join(notes)
