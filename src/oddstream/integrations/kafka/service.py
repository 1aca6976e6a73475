"""The Kafka integration as the service runs it, started and stopped as one.

Only a service started with ``--kafka-compat`` (``ODDSTREAM_KAFKA_COMPAT=1``) makes
one: then, and only then, the Schema Registry is opened (and the ``tote_win_bets``
subject registered), the topics are declared, the bridge's two followers run and the
routes exist. ::

    kafka = await KafkaIntegration.start(store, writer, authorize=kafka_authorizer(keys, …))
    for router in kafka.routers():
        app.include_router(router)                 # on the main port
    kafka.schema_registry_app(), kafka.rest_proxy_app()   # apps for their own ports
    await kafka.stop()
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ...eventstore import EventStore
from ...runtime.race_writer import RaceWriter
from .access import Authorizer, open_access
from .rest_proxy import EventStoreTopics, RestProxy, rest_proxy_app, rest_proxy_router
from .schema_registry import (
    SchemaRegistry,
    ensure_tote_subjects,
    schema_registry_app,
    schema_registry_router,
)
from .tote_bridge import TotePoolBridge


class KafkaIntegration:
    """The Schema Registry, the REST Proxy's topics and the tote bridge of one process."""

    def __init__(
        self,
        registry: SchemaRegistry,
        topics: EventStoreTopics,
        bridge: TotePoolBridge,
        authorize: Authorizer = open_access,
    ) -> None:
        self.registry = registry
        self.topics = topics
        self.proxy = RestProxy(topics, registry)
        self.bridge = bridge
        self._authorize = authorize

    @classmethod
    async def start(
        cls, store: EventStore, writer: RaceWriter, *, authorize: Authorizer = open_access
    ) -> KafkaIntegration:
        """Open the registry (registering the ``tote_win_bets`` subject on a fresh
        store), the topics, and start the bridge; ``authorize`` guards every route."""
        registry = await SchemaRegistry.open(store)
        await ensure_tote_subjects(registry)
        topics = await EventStoreTopics.open(store)
        bridge = TotePoolBridge(store, writer, topics)
        await bridge.start()
        return cls(registry, topics, bridge, authorize)

    async def stop(self) -> None:
        """Stop the bridge (its checkpoint is saved)."""
        await self.bridge.stop()

    def routers(self) -> list[APIRouter]:
        """The Schema Registry's and the REST Proxy's routes, for the main app."""
        return [
            schema_registry_router(self.registry, authorize=self._authorize),
            rest_proxy_router(self.proxy, authorize=self._authorize),
        ]

    def schema_registry_app(self) -> Any:
        """The Schema Registry as an app of its own (port 8081 by default)."""
        return schema_registry_app(self.registry, authorize=self._authorize)

    def rest_proxy_app(self) -> Any:
        """The REST Proxy as an app of its own (port 8082 by default)."""
        return rest_proxy_app(self.proxy, authorize=self._authorize)


__all__ = ["KafkaIntegration"]
