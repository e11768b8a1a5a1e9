from django.db import migrations, models

# The numbers list searches the numbers that are only in a Space (SpaceNumber without an
# import of the portal's) as it searches the imports (migration 0004): digits with a filter
# that the narrow copy lacks through a trigram index of the number (the copy and its index
# of digit runs are migration 0020's), words in sids and friendly names through trigrams.
# Partial: a number the portal imported is found through its import. PostgreSQL only; SQLite
# has neither trigrams nor expression indexes of this kind and searches by reading the rows.
NOT_IMPORTED = "WHERE number_import_id IS NULL"
SEARCH_INDEXES = {
    "spacenumber_number_trgm": f"USING gin ((number::text) gin_trgm_ops) {NOT_IMPORTED}",
    "spacenumber_sid_trgm": f"USING gin ((UPPER(sid::text)) gin_trgm_ops) {NOT_IMPORTED}",
    "spacenumber_friendly_trgm": (
        f"USING gin ((UPPER(friendly_name::text)) gin_trgm_ops) {NOT_IMPORTED}"
    ),
}


def create_search_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name, definition in SEARCH_INDEXES.items():
            schema_editor.execute(
                f"CREATE INDEX IF NOT EXISTS {name} ON phone_numbers_spacenumber {definition}"
            )


def drop_search_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name in SEARCH_INDEXES:
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("phone_numbers", "0018_inventory_sync_runs")]

    operations = [
        migrations.AddIndex(
            model_name="numberimport",
            index=models.Index(
                condition=models.Q(("missing_from_space_since__isnull", False)),
                fields=["id"],
                name="numberimport_missing",
            ),
        ),
        migrations.AddIndex(
            model_name="spacenumber",
            index=models.Index(
                condition=models.Q(("number_import__isnull", True)),
                fields=["id"],
                name="spacenumber_not_imported",
            ),
        ),
        migrations.AddIndex(
            model_name="spacenumber",
            index=models.Index(
                condition=models.Q(("differs_from_import", True)),
                fields=["number_import"],
                name="spacenumber_differs",
            ),
        ),
        migrations.RunPython(create_search_indexes, drop_search_indexes),
    ]
