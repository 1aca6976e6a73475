"""Quote events of an insurance quote journey (``QuoteStarted``, ``QuoteProductsUpdated``):
typed and versioned, decoded exactly from the source's JSON, the analyst-safe view of a
quote and the items active in a quote over time. Pure.

See ``docs/analytics.md``.
"""
