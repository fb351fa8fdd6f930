"""API tokens move from DRF's plaintext table to django-rest-knox: a SHA-512 digest that expires.

Each existing key becomes a knox token with the same value, so clients keep working until it
expires (API_TOKEN_TTL_HOURS from now) and then sign in at /api/auth/login/; the plaintext rows
are deleted. Not reversible: the plaintext is gone.
"""

from django.conf import settings
from django.db import migrations
from django.utils import timezone
from knox.crypto import hash_token
from knox.settings import CONSTANTS


def api_tokens_hash(apps, schema_editor) -> None:
    Token = apps.get_model("authtoken", "Token")
    AuthToken = apps.get_model("knox", "AuthToken")
    expiry = timezone.now() + settings.REST_KNOX["TOKEN_TTL"]
    # bulk_create: knox's manager (kept in migrations) has a create() that makes a new random token.
    AuthToken.objects.bulk_create(
        AuthToken(digest=hash_token(token.key), token_key=token.key[: CONSTANTS.TOKEN_KEY_LENGTH],
                  user_id=token.user_id, expiry=expiry)
        for token in Token.objects.all()
    )
    Token.objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("voicecrm", "0001_create_roles"),
        ("authtoken", "0004_alter_tokenproxy_options"),
        ("knox", "0009_extend_authtoken_field"),
    ]

    operations = [migrations.RunPython(api_tokens_hash, migrations.RunPython.noop)]
