"""Confluent REST Proxy v2 over the event store.

Usage::

    topics = await EventStoreTopics.open(store, topics=["tote_win_bets"])
    topics.add_hook("tote_win_bets", route_bets)          # the app's own routing
    proxy = RestProxy(topics, registry)
    app.include_router(rest_proxy_router(proxy))
    # or a dedicated port: uvicorn.run(rest_proxy_app(proxy), port=8082)

    await topics.read_topic("tote_win_bets", from_offset=0, limit=100)
    await topics.append("tote_win_bet_race_runners_odds", [ProducedRecord(row)])

Topic ``t`` is the stream ``topic-t``; see :mod:`.topics` and ``docs/kafka.md``.
"""

from .api import MEDIA_TYPE, rest_proxy_app, rest_proxy_router
from .records import (
    BATCH_EVENT,
    CATALOG_STREAM,
    RECORD_EVENT,
    RECORD_TYPES,
    TOPIC_CREATED,
    BatchHook,
    PartitionNotFound,
    ProducedRecord,
    ProduceHook,
    RecordError,
    RecordOffset,
    StoredBatch,
    TopicDescription,
    TopicHandler,
    TopicNotFound,
    TopicRecord,
    TopicReserved,
    ValueBatch,
    event_span,
    print_line,
    records_of,
    topic_stream,
    valid_topic_name,
)
from .service import EmbeddedFormat, RestProxy, embedded_format
from .topics import EventStoreTopics

__all__ = [
    "BATCH_EVENT",
    "CATALOG_STREAM",
    "MEDIA_TYPE",
    "RECORD_EVENT",
    "RECORD_TYPES",
    "TOPIC_CREATED",
    "BatchHook",
    "EmbeddedFormat",
    "EventStoreTopics",
    "PartitionNotFound",
    "ProduceHook",
    "ProducedRecord",
    "RecordError",
    "RecordOffset",
    "RestProxy",
    "StoredBatch",
    "TopicDescription",
    "TopicHandler",
    "TopicNotFound",
    "TopicRecord",
    "TopicReserved",
    "ValueBatch",
    "embedded_format",
    "event_span",
    "print_line",
    "records_of",
    "rest_proxy_app",
    "rest_proxy_router",
    "topic_stream",
    "valid_topic_name",
]
