from datetime import timedelta

import pytest
from django.utils import timezone

from institutions import metrics


def test_measure__registered_provider__gets_its_window_and_cohort(monkeypatch):
    monkeypatch.setattr(metrics, "_providers", {})
    calls = []

    def provider(environment, start, end, cohort):
        calls.append((environment, start, end, cohort))
        return metrics.Measurement(0.25, 8, "2 of 8")

    metrics.register_metric("widget_rate", provider, description="Share of widgets.")
    end = timezone.now()
    result = metrics.measure(
        "widget_rate", environment="env", start=end - timedelta(minutes=5), end=end, cohort="test"
    )
    assert result == metrics.Measurement(0.25, 8, "2 of 8")
    assert calls == [("env", end - timedelta(minutes=5), end, "test")]
    assert metrics.metric_names() == {"widget_rate": "Share of widgets."}
    with pytest.raises(KeyError, match="Unknown metric"):
        metrics.measure("nope", environment="env", start=end, end=end)
    with pytest.raises(ValueError, match="Unknown cohort"):
        metrics.measure("widget_rate", environment="env", start=end, end=end, cohort="robots")


@pytest.mark.django_db
def test_measure__provider_runs_in_the_measured_environment_scope(tenant, monkeypatch):
    from institutions.tenancy import current_environment, environment_scope

    monkeypatch.setattr(metrics, "_providers", {})
    seen = []
    metrics.register_metric(
        "scope_probe",
        lambda env, start, end, cohort: (
            seen.append(current_environment()) or metrics.Measurement(1, 1)
        ),
        description="Which scope a provider sees.",
    )
    now = timezone.now()
    with environment_scope(tenant.staging):
        metrics.measure("scope_probe", environment=tenant.production, start=now, end=now)
        assert current_environment() == tenant.staging
    assert seen == [tenant.production]
