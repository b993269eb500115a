"""Running in production: gunicorn (serve), JSON logs, Prometheus metrics, the HEALTHCHECK probe."""
