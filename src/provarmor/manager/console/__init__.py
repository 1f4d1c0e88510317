"""The web console served by the manager: a single-page app (plain JavaScript, no build
step) over the ``/api/v1`` API, with its assets vendored in ``static/``."""

from provarmor.manager.console.routes import mount_console

__all__ = ["mount_console"]
