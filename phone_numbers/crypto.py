"""Encryption at rest of API tokens: the only code that touches the keys.

Keys come from settings.PORTAL_ENCRYPTION_KEYS (Fernet keys, newest first). The newest
encrypts; every key decrypts, so a key can be retired after `rotate_encryption_keys`.
"""

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import FieldError
from django.db import models


class DecryptionFailed(Exception):
    """A stored value could not be decrypted with any configured key."""


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def _current_fernet() -> MultiFernet:
    return _fernet(tuple(settings.PORTAL_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    """Encrypt under the newest key."""
    return _current_fernet().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    """Decrypt with whichever configured key fits; never hands back the ciphertext."""
    try:
        return _current_fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise DecryptionFailed(
            "A stored token cannot be decrypted with PORTAL_ENCRYPTION_KEYS: "
            "was the key it was encrypted with removed?"
        ) from None


def is_readable(ciphertext: str) -> bool:
    """Whether a configured key fits the stored value: its signature is checked, and nothing
    is decrypted."""
    try:
        _current_fernet().extract_timestamp(ciphertext.encode())
    except InvalidToken:
        return False
    return True


class EncryptedTextField(models.TextField):
    """A text column stored encrypted; Python code sees the plaintext.

    Fernet ciphertexts differ at every save, so comparing the column with a value can never
    match: every lookup except isnull is refused.
    """

    def from_db_value(self, value, expression, connection):
        return None if value is None else decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return None if value is None else encrypt(value)

    def get_lookup(self, lookup_name):
        if lookup_name != "isnull":
            raise FieldError(
                f"{self.model.__name__}.{self.name} is encrypted: "
                f"'{lookup_name}' lookups cannot work on it"
            )
        return super().get_lookup(lookup_name)
