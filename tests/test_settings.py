"""Every environment variable is parsed and validated in one place."""

from __future__ import annotations

from pathlib import Path

import pytest

from cliplab.errors import SettingsError
from cliplab.settings import DEFAULT_MAX_PIXELS, settings


def test_defaults_and_overrides(monkeypatch, tmp_path):
    for var in (
        "CLIPLAB_THREADS",
        "CLIPLAB_MAX_PIXELS",
        "CLIPLAB_INDEX_HOME",
        "CLIPLAB_CACHE",
        "CLIPLAB_TOKEN",
        "CLIPLAB_NO_JIT",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    s = settings()
    assert (s.threads, s.max_pixels, s.token, s.no_jit) == (0, DEFAULT_MAX_PIXELS, None, False)
    assert s.index_home == tmp_path / "data" / "cliplab" / "indexes"
    assert s.feature_cache == tmp_path / "cache" / "cliplab" / "features"
    monkeypatch.setenv("CLIPLAB_THREADS", " 3 ")
    monkeypatch.setenv("CLIPLAB_MAX_PIXELS", "1_000_000")
    monkeypatch.setenv("CLIPLAB_INDEX_HOME", "~/idx")
    monkeypatch.setenv("CLIPLAB_TOKEN", "s3cret")
    monkeypatch.setenv("CLIPLAB_NO_JIT", "1")
    s = settings()
    assert (s.threads, s.max_pixels, s.token, s.no_jit) == (3, 1_000_000, "s3cret", True)
    assert s.index_home == Path("~/idx").expanduser()


@pytest.mark.parametrize(
    "var, value, words",
    [
        ("CLIPLAB_THREADS", "abc", "not a whole number"),
        ("CLIPLAB_THREADS", "-1", "at least 0"),
        ("CLIPLAB_MAX_PIXELS", "0", "at least 1"),
        ("CLIPLAB_MAX_PIXELS", "64M", "not a whole number"),
        ("CLIPLAB_NO_JIT", "maybe", "use 1 or 0"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch, var, value, words):
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError) as e:
        settings()
    assert str(e.value).startswith(f"{var}={value!r}") and words in str(e.value)
