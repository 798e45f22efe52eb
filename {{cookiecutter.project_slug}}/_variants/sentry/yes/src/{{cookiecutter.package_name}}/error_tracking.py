"""Error tracking with Sentry: on once SENTRY_DSN is set; without it, nothing of Sentry runs."""

import sentry_sdk

from {{ cookiecutter.package_name }} import __version__
from {{ cookiecutter.package_name }}.settings import Settings


def init_error_tracking(settings: Settings) -> bool:
    """Start Sentry's SDK (its FastAPI integration comes with it) when a DSN is set; whether it did."""
    if not settings.sentry_dsn:
        return False
    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        release=__version__,
        environment=settings.environment,
        traces_sample_rate=settings.sentry_traces_sample_rate or None,  # None: no tracing at all
        # No personal data (what send_default_pii=False meant, the SDK's deprecated option, and stricter).
        data_collection={
            "user_info": False,  # no user, no client address
            "cookies": {"mode": "off"},
            "http_headers": {"request": {"mode": "off"}},
            "url_query_params": {"mode": "off"},
            "http_bodies": [],
            "stack_frame_variables": False,  # a frame's variables hold the request, its cookies included
            "database_query_data": False,
            "queues": False,
            "gen_ai": {"inputs": False, "outputs": False},
            "graphql": {"document": False, "variables": False},
        },
    )
    return True
