"""Optional integrations with outside systems; each is switched on by a setting or a
command.

* :mod:`.kafka`: the Kafka/Confluent integration (``serve --kafka-compat``): a Schema
  Registry, a REST Proxy, Avro, and the bridge from the ``tote_win_bets`` topic to the
  tote and back to an odds topic. See ``docs/kafka.md``.
* :mod:`.datasette`: Datasette over the analysts' SQLite files, read-only
  (``oddstream browse``; the optional extra ``browse``). See ``docs/analytics.md``.
"""
