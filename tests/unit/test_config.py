"""Configuration values validate themselves and read the STILTS error-policy vocabulary."""

from __future__ import annotations

import pytest

import vosweep
from vosweep.config import ErrorPolicy, RetryPolicy, Timeouts, make_config


class TestTimeouts:
    def test_defaults_are_vo_sized(self):
        """Defaults are tens of seconds, not aiohttp's five minutes."""
        t = vosweep.DEFAULT_TIMEOUTS
        assert t.attempt == 30.0
        assert t.connect is not None
        assert t.connect <= t.attempt

    def test_phase_longer_than_attempt_is_rejected(self):
        """A read timeout above the attempt timeout could never fire: refused, naming it."""
        with pytest.raises(ValueError, match="read timeout"):
            Timeouts(read=50, attempt=10)

    def test_frozen(self):
        """Values are frozen; model_copy makes variants."""
        t = Timeouts()
        with pytest.raises(ValueError):
            t.attempt = 3  # type: ignore[misc]
        assert t.model_copy(update={"attempt": 3}).attempt == 3

    def test_none_switches_a_phase_off(self):
        """None disables one limit."""
        assert Timeouts(attempt=None, read=100).read == 100


class TestErrorPolicy:
    @pytest.mark.parametrize(
        ("text", "action", "attempts"),
        [
            ("ignore", "ignore", 3),
            ("abort", "abort", 3),
            ("retry", "ignore", None),
            ("retry5", "ignore", 6),
            ("retry0", "ignore", 1),
            (" RETRY2 ", "ignore", 3),
        ],
    )
    def test_stilts_vocabulary(self, text, action, attempts):
        """abort, ignore, retry and retry<n> mean what they mean in STILTS."""
        policy = ErrorPolicy.parse(text)
        assert policy.action == action
        assert policy.attempts(RetryPolicy(attempts=3)) == attempts

    @pytest.mark.parametrize("text", ["", "retry-1", "abort3", "stop", "ignore1"])
    def test_unknown_words_are_usage_errors(self, text):
        """Unknown policies are refused with the accepted spellings."""
        with pytest.raises(vosweep.UsageError, match="abort"):
            ErrorPolicy.parse(text)

    def test_str_round_trips(self):
        """The policy prints as it is spelled."""
        for text in ("ignore", "abort", "retry", "retry4"):
            assert str(ErrorPolicy.parse(text)) == text


class TestEngineConfig:
    def test_overrides(self):
        """Keyword overrides build a new validated config."""
        cfg = make_config(None, errors="retry2", deadline=5)
        assert cfg.errors.retries == 2
        assert cfg.deadline == 5

    def test_bad_override_names_the_field(self):
        """A bad value is a UsageError naming the field."""
        with pytest.raises(vosweep.UsageError, match="deadline"):
            make_config(None, deadline=-1)

    def test_unknown_field_is_refused(self):
        """Typos do not pass silently."""
        with pytest.raises(vosweep.UsageError, match="dedline"):
            make_config(None, dedline=3)

    def test_politeness_default(self):
        """At most 5 concurrent requests per host by default (the STILTS cap)."""
        assert vosweep.DEFAULT_LIMITS.per_host == 5


class TestRegistryConfig:
    def test_default_endpoints_try_gavo_first_then_alternates(self, monkeypatch):
        monkeypatch.delenv("IVOA_REGISTRY", raising=False)
        endpoints = vosweep.RegistryConfig().endpoints
        assert endpoints == vosweep.config.DEFAULT_REGISTRY_ENDPOINTS
        assert endpoints[0] == "http://reg.g-vo.org/tap"
        assert len(endpoints) >= 2

    def test_ivoa_registry_alone_replaces_the_defaults(self, monkeypatch):
        """pyvo's variable: a named registry means that one, no failover to the internet."""
        monkeypatch.setenv("IVOA_REGISTRY", " http://127.0.0.1:9/tap/ ")
        assert vosweep.RegistryConfig().endpoints == ("http://127.0.0.1:9/tap",)
        assert vosweep.EngineConfig().registry.endpoints == ("http://127.0.0.1:9/tap",)

    def test_explicit_endpoints_win_and_are_cleaned(self, monkeypatch):
        monkeypatch.setenv("IVOA_REGISTRY", "http://127.0.0.1:9/tap")
        config = vosweep.RegistryConfig(endpoints=("http://a.test/tap/", "http://a.test/tap"))
        assert config.endpoints == ("http://a.test/tap",)

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("endpoints", ()),
            ("endpoints", ("ftp://a.test/tap",)),
            ("cache_ttl", -1),
            ("batch_size", 0),
            ("concurrency", 0),
        ],
    )
    def test_bad_values_are_refused(self, field, value):
        with pytest.raises(vosweep.UsageError, match=field):
            vosweep.Engine(registry={field: value})
