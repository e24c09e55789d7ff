"""Usage per function, rolled up per hour and per UTC day: invocations by outcome, duration, billed GB-s, fuel.

One row per (function, period, bucket start, outcome). Every column is a sum, a maximum or a bucket
count of a fixed histogram, so rows merge by adding them: a batch written by any node, an hour's
rows into a day, several outcomes into one figure, and the percentiles are read from the merged
histogram. Writing a batch of invocation records is one `executemany` of upserts (one database
round trip), joined to the transaction that stores the records themselves (`fnhost.recorder`).

Durations fall into `DURATION_BUCKETS_MS`: upper edges 2^(k/2)/16 ms for k = 0..48 (1/16 ms to
2^20 ms, past the largest timeout), then an overflow bucket. A percentile is interpolated within its
bucket (geometrically) and capped at the largest duration seen, so it is within a factor of √2 of
the exact value, and exact when the bucket held one duration.

Billed GB-s is Lambda's formula: the billed duration (rounded up to 1 ms, `billed_ms`) times the memory
size in GB (`limits.memory_mb` / 1024); it is summed exactly as MB·ms (`billed_mb_ms`).

Retention: `purge` deletes hourly rows older than `hourly_days` and daily rows older than
`daily_days`; the recorder calls it in the background (`UsageRetention`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..namespaces import namespace_of
from ._common import SQLiteStore, int_in_range, sql_migration, translate_database_errors
from .database import AnyDatabase, executemany
from .errors import InvalidArgument
from .invocations import InvocationRecord

PERIODS: dict[str, int] = {"hour": 3600, "day": 86400}
"""Rollup periods and their length in seconds (days are UTC days)."""
DURATION_BUCKETS_MS: tuple[float, ...] = tuple(2 ** (k / 2) / 16 for k in range(49))
"""Upper edges of the duration histogram's buckets; one more bucket holds longer durations."""
BUCKETS = len(DURATION_BUCKETS_MS) + 1
_HISTOGRAM = [f"d{i:02d}" for i in range(BUCKETS)]
OK, THROTTLED = "ok", "throttled"  # `Outcome` values (runtime.outcomes): the stores do not import the runtime

_SUMS = ["invocations", "duration_ms", "billed_ms", "billed_mb_ms", "fuel", *_HISTOGRAM]
_KEY = ["function", "period", "bucket_start", "outcome"]
_COLUMNS = [*_KEY, "namespace", *_SUMS, "max_duration_ms"]

MIGRATIONS = [
    sql_migration(
        "CREATE TABLE usage_rollups ("
        " function TEXT NOT NULL,"
        " period TEXT NOT NULL,"
        " bucket_start INTEGER NOT NULL,"
        " outcome TEXT NOT NULL,"
        " namespace TEXT NOT NULL,"
        " invocations INTEGER NOT NULL,"
        " duration_ms REAL NOT NULL,"
        " billed_ms INTEGER NOT NULL,"
        " billed_mb_ms INTEGER NOT NULL,"
        # REAL: a sum a guest's limits drive; it must never overflow and fail the batch that records invocations
        " fuel REAL NOT NULL,"
        + "".join(f" {c} INTEGER NOT NULL DEFAULT 0," for c in _HISTOGRAM)
        + " max_duration_ms REAL NOT NULL,"
        " PRIMARY KEY (function, period, bucket_start, outcome)"
        ")",
        "CREATE INDEX usage_by_namespace ON usage_rollups (namespace, period, bucket_start)",
        "CREATE INDEX usage_by_time ON usage_rollups (period, bucket_start)",
    ),
]


def bucket_of(duration_ms: float) -> int:
    """The histogram bucket of a duration."""
    if duration_ms <= DURATION_BUCKETS_MS[0]:
        return 0
    return min(BUCKETS - 1, math.ceil(2 * math.log2(duration_ms * 16) - 1e-9))


def period_start(period: str, at: float) -> int:
    """The start (Unix seconds) of the `period` bucket holding time `at`."""
    length = PERIODS[period]
    return int(at // length) * length


@dataclass
class Rollup:
    """Usage of one function in one period bucket (or merged over several: see `merge`)."""

    function: str
    period: str
    start: int
    """Unix seconds (UTC) at which the bucket starts."""
    outcomes: dict[str, int] = field(default_factory=dict)
    duration_ms_sum: float = 0.0
    duration_ms_max: float = 0.0
    billed_ms: int = 0
    billed_mb_ms: int = 0
    fuel: float = 0.0
    histogram: list[int] = field(default_factory=lambda: [0] * BUCKETS)

    @property
    def invocations(self) -> int:
        return sum(self.outcomes.values())

    @property
    def errors(self) -> int:
        """Invocations that failed (every outcome but ok and throttled, as `fnhost_invocation_errors_total`)."""
        return sum(n for outcome, n in self.outcomes.items() if outcome not in (OK, THROTTLED))

    @property
    def throttles(self) -> int:
        return self.outcomes.get(THROTTLED, 0)

    @property
    def gb_seconds(self) -> float:
        """Billed GB-s: the sum of billed ms x memory MB, over 1024 MB/GB and 1000 ms/s."""
        return self.billed_mb_ms / 1024 / 1000

    def percentile(self, q: float) -> float | None:
        """The `q` quantile (0 < q <= 1) of the durations, from the histogram; None without invocations."""
        total = sum(self.histogram)
        if total == 0:
            return None
        rank = q * total
        seen = 0
        for index, count in enumerate(self.histogram):
            if count and seen + count >= rank:
                if index == BUCKETS - 1:
                    return self.duration_ms_max
                upper = DURATION_BUCKETS_MS[index]
                lower = DURATION_BUCKETS_MS[index - 1] if index else 0.0
                within = (rank - seen) / count
                estimate = lower + (upper - lower) * within if index == 0 else lower * (upper / lower) ** within
                return min(estimate, self.duration_ms_max)
            seen += count
        return self.duration_ms_max

    def merge(self, other: Rollup) -> None:
        """Add `other`'s usage into this one (the counts are sums, so any rows merge)."""
        for outcome, n in other.outcomes.items():
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + n
        self.duration_ms_sum += other.duration_ms_sum
        self.duration_ms_max = max(self.duration_ms_max, other.duration_ms_max)
        self.billed_ms += other.billed_ms
        self.billed_mb_ms += other.billed_mb_ms
        self.fuel += other.fuel
        self.histogram = [a + b for a, b in zip(self.histogram, other.histogram, strict=True)]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (`GET /v1/usage`)."""
        invocations = self.invocations
        return {
            "function": self.function,
            "period": self.period,
            "start": self.start,
            "start_iso": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.start)),
            "invocations": invocations,
            "errors": self.errors,
            "throttles": self.throttles,
            "outcomes": dict(sorted(self.outcomes.items())),
            "duration_ms": {
                "p50": _rounded(self.percentile(0.5)),
                "p99": _rounded(self.percentile(0.99)),
                "max": _rounded(self.duration_ms_max) if invocations else None,
                "mean": _rounded(self.duration_ms_sum / invocations) if invocations else None,
            },
            "billed_ms": self.billed_ms,
            "gb_seconds": round(self.gb_seconds, 6),
            "fuel": int(self.fuel),
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


@dataclass(frozen=True)
class UsageRetention:
    """How long rollups are kept: hourly rows `hourly_days`, daily rows `daily_days` (`fnhost serve
    --usage-hourly-days/--usage-daily-days`); purged every `purge_interval_s` by the recorder."""

    hourly_days: int = 14
    daily_days: int = 400
    purge_interval_s: float = 600.0

    def __post_init__(self) -> None:
        int_in_range("usage hourly retention (days)", self.hourly_days, 1, 3660)
        int_in_range("usage daily retention (days)", self.daily_days, 1, 36600)


MAX_BUCKETS = {"hour": 24 * 62, "day": 3660}
"""The most buckets one query may span, per period (a longer range: ask per day, or in pieces)."""
MAX_ROWS = 50_000
"""The most stored rows one query reads (a namespace of many functions over a long range: narrow it)."""


class UsageStore(SQLiteStore):
    """Usage rollups over the host database (either backend)."""

    def __init__(self, db: AnyDatabase) -> None:
        super().__init__(db, "usage", MIGRATIONS)
        greatest = "max" if db.dialect.name == "sqlite" else "greatest"
        updates = [f"{c} = usage_rollups.{c} + excluded.{c}" for c in _SUMS]
        updates.append(f"max_duration_ms = {greatest}(usage_rollups.max_duration_ms, excluded.max_duration_ms)")
        self._upsert = (
            f"INSERT INTO usage_rollups ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))}) "
            f"ON CONFLICT ({', '.join(_KEY)}) DO UPDATE SET {', '.join(updates)}"
        )

    @staticmethod
    def rollups_of(records: Iterable[InvocationRecord]) -> list[tuple[object, ...]]:
        """The upsert rows for `records`: one per (function, period, bucket, outcome) they touch."""
        rows: dict[tuple[str, str, int, str], list[Any]] = {}
        for rec in records:
            bucket = 5 + bucket_of(rec.duration_ms)  # its column among _SUMS
            for period in PERIODS:
                key = (rec.function, period, period_start(period, rec.started_at), rec.outcome)
                row = rows.get(key)
                if row is None:
                    row = rows[key] = [0, 0.0, 0, 0, 0.0, *([0] * BUCKETS), 0.0]
                row[0] += 1
                row[1] += rec.duration_ms
                row[2] += rec.billed_ms
                row[3] += rec.billed_ms * rec.memory_limit_mb
                row[4] += float(rec.fuel_consumed)
                row[bucket] += 1
                row[-1] = max(row[-1], rec.duration_ms)
        return [(*key, namespace_of(key[0]), *row) for key, row in rows.items()]

    @translate_database_errors
    def record_many(self, records: Sequence[InvocationRecord]) -> None:
        """Add finished invocations to their hour's and day's rollups (one round trip, in the caller's
        transaction when there is one)."""
        rows = self.rollups_of(records)
        if rows:
            with self._db.transaction() as db:
                executemany(db, self._upsert, rows)

    @translate_database_errors
    def query(
        self,
        *,
        period: str = "hour",
        since: float,
        until: float,
        namespace: str | None = None,
        function: str | None = None,
        max_rows: int = MAX_ROWS,
    ) -> list[Rollup]:
        """Rollups of `period` whose bucket starts in [since, until), of one `namespace` (and one
        `function`, a store name) or every one; sorted by function, then time. More than `max_rows`
        stored rows (one per function, bucket and outcome) is refused, naming the fix."""
        if period not in PERIODS:
            raise InvalidArgument(f"period must be one of {', '.join(PERIODS)}, got {period!r}")
        if not until > since:
            raise InvalidArgument(f"until ({until}) must be later than since ({since})")
        spans = (until - since) / PERIODS[period]
        if spans > MAX_BUCKETS[period]:
            raise InvalidArgument(
                f"the range spans {math.ceil(spans)} {period}s, more than the {MAX_BUCKETS[period]} one query "
                f"may ask for; narrow since/until{' or use period=day' if period == 'hour' else ''}"
            )
        where = ["period = ?", "bucket_start >= ?", "bucket_start < ?"]
        params: list[object] = [period, period_start(period, since), until]
        if namespace is not None:
            where.append("namespace = ?")
            params.append(namespace)
        if function is not None:
            where.append("function = ?")
            params.append(function)
        sql = (
            f"SELECT function, bucket_start, outcome, {', '.join(_SUMS)}, max_duration_ms FROM usage_rollups "
            f"WHERE {' AND '.join(where)} ORDER BY function, bucket_start, outcome LIMIT ?"
        )
        rows = self._db.db.execute(sql, [*params, max_rows + 1]).fetchall()
        if len(rows) > max_rows:
            raise InvalidArgument(
                f"the range holds more than {max_rows} usage rows; narrow since/until, ask for one function, "
                f"{'or use period=day' if period == 'hour' else 'or ask in pieces'}"
            )
        out: list[Rollup] = []
        for row in rows:
            name, start, outcome = row[0], int(row[1]), row[2]
            if not out or (out[-1].function, out[-1].start) != (name, start):
                out.append(Rollup(name, period, start))
            rollup = out[-1]
            rollup.merge(
                Rollup(
                    name,
                    period,
                    start,
                    outcomes={outcome: int(row[3])},
                    duration_ms_sum=float(row[4]),
                    billed_ms=int(row[5]),
                    billed_mb_ms=int(row[6]),
                    fuel=float(row[7]),
                    histogram=[int(c) for c in row[8 : 8 + BUCKETS]],
                    duration_ms_max=float(row[8 + BUCKETS]),
                )
            )
        return out

    @translate_database_errors
    def purge(self, retention: UsageRetention, now: float | None = None) -> int:
        """Delete rollups older than `retention` allows; the number of rows deleted."""
        now = time.time() if now is None else now
        deleted = 0
        with self._db.transaction() as db:
            for period, days in (("hour", retention.hourly_days), ("day", retention.daily_days)):
                cutoff = period_start(period, now - days * 86400)
                deleted += db.execute(
                    "DELETE FROM usage_rollups WHERE period = ? AND bucket_start < ?", [period, cutoff]
                ).rowcount
        return deleted


def totals(rollups: Iterable[Rollup]) -> list[Rollup]:
    """One rollup per function, merged over every bucket given (start: its earliest bucket)."""
    by_function: dict[str, Rollup] = {}
    for r in rollups:
        total = by_function.get(r.function)
        if total is None:
            total = by_function[r.function] = Rollup(r.function, r.period, r.start)
        total.merge(r)
    return list(by_function.values())
