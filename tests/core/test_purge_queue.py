"""The worker tests' purge also drops what a killed worker held unacknowledged: Redis would otherwise hand
those tasks to a later test's worker once their visibility timeout had passed."""
from tests.celery_workers import purge_queue


def test_purge_drops_queued_and_unacknowledged_tasks():
    from config.celery import app

    with app.connection_for_write() as connection:
        channel = connection.default_channel
        redis = channel.client
        redis.hset(channel.unacked_key, "stale-task", "[]")
        redis.zadd(channel.unacked_index_key, {"stale-task": 1.0})

        purge_queue()

        assert not redis.exists(channel.unacked_key, channel.unacked_index_key, channel.unacked_mutex_key)
