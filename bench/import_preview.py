"""How long the New import page takes to preview and to confirm 10,000 numbers.

Runs the real views through Django's test client against a throwaway database created on the
configured server (DATABASE_URL, default PostgreSQL on 127.0.0.1:5432) and dropped at the end.
Side by side, in the same run: the same confirm done the naive way (one INSERT per number).

    .venv/bin/python bench/import_preview.py [--lines 10000] [--repeat 3]
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.test_settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import Group, User  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.urls import reverse  # noqa: E402

from phone_numbers import importing  # noqa: E402
from phone_numbers.models import ImportJob, NumberImport, Project  # noqa: E402
from phone_numbers.number_input import read_pasted  # noqa: E402
from phone_numbers.roles import SUPPORT  # noqa: E402
from phone_numbers.tasks import import_phone_number  # noqa: E402

HTMX = {"HX-Request": "true"}


def pasted_numbers(count: int) -> str:
    # Mixed written forms, as people paste them; numbers in valid US ranges.
    forms = ["+1 415 {a:03d} {b:04d}", "(212) {a:03d}-{b:04d}", "tel:+1-646-{a:03d}-{b:04d}"]
    return "\n".join(forms[i % 3].format(a=200 + i // 10000, b=i % 10000) for i in range(count))


def timed(action, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    result = action(*args, **kwargs)
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    setup_test_environment()
    # Tasks are not sent anywhere: only the first window of a job is queued at confirm anyway.
    import_phone_number.apply_async = lambda *a, **k: None
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        user = User.objects.create_user("bench")
        user.groups.add(Group.objects.get(name=SUPPORT))
        client = Client()
        client.force_login(user)
        text = pasted_numbers(args.lines)
        lines = read_pasted(text)
        results: dict[str, list[float]] = {"preview": [], "confirm": [], "naive confirm": []}
        for run in range(args.repeat):
            project = Project.objects.create(
                name=f"Bench {run}",
                space_host=f"bench{run}.signalwire.com",
                project_id=f"00000000-0000-4000-8000-{run:012d}",
                default_country="US",
            )
            project.replace_token("PTbench-token-0000", by=None)
            data = {
                "project": project.pk,
                "numbers": text,
                "number_type": "longcode",
                "capabilities": ["sms", "voice", "fax", "mms"],
            }
            url = reverse("phone_numbers:import_new")
            seconds, response = timed(client.post, url, data, headers=HTMX)
            assert len(response.context["preview"].importable) == args.lines
            results["preview"].append(seconds)
            confirmed = data | {"confirm": response.context["digest"]}
            seconds, response = timed(client.post, url, confirmed, headers=HTMX)
            assert "HX-Redirect" in response
            results["confirm"].append(seconds)
            assert NumberImport.objects.filter(project=project).count() == args.lines

            # The alternative: the same rows, one INSERT each, in one transaction.
            other = Project.objects.create(
                name=f"Naive {run}",
                space_host=f"naive{run}.signalwire.com",
                project_id=f"00000000-0000-4000-9000-{run:012d}",
                default_country="US",
            )

            def naive_confirm(other=other):
                preview = importing.preview(other, lines, "longcode", ["sms"])
                with transaction.atomic():
                    job = ImportJob.objects.create(
                        project=other, source="paste", number_type="longcode", input_digest="x"
                    )
                    for row in preview.importable:
                        NumberImport.objects.create(
                            job=job, project=other, number=row.e164, number_type="longcode"
                        )

            seconds, _ = timed(naive_confirm)
            results["naive confirm"].append(seconds)

        vendor = connection.vendor
        print(f"{args.lines:,} pasted lines, {args.repeat} runs, database: {vendor}")
        for name, values in results.items():
            print(
                f"  {name:<14} median {statistics.median(values):6.2f} s"
                f"   best {min(values):6.2f} s   worst {max(values):6.2f} s"
            )
        ratio = statistics.median(results["naive confirm"]) / statistics.median(results["confirm"])
        print(f"  confirm (bulk) is {ratio:.1f}x faster than one INSERT per number")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
