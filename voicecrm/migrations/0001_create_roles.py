from django.db import migrations

from core.roles import roles_sync


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("authtoken", "0004_alter_tokenproxy_options"),
        ("customers", "0001_initial"),
        ("calls", "0002_initial"),
        ("tickets", "0001_initial"),
        ("agents", "0001_initial"),
        ("telephony", "0001_initial"),
    ]

    operations = [migrations.RunPython(roles_sync, migrations.RunPython.noop)]
