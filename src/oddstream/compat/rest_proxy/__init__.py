"""Confluent REST Proxy v2 over the event store.

Usage::

    topics = await EventStoreTopics.open(store, topics=["tote_win_bets"])
    topics.add_hook("tote_win_bets", route_bets)          # the app's own routing
    proxy = RestProxy(topics, registry)
    app.include_router(rest_proxy_router(proxy))
    # or a dedicated port: uvicorn.run(rest_proxy_app(proxy), port=8082)

    await topics.read_topic("tote_win_bets", from_offset=0, limit=100)
    await topics.append("tote_win_bet_race_runners_odds", [ProducedRecord(row)])

Topic ``t`` is the stream ``topic-t``; see :mod:`.topics` and ``docs/compat.md``.
"""

from .api import MEDIA_TYPE, rest_proxy_app, rest_proxy_router
from .service import EmbeddedFormat, RestProxy, embedded_format
from .topics import (
    CATALOG_STREAM,
    RECORD_EVENT,
    TOPIC_CREATED,
    EventStoreTopics,
    PartitionNotFound,
    ProducedRecord,
    ProduceHook,
    RecordError,
    RecordOffset,
    TopicDescription,
    TopicHandler,
    TopicNotFound,
    TopicRecord,
    topic_stream,
    valid_topic_name,
)

__all__ = [
    "CATALOG_STREAM",
    "MEDIA_TYPE",
    "RECORD_EVENT",
    "TOPIC_CREATED",
    "EmbeddedFormat",
    "EventStoreTopics",
    "PartitionNotFound",
    "ProduceHook",
    "ProducedRecord",
    "RecordError",
    "RecordOffset",
    "RestProxy",
    "TopicDescription",
    "TopicHandler",
    "TopicNotFound",
    "TopicRecord",
    "embedded_format",
    "rest_proxy_app",
    "rest_proxy_router",
    "topic_stream",
    "valid_topic_name",
]
