"""The HTTP API (FastAPI): ``/api/v1`` routers per resource, ``/_bulk`` for shippers,
``/healthz`` and ``/metrics``. Built by :func:`api.app.create_app` from an
:class:`api.deps.AppState` that ``citysoc/`` fills with concrete implementations."""
