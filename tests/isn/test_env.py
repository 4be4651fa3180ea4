from __future__ import annotations

import pytest

from isn.env import ConfigError, env_bool, env_choice, env_int, env_list, env_optional, env_str


def test_value_from_variable_or_file(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    assert env_str("ISN_X", environ={"ISN_X": "direct"}) == "direct"
    assert env_str("ISN_X", environ={"ISN_X_FILE": str(secret)}) == "from-a-file"


def test_both_variable_and_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="ISN_X and ISN_X_FILE are both set"):
        env_str("ISN_X", environ={"ISN_X": "a", "ISN_X_FILE": str(tmp_path)})


def test_unreadable_file_names_the_variable(tmp_path):
    with pytest.raises(ConfigError, match=r"ISN_X_FILE names .* cannot be read"):
        env_str("ISN_X", environ={"ISN_X_FILE": str(tmp_path / "missing")})


def test_required_value_missing_names_the_variable():
    with pytest.raises(ConfigError, match=r"^ISN_X is required"):
        env_str("ISN_X", environ={})
    assert env_optional("ISN_X", environ={"ISN_X": ""}) is None


def test_typed_values_and_malformed_ones():
    assert env_bool("B", False, environ={"B": "yes"}) is True
    assert env_int("N", 1, environ={"N": "42"}) == 42
    assert env_list("L", [], environ={"L": "a, b,,c"}) == ["a", "b", "c"]
    with pytest.raises(ConfigError, match="B must be true or false, not 'maybe'"):
        env_bool("B", False, environ={"B": "maybe"})
    with pytest.raises(ConfigError, match="N must be a whole number"):
        env_int("N", 1, environ={"N": "ten"})
    with pytest.raises(ConfigError, match="N must be at least 5"):
        env_int("N", 1, minimum=5, environ={"N": "2"})
    with pytest.raises(ConfigError, match="E must be one of a, b"):
        env_choice("E", "a", ("a", "b"), environ={"E": "c"})
