from django.db import migrations, models

# The numbers list searches the numbers that are only in a Space (SpaceNumber without an
# import of the portal's) as it searches the imports (migrations 0004 and 0006): digits
# through the index of every run of four digits (phone_numbers_digit_runs, from 0006) and
# through a trigram index, words in sids and friendly names through trigrams. Partial: a
# number the portal imported is found through its import. PostgreSQL only; SQLite has
# neither trigrams nor expression indexes of this kind and searches by reading the rows.
NOT_IMPORTED = "WHERE number_import_id IS NULL"
SEARCH_INDEXES = {
    "spacenumber_digit_runs": f"USING gin (phone_numbers_digit_runs(number)) {NOT_IMPORTED}",
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
    dependencies = [("phone_numbers", "0014_space_inventory")]

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
