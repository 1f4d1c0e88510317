"""The ``/api/v1`` routes, one module per resource; :data:`ROUTERS` lists them all."""

from __future__ import annotations

from fastapi import APIRouter

from provarmor.manager.routes import (
    actions,
    agents,
    alerts,
    commands,
    events,
    exceptions,
    graph,
    hosts,
    incidents,
    rules,
    stats,
    tokens,
)

ROUTERS: tuple[APIRouter, ...] = (
    agents.router,
    commands.router,
    tokens.router,
    hosts.router,
    events.router,
    alerts.router,
    incidents.router,
    exceptions.router,
    graph.router,
    rules.router,
    stats.router,
    actions.router,
)
