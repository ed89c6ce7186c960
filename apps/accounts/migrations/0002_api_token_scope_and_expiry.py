"""API tokens get a scope and an expiry.

Tokens made before this could call every API of their user's role: they keep that scope (`api`) and
expire 90 days after they were created, like a new token by default.
"""
from datetime import timedelta

from django.db import migrations, models
from django.db.models import F


def existing_tokens_expire(apps, schema_editor):
    ApiToken = apps.get_model("accounts", "ApiToken")
    ApiToken.objects.update(scope="api", expires_at=F("created_at") + timedelta(days=90))


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="apitoken",
            name="scope",
            field=models.CharField(choices=[("completion", "Code completion (IDE)"), ("api", "Full API of your role")],
                                   default="api", max_length=16),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="apitoken",
            name="expires_at",
            field=models.DateTimeField(null=True),
        ),
        migrations.RunPython(existing_tokens_expire, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="apitoken",
            name="expires_at",
            field=models.DateTimeField(),
        ),
    ]
