"""Settings are read from their own environment variables only, and changed by their flat names."""
import pytest
from service.settings import ConfigurationError, Settings


def test_ordinary_environment_variables_are_not_read_as_settings(monkeypatch):
    # a container sets PORT, DIR, BACKEND, API_KEY for its own reasons; only MOVIEGENRE_PORT etc. configure us
    for name, value in {"PORT": "9999", "DIR": "/elsewhere", "BACKEND": "none", "API_KEY": "open",
                        "MAX_IN_FLIGHT": "1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MOVIEGENRE_PORT", "7000")
    settings = Settings()
    assert settings.service.port == 7000
    assert str(settings.index.dir) != "/elsewhere"
    assert settings.llm.backend == "ollama"
    assert settings.service.api_key is None
    assert settings.operations.max_in_flight == 4


def test_flat_names_set_and_replace_settings_and_are_validated(monkeypatch):
    monkeypatch.setenv("MOVIEGENRE_HOST", "0.0.0.0")
    settings = Settings(max_in_flight=3, llm_backend="none")
    changed = settings.replace(port=1, llm_timeout=2.5)
    assert (changed.service.port, changed.llm.timeout_s, changed.operations.max_in_flight) == (1, 2.5, 3)
    assert changed.service.host == "0.0.0.0" and changed.llm.backend == "none"
    assert settings.service.port == 5000
    with pytest.raises(ConfigurationError, match="MOVIEGENRE_MAX_IN_FLIGHT=0"):
        settings.replace(max_in_flight=0)
    with pytest.raises(TypeError):
        Settings(no_such_setting=1)


def test_invalid_settings_are_named_all_at_once_without_a_traceback(monkeypatch, capsys):
    from service.cli import main

    monkeypatch.setenv("MOVIEGENRE_PORT", "abc")
    monkeypatch.setenv("LLM_TIMEOUT", "-1")
    monkeypatch.setenv("MOVIEGENRE_RATE_LIMIT", "lots")
    with pytest.raises(ConfigurationError) as refused:
        Settings()
    message = str(refused.value)
    assert "MOVIEGENRE_PORT='abc'" in message and "LLM_TIMEOUT='-1'" in message and "60/minute" in message
    assert main(["classify", "A young wizard."]) == 2
    printed = capsys.readouterr().out
    assert "MOVIEGENRE_PORT='abc'" in printed and "Traceback" not in printed


@pytest.mark.parametrize("variable, value", [
    ("MOVIEGENRE_API_KEYS", "shop:k3y:x,app:0ther"),   # a key holding ':'
    ("MOVIEGENRE_API_KEYS", "shop:k3y,1"),             # a key holding ','
    ("MOVIEGENRE_API_KEYS", "shop:,app:0ther"),        # a blank key
    ("MOVIEGENRE_API_KEYS", "shop:k3y,app:k3y"),       # one key given two names
    ("MOVIEGENRE_FEEDBACK_TOKEN", "alice:t0k:en"),
    ("MOVIEGENRE_FEEDBACK_TOKEN", "alice:t0ken,"),
])
def test_named_keys_and_tokens_that_cannot_be_told_apart_refuse_to_start_in_one_line(monkeypatch, capsys,
                                                                                    variable, value):
    from service.cli import main

    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as refused:
        Settings()
    message = str(refused.value)
    assert variable in message and "\n" not in message
    assert not any(secret in message for secret in ("k3y", "0ther", "t0k"))  # no secret is ever shown
    assert main(["classify", "A young wizard."]) == 2 and "Traceback" not in capsys.readouterr().out


def test_one_api_key_is_taken_whole_and_named_keys_and_editors_are_pairs(monkeypatch):
    monkeypatch.setenv("MOVIEGENRE_API_KEY", " team:key,1 ")
    monkeypatch.setenv("MOVIEGENRE_API_KEYS", "shop:k3y, app:0ther,shop:r0tated")
    monkeypatch.setenv("MOVIEGENRE_FEEDBACK_TOKEN", "alice:s3cret,bob:0ther")
    settings = Settings()
    assert settings.service.api_keys() == {"team:key,1": "default", "k3y": "shop", "0ther": "app", "r0tated": "shop"}
    assert settings.corrections.editors() == {"s3cret": "alice", "0ther": "bob"}
    assert Settings(feedback_token="ed1tor").corrections.editors() == {"ed1tor": "editor"}


def test_a_malformed_cors_origins_ends_in_one_line(monkeypatch, capsys):
    from service.cli import main

    monkeypatch.setenv("MOVIEGENRE_CORS_ORIGINS", "https://a.example")  # not the JSON list it must be
    with pytest.raises(ConfigurationError, match="MOVIEGENRE_CORS_ORIGINS: not valid JSON"):
        Settings()
    assert main(["classify", "A young wizard."]) == 2
    printed = capsys.readouterr().out
    assert "MOVIEGENRE_CORS_ORIGINS" in printed and "Traceback" not in printed
    monkeypatch.setenv("MOVIEGENRE_CORS_ORIGINS", '["https://a.example"]')
    assert Settings().service.cors_origins == ["https://a.example"]


def test_a_corrections_url_that_cannot_be_read_is_refused_in_one_line_that_never_shows_it():
    from service.settings import ConfigurationError, Settings

    with pytest.raises(ConfigurationError) as refused:
        Settings(corrections_url="postgresql://moviegenre:ab%zzsecret@db:5432/moviegenre")
    assert "percent-encode" in str(refused.value) and "secret" not in str(refused.value)
    with pytest.raises(ConfigurationError) as refused:
        Settings(corrections_url="mysql://moviegenre:secret@db/moviegenre")
    assert "postgresql://" in str(refused.value) and "secret" not in str(refused.value)


def test_a_rate_limit_store_that_cannot_be_used_is_named_without_its_password():
    from service.api.ratelimit import RateLimit
    from service.settings import ConfigurationError, Settings

    settings = Settings(rate_limit="10/minute", rate_limit_storage="nosuchstore://:s3cret@cache:6379/0")
    with pytest.raises(ConfigurationError) as refused:
        RateLimit("10/minute", settings)
    assert "s3cret" not in str(refused.value) and ":***@cache:6379" in str(refused.value)
