"""Fernet encryption of stored GitHub credentials, with key rotation through MultiFernet."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

ENCRYPTION_KEY_ENV = "GITHUB_TOKEN_ENCRYPTION_KEY"
# A fingerprint names a key in the token table without revealing it: 12 hex digits of its
# SHA-256 are plenty to tell a handful of keys apart.
FINGERPRINT_HEX_DIGITS = 12


class VaultError(Exception):
    """Base class of encryption key and ciphertext problems."""


class MissingKeyError(VaultError):
    """No encryption key is configured."""


class InvalidKeyError(VaultError):
    """A configured key is not a Fernet key."""


class UndecryptableError(VaultError):
    """No configured key decrypts a stored value."""


def generate_key() -> str:
    """Return a new random Fernet key as text."""
    return Fernet.generate_key().decode("ascii")


def fingerprint(key: str) -> str:
    """Return a short, non-secret name for a key."""
    return hashlib.sha256(key.strip().encode("ascii")).hexdigest()[:FINGERPRINT_HEX_DIGITS]


def parse_keys(value: str | None) -> list[str]:
    """Split a comma-separated key list (newest first), dropping blanks."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


class Vault:
    """Encrypt with the newest key; decrypt with any configured key."""

    def __init__(self, keys: Sequence[str]) -> None:
        """Build the vault from keys, newest first."""
        if not keys:
            raise MissingKeyError(
                f"{ENCRYPTION_KEY_ENV} is not set: generate a key with "
                "`python -m trender.auth_setup key` and store it as "
                f"{ENCRYPTION_KEY_ENV} (a comma list 'new,old' while rotating)"
            )
        fernets = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.encode("ascii")))
            except (ValueError, UnicodeEncodeError):
                raise InvalidKeyError(
                    f"key {position} of {ENCRYPTION_KEY_ENV} is not a Fernet key "
                    "(32 url-safe base64-encoded bytes)"
                ) from None
        self._fingerprints = [fingerprint(key) for key in keys]
        self._multi = MultiFernet(fernets)
        self._newest = fernets[0]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Vault:
        """Build the vault from ``GITHUB_TOKEN_ENCRYPTION_KEY``."""
        return cls(parse_keys(env.get(ENCRYPTION_KEY_ENV)))

    @property
    def key_fingerprint(self) -> str:
        """Return the fingerprint of the key new values are encrypted with."""
        return self._fingerprints[0]

    @property
    def fingerprints(self) -> list[str]:
        """Return the fingerprints of every configured key, newest first."""
        return list(self._fingerprints)

    def encrypt(self, plaintext: str) -> str:
        """Encrypt text with the newest key."""
        return self._newest.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        """Decrypt text with whichever configured key wrote it."""
        try:
            return self._multi.decrypt(ciphertext.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise UndecryptableError(
                f"no key in {ENCRYPTION_KEY_ENV} (fingerprints "
                f"{', '.join(self._fingerprints)}) decrypts the stored value"
            ) from None

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt a value with the newest key."""
        try:
            return self._multi.rotate(ciphertext.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError):
            raise UndecryptableError(
                f"no key in {ENCRYPTION_KEY_ENV} decrypts the stored value; it cannot be rotated"
            ) from None

    def __repr__(self) -> str:
        """Show fingerprints only."""
        return f"Vault(fingerprints={self._fingerprints!r})"
