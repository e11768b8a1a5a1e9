import re
from urllib.parse import urlsplit

from django import forms
from django.db import transaction
from django.views.decorators.debug import sensitive_variables

from phone_numbers.countries import country_choices
from phone_numbers.models import Project

_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


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
            self.fields["token"].help_text = (
                f"Leave blank to keep the current token (…{credential.token_last4})."
                if credential
                else "This project has no token: add one."
            )
        else:
            self.fields["token"].required = True

    def clean_space_host(self) -> str:
        try:
            return normalise_space_host(self.cleaned_data["space_host"])
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
        return cleaned

    def validate_constraints(self) -> None:
        # clean() reports a duplicate project beside the project ID field instead.
        pass

    @transaction.atomic
    def save(self, by) -> Project:
        project = super().save()
        if self.cleaned_data["token"]:
            project.replace_token(self.cleaned_data["token"], by=by)
        return project
