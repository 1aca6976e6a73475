"""Read models fed by subscriptions, each with its own position."""
