"""The one door to a private Ray Serve API that dnacnn relies on (Ray 2.60): where the
running Serve instance's HTTP proxy listens.

``serve.start`` on a cluster where Serve already runs keeps that instance's HTTP options
and only logs that the new ones are ignored; Serve has no public call that says which
host and port its proxy has. The service reads them from Serve's controller client so that
the URL it prints is the one that answers. ``tests/test_serve.py`` pins what is read here.
"""

from __future__ import annotations

import ray


def proxy_address() -> tuple[str, int]:
    """(host, port) of the HTTP proxy of the Serve instance this process is connected to
    (call after ``serve.start``).

    Raises:
        RuntimeError: Serve's client no longer looks as read here (an upgrade of Ray).
    """
    try:
        from ray.serve.context import _get_global_client

        config = _get_global_client().http_config
        return str(config.host), int(config.port)
    except (ImportError, AttributeError, TypeError, ValueError) as err:
        raise RuntimeError(
            f"ray {ray.__version__}: Serve's controller client is not as expected ({err}); "
            "update dnacnn/serve/serve_internals.py"
        ) from None


__all__ = ["proxy_address"]
