"""Fernet encryption of stored credentials: keys, fingerprints, rotation and failures."""

from __future__ import annotations

import re

import pytest
from cryptography.fernet import Fernet

from trender.vault import (
    ENCRYPTION_KEY_ENV,
    InvalidKeyError,
    MissingKeyError,
    UndecryptableError,
    Vault,
    fingerprint,
    generate_key,
    parse_keys,
)

SECRET = "ghr_secretRefreshTokenValue0123456789"


def test_round_trip_and_fingerprint() -> None:
    key = generate_key()
    vault = Vault([key])

    ciphertext = vault.encrypt(SECRET)

    assert SECRET not in ciphertext
    assert vault.decrypt(ciphertext) == SECRET
    assert re.fullmatch(r"[0-9a-f]{12}", vault.key_fingerprint)
    assert vault.key_fingerprint == fingerprint(key) == fingerprint(f" {key} ")


def test_missing_key_says_how_to_make_one() -> None:
    with pytest.raises(
        MissingKeyError,
        match=rf"{ENCRYPTION_KEY_ENV} is not set: generate a key with "
        r"`python -m trender\.auth_setup key`",
    ):
        Vault.from_env({})


def test_invalid_key_is_named_by_position_without_echoing_it() -> None:
    with pytest.raises(InvalidKeyError, match=r"^key 2 of GITHUB_TOKEN_ENCRYPTION_KEY is not") as e:
        Vault.from_env({ENCRYPTION_KEY_ENV: f"{generate_key()},not-a-key"})
    assert "not-a-key" not in str(e.value)


def test_comma_list_decrypts_old_values_and_encrypts_with_the_newest() -> None:
    old, new = generate_key(), generate_key()
    written_before = Vault([old]).encrypt(SECRET)
    vault = Vault.from_env({ENCRYPTION_KEY_ENV: f"{new}, {old}"})

    assert vault.decrypt(written_before) == SECRET
    assert Fernet(new.encode()).decrypt(vault.encrypt(SECRET).encode()).decode() == SECRET
    assert vault.fingerprints == [fingerprint(new), fingerprint(old)]


def test_rotate_re_encrypts_with_the_newest_key() -> None:
    old, new = generate_key(), generate_key()
    rotated = Vault([new, old]).rotate(Vault([old]).encrypt(SECRET))

    assert Vault([new]).decrypt(rotated) == SECRET
    with pytest.raises(UndecryptableError):
        Vault([old]).decrypt(rotated)


def test_undecryptable_value_names_the_configured_keys_only() -> None:
    vault = Vault([generate_key()])
    ciphertext = Vault([generate_key()]).encrypt(SECRET)

    with pytest.raises(
        UndecryptableError,
        match=rf"no key in {ENCRYPTION_KEY_ENV} \(fingerprints {vault.key_fingerprint}\) decrypts",
    ) as error:
        vault.decrypt(ciphertext)
    assert ciphertext not in str(error.value)
    with pytest.raises(UndecryptableError, match="cannot be rotated"):
        vault.rotate(ciphertext)


def test_repr_shows_fingerprints_not_keys() -> None:
    key = generate_key()

    assert repr(Vault([key])) == f"Vault(fingerprints=['{fingerprint(key)}'])"


def test_parse_keys_drops_blanks() -> None:
    assert parse_keys(" a, ,b ,") == ["a", "b"]
    assert parse_keys(None) == []
