from django.apps import AppConfig


class VoiceCrmConfig(AppConfig):
    """Project-wide pieces: roles, health checks, demo data, system checks."""

    name = "voicecrm"
    verbose_name = "VoiceCRM"

    def ready(self) -> None:
        from voicecrm import checks  # noqa: F401, PLC0415  (registers system checks once the app registry is ready)
