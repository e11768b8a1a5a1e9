import django.db.models.deletion
from django.db import migrations, models

# The digit search of the numbers only in a Space reads a narrow copy of them, as the imports'
# reads NumberSearchRow (migration 0006): matching 10,000 of a million inventory rows, the
# digit-run index finds them in 2 ms but visiting them in the wide SpaceNumber table took
# 25 ms (3,245 pages), and 5.6 ms in the copy (1,034 pages). PostgreSQL keeps the copy
# itself, so the inventory sync (or any other writer) cannot forget it: a statement trigger
# copies inserted rows without an import, a row trigger follows a changed number, project or
# import link (including SET NULL when an import is deleted), and a statement trigger drops
# deleted rows. Neither table holds a constraint on the other, so Django deletes SpaceNumber
# rows as before. On SQLite there are no triggers; the table stays empty and unused.
CREATE_COPY = """
CREATE FUNCTION phone_numbers_copy_inserted_space_numbers() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO phone_numbers_spacenumbersearchrow (space_number_id, project_id, number)
    SELECT id, project_id, number FROM inserted WHERE number_import_id IS NULL;
    RETURN NULL;
END
$$;

CREATE TRIGGER spacenumber_copy_inserted
    AFTER INSERT ON phone_numbers_spacenumber
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION phone_numbers_copy_inserted_space_numbers();

CREATE FUNCTION phone_numbers_copy_changed_space_number() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM phone_numbers_spacenumbersearchrow WHERE space_number_id = OLD.id;
    IF NEW.number_import_id IS NULL THEN
        INSERT INTO phone_numbers_spacenumbersearchrow (space_number_id, project_id, number)
        VALUES (NEW.id, NEW.project_id, NEW.number);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER spacenumber_copy_changed
    AFTER UPDATE OF id, project_id, number, number_import_id ON phone_numbers_spacenumber
    FOR EACH ROW
    WHEN ((OLD.id, OLD.project_id, OLD.number, OLD.number_import_id IS NULL)
          IS DISTINCT FROM (NEW.id, NEW.project_id, NEW.number, NEW.number_import_id IS NULL))
    EXECUTE FUNCTION phone_numbers_copy_changed_space_number();

CREATE FUNCTION phone_numbers_drop_deleted_space_numbers() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM phone_numbers_spacenumbersearchrow AS copy
    USING deleted WHERE copy.space_number_id = deleted.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER spacenumber_drop_deleted
    AFTER DELETE ON phone_numbers_spacenumber
    REFERENCING OLD TABLE AS deleted
    FOR EACH STATEMENT EXECUTE FUNCTION phone_numbers_drop_deleted_space_numbers();

INSERT INTO phone_numbers_spacenumbersearchrow (space_number_id, project_id, number)
SELECT id, project_id, number FROM phone_numbers_spacenumber WHERE number_import_id IS NULL;

CREATE INDEX spacenumbersearchrow_digit_runs
    ON phone_numbers_spacenumbersearchrow USING gin (phone_numbers_digit_runs(number));
"""

DROP_COPY = """
DROP TRIGGER spacenumber_drop_deleted ON phone_numbers_spacenumber;
DROP FUNCTION phone_numbers_drop_deleted_space_numbers();
DROP TRIGGER spacenumber_copy_changed ON phone_numbers_spacenumber;
DROP FUNCTION phone_numbers_copy_changed_space_number();
DROP TRIGGER spacenumber_copy_inserted ON phone_numbers_spacenumber;
DROP FUNCTION phone_numbers_copy_inserted_space_numbers();
DROP INDEX spacenumbersearchrow_digit_runs;
"""


def create_copy(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE_COPY)


def drop_copy(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_COPY)


class Migration(migrations.Migration):
    dependencies = [("phone_numbers", "0019_inventory_search")]

    operations = [
        migrations.CreateModel(
            name="SpaceNumberSearchRow",
            fields=[
                (
                    "space_number",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="phone_numbers.spacenumber",
                    ),
                ),
                ("number", models.CharField(max_length=32)),
                (
                    "project",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="phone_numbers.project",
                    ),
                ),
            ],
        ),
        migrations.RunPython(create_copy, drop_copy),
    ]
