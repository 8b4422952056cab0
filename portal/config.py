"""Settings read from the environment.

Every setting has one place: this module. ``create_app(config)`` lets tests override any key.
"""
from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = Path(os.environ.get("PORTAL_INSTANCE", ROOT / "instance"))


def _bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def _json(name: str, default):
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        return json.loads(value)
    except ValueError as exc:
        raise ValueError(f"{name} is not valid JSON: {exc}") from None


def secret_key(instance: Path) -> str:
    """SECRET_KEY from the environment, or generated once and kept in instance/."""
    env = os.environ.get("SECRET_KEY")
    if env:
        return env
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def default_database_url(instance: Path) -> str:
    instance.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{instance / 'portal.db'}"


def from_env() -> dict:
    instance = INSTANCE
    secure = _bool("SECURE_COOKIES", False)
    return {
        "INSTANCE_DIR": str(instance),
        "DATABASE_URL": os.environ.get("DATABASE_URL") or default_database_url(instance),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "SECRET_KEY": secret_key(instance),
        "TIMEZONE": os.environ.get("PORTAL_TZ", os.environ.get("COMPANY_TZ", "Asia/Shanghai")),
        "BABEL_DEFAULT_LOCALE": os.environ.get("DEFAULT_LOCALE", "zh_Hans_CN"),
        "BABEL_DEFAULT_TIMEZONE": os.environ.get("PORTAL_TZ", "Asia/Shanghai"),
        "UPLOAD_DIR": os.environ.get("UPLOAD_DIR", str(instance / "uploads")),
        "MAX_CONTENT_LENGTH": _int("MAX_UPLOAD_MB", 20) * 1024 * 1024,
        # Cookies: HttpOnly + SameSite always; Secure when served over TLS.
        "SESSION_COOKIE_SECURE": secure,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": secure,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_DURATION": _int("REMEMBER_DAYS", 14) * 86400,
        "PREFERRED_URL_SCHEME": "https" if secure else "http",
        # ProxyFix: how many proxies to trust for each X-Forwarded-* header (0 = trust none).
        "PROXY_FIX_FOR": _int("PROXY_FIX_FOR", 0),
        "PROXY_FIX_PROTO": _int("PROXY_FIX_PROTO", 0),
        "PROXY_FIX_HOST": _int("PROXY_FIX_HOST", 0),
        # Login throttling: failures per window, per account and per IP.
        "LOGIN_MAX_FAILURES": _int("LOGIN_MAX_FAILURES", 10),
        "LOGIN_WINDOW_MINUTES": _int("LOGIN_WINDOW_MINUTES", 15),
        "WTF_CSRF_TIME_LIMIT": None,
        "SMTP_HOST": os.environ.get("SMTP_HOST", "127.0.0.1"),
        "SMTP_PORT": _int("SMTP_PORT", 25),
        "SMTP_USER": os.environ.get("SMTP_USER", ""),
        "SMTP_PASSWORD": os.environ.get("SMTP_PASSWORD", ""),
        "SMTP_TLS": os.environ.get("SMTP_TLS", "none"),  # none | starttls | ssl
        "MAIL_FROM": os.environ.get("MAIL_FROM", "hr-portal@localhost"),
        "SMS_BACKEND": os.environ.get("SMS_BACKEND", "console"),  # console | http
        "SMS_URL": os.environ.get("SMS_URL", ""),
        "SMS_TOKEN": os.environ.get("SMS_TOKEN", ""),
        "SMS_TIMEOUT": _int("SMS_TIMEOUT", 10),
        # Pre-approved gateway template ids (Chinese SMS providers only send registered templates).
        "SMS_TEMPLATE_GENERIC": os.environ.get("SMS_TEMPLATE_GENERIC", "PORTAL_GENERIC"),
        "SMS_TEMPLATE_NOTICE": os.environ.get("SMS_TEMPLATE_NOTICE", "PORTAL_FORMAL_NOTICE"),
        "SMTP_TIMEOUT": _int("SMTP_TIMEOUT", 30),
        "OUTBOX_LEASE_SECONDS": _int("OUTBOX_LEASE_SECONDS", 300),
        "PG_DUMP": os.environ.get("PG_DUMP", "pg_dump"),
        "PG_RESTORE": os.environ.get("PG_RESTORE", "pg_restore"),
        "SQL_ECHO": _bool("SQL_ECHO", False),
        # Performance: OKR early warning (N months below the threshold, or a drop of more than X points).
        "PERF_WARN_MONTHS": _int("PERF_WARN_MONTHS", 2),
        "PERF_WARN_THRESHOLD": _int("PERF_WARN_THRESHOLD", 70),
        "PERF_WARN_DROP": _int("PERF_WARN_DROP", 20),
        # Offboarding (Labour Contract Law art. 37: 30 days' notice, 3 in probation).
        "OFFBOARDING_NOTICE_DAYS": _int("OFFBOARDING_NOTICE_DAYS", 30),
        "OFFBOARDING_PROBATION_NOTICE_DAYS": _int("OFFBOARDING_PROBATION_NOTICE_DAYS", 3),
        # {role: [permissions]} frozen when a resignation is submitted; "*" applies to every leaver.
        "OFFBOARDING_FREEZE": _json("OFFBOARDING_FREEZE", None),
        # {permission: days}: denied this many days before the last working day (e.g. export a week ahead).
        "OFFBOARDING_EARLY_DENY": _json("OFFBOARDING_EARLY_DENY", {}),
        # Account revocation at "completion" or at the end of the "last_day" (minus REVOKE_DAYS_BEFORE).
        "OFFBOARDING_REVOKE_ON": os.environ.get("OFFBOARDING_REVOKE_ON", "completion"),
        "OFFBOARDING_REVOKE_TIME": os.environ.get("OFFBOARDING_REVOKE_TIME", "18:00"),
        "OFFBOARDING_REVOKE_DAYS_BEFORE": _int("OFFBOARDING_REVOKE_DAYS_BEFORE", 0),
        # External revocation hooks: [{"name": "mail", "url": "https://...", "token": "..."}]
        "OFFBOARDING_WEBHOOKS": _json("OFFBOARDING_WEBHOOKS", []),
        "OFFBOARDING_WEBHOOK_ATTEMPTS": _int("OFFBOARDING_WEBHOOK_ATTEMPTS", 5),
        "OFFBOARDING_WEBHOOK_BACKOFF": _json("OFFBOARDING_WEBHOOK_BACKOFF", [30, 120, 600, 1800]),
        "OFFBOARDING_WEBHOOK_TIMEOUT": _int("OFFBOARDING_WEBHOOK_TIMEOUT", 10),
        "OFFBOARDING_REVOCATION_LEASE_SECONDS": _int("OFFBOARDING_REVOCATION_LEASE_SECONDS", 300),
    }
