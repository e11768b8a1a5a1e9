from io import StringIO

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.both_databases


@pytest.mark.django_db
def test_models_and_migrations_agree():
    out = StringIO()

    call_command("makemigrations", "--check", "--dry-run", stdout=out)

    assert "No changes detected" in out.getvalue()


def migration_named(executor, suffix: str) -> tuple[str, str]:
    """The phone_numbers migration whose name ends with `suffix` (its number may change)."""
    (key,) = [
        key
        for key in executor.loader.graph.nodes
        if key[0] == "phone_numbers" and key[1].endswith(suffix)
    ]
    return key


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_connection_details_stored_before_fixed_sentences_are_forgotten():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    target = migration_named(executor, "_connection_detail_fixed_sentences")
    (before,) = executor.loader.graph.node_map[target].parents
    executor.migrate([before.key])
    project = executor.loader.project_state([before.key]).apps.get_model("phone_numbers", "Project")
    fields = {"default_country": "US", "space_host": "acme.signalwire.com"}
    raw = project.objects.create(
        name="Raw",
        project_id="00000000-0000-4000-8000-000000000001",
        connection_status="unreachable",
        connection_detail="could not connect (ConnectionError: INTERNAL-ONLY: db=10.0.0.5)",
        **fields,
    )
    unfinished = project.objects.create(
        name="Unfinished",
        project_id="00000000-0000-4000-8000-000000000002",
        connection_status="unchecked",
        connection_detail="No outcome within 66 s: the check was probably lost.",
        **fields,
    )

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes("phone_numbers"))

    raw.refresh_from_db()
    unfinished.refresh_from_db()
    assert (raw.connection_status, raw.connection_detail) == ("unreachable", "")
    assert unfinished.connection_detail.startswith("No outcome within 66 s")
