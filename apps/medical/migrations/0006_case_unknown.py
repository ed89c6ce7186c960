from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('medical', '0005_federated_job'),
    ]

    operations = [
        migrations.AddField(
            model_name='case',
            name='unknown',
            field=models.JSONField(default=list),
        ),
    ]
