from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

USERNAME, PASSWORD = "admin", "voicecrm-dev"


class Command(BaseCommand):
    help = "Create (or reset) the development superuser and print its login. Refuses when DEBUG is off."

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG:
            raise CommandError("dev_superuser only runs with DEBUG=1; use createsuperuser in production.")
        user, _ = get_user_model().objects.get_or_create(username=USERNAME, defaults={"email": "admin@example.com"})
        user.is_staff = user.is_superuser = True
        user.set_password(PASSWORD)
        user.save()
        self.stdout.write(self.style.SUCCESS(f"Dev login: {USERNAME} / {PASSWORD}  at http://127.0.0.1:8000/admin/"))
