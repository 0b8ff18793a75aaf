"""Phase 5, the AI stack: one Docker Compose project per concern, rendered from inventory.

Data flows one way: host data -> :mod:`config` (validated model) -> :mod:`budget` (refuse what
cannot fit) -> :mod:`render` (file contents) -> the ``@deploy`` functions that upload and start
them. Everything before the deploy functions is pure and tested without a host.
"""
