"""The manager: the central service agents upload to and analysts query (``provarmor server``).

FastAPI application (:mod:`provarmor.manager.app`), findings store on SQLite or PostgreSQL
(:mod:`provarmor.manager.store`), server-side analysis per host (:mod:`provarmor.manager.ingest`)
and the agent-side uploader (:mod:`provarmor.manager.client`, :mod:`provarmor.manager.uplink`).
"""
