"""Tests of NUL-character hygiene."""

from __future__ import annotations

from collections import namedtuple

import pytest

from trender.text import sanitize, strip_nul


def test_strip_nul_nested_containers_and_keys():
    value = {
        "name\x00": "re\x00po",
        "topics": ["a\x00", "b", ("c\x00", {"deep\x00": ["x\x00y"]})],
        "stars": 5,
    }

    assert strip_nul(value) == {
        "name": "repo",
        "topics": ["a", "b", ("c", {"deep": ["xy"]})],
        "stars": 5,
    }


def test_strip_nul_returns_new_containers_and_leaves_input_alone():
    inner = ["a\x00"]
    value = {"k": inner}

    cleaned = strip_nul(value)

    assert cleaned is not value
    assert cleaned["k"] is not inner
    assert value == {"k": ["a\x00"]}


@pytest.mark.parametrize(
    "value",
    [42, 3.5, None, True, b"bytes\x00stay", {"set"}],
    ids=["int", "float", "none", "bool", "bytes", "set"],
)
def test_non_string_values_are_untouched(value):
    assert strip_nul(value) is value


def test_tuple_type_is_kept():
    point = namedtuple("Point", ["x", "label"])

    cleaned = strip_nul(point(1, "a\x00"))

    assert type(cleaned) is point
    assert cleaned == point(1, "a")
    assert strip_nul(("a\x00",)) == ("a",)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", ("plain", 0)),
        ("\x00\x00x\x00", ("x", 1)),
        ({"a\x00": "b\x00", "c": ["d\x00", "e", 1]}, ({"a": "b", "c": ["d", "e", 1]}, 3)),
        ([], ([], 0)),
    ],
    ids=["clean-string", "one-string-many-nuls", "keys-and-values-counted", "empty-list"],
)
def test_sanitize_counts_changed_strings(value, expected):
    assert sanitize(value) == expected


def test_colliding_keys_keep_the_later_value():
    assert sanitize({"a\x00": 1, "a": 2}) == ({"a": 2}, 1)
