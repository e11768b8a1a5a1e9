from django.apps import AppConfig


class PhoneNumbersConfig(AppConfig):
    name = "phone_numbers"
    verbose_name = "Phone numbers"

    def ready(self) -> None:
        # Connects the audit trail's receivers for logins, logouts and lockouts, and for
        # changes of users and groups.
        from phone_numbers import accounts, audit  # noqa: F401
