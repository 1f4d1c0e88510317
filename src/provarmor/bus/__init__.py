"""The fleet's event bus: agents publish spool batches to a NATS JetStream stream, workers
pull them per host partition (:mod:`provarmor.manager.bus_worker`)."""
