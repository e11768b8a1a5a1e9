from django.conf import settings
from django.db import models, transaction
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from phone_numbers.countries import country_names
from phone_numbers.crypto import EncryptedTextField


class ConnectionStatus(models.TextChoices):
    UNCHECKED = "unchecked", "Not checked"
    CHECKING = "checking", "Checking…"
    OK = "ok", "OK"
    CREDENTIALS_REJECTED = "credentials_rejected", "Credentials rejected"
    SCOPE_MISSING = "scope_missing", "Numbers scope missing"
    PARTNER_API_DISABLED = "partner_api_disabled", "Partner API not enabled"
    UNREACHABLE = "unreachable", "Space unreachable"


class ProjectQuerySet(models.QuerySet):
    def active(self) -> "ProjectQuerySet":
        return self.filter(is_active=True)

    def with_token_hint(self) -> "ProjectQuerySet":
        """Annotate `active_token_last4`, the last 4 characters of the active token."""
        active = Credential.objects.filter(project=OuterRef("pk"), revoked_at__isnull=True)
        return self.annotate(active_token_last4=Subquery(active.values("token_last4")[:1]))

    def search(self, text: str) -> "ProjectQuerySet":
        text = text.strip()
        if not text:
            return self
        return self.filter(
            Q(name__icontains=text)
            | Q(space_host__icontains=text)
            | Q(project_id__icontains=text)
            | Q(notes__icontains=text)
        )


class Project(models.Model):
    """One SignalWire project in a customer's Space."""

    name = models.CharField(max_length=200, help_text="The customer, as support staff say it.")
    space_host = models.CharField(
        "Space host", max_length=253, help_text="For example acme.signalwire.com"
    )
    project_id = models.UUIDField(
        "Project ID", help_text="A UUID, shown in the Space's API page (also called AccountSid)."
    )
    default_country = models.CharField(
        max_length=2,
        help_text="Numbers typed without a country code are read as numbers of this country.",
    )
    notes = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    connection_status = models.CharField(
        max_length=32, choices=ConnectionStatus, default=ConnectionStatus.UNCHECKED
    )
    connection_detail = models.CharField(max_length=500, blank=True)
    connection_checked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProjectQuerySet.as_manager()

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["space_host", "project_id"], name="unique_project_per_space"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.space_host})"

    @property
    def default_country_name(self) -> str:
        return country_names().get(self.default_country, self.default_country)

    @property
    def active_credential(self) -> "Credential | None":
        return self.credentials.filter(revoked_at__isnull=True).first()

    @sensitive_variables("token")
    def replace_token(self, token: str, by) -> "Credential":
        """Store a new token and revoke the old one, erasing its ciphertext."""
        # A with block, not the decorator: a decorator's frame would show the token in
        # error reports.
        with transaction.atomic():
            self.credentials.filter(revoked_at__isnull=True).update(
                token=None, revoked_at=timezone.now(), revoked_by=by
            )
            return self.credentials.create(token=token, token_last4=token[-4:], created_by=by)

    def start_connection_check(self) -> None:
        self.connection_status = ConnectionStatus.CHECKING
        self.connection_detail = ""
        self.save(update_fields=["connection_status", "connection_detail", "updated_at"])

    def record_connection_check(self, status: ConnectionStatus, detail: str = "") -> None:
        self.connection_status = status
        self.connection_detail = detail[:500]
        self.connection_checked_at = timezone.now()
        self.save(
            update_fields=[
                "connection_status",
                "connection_detail",
                "connection_checked_at",
                "updated_at",
            ]
        )

    @property
    def is_checking_connection(self) -> bool:
        return self.connection_status == ConnectionStatus.CHECKING


class Credential(models.Model):
    """An API token of a project, encrypted at rest. Only the last four characters show."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="credentials")
    # Erased (set to NULL) when the credential is revoked.
    token = EncryptedTextField(null=True)
    token_last4 = models.CharField(max_length=4)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["project"],
                condition=Q(revoked_at__isnull=True),
                name="one_active_credential_per_project",
            )
        ]

    def __str__(self) -> str:
        state = "revoked" if self.revoked_at else "active"
        return f"Token …{self.token_last4} ({state})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
