from django.apps import AppConfig


class PhoneNumbersConfig(AppConfig):
    name = "phone_numbers"
    verbose_name = "Phone numbers"

    def ready(self) -> None:
        # Connects the audit trail's receivers for logins, logouts and lockouts.
        from phone_numbers import audit  # noqa: F401
