"""Pure decision logic, one package per domain: commands, state, events,
``decide()`` / ``evolve()``. Nothing here performs I/O."""
