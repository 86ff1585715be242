"""Config: strict, every problem at once with its key path, secrets never printed."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
import yaml

from exporter.config import Config, ConfigError, Duration, Secret, default_config, load_config, parse_config
from tests.helpers import check_config, write_config


def test_valid_config_parses_into_typed_objects(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("from-file\n")
    config = parse_config(
        textwrap.dedent(
            """
            global:
              scrape_timeout: 1m30s
            redis:
              - name: cache
                url: redis://127.0.0.1:6379/2
                password_file: pw
                scrape_timeout: 500ms
                key_patterns:
                  - {name: sessions, pattern: "session:*"}
            """
        ),
        base_dir=tmp_path,
    )
    assert config.global_.scrape_timeout == 90.0
    (target,) = config.sources["redis"]
    assert target.target_name() == "cache"
    assert target.scrape_timeout == 0.5
    assert target.password == Secret("from-file")  # type: ignore[attr-defined]
    assert target.db() == 2  # type: ignore[attr-defined]
    assert "from-file" in config.secrets()
    assert "from-file" not in repr(target)


def test_env_expansion_in_any_string_with_default_and_escape() -> None:
    config = parse_config(
        "redis:\n  - name: ${NAME}\n    url: redis://${HOST:-localhost}:6379/0\n    username: a$$b\n",
        env={"NAME": "from-env"},
    )
    (target,) = config.sources["redis"]
    assert target.target_name() == "from-env"
    assert target.url == "redis://localhost:6379/0"  # type: ignore[attr-defined]
    assert target.username == "a$b"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10s", 10.0),
        ("500ms", 0.5),
        ("1m30s", 90.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
    ],
)
def test_duration_parse(text: str, expected: float) -> None:
    assert Duration.parse(text) == expected


@pytest.mark.parametrize("text", ["", "10", "1.5", "s", "10x", "1m 30s", "-1s", "-5"])
def test_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="expected a duration such as 30s or 1m30s"):
        Duration.parse(text)


# Every Duration key, in every section, goes through the same conversion: a sample of
# sections and nesting levels, each with a bare number.
BARE_NUMBER_KEYS = {
    "global.scrape_timeout": "global:\n  scrape_timeout: {v}\n",
    "redis[0].scrape_timeout": "redis:\n  - {{name: a, url: 'redis://h/0', scrape_timeout: {v}}}\n",
    "redis[0].key_pattern_refresh_interval": (
        "redis:\n  - {{name: a, url: 'redis://h/0', key_pattern_refresh_interval: {v}}}\n"
    ),
    "postgres[0].statement_timeout": "postgres:\n  - {{name: p, dsn: 'postgresql://u@h/db', statement_timeout: {v}}}\n",
    "lago[0].refresh_interval": (
        "lago:\n  - {{name: l, url: 'https://lago.example', api_key: k, refresh_interval: {v}}}\n"
    ),
    "dns_resolver.timeout": "dns_resolver:\n  timeout: {v}\n",
}


@pytest.mark.parametrize("key", sorted(BARE_NUMBER_KEYS))
@pytest.mark.parametrize(("written", "shown"), [("30", "a number (30)"), ("'30'", "'30'"), ("1.5", "a number (1.5)")])
def test_a_bare_number_is_rejected_for_every_duration(key: str, written: str, shown: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(BARE_NUMBER_KEYS[key].format(v=written))
    number = written.strip("'")
    expected = (
        f"{key}: expected a duration such as 30s or 1m30s, got {shown} without a unit (for seconds write {number}s)"
    )
    assert err.value.problems == [expected]


def _read(config: Config, key: str) -> object:
    section, _, name = key.partition(".")
    if section == "global":
        return getattr(config.global_, name)
    if section in config.settings:
        return getattr(config.settings[section], name)
    return getattr(config.sources[section.split("[")[0]][0], name)


@pytest.mark.parametrize("key", sorted(BARE_NUMBER_KEYS))
def test_durations_with_a_unit_are_accepted(key: str) -> None:
    for written, seconds in (("1m30s", 90.0), ("'90s'", 90.0), ("500ms", 0.5)):
        assert _read(parse_config(BARE_NUMBER_KEYS[key].format(v=written)), key) == seconds, written


@pytest.mark.parametrize("written", ["0", "'0'", "0s"])
def test_zero_needs_no_unit(written: str) -> None:
    key = "lago[0].refresh_interval"  # 0 turns the cache off, so 0 is a valid value here
    assert _read(parse_config(BARE_NUMBER_KEYS[key].format(v=written)), key) == 0.0


def test_a_bare_number_from_the_environment_is_rejected_like_a_literal() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config("global:\n  scrape_timeout: ${TIMEOUT}\n", env={"TIMEOUT": "30"})
    assert err.value.problems == [
        "global.scrape_timeout: expected a duration such as 30s or 1m30s, got '30' without a unit"
        " (for seconds write 30s)"
    ]


def test_every_problem_is_reported_at_once_with_key_paths(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-password-file"
    # raw text: ${...} is the exporter's to expand, and it must find the variable unset
    path = write_config(
        tmp_path,
        f"""
        global:
          scrape_timout: 10s
        redis:
          - name: cache
            url: http://127.0.0.1:6379
          - name: cache
            url: redis://127.0.0.1:6379/0
            password_file: {missing}
          - name: other
            url: redis://${{REDIS_PW_FOR_TEST}}@127.0.0.1/0
            colour: blue
          - url: redis://127.0.0.1:99999/x
            name: bad-url
        mysql: []
        """,
    )
    proc = check_config(path, env={k: v for k, v in os.environ.items() if k != "REDIS_PW_FOR_TEST"})
    assert proc.returncode == 1
    out = proc.stderr
    expected = [
        "global.scrape_timout: unknown key",
        "did you mean 'scrape_timeout'?",
        "redis[0].url: scheme must be redis://, rediss:// or unix://, got http",
        "redis[1].password_file: cannot read",
        "redis[2].url: environment variable REDIS_PW_FOR_TEST is not set",
        "redis[2].colour: unknown key",
        "redis[3].url: invalid URL",
        "mysql: unknown section",
    ]
    for fragment in expected:
        assert fragment in out, f"missing {fragment!r} in:\n{out}"
    assert "Traceback" not in out
    assert out.startswith(f"{path}: ")


def test_duplicate_target_names_are_rejected(tmp_path: Path) -> None:
    redis = [{"name": "cache", "url": "redis://127.0.0.1:6379/0"}, {"name": "cache", "url": "redis://127.0.0.1:6380/0"}]
    path = write_config(tmp_path, {"redis": redis})
    proc = check_config(path)
    assert proc.returncode == 1
    assert "redis[1].name: duplicate target name 'cache' (also redis[0])" in proc.stderr


def test_malformed_yaml_names_line_and_column(tmp_path: Path) -> None:
    path = write_config(tmp_path, "redis:\n  - name: a\n   url: [unclosed\n")
    proc = check_config(path)
    assert proc.returncode == 1
    assert "line 3, column" in proc.stderr
    assert "invalid YAML" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_duplicate_yaml_keys_are_rejected(tmp_path: Path) -> None:
    path = write_config(tmp_path, "redis:\n  - name: a\n    url: redis://h/0\n    url: redis://h/1\n")
    proc = check_config(path)
    assert proc.returncode == 1
    assert "duplicate key 'url'" in proc.stderr


def test_unreadable_password_file(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("x")
    secret.chmod(0)
    # root reads any file; a directory is unreadable as a file for everyone
    unreadable = tmp_path if os.geteuid() == 0 else secret
    path = write_config(tmp_path, {"redis": [{"name": "a", "url": "redis://h/0", "password_file": str(unreadable)}]})
    proc = check_config(path)
    assert proc.returncode == 1
    assert "redis[0].password_file: cannot read" in proc.stderr


def test_password_and_password_file_together(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("x")
    with pytest.raises(ConfigError) as err:
        parse_config(
            "redis:\n  - name: a\n    url: redis://h/0\n    password: y\n    password_file: pw\n", base_dir=tmp_path
        )
    assert err.value.problems == ["redis[0].password: set password or password_file, not both"]


def test_type_errors_name_the_expected_type() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config("global:\n  scrape_timeout: fast\nredis:\n  - name: 7\n    url: [a]\n")
    problems = err.value.problems
    assert (
        "global.scrape_timeout: expected a duration such as 30s or 1m30s (units ms, s, m, h, d), got 'fast'" in problems
    )
    assert "redis[0].name: expected a string, got a number (7) (quote it)" in problems
    assert "redis[0].url: expected a string, got a list" in problems


def test_missing_required_key() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config("redis:\n  - name: a\n")
    assert err.value.problems == ["redis[0].url: missing required key"]


def test_secrets_do_not_appear_in_config_errors() -> None:
    secret = "hunter2-SECRET-in-url"
    with pytest.raises(ConfigError) as err:
        parse_config(f"redis:\n  - name: a\n    url: redis://u:{secret}@h:0x/0\n")
    assert secret not in str(err.value)


def test_check_config_exit_zero_when_valid(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"redis": [{"name": "a", "url": "redis://127.0.0.1:6379/0"}]})
    proc = check_config(path)
    assert proc.returncode == 0, proc.stderr
    assert "OK (1 target)" in proc.stdout


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    proc = check_config(tmp_path / "nope.yml")
    assert proc.returncode == 1
    assert "cannot read config file: No such file or directory" in proc.stderr


def test_default_config_scrapes_local_redis_and_postgres() -> None:
    config = default_config()
    urls = {
        kind: [getattr(t, "url", None) or getattr(t, "dsn", None) for t in ts] for kind, ts in config.sources.items()
    }
    assert urls == {
        "redis": ["redis://127.0.0.1:6379/0"],
        "postgres": ["postgresql://postgres@127.0.0.1:5432/postgres"],
    }


def test_disabled_collector_drops_its_section(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"redis": [{"name": "a", "url": "redis://127.0.0.1:6379/0"}]})
    proc = check_config(path, "--no-collector.redis")
    assert proc.returncode == 0
    assert "OK (0 targets)" in proc.stdout


# --------------------------------------------------------------------------- file paths


def test_unreadable_redis_tls_files_are_config_errors_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not checked for content, only readability")
    tls = {"ca_file": "ca.pem", "cert_file": "missing-cert.pem", "key_file": "/nonexistent/dir/client.key"}
    redis = [
        {"name": "a", "url": "rediss://127.0.0.1:6380/0", "tls": tls},
        {"name": "b", "url": "rediss://127.0.0.1:6380/0", "tls": {"ca_file": "certs"}},
    ]
    path = write_config(tmp_path, {"redis": redis})
    (tmp_path / "certs").mkdir()
    proc = check_config(path)
    assert proc.returncode == 1
    err = proc.stderr
    assert f"redis[0].tls.cert_file: cannot read '{tmp_path / 'missing-cert.pem'}': No such file or directory" in err
    assert "redis[0].tls.key_file: cannot read '/nonexistent/dir/client.key': No such file or directory" in err
    assert f"redis[1].tls.ca_file: cannot read '{tmp_path / 'certs'}': it is a directory" in err
    assert "redis[0].tls.ca_file" not in err  # the readable one passes
    assert "Traceback" not in err and "socket" not in err
    assert err.startswith(f"{path}: 3 problems")


def test_every_file_path_field_is_checked_the_same_way(tmp_path: Path) -> None:
    config = {
        "http_probes": [{"name": "web", "url": "https://example.com/", "tls": {"ca_file": "nope.pem"}}],
        "postgres": [
            {
                "name": "main",
                "dsn": "postgresql://u@127.0.0.1/db?sslmode=verify-full&sslrootcert=/nonexistent/root.crt",
                "custom_queries_file": "no-queries.yaml",
            }
        ],
    }
    path = write_config(tmp_path, config)
    proc = check_config(path)
    assert proc.returncode == 1
    err = proc.stderr
    assert f"http_probes[0].tls.ca_file: cannot read '{tmp_path / 'nope.pem'}': No such file or directory" in err
    assert f"postgres[0].custom_queries_file: cannot read '{tmp_path / 'no-queries.yaml'}'" in err
    assert "postgres[0].dsn: sslrootcert: cannot read '/nonexistent/root.crt': No such file or directory" in err
    assert "Traceback" not in err


def test_unreadable_file_for_the_process(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads any file whatever its mode")
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    ca.chmod(0)
    with pytest.raises(ConfigError) as err:
        parse_config("redis:\n  - {name: a, url: 'rediss://h/0', tls: {ca_file: ca.pem}}\n", base_dir=tmp_path)
    assert err.value.problems == [f"redis[0].tls.ca_file: cannot read '{ca}': Permission denied"]


def test_relative_custom_queries_file_is_resolved_against_the_config_file(tmp_path: Path) -> None:
    conf_dir = tmp_path / "etc"
    conf_dir.mkdir()
    (conf_dir / "queries.yaml").write_text(
        "pg_one:\n  query: SELECT 1 AS v\n  metrics:\n    - v: {usage: GAUGE, description: One.}\n"
    )
    written = {"name": "p", "dsn": "postgresql://u@h/db", "custom_queries_file": "queries.yaml"}
    path = write_config(conf_dir, {"postgres": [written]})
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    cwd = Path.cwd()
    os.chdir(elsewhere)  # no queries.yaml here: only the config file's directory has one
    try:
        config = load_config("../etc/config.yml")
    finally:
        os.chdir(cwd)
    (target,) = config.sources["postgres"]
    assert target.custom_queries_file == str(conf_dir.resolve() / "queries.yaml")  # type: ignore[attr-defined]
    assert [q.name for q in target.custom_queries] == ["pg_one"]  # type: ignore[attr-defined]
    # and --check-config, started from another directory, agrees
    proc = check_config(path, cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr


def test_docs_and_example_agree_on_where_a_relative_custom_queries_file_is() -> None:
    root = Path(__file__).resolve().parent.parent
    for doc in (root / "docs" / "postgres.md", root / "examples" / "config.yml"):
        lines = [line for line in doc.read_text().splitlines() if "custom_queries_file:" in line]
        comments = [line.split("#", 1)[1] for line in lines if "#" in line]
        assert comments, f"{doc.name} no longer says where a relative custom_queries_file is"
        for comment in comments:
            assert "working directory" not in comment, f"{doc.name}: {comment}"
            assert "config file" in comment or "this file" in comment, f"{doc.name}: {comment}"


# Every URL-valued key of every source, with the rest of a minimal valid target.
URL_KEYS: dict[str, tuple[str, dict[str, object]]] = {
    "redis": ("url", {}),
    "postgres": ("dsn", {}),
    "pgbouncer": ("dsn", {}),
    "lago": ("url", {"api_key": "k"}),
    "directus": ("url", {}),
    "statuspages": ("url", {}),
    "sendgrid": ("url", {"api_key": "k"}),
    "mailgun": ("url", {"api_key": "k", "domain": "mg.example.com"}),
    "postmark": ("url", {"server_token": "k"}),
    "resend": ("url", {"api_key": "k"}),
    "ses": ("endpoint_url", {"region": "us-east-1"}),
    "http_probes": ("url", {}),
}


@pytest.mark.parametrize("source", sorted(URL_KEYS))
def test_every_url_is_checked_the_same_way(source: str) -> None:
    """A URL without a host, or without a scheme, is refused by every source in the same words."""
    from exporter.collectors import SOURCES

    if source == "ses":
        pytest.importorskip("aiobotocore")
    key, rest = URL_KEYS[source]
    scheme = {"redis": "redis", "postgres": "postgresql", "pgbouncer": "postgresql"}.get(source, "https")
    targets = [
        {"name": "nohost", key: f"{scheme}://", **rest},
        {"name": "noscheme", key: "example.com/x", **rest},
        {"name": "badport", key: f"{scheme}://example.com:99999/x", **rest},
    ]
    with pytest.raises(ConfigError) as info:
        parse_config(yaml.safe_dump({source: targets}), env={})
    problems = info.value.problems
    assert any(p.startswith(f"{source}[0].{key}: missing host, e.g. ") for p in problems), problems
    assert any(p.startswith(f"{source}[1].{key}: must be a URL such as ") for p in problems), problems
    assert f"{source}[2].{key}: invalid URL: Port out of range 0-65535" in problems, problems
    assert set(URL_KEYS) == {k for k in SOURCES if k != "email_domains"}, "a new source with a URL belongs here"
