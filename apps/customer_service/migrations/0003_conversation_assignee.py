"""The agent a conversation belongs to is its assignee; unassigned conversations form the shared queue."""
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('customer_service', '0002_message_worded_by'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RenameField(model_name='conversation', old_name='agent', new_name='assignee'),
        migrations.AlterField(
            model_name='conversation',
            name='assignee',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                    related_name='assigned_conversations', to=settings.AUTH_USER_MODEL),
        ),
    ]
