import re
from urllib.parse import urlsplit

from django import forms
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import QuerySet
from django.forms.models import ModelChoiceIterator
from django.utils.html import format_html, format_html_join
from django.views.decorators.debug import sensitive_variables

from phone_numbers import search
from phone_numbers.capabilities import CAPABILITIES, CAPABILITY_LABELS
from phone_numbers.countries import country_choices
from phone_numbers.importing import refusal_for
from phone_numbers.models import (
    AuditAction,
    AuditEntry,
    EmailPreference,
    ImportJob,
    ImportStatus,
    NumberImport,
    NumberType,
    Project,
    SpaceNumber,
)
from phone_numbers.number_input import (
    CSV_MAX_BYTES,
    CSV_MAX_ROWS,
    CSV_TOO_LARGE,
    InputError,
    read_csv,
    read_pasted,
)

_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# A port at the end of the host part of a typed host or URL.
_PORT = re.compile(r":(\d*)$")


def typed_port(value: str) -> str | None:
    """The port of a typed host or URL (`https://acme.signalwire.com:8443/` → "8443"), or None."""
    after_scheme = value.strip().split("://", 1)[-1]
    host_part = re.split(r"[/?#]", after_scheme, maxsplit=1)[0].rpartition("@")[2]
    match = _PORT.search(host_part)
    return match.group(1) if match else None


def normalise_space_host(value: str) -> str:
    """`https://acme.signalwire.com/dashboard` → `acme.signalwire.com`; raises ValueError."""
    value = value.strip().lower()
    if "://" in value:
        value = urlsplit(value).hostname or ""
    value = value.rstrip("/").rstrip(".")
    labels = value.split(".")
    if len(labels) < 2 or not all(_HOST_LABEL.match(label) for label in labels):
        raise ValueError(value)
    return value


class QuickSelect(forms.Select):
    """A select that writes its options in Python: the HTML of Django's own templates, less
    their blank lines, without rendering a template for each option. 200 projects took 5 to
    9 ms of every page that offers them, 1.5 ms so (README, "Benchmarks"); the numbers list
    offers them twice."""

    def render(self, name, value, attrs=None, renderer=None) -> str:
        if isinstance(self.choices, ModelChoiceIterator):
            # Read in one plain query: Django's iterator of a field's choices opens a
            # server-side cursor (DECLARE, FETCH, CLOSE: three round trips) at every render.
            field = self.choices.field
            empty = [] if field.empty_label is None else [("", field.empty_label)]
            self.choices = empty + [
                (row.pk, field.label_from_instance(row)) for row in field.queryset
            ]
        widget = self.get_context(name, value, attrs)["widget"]
        options = format_html_join(
            "",
            '\n  <option value="{}"{}>{}</option>',
            (
                (str(option["value"]), _attributes(option["attrs"]), option["label"])
                for _, group, _ in widget["optgroups"]
                for option in group
            ),
        )
        return format_html(
            '<select name="{}"{}>{}\n</select>',
            widget["name"],
            _attributes(widget["attrs"]),
            options,
        )


def _attributes(attrs: dict) -> str:
    """Attributes as django/forms/widgets/attrs.html writes them, in their order."""
    return format_html_join(
        "",
        "{}",
        (
            (format_html(" {}", name) if value is True else format_html(' {}="{}"', name, value),)
            for name, value in attrs.items()
            if value is not False
        ),
    )


class ProjectForm(forms.ModelForm):
    """Create or edit a project; the token is write-only."""

    token = forms.CharField(
        label="API token",
        required=False,
        strip=True,
        max_length=200,
        # The token is never rendered back, not even after a failed submit.
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="A token of this project with the Numbers scope. It is stored encrypted "
        "and never shown again.",
    )

    class Meta:
        model = Project
        fields = ["name", "space_host", "project_id", "default_country", "notes", "token"]
        widgets = {
            "default_country": forms.Select(),
            "notes": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["default_country"].widget.choices = [("", "Choose a country…")] + list(
            country_choices()
        )
        self.fields["project_id"].error_messages["invalid"] = (
            "Enter the project ID as a UUID, like 8f0c2a3e-1b2c-4d5e-8f90-123456789abc."
        )
        if self.instance.pk:
            credential = self.instance.active_credential
            self.fields["token"].label = "Replace API token"
            # Plain text: the template escapes help texts, token characters included.
            if credential is None:
                self.fields["token"].help_text = "This project has no token: add one."
            elif self.instance.has_unreadable_token:
                self.fields["token"].help_text = (
                    f"The stored token (…{credential.token_last4}) cannot be read with the "
                    "portal's keys: enter the project's token again."
                )
            else:
                self.fields["token"].help_text = (
                    f"Leave blank to keep the current token (…{credential.token_last4}). "
                    "Changing the Space host or project ID needs the token again."
                )
        else:
            self.fields["token"].required = True

    def clean_space_host(self) -> str:
        typed = self.cleaned_data["space_host"]
        if (port := typed_port(typed)) is not None:
            # Refused, not dropped: a host with a port is some other server than the Space.
            raise forms.ValidationError(
                f"Remove the port “:{port}”: a SignalWire Space answers on the standard HTTPS "
                "port only."
            )
        try:
            return normalise_space_host(typed)
        except ValueError:
            raise forms.ValidationError(
                "Enter the Space's host name, like acme.signalwire.com (a pasted Space URL "
                "works too)."
            ) from None

    def clean_default_country(self) -> str:
        code = self.cleaned_data["default_country"].strip().upper()
        if code not in dict(country_choices()):
            raise forms.ValidationError("Choose the country from the list.")
        return code

    @sensitive_variables("token")
    def clean_token(self) -> str:
        token = self.cleaned_data["token"]
        if re.search(r"\s", token):
            raise forms.ValidationError(
                "The token contains spaces or line breaks: copy it again, without them."
            )
        return token

    def clean(self) -> dict:
        cleaned = super().clean()
        host, project_id = cleaned.get("space_host"), cleaned.get("project_id")
        duplicate = (
            Project.objects.filter(space_host=host, project_id=project_id)
            .exclude(pk=self.instance.pk)
            .first()
        )
        if duplicate:
            self.add_error(
                "project_id",
                f"This Space already has this project in the portal: “{duplicate.name}”.",
            )
        moved = self._moved_fields(cleaned)
        if moved and not cleaned.get("token") and "token" not in self.errors:
            self.add_error(
                "token",
                f"You changed the {' and the '.join(moved)}: enter this project's API token "
                "again. The stored token is revoked, never sent to another Space or project.",
            )
        return cleaned

    def _moved_fields(self, cleaned: dict) -> list[str]:
        """Labels of the fields that point an existing project at another Space or project."""
        if not self.instance.pk:
            return []
        return [
            self.fields[name].label
            for name in ("space_host", "project_id")
            if name in cleaned and cleaned[name] != getattr(self.instance, name)
        ]

    @transaction.atomic
    def save(self, by) -> Project:
        project = super().save(commit=False)
        # A new Space host or project ID revokes the stored token (Project.save), by `by`.
        project.save(by=by)
        if self.cleaned_data["token"]:
            project.replace_token(self.cleaned_data["token"], by=by)
        return project


TICKET_MAX_LENGTH = ImportJob._meta.get_field("ticket").max_length


class ImportForm(forms.Form):
    """A new import job: numbers pasted or in a CSV file, for one project."""

    project = forms.ModelChoiceField(
        queryset=Project.objects.order_by("name"),
        widget=QuickSelect,
        empty_label="Choose the customer's project…",
        error_messages={"required": "Choose the project to import into."},
    )
    numbers = forms.CharField(
        label="Numbers",
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        help_text="One number a line, in any usual form: +1 415 555 0100, (415) 555-0100, "
        "tel:+14155550100, 0044 20 7946 0958.",
    )
    csv_file = forms.FileField(
        label="…or a CSV file",
        required=False,
        help_text="A “number” column, and optionally “number_type” and “capabilities” columns "
        "that override the choices below for their row.",
    )
    number_type = forms.ChoiceField(
        choices=NumberType.choices, initial=NumberType.LONGCODE, widget=forms.RadioSelect
    )
    capabilities = forms.MultipleChoiceField(
        choices=list(CAPABILITY_LABELS.items()),
        initial=CAPABILITIES,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one capability."},
    )
    ticket = forms.CharField(
        label="Ticket reference",
        required=False,
        max_length=TICKET_MAX_LENGTH,
        help_text=f"Optional, up to {TICKET_MAX_LENGTH} characters.",
        error_messages={
            "max_length": "The ticket reference can have at most %(limit_value)d characters "
            "(this one has %(show_value)d): shorten it."
        },
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Only active projects are offered. The field still accepts the others, so that one
        # deactivated after the page was loaded is refused with the reason (clean_project).
        offered = forms.ModelChoiceField(
            queryset=Project.objects.active().order_by("name"),
            empty_label=self.fields["project"].empty_label,
        )
        self.fields["project"].widget.choices = offered.choices

    def clean_project(self) -> Project:
        project = self.cleaned_data["project"]
        if refusal := refusal_for(project):
            raise forms.ValidationError(refusal)
        return project

    def clean_capabilities(self) -> list[str]:
        chosen = self.cleaned_data["capabilities"]
        return [name for name in CAPABILITIES if name in chosen]

    def clean(self) -> dict:
        cleaned = super().clean()
        pasted, upload = cleaned.get("numbers", "").strip(), cleaned.get("csv_file")
        if pasted and upload:
            self.add_error("csv_file", "Paste numbers or choose a CSV file, not both.")
        elif upload and upload.size > CSV_MAX_BYTES:
            # Django has kept the upload on disk; reading it would hold it all in memory.
            self.add_error("csv_file", CSV_TOO_LARGE)
        elif upload:
            try:
                cleaned["lines"] = read_csv(upload.read())
            except InputError as exc:
                self.add_error("csv_file", exc.problems)
            else:
                cleaned["source"] = ImportJob.Source.CSV
                if not cleaned["lines"]:
                    self.add_error("csv_file", "The CSV has a header but no numbers.")
        elif pasted:
            cleaned["lines"] = read_pasted(pasted)
            cleaned["source"] = (
                ImportJob.Source.SINGLE if len(cleaned["lines"]) == 1 else ImportJob.Source.PASTE
            )
            if len(cleaned["lines"]) > CSV_MAX_ROWS:
                self.add_error(
                    "numbers", f"More than {CSV_MAX_ROWS:,} lines: split the list into parts."
                )
        else:
            self.add_error("numbers", "Paste at least one number, or choose a CSV file.")
        return cleaned


class EmailPreferenceForm(forms.ModelForm):
    class Meta:
        model = EmailPreference
        fields = ["wants_job_emails"]


class RetryNumberForm(forms.Form):
    """Correct a failed number's type or capabilities before retrying it."""

    number_type = forms.ChoiceField(choices=NumberType.choices)
    capabilities = forms.MultipleChoiceField(
        choices=list(CAPABILITY_LABELS.items()),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one capability."},
    )

    def clean_capabilities(self) -> list[str]:
        chosen = self.cleaned_data["capabilities"]
        return [name for name in CAPABILITIES if name in chosen]


class RejectJobForm(forms.Form):
    """The reason an admin gives for rejecting a job that awaits approval."""

    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={
            "required": "Give the reason for rejecting the job: its starter reads it on the "
            "job page.",
            "max_length": "Keep the reason to %(limit_value)d characters (it has %(show_value)d).",
        },
    )


class NumberSearchForm(forms.Form):
    """The numbers list's search box and filters; every field is optional.

    The form reads the URL, so a pasted link reproduces the search. A field that does not
    validate is reported beside it and left out of the search; the rest still applies.
    """

    MAX_SEARCH_LENGTH = 200

    q = forms.CharField(
        label="Search",
        required=False,
        strip=True,
        widget=forms.TextInput(
            attrs={
                "type": "search",
                "placeholder": "Digits in any form (555 0100, +44 20 7946), project, ticket, sid",
                "autocomplete": "off",
            }
        ),
    )
    project = forms.ModelChoiceField(
        queryset=Project.objects.order_by("name"),
        required=False,
        widget=QuickSelect,
        empty_label="All projects",
        error_messages={"invalid_choice": "That project does not exist: showing all projects."},
    )
    status = forms.ChoiceField(
        choices=[("", "Any status")] + ImportStatus.choices,
        required=False,
        initial=ImportStatus.IMPORTED,
        # No status in the URL means imported: the URL carries "Any status", not "Imported".
        widget=forms.Select(attrs={"data-default": ImportStatus.IMPORTED}),
    )
    number_type = forms.ChoiceField(
        label="Type", choices=[("", "Any type")] + NumberType.choices, required=False
    )
    capability = forms.ChoiceField(
        choices=[("", "Any capability")] + list(CAPABILITY_LABELS.items()),
        required=False,
    )
    imported_from = forms.DateField(
        label="Imported from",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Enter a date like 2026-01-31."},
    )
    imported_to = forms.DateField(
        label="to",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Enter a date like 2026-01-31."},
    )
    imported_by = forms.ModelChoiceField(
        queryset=get_user_model()
        .objects.filter(import_jobs__isnull=False)
        .distinct()
        .order_by("username"),
        required=False,
        widget=QuickSelect,
        empty_label="Anyone",
        error_messages={"invalid_choice": "That person has imported nothing: showing everyone's."},
    )
    ticket = forms.CharField(
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"placeholder": "Ticket reference"}),
    )
    inventory = forms.ChoiceField(
        label="Space inventory",
        choices=[("", "Imported or in a Space")] + search.Drift.choices,
        required=False,
        error_messages={"invalid_choice": "No such inventory filter: showing every number."},
    )

    def __init__(self, data=None, **kwargs) -> None:
        if data is not None and "status" not in data:
            # The list shows imported numbers until someone picks another status.
            data = data.copy()
            data["status"] = ImportStatus.IMPORTED
        super().__init__(data, **kwargs)

    def clean_q(self) -> str:
        return self.cleaned_data["q"][: self.MAX_SEARCH_LENGTH]

    def page(self, start: int, size: int) -> list[NumberImport]:
        """Rows start to start + size of the search's imports, newest first."""
        return search.page(self.given(), start, size)

    def numbers_page(self, start: int, size: int) -> tuple[list[NumberImport], list[SpaceNumber]]:
        """Rows start to start + size of the search's results: imports, then numbers that
        are only in a Space (search.numbers_page)."""
        return search.numbers_page(self.given(), start, size)

    def given(self) -> dict:
        """Every field that validated and is not empty."""
        self.is_valid()
        return {name: value for name, value in self.cleaned_data.items() if value}

    def filtered(self, numbers: "QuerySet[NumberImport]") -> "QuerySet[NumberImport]":
        """`numbers` narrowed by every field that validated."""
        return search.filtered(numbers, self.given())

    def space_numbers(self) -> "QuerySet[SpaceNumber]":
        """The numbers only in a Space that match every field that validated."""
        return search.space_numbers(self.given())


class AuditFilterForm(forms.Form):
    """The audit page's filters, read from the URL; a field that does not validate is left out."""

    person = forms.CharField(
        required=False,
        max_length=150,
        widget=forms.TextInput(attrs={"placeholder": "Username", "autocomplete": "off"}),
    )
    action = forms.ChoiceField(choices=[("", "Any action")] + AuditAction.choices, required=False)
    project = forms.ModelChoiceField(
        queryset=Project.objects.order_by("name"),
        required=False,
        widget=QuickSelect,
        empty_label="All projects",
        error_messages={"invalid_choice": "That project does not exist: showing all projects."},
    )
    job = forms.IntegerField(
        required=False, min_value=1, widget=forms.NumberInput(attrs={"placeholder": "Job"})
    )
    since = forms.DateField(
        label="From",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Enter a date like 2026-01-31."},
    )
    until = forms.DateField(
        label="to",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Enter a date like 2026-01-31."},
    )

    def filtered(self, entries: "QuerySet[AuditEntry]") -> "QuerySet[AuditEntry]":
        """`entries` narrowed by every field that validated."""
        self.is_valid()
        data = {name: value for name, value in self.cleaned_data.items() if value}
        lookups = {
            "person": "username__iexact",
            "action": "action",
            "project": "project",
            "job": "job_id",
            "since": "created_at__date__gte",
            "until": "created_at__date__lte",
        }
        return entries.filter(
            **{lookup: data[name] for name, lookup in lookups.items() if name in data}
        )
