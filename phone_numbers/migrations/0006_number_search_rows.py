import django.db.models.deletion
from django.db import migrations, models

# A digit search of four or more digits finds its rows through an index of every run of four
# digits in each number: a trigram index on digits is weak, as ten digits make only a thousand
# trigrams and each is in a hundred thousand numbers. NumberSearchRow is kept by PostgreSQL itself, so no write path in Python can forget it: a
# statement trigger copies inserted number imports (bulk_create included, in one INSERT), and
# a row trigger copies a changed number, status or project. Deletes cascade through Django,
# as for any model. On SQLite there are no triggers; the table stays empty and unused.
CREATE_COPY = """
CREATE FUNCTION phone_numbers_digit_runs(number text) RETURNS integer[]
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE sql AS $$
    SELECT coalesce(array_agg(DISTINCT substr(digits, start, 4)::integer), '{}')
    FROM (SELECT regexp_replace(number, '[^0-9]', '', 'g') AS digits) AS number_digits,
        generate_series(1, length(digits) - 3) AS start
$$;

CREATE FUNCTION phone_numbers_copy_inserted_numbers() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO phone_numbers_numbersearchrow (number_import_id, project_id, number, status)
    SELECT id, project_id, number, status FROM inserted;
    RETURN NULL;
END
$$;

CREATE TRIGGER numberimport_copy_inserted
    AFTER INSERT ON phone_numbers_numberimport
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION phone_numbers_copy_inserted_numbers();

CREATE FUNCTION phone_numbers_copy_changed_number() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE phone_numbers_numbersearchrow
    SET project_id = NEW.project_id, number = NEW.number, status = NEW.status
    WHERE number_import_id = NEW.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER numberimport_copy_changed
    AFTER UPDATE OF project_id, number, status ON phone_numbers_numberimport
    FOR EACH ROW
    WHEN ((OLD.project_id, OLD.number, OLD.status)
          IS DISTINCT FROM (NEW.project_id, NEW.number, NEW.status))
    EXECUTE FUNCTION phone_numbers_copy_changed_number();

INSERT INTO phone_numbers_numbersearchrow (number_import_id, project_id, number, status)
SELECT id, project_id, number, status FROM phone_numbers_numberimport;

CREATE INDEX numbersearchrow_digit_runs
    ON phone_numbers_numbersearchrow USING gin (phone_numbers_digit_runs(number));
"""

DROP_COPY = """
DROP TRIGGER numberimport_copy_changed ON phone_numbers_numberimport;
DROP FUNCTION phone_numbers_copy_changed_number();
DROP TRIGGER numberimport_copy_inserted ON phone_numbers_numberimport;
DROP FUNCTION phone_numbers_copy_inserted_numbers();
DROP INDEX numbersearchrow_digit_runs;
DROP FUNCTION phone_numbers_digit_runs(text);
"""


def create_copy(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE_COPY)


def drop_copy(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_COPY)


class Migration(migrations.Migration):
    dependencies = [("phone_numbers", "0005_audit_log")]

    operations = [
        migrations.CreateModel(
            name="NumberSearchRow",
            fields=[
                (
                    "number_import",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="phone_numbers.numberimport",
                    ),
                ),
                ("number", models.CharField(max_length=32)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("submitting", "Submitting"),
                            ("imported", "Imported"),
                            ("failed", "Failed"),
                            ("cancelled", "Cancelled"),
                        ],
                        max_length=12,
                    ),
                ),
                (
                    "project",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="phone_numbers.project",
                    ),
                ),
            ],
        ),
        migrations.RunPython(create_copy, drop_copy),
    ]
