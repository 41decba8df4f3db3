"""Tests of README decoding."""

from __future__ import annotations

import base64
import codecs

import pytest

from trender.github.readme import decode_readme_payload, decode_readme_raw


def wrapped_base64(data: bytes, width: int = 60) -> str:
    """Encode ``data`` the way GitHub does: base64 with a newline every 60 characters."""
    encoded = base64.b64encode(data).decode("ascii")
    return "\n".join(encoded[i : i + width] for i in range(0, len(encoded), width)) + "\n"


def payload(data: bytes, encoding: str = "base64") -> dict:
    """Build a contents-API object holding ``data``."""
    return {"type": "file", "encoding": encoding, "content": wrapped_base64(data)}


def test_wrapped_base64_decodes_to_utf8_text():
    text = "# Projet\n\nUne bibliothèque écrite en Python. " * 10
    content = payload(text.encode("utf-8"))
    assert "\n" in content["content"].rstrip("\n")

    assert decode_readme_payload(content) == (text, None)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (codecs.BOM_UTF8 + "# Título".encode(), ("# Título", "utf-8 BOM removed")),
        ("café “quoted”".encode("cp1252"), ("café “quoted”", "decoded as cp1252")),
        (b"caf\xe9 \x81", ("café \x81", "decoded as latin-1")),
        (b"# Hi\x00 there\x00", ("# Hi there", "nul characters removed")),
        ("# Ünïcode".encode("utf-16"), ("# Ünïcode", "decoded as utf-16")),
        ("# BE".encode("utf-16-be"), ("# BE", "nul characters removed")),
        (codecs.BOM_UTF16_BE + "# BE".encode("utf-16-be"), ("# BE", "decoded as utf-16")),
        (
            codecs.BOM_UTF8 + b"a\x00b",
            ("ab", "utf-8 BOM removed; nul characters removed"),
        ),
        (b"", ("", None)),
    ],
    ids=[
        "utf8-bom",
        "cp1252",
        "latin1-fallback",
        "nul",
        "utf16-le-bom",
        "utf16-without-bom-reads-as-ascii-with-nuls",
        "utf16-be-bom",
        "bom-and-nul",
        "empty",
    ],
)
def test_decode_bytes_variants(data: bytes, expected: tuple[str, str | None]):
    assert decode_readme_payload(payload(data)) == expected
    assert decode_readme_raw(data) == expected


def test_utf16_bom_without_valid_utf16_falls_back():
    # An odd number of bytes after the BOM cannot be UTF-16; cp1252 decodes it instead.
    data = codecs.BOM_UTF16_LE + b"abc"

    assert decode_readme_raw(data) == ("ÿþabc", "decoded as cp1252")


def test_encoding_none_means_file_too_large():
    assert decode_readme_payload({"encoding": "none", "content": "", "size": 2_000_000}) == (
        None,
        "content not provided (file too large)",
    )


@pytest.mark.parametrize(
    "content",
    ["encoded content ...", "not*base64", "YWJj=ZA==", "YWJjZ"],
    ids=["openapi-placeholder", "bad-character", "padding-in-middle", "incorrect-padding"],
)
def test_invalid_base64_is_a_note_not_an_exception(content: str):
    assert decode_readme_payload({"encoding": "base64", "content": content}) == (
        None,
        "content not valid base64",
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"encoding": "base64"}, (None, "content missing")),
        ({"encoding": "base64", "content": None}, (None, "content missing")),
        ({"encoding": "utf-8", "content": "hi"}, (None, "unsupported content encoding 'utf-8'")),
        ({"content": "aGk="}, ("hi", None)),
    ],
    ids=["no-content-key", "null-content", "unknown-encoding", "encoding-key-missing"],
)
def test_payload_edge_shapes(body: dict, expected: tuple):
    assert decode_readme_payload(body) == expected


def test_raw_text_body_keeps_text_and_strips_nul():
    assert decode_readme_raw("# hello-world") == ("# hello-world", None)
    assert decode_readme_raw("a\x00b") == ("ab", "nul characters removed")
