"""SQLAlchemy Core tables on one MetaData; Alembic autogenerates from it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC in and out, on SQLite (which stores naive text) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)  # noqa: S101 - the column type guarantees it
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Ids are config slugs (components) or 12-character random ids (incidents, as Statuspage's).
ID = String(64)

components = Table(
    "components",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("group_name", String(200), nullable=False, default=""),
    Column("description", Text, nullable=False, default=""),
    Column("kind", String(16), nullable=False),
    Column("position", Integer, nullable=False, default=0),
    Column("status", String(32), nullable=False),
    Column("reported_status", String(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Components removed from the config keep their history but leave the page.
    Column("removed_at", UTCDateTime, nullable=True),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", ID, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("status", String(32), nullable=False),
    Column("impact", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("monitoring_at", UTCDateTime, nullable=True),
    Column("resolved_at", UTCDateTime, nullable=True),
    Column("scheduled_for", UTCDateTime, nullable=True),
    Column("scheduled_until", UTCDateTime, nullable=True),
    Column("auto_transition", Boolean, nullable=False, default=False),
    Column("origin", String(16), nullable=False, default="staff"),
    Column("is_open", Boolean, nullable=False),
    # Automatic incidents: the check that opened it, and whether the prober still writes its
    # updates ("auto") or staff took it over ("manual": the prober then only moves statuses).
    Column("check_id", String(64), nullable=True, index=True),
    Column("automation", String(16), nullable=False, server_default="manual"),
    Index("ix_incidents_open_kind", "is_open", "kind"),
    Index("ix_incidents_created_at", "created_at"),
)

incident_components = Table(
    "incident_components",
    metadata,
    Column("incident_id", ID, ForeignKey("incidents.id"), primary_key=True),
    Column("component_id", ID, ForeignKey("components.id"), primary_key=True),
    Column("status", String(32), nullable=False),
    Column("position", Integer, nullable=False, default=0),
    Index("ix_incident_components_component", "component_id"),
)

incident_updates = Table(
    "incident_updates",
    metadata,
    Column("id", ID, primary_key=True),
    Column("incident_id", ID, ForeignKey("incidents.id"), nullable=False, index=True),
    Column("status", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("display_at", UTCDateTime, nullable=False),
    Column("affected_components", JSON, nullable=False),
    Column("author", String(200), nullable=False, default=""),
    # Order within the incident: timestamps tie when updates land in the same instant.
    Column("position", Integer, nullable=False, server_default="0"),
)

# The outbox: one row per committed change, written in the change's own transaction.
events = Table(
    "events",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("kind", String(40), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("incident_id", ID, nullable=True),
    Column("component_ids", JSON, nullable=False),
    Column("payload", JSON, nullable=False),
    # Set once the dispatcher has written this event's deliveries (one per target).
    Column("planned", Boolean, nullable=False, server_default=false(), index=True),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("name", String(100), nullable=False),
    # sha256 of the token: tokens carry 256 random bits, so a fast hash cannot be brute-forced.
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("scopes", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
)

audit = Table(
    "audit",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("actor", String(100), nullable=False),
    Column("token_id", String(16), nullable=True),
    Column("action", String(60), nullable=False),
    Column("target", String(200), nullable=False, default=""),
    Column("outcome", String(16), nullable=False),
    Column("remote_addr", String(64), nullable=False, default=""),
    Column("user_agent", String(300), nullable=False, default=""),
    Column("detail", JSON, nullable=False),
)

idempotency = Table(
    "idempotency",
    metadata,
    Column("token_id", String(16), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)


# One row per configured check: its lease (which instance runs it) and its confirmed state.
check_state = Table(
    "check_state",
    metadata,
    Column("check_id", ID, primary_key=True),
    Column("component_id", ID, nullable=False),
    Column("severity", String(32), nullable=False),
    Column("owner", String(64), nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("failing", Boolean, nullable=False, default=False),
    Column("since", UTCDateTime, nullable=True),
    Column("transitions", JSON, nullable=False),
    Column("silenced_until", UTCDateTime, nullable=True),
    Column("last_at", UTCDateTime, nullable=True),
    Column("last_ok", Boolean, nullable=True),
    Column("last_kind", String(16), nullable=True),
    Column("last_reason", String(300), nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_response_ms", Integer, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Raw observations, batch-inserted and pruned after the retention period.
check_results = Table(
    "check_results",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("check_id", ID, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("reason", String(300), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("response_ms", Integer, nullable=True),
    Index("ix_check_results_check_at", "check_id", "at"),
    Index("ix_check_results_at", "at"),
)

# Compact history: per check per day (in the site's zone), for uptime bars and the board.
check_daily = Table(
    "check_daily",
    metadata,
    Column("check_id", ID, primary_key=True),
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD
    Column("total", Integer, nullable=False),
    Column("failures", Integer, nullable=False),
    Column("latency_buckets", JSON, nullable=False),  # log-scale histogram, see history.py
    Column("p50_ms", Integer, nullable=True),
    Column("p95_ms", Integer, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

# The live queue of each branch, from its queue system or typed in by staff.
branch_queues = Table(
    "branch_queues",
    metadata,
    Column("branch_id", ID, primary_key=True),
    Column("serving", Integer, nullable=True),
    Column("issued", Integer, nullable=True),
    Column("counters_open", Integer, nullable=True),
    Column("length", Integer, nullable=True),
    Column("last_move_at", UTCDateTime, nullable=True),
    Column("served_per_hour", Integer, nullable=True),
    Column("estimated_wait_s", Integer, nullable=True),
    Column("stalled", Boolean, nullable=False, default=False),
    Column("is_open", Boolean, nullable=False, default=True),
    Column("read_at", UTCDateTime, nullable=True),
    Column("samples", JSON, nullable=False),
    Column("source", String(16), nullable=False, default="probe"),
    Column("error", String(300), nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Running prober instances (heartbeats), so each takes a fair share of the checks.
prober_instances = Table(
    "prober_instances",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("heartbeat_at", UTCDateTime, nullable=False),
)


# Broadcast targets (a channel, a webhook, a subscriber's chat): who holds the send lease,
# and whether a permanent failure stopped it.
targets = Table(
    "targets",
    metadata,
    Column("id", String(200), primary_key=True),
    # A target added later gets news from then on, not the whole history.
    Column("since_event_id", BigInteger, nullable=False, server_default="0"),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("disabled_at", UTCDateTime, nullable=True),
    Column("disabled_reason", String(300), nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

# One row per (event, target): the delivery log ops read ("what was sent where, what failed").
deliveries = Table(
    "deliveries",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column(
        "event_id",
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("events.id"),
        nullable=False,
    ),
    Column("target", String(200), nullable=False),
    Column("incident_id", String(64), nullable=True),
    # pending → sending (in flight) → sent | failed; "sending" after a crash is retried
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_error", String(300), nullable=True),
    Column("receipt", String(100), nullable=True),
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    UniqueConstraint("event_id", "target", name="uq_deliveries_event_target"),
    Index("ix_deliveries_target_status", "target", "status", "event_id"),
    Index("ix_deliveries_status_due", "status", "next_attempt_at"),
)

# The first receipt per (target, incident): a Telegram channel replies to and edits that post.
receipts = Table(
    "receipts",
    metadata,
    Column("target", String(200), primary_key=True),
    Column("incident_id", String(64), primary_key=True),
    Column("receipt", String(100), nullable=False),
)

# People who talk to the Telegram bot, and what each follows: a branch or service id,
# "region:<name>", or "upstream" (every e-Meterai service).
bot_subscribers = Table(
    "bot_subscribers",
    metadata,
    Column("chat_id", BigInteger, primary_key=True, autoincrement=False),
    Column("language", String(2), nullable=False),
    Column("username", String(100), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Set when Telegram says the user blocked the bot: they are no longer sent anything.
    Column("blocked_at", UTCDateTime, nullable=True),
)

bot_subscriptions = Table(
    "bot_subscriptions",
    metadata,
    Column(
        "chat_id",
        BigInteger,
        ForeignKey("bot_subscribers.chat_id"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("follow", String(100), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_bot_subscriptions_follow", "follow"),
)

# Staff console sessions (issue 6). The cookie carries a random session id; only its sha256 is
# stored. A session dies with its token (revoked → signed out) and at expires_at.
staff_sessions = Table(
    "staff_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("token_id", String(16), ForeignKey("tokens.id"), nullable=False),
    # Per-session secret for CSRF tokens on the console's forms.
    Column("csrf_secret", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("remote", String(64), nullable=True),
    Index("ix_staff_sessions_token", "token_id"),
)

# Failed sign-ins per source (client address), shared by every instance so throttling holds
# behind a load balancer.
signin_failures = Table(
    "signin_failures",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("window_start", UTCDateTime, nullable=False),
    Column("blocked_until", UTCDateTime, nullable=True),
)

# Staff commands in the Telegram bot (issue 6): an admin issues a one-time code for a staff
# token's scope; the person sends it to the bot from their own account, which links the two.
staff_link_codes = Table(
    "staff_link_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("token_id", String(16), ForeignKey("tokens.id"), nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
)

staff_telegram_links = Table(
    "staff_telegram_links",
    metadata,
    # A Telegram user id (not a chat id): staff act from their own account.
    Column("telegram_user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("token_id", String(16), ForeignKey("tokens.id"), nullable=False),
    Column("username", String(100), nullable=True),
    Column("linked_at", UTCDateTime, nullable=False),
    Column("unlinked_at", UTCDateTime, nullable=True),
)
