"""Text hygiene for values headed to PostgreSQL, which cannot store NUL characters in text."""

from __future__ import annotations

from typing import Any

NUL = "\x00"


def _clean(value: Any) -> tuple[Any, int]:
    """Return ``value`` without NUL characters and the number of strings that changed."""
    if isinstance(value, str):
        if NUL in value:
            return value.replace(NUL, ""), 1
        return value, 0
    if isinstance(value, dict):
        cleaned: dict[Any, Any] = {}
        changed = 0
        for key, item in value.items():
            new_key, key_changes = _clean(key)
            new_item, item_changes = _clean(item)
            cleaned[new_key] = new_item
            changed += key_changes + item_changes
        return cleaned, changed
    if isinstance(value, (list, tuple)):
        parts = [_clean(item) for item in value]
        items = [item for item, _ in parts]
        changed = sum(count for _, count in parts)
        if isinstance(value, list):
            return items, changed
        if hasattr(value, "_fields"):
            return type(value)(*items), changed
        return tuple(items), changed
    return value, 0


def sanitize(value: Any) -> tuple[Any, int]:
    """Remove NUL characters from every string inside ``value``; return it and the change count.

    Dicts, lists and tuples are copied (dict keys are cleaned too); other values are returned
    unchanged. If two keys become equal after cleaning, the later one wins.
    """
    return _clean(value)


def strip_nul(value: Any) -> Any:
    """Remove NUL characters from every string inside ``value``, returning new containers."""
    cleaned, _ = _clean(value)
    return cleaned
