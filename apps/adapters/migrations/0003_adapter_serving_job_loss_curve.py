from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('adapters', '0002_job_attempts_and_heartbeat'),
    ]

    operations = [
        migrations.AddField(
            model_name='adapter',
            name='serving',
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name='adapterjob',
            name='loss_curve',
            field=models.JSONField(blank=True, default=list),
        ),
    ]
