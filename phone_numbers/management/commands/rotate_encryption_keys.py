from django.core.management.base import BaseCommand
from django.db import transaction

from phone_numbers.models import Credential


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored API token under the newest key of PORTAL_ENCRYPTION_KEYS, "
        "so that older keys can then be removed."
    )

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        rewritten = 0
        for credential in Credential.objects.select_for_update().filter(token__isnull=False):
            # Loading decrypts with whichever key fits; saving encrypts under the newest.
            credential.save(update_fields=["token"])
            rewritten += 1
        self.stdout.write(f"Re-encrypted {rewritten} token(s) under the newest key.")
