from django.core.management.base import BaseCommand

from voicecrm.demo.seed import seed_demo


class Command(BaseCommand):
    help = "Create realistic demo data. Idempotent: a second run changes nothing."

    def handle(self, *args, **options) -> None:
        counts = seed_demo()
        for name, count in counts.items():
            self.stdout.write(f"{name:>20}: {count}")
