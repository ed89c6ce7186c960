from apps.accounts.roles import Area
from apps.core.apis import AppStatusApi


class MedicalStatusApi(AppStatusApi):
    area = Area.MEDICAL
    adapter = "medical"
