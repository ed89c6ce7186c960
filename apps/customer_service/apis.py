from apps.accounts.roles import Area
from apps.core.apis import AppStatusApi


class CustomerServiceStatusApi(AppStatusApi):
    area = Area.CUSTOMER_SERVICE
    adapter = "customer_service"
