"""The embedded default (SQLite, `make run`) holds a team's concurrent writes: many threads posting
messages and asking for suggestions at once, on a real database file, and none sees "database is locked"."""
import json

from tests.test_settings import run_python

THREADS = 24
ROUNDS = 4

WORKLOAD = f"""
import json, threading
import django
django.setup()
from django.core.management import call_command
from django.db import connection, connections
call_command("migrate", verbosity=0)
from apps.accounts.roles import Role
from apps.accounts.services import user_create
from apps.customer_service.models import Message
from apps.customer_service.services import (conversation_create, conversation_message_add, conversation_suggest,
                                            knowledge_base_create)

agent = user_create(username="agent", password="pw-agent-12345", role=Role.SUPPORT_AGENT)
knowledge_base = knowledge_base_create(name="Shop FAQ")  # not indexed: every suggestion is a handoff note
conversations = [conversation_create(knowledge_base=knowledge_base, assignee=agent) for _ in range({THREADS})]
with connection.cursor() as cursor:
    journal_mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
connections.close_all()
start, errors = threading.Barrier({THREADS}), []

def work(conversation):
    try:
        start.wait()
        for round in range({ROUNDS}):
            conversation_message_add(conversation=conversation, user=agent, role="customer", text=f"question {{round}}")
            conversation_message_add(conversation=conversation, user=agent, role="agent", text=f"answer {{round}}")
            conversation_suggest(conversation=conversation, user=agent).text()
    except Exception as error:
        errors.append(repr(error))
    finally:
        connections.close_all()

threads = [threading.Thread(target=work, args=(conversation,)) for conversation in conversations]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps({{"journal_mode": journal_mode, "errors": errors, "messages": Message.objects.count(),
                  "complete": Message.objects.filter(role="assistant", state="complete").count()}}))
"""


def test_concurrent_messages_and_suggestions_on_sqlite_never_find_the_database_locked(tmp_path):
    environment = {"DJANGO_SETTINGS_MODULE": "config.settings.local", "SUITE_RUN_DIR": str(tmp_path),
                   "MODEL_SERVICE_URL": "http://127.0.0.1:9"}  # the sqlite default: no DATABASE_URL

    result = run_python(["-c", WORKLOAD], environment)

    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"journal_mode": "wal", "errors": [], "messages": THREADS * ROUNDS * 3,
                      "complete": THREADS * ROUNDS}
