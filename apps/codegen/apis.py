from apps.accounts.roles import Area
from apps.core.apis import AppStatusApi


class CodegenStatusApi(AppStatusApi):
    area = Area.CODEGEN
    adapter = "codegen"
