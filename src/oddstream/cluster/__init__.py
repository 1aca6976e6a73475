"""Services mode: API and worker processes over PostgreSQL, NATS and Redis.

- :mod:`.partitions`: which partition a race's or a wallet's stream is in;
- :mod:`.leases`: who owns a partition or a consumer (PostgreSQL advisory locks);
- :mod:`.wire`: commands, answers and refusals as they travel on NATS;
- :mod:`.router`: the ports an API process (or a worker) sends commands through;
- :mod:`.worker`: the worker process, which owns partitions and runs the consumers;
- :mod:`.supervisor`: ``oddstream up``, a local deployment of several of each.

See ``docs/services.md``.
"""
