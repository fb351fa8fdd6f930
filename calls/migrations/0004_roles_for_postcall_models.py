from django.db import migrations

from core.roles import roles_sync


class Migration(migrations.Migration):
    """Give the roles their permissions on the post-call and webhook models."""

    dependencies = [
        ("calls", "0003_postcall_pipeline_and_webhooks"),
        ("voicecrm", "0001_create_roles"),
    ]

    operations = [migrations.RunPython(roles_sync, migrations.RunPython.noop)]
