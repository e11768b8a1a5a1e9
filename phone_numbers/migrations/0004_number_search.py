from django.db import migrations

# Trigram indexes let "contains" searches (any run of digits, part of a ticket or sid) use an
# index instead of reading every row. Each indexes the expression Django's lookup compares:
# `contains` is `col::text LIKE`, `icontains` is `UPPER(col::text) LIKE`. They exist only on
# PostgreSQL; the embedded SQLite database scans, which is fine at its size.
TRIGRAM_INDEXES = {
    "numberimport_number_trgm": ("phone_numbers_numberimport", "(number::text)"),
    "numberimport_sid_trgm": ("phone_numbers_numberimport", "(UPPER(sid::text))"),
    "numberimport_friendly_trgm": ("phone_numbers_numberimport", "(UPPER(friendly_name::text))"),
    "importjob_ticket_trgm": ("phone_numbers_importjob", "(UPPER(ticket::text))"),
}


def create_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, (table, expression) in TRIGRAM_INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin ({expression} gin_trgm_ops)"
        )


def drop_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in TRIGRAM_INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("phone_numbers", "0003_import_jobs")]

    operations = [migrations.RunPython(create_trigram_indexes, drop_trigram_indexes)]
