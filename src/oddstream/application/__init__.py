"""The use cases behind the HTTP API (placing bets, moving money, reading wallets), free
of any web framework: the routes decode nothing but paths and queries, and hand bodies
and principals to these."""
