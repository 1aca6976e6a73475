"""Protobuf messages generated from ``proto/oddstream/pb/*.proto`` (``make proto``; do not
edit the ``*_pb2`` modules): the fixed-odds and tote events (``fixedodds_pb2``,
``tote_pb2``) and the odds service's command and query envelopes (``odds_api_pb2``).

Converted exactly to and from the domain's events by :mod:`oddstream.runtime.proto_events`
and to and from the odds API's shapes by :mod:`oddstream.application.odds_proto`. See
``docs/protobuf.md``."""
