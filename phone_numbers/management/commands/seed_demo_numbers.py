"""Fill the database with realistic imported numbers, for demos and the search benchmark."""

import random
import uuid
from datetime import timedelta

import phonenumbers
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from phone_numbers.capabilities import CAPABILITIES
from phone_numbers.models import ImportJob, ImportStatus, NumberImport, Project

# Regions with numbers of the usual lengths; each contributes numbers of its example ranges.
REGIONS = ["US", "CA", "GB", "DE", "FR", "ES", "IT", "NL", "AU", "BR", "MX", "IN", "JP", "SE"]
STATUSES = [
    (ImportStatus.IMPORTED, 0.86),
    (ImportStatus.FAILED, 0.07),
    (ImportStatus.CANCELLED, 0.03),
    (ImportStatus.PENDING, 0.04),
]
NUMBERS_PER_JOB = 1000
BATCH_SIZE = 5000
CUSTOMERS = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Stark",
    "Wayne",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
]


class Command(BaseCommand):
    help = (
        "Add COUNT seeded number imports across PROJECTS projects (created as needed), in "
        "jobs of 1,000, with every status; bulk inserts, a million rows in minutes."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--count", type=int, required=True)
        parser.add_argument("--projects", type=int, default=200)
        parser.add_argument("--seed", type=int, default=1)

    def handle(self, *args, count: int, projects: int, seed: int, **options) -> None:
        if count < 1 or projects < 1:
            raise CommandError("--count and --projects must be at least 1")
        # Bandit B311 is a false alarm: seeded, for repeatable demo data; nothing secret.
        rng = random.Random(seed)  # nosec B311
        users = self.seed_users()
        seeded_projects = self.seed_projects(projects)
        prefixes = self.number_prefixes()
        # A run's own serial keeps its numbers apart from earlier runs' (one live per project).
        serial = NumberImport.objects.count()
        now = timezone.now()
        made = 0
        while made < count:
            size = min(NUMBERS_PER_JOB, count - made)
            project = rng.choice(seeded_projects)
            with transaction.atomic():
                job = ImportJob.objects.create(
                    project=project,
                    created_by=rng.choice(users),
                    source=rng.choice(ImportJob.Source.values),
                    ticket=f"HD-{rng.randint(10000, 99999)}",
                    number_type="longcode",
                    capabilities=list(CAPABILITIES),
                    input_digest=uuid.uuid4().hex,
                    # Seeded pending numbers stay put: nothing sends them to SignalWire.
                    paused_at=now,
                    pause_reason="Seeded demo data.",
                )
                rows = []
                for index in range(size):
                    status = rng.choices(*zip(*STATUSES, strict=True))[0]
                    imported_at = now - timedelta(minutes=rng.randint(0, 2 * 365 * 24 * 60))
                    number = self.number(prefixes, serial + made + index)
                    rows.append(
                        NumberImport(
                            job=job,
                            project=project,
                            number=number,
                            input_text=number,
                            input_line=index + 1,
                            number_type=rng.choice(["longcode"] * 9 + ["tollfree"]),
                            capabilities=rng.choice(
                                [list(CAPABILITIES), ["sms", "voice"], ["voice"], ["sms", "mms"]]
                            ),
                            status=status,
                            attempts=1 if status != ImportStatus.PENDING else 0,
                            **self.outcome(status, number, imported_at, rng),
                        )
                    )
                NumberImport.objects.bulk_create(rows, batch_size=BATCH_SIZE)
            made += size
            if made % 100_000 < NUMBERS_PER_JOB:
                self.stdout.write(f"{made:,} of {count:,}")
        self.stdout.write(self.style.SUCCESS(f"Added {made:,} number imports."))

    def seed_users(self) -> list:
        users = get_user_model()
        return [
            users.objects.get_or_create(username=name, defaults={"first_name": name.title()})[0]
            for name in ["sam", "alex", "robin", "kim", "jo"]
        ]

    def seed_projects(self, count: int) -> list[Project]:
        existing = list(Project.objects.filter(name__startswith="Seeded ")[:count])
        for index in range(len(existing), count):
            customer = CUSTOMERS[index % len(CUSTOMERS)]
            existing.append(
                Project.objects.create(
                    name=f"Seeded {customer} {index + 1}",
                    space_host=f"{customer.lower()}{index + 1}.signalwire.com",
                    project_id=uuid.UUID(int=index + 1),
                    default_country=REGIONS[index % len(REGIONS)],
                )
            )
        return existing

    def number_prefixes(self) -> list[str]:
        """The first digits of each region's example numbers, without their last five."""
        prefixes = []
        for region in REGIONS:
            example = phonenumbers.example_number(region)
            e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            prefixes.append(e164[:-5])
        return prefixes

    def number(self, prefixes: list[str], serial: int) -> str:
        # Spread the serial over the regions' prefixes, then count up their last five digits
        # (six and more past 1.4 million): every serial gives a distinct number.
        return f"{prefixes[serial % len(prefixes)]}{serial // len(prefixes):05d}"

    def outcome(self, status: str, number: str, imported_at, rng: random.Random) -> dict:
        if status == ImportStatus.IMPORTED:
            sid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            return {
                "sid": sid,
                "friendly_name": phonenumbers.format_number(
                    phonenumbers.parse(number), phonenumbers.PhoneNumberFormat.NATIONAL
                ),
                "imported_at": imported_at,
                "response": {"sid": sid, "phone_number": number, "origin": "signalwire"},
            }
        if status == ImportStatus.FAILED:
            return {
                "failure_category": "upstream",
                "error_message": "Service Unavailable",
                "http_status": 503,
            }
        return {}
