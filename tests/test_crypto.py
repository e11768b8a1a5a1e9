from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import FieldError
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from phone_numbers.crypto import DecryptionFailed, decrypt, encrypt
from phone_numbers.models import Credential

pytestmark = pytest.mark.both_databases

CANARY = "PTcanary-7f3a9c2e5b1d4e8fa6c0"
OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def raw_tokens() -> list[str | None]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT token FROM phone_numbers_credential")
        return [row[0] for row in cursor.fetchall()]


def test_encrypt_then_decrypt_gives_the_plaintext_back():
    ciphertext = encrypt(CANARY)

    assert CANARY not in ciphertext
    assert decrypt(ciphertext) == CANARY


def test_a_wrong_key_raises_instead_of_returning_ciphertext():
    with override_settings(PORTAL_ENCRYPTION_KEYS=[OLD_KEY]):
        ciphertext = encrypt(CANARY)

    with (
        override_settings(PORTAL_ENCRYPTION_KEYS=[NEW_KEY]),
        pytest.raises(DecryptionFailed) as info,
    ):
        decrypt(ciphertext)
    assert ciphertext not in str(info.value)


@pytest.mark.django_db
def test_the_database_column_holds_no_trace_of_the_token(make_project):
    make_project(token=CANARY)

    [stored] = raw_tokens()

    assert CANARY not in stored
    assert CANARY[-12:] not in stored
    assert Credential.objects.get().token == CANARY


@pytest.mark.django_db
def test_lookups_on_the_encrypted_column_are_refused(make_project):
    make_project(token=CANARY)

    with pytest.raises(FieldError, match="encrypted"):
        Credential.objects.filter(token=CANARY).exists()
    assert Credential.objects.filter(token__isnull=False).count() == 1


@pytest.mark.django_db
def test_rotation_re_encrypts_under_the_newest_key_and_old_keys_read_until_then(make_project):
    with override_settings(PORTAL_ENCRYPTION_KEYS=[OLD_KEY]):
        make_project(token=CANARY)
        make_project(token="PTsecond-token-000000000002")
    [before, _] = raw_tokens()

    with override_settings(PORTAL_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
        assert CANARY in {c.token for c in Credential.objects.all()}
        out = StringIO()
        call_command("rotate_encryption_keys", stdout=out)
    assert "Re-encrypted 2 token(s)" in out.getvalue()
    assert before not in raw_tokens()

    with override_settings(PORTAL_ENCRYPTION_KEYS=[NEW_KEY]):
        assert CANARY in {c.token for c in Credential.objects.all()}
    with override_settings(PORTAL_ENCRYPTION_KEYS=[OLD_KEY]), pytest.raises(DecryptionFailed):
        list(Credential.objects.all())


@pytest.mark.django_db
def test_replacing_the_token_revokes_and_erases_the_old_one(make_project, admin_user):
    project = make_project(token=CANARY)

    project.replace_token("PTnew-token-0000000000009999", by=admin_user)

    old, new = Credential.objects.order_by("pk")
    assert old.revoked_at is not None and old.revoked_by == admin_user
    assert old.token is None
    assert old.token_last4 == CANARY[-4:]
    assert project.active_credential == new
    assert new.token == "PTnew-token-0000000000009999"
    assert new.token_last4 == "9999"
    assert "9999" in str(new) and "PTnew" not in str(new)
