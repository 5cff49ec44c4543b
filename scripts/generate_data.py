"""Deterministic raw data for the provenance pipeline, at any scale.

Writes the raw relations the dbt project reads (one file per relation, every row with the
`source_id` of the registered source it came from, see `seeds/data_sources.csv`):

    raw_users_web, raw_users_mobile, raw_users_partner     user records from three feeds
    raw_spam_accounts, raw_spam_ips                        the spam dataset
    raw_spam_scores                                        scores of two spam-model versions
    raw_id_merge_pairs                                     account pairs from the ID-merge model
    raw_job_search_labels                                  labels from four labelling sources
    raw_user_events                                        activity events from two trackers

The same seed gives the same bytes on every machine: one `random.Random(seed)` drives every
choice, nothing reads the clock. The committed demo seeds are

    python scripts/generate_data.py --users 1000 --out seeds

and the benchmark scale (Parquet, written through DuckDB) is

    python scripts/generate_data.py --users 1000000 --format parquet --out /tmp/raw

The data has the structure the pipeline is there to handle: people with accounts in several
feeds (duplicates the ID-merge model links, plus a few wrong links), spammers sharing IP
addresses, a broken batch in spam model v1, labellers who disagree (QuickMark is worse than the
others and over-confident), labellers correcting their own labels, events of several types.
"""

from __future__ import annotations

import argparse
import csv
import logging
import random
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

log = logging.getLogger(__name__)

SEED = 20260101

# Columns of each raw relation with the DuckDB type the seeds and the Parquet files use.
# Keep in step with `column_types` in seeds/_seeds.yml.
SCHEMAS: dict[str, tuple[tuple[str, str], ...]] = {
    "raw_users_web": (
        ("account_id", "varchar"), ("email", "varchar"), ("signup_ip", "varchar"),
        ("country", "varchar"), ("created_at", "timestamp"), ("source_id", "varchar"),
    ),
    "raw_users_mobile": (
        ("account_id", "varchar"), ("email", "varchar"), ("signup_ip", "varchar"),
        ("country", "varchar"), ("device_os", "varchar"), ("created_at", "timestamp"),
        ("source_id", "varchar"),
    ),
    "raw_users_partner": (
        ("partner_user_ref", "varchar"), ("email_address", "varchar"), ("country_name", "varchar"),
        ("registered_on", "date"), ("source_id", "varchar"),
    ),
    "raw_spam_accounts": (
        ("account_id", "varchar"), ("reported_on", "date"), ("reason", "varchar"),
        ("source_id", "varchar"),
    ),
    "raw_spam_ips": (
        ("ip_address", "varchar"), ("listed_on", "date"), ("source_id", "varchar"),
    ),
    "raw_spam_scores": (
        ("score_id", "varchar"), ("account_id", "varchar"), ("spam_score", "double"),
        ("scored_at", "timestamp"), ("source_id", "varchar"),
    ),
    "raw_id_merge_pairs": (
        ("pair_id", "varchar"), ("account_id_a", "varchar"), ("account_id_b", "varchar"),
        ("match_score", "double"), ("source_id", "varchar"),
    ),
    "raw_job_search_labels": (
        ("label_id", "varchar"), ("account_id", "varchar"), ("labeller_id", "varchar"),
        ("is_job_seeker", "boolean"), ("confidence", "double"), ("labelled_at", "timestamp"),
        ("source_id", "varchar"),
    ),
    "raw_user_events": (
        ("event_id", "varchar"), ("account_id", "varchar"), ("event_type", "varchar"),
        ("event_at", "timestamp"), ("source_id", "varchar"),
    ),
}

# Source ids, as registered in seeds/data_sources.csv.
WEB, MOBILE, PARTNER = "users_web_signup", "users_mobile_app", "users_partner_feed"
SPAM_ACCOUNTS, SPAM_IPS = "spam_accounts_shieldco", "spam_ips_community"
SPAM_V1, SPAM_V2 = "spam_model_v1", "spam_model_v2"
MERGE = "id_merge_model_v3"
EVENTS_WEB, EVENTS_MOBILE = "events_web_clickstream", "events_mobile_sdk"


@dataclass(frozen=True)
class Labeller:
    """A labelling source: how often it labels a person, how many workers, how well."""

    source_id: str
    prefix: str
    n_workers: int
    share: float
    votes: int
    accuracy: float
    confidence: tuple[float, float]


LABELLERS = (
    Labeller("labels_inhouse", "ih", 6, 0.25, 1, 0.95, (0.70, 1.00)),
    Labeller("labels_crowd_acme", "acme", 300, 0.70, 3, 0.80, (0.50, 1.00)),
    Labeller("labels_vendor_northwind", "nw", 20, 0.45, 1, 0.90, (0.60, 1.00)),
    Labeller("labels_vendor_quickmark", "qm", 12, 0.45, 1, 0.62, (0.85, 1.00)),
)

SOURCE_IDS = (WEB, MOBILE, PARTNER, SPAM_ACCOUNTS, SPAM_IPS, SPAM_V1, SPAM_V2, MERGE,
              *(lab.source_id for lab in LABELLERS), EVENTS_WEB, EVENTS_MOBILE)

COUNTRIES = (("DE", 30), ("FR", 20), ("GB", 18), ("NL", 8), ("ES", 10), ("IT", 9), ("PL", 5))
COUNTRY_NAMES = {"DE": "germany", "FR": "france", "GB": "united kingdom", "NL": "netherlands",
                 "ES": "spain", "IT": "italy", "PL": "poland"}
FIRST = ("anna", "ben", "chloe", "david", "emma", "felix", "grace", "hugo", "ines", "jonas",
         "karin", "leo", "mia", "noah", "olga", "paul", "rosa", "sven", "tara", "yusuf")
LAST = ("meyer", "martin", "smith", "rossi", "garcia", "nowak", "jansen", "schmidt", "dubois",
        "brown", "bianchi", "lopez", "kowalski", "visser", "weber", "moreau")
DOMAINS = ("example.com", "mail.example.org", "post.example.net")
OS = ("android", "ios")
EVENT_TYPES = ("page_view", "job_search", "job_view", "apply_click", "profile_update",
               "message_sent")
WEIGHTS_BROWSER = (50, 5, 10, 3, 12, 20)
WEIGHTS_SEEKER = (25, 25, 25, 15, 6, 4)
WEIGHTS_SPAMMER = (20, 2, 3, 1, 4, 70)

EPOCH_USERS = datetime(2024, 1, 1)
EPOCH_EVENTS = datetime(2026, 1, 1)
EPOCH_LABELS = datetime(2026, 5, 1)
V1_BROKEN_BATCH = datetime(2026, 3, 1)


def ts(base: datetime, seconds: int) -> str:
    """A timestamp `seconds` after `base`, as the seeds write it.

    >>> ts(datetime(2026, 1, 1), 90061)
    '2026-01-02 01:01:01'
    """
    return (base + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class Writers:
    """One csv writer per raw relation, with running counters for row ids."""

    out_dir: Path
    files: dict = field(default_factory=dict)
    writers: dict = field(default_factory=dict)
    counters: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for name, columns in SCHEMAS.items():
            handle = open(self.out_dir / f"{name}.csv", "w", newline="", encoding="utf-8")
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow([c for c, _ in columns])
            self.files[name], self.writers[name] = handle, writer

    def next_id(self, prefix: str) -> str:
        n = self.counters.get(prefix, 0) + 1
        self.counters[prefix] = n
        return f"{prefix}_{n:08d}"

    def row(self, name: str, *values: object) -> None:
        self.writers[name].writerow(values)

    def close(self) -> None:
        for handle in self.files.values():
            handle.close()


def ip(rng: random.Random) -> str:
    return f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def fmt(x: float) -> str:
    """A score or confidence with three decimals, the way the seeds store it."""
    return f"{x:.3f}"


def generate(n_users: int, out_dir: Path, seed: int = SEED) -> dict[str, int]:
    """Write the raw relations for `n_users` people as CSV files into `out_dir`.

    Returns the number of rows written per relation.
    """
    rng = random.Random(seed)
    w = Writers(out_dir)
    countries = [c for c, _ in COUNTRIES]
    country_weights = [wt for _, wt in COUNTRIES]
    spam_ip_pool = [ip(rng) for _ in range(max(10, n_users // 60))]
    accounts: list[str] = []
    rows = {name: 0 for name in SCHEMAS}

    def emit(name: str, *values: object) -> None:
        rows[name] += 1
        w.row(name, *values)

    for person in range(n_users):
        spammer = rng.random() < 0.05
        seeker = (not spammer) and rng.random() < 0.3
        country = rng.choices(countries, country_weights)[0]
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"{first}.{last}{person}@{rng.choice(DOMAINS)}"
        if spammer:
            email = f"{rng.getrandbits(32):08x}@{rng.choice(DOMAINS)}"
        signup = rng.randrange(900 * 86400)
        feeds = [f for f, p in ((WEB, 0.7), (MOBILE, 0.45), (PARTNER, 0.2)) if rng.random() < p]
        if spammer:
            feeds = [rng.choice((WEB, MOBILE))]
        if not feeds:
            feeds = [WEB]
        person_accounts: list[tuple[str, str]] = []
        for feed in feeds:
            home_ip = rng.choice(spam_ip_pool) if spammer else ip(rng)
            created = ts(EPOCH_USERS, signup + rng.randrange(30 * 86400))
            if feed == WEB:
                acc = w.next_id("web")
                emit("raw_users_web", acc, email, home_ip, country, created, WEB)
            elif feed == MOBILE:
                acc = w.next_id("mob")
                emit("raw_users_mobile", acc, email, home_ip, country, rng.choice(OS), created,
                     MOBILE)
            else:
                acc = w.next_id("ptn")
                shown = email.upper() if rng.random() < 0.3 else email
                emit("raw_users_partner", acc, shown, COUNTRY_NAMES[country], created[:10],
                     PARTNER)
            person_accounts.append((acc, feed))
            accounts.append(acc)

        # The spam dataset: ShieldCo reports most spam accounts and a few innocent ones.
        for acc, _ in person_accounts:
            if (spammer and rng.random() < 0.6) or (not spammer and rng.random() < 0.003):
                reported = ts(EPOCH_EVENTS, rng.randrange(150 * 86400))[:10]
                emit("raw_spam_accounts", acc, reported,
                     rng.choice(("bulk_messaging", "fake_profile", "scraping")), SPAM_ACCOUNTS)

        # Spam scores: v2 scores every account; v1 scored about half, and its March batch
        # is broken (uniform noise), which is why the registry quarantines it.
        for acc, _ in person_accounts:
            score = 0.6 + 0.4 * rng.random() ** 0.5 if spammer else 0.75 * rng.random() ** 3
            emit("raw_spam_scores", w.next_id("sc2"), acc, fmt(score),
                 ts(EPOCH_EVENTS, 100 * 86400 + rng.randrange(86400)), SPAM_V2)
            if rng.random() < 0.5:
                offset = rng.randrange(90 * 86400)
                at = EPOCH_EVENTS + timedelta(seconds=offset)
                v1 = rng.random() if at >= V1_BROKEN_BATCH else score * (0.9 + 0.2 * rng.random())
                emit("raw_spam_scores", w.next_id("sc1"), acc, fmt(min(v1, 1.0)),
                     ts(EPOCH_EVENTS, offset), SPAM_V1)

        # The ID-merge model finds most pairs of one person's accounts.
        for i, (acc_a, _) in enumerate(person_accounts):
            for acc_b, _ in person_accounts[i + 1:]:
                if rng.random() < 0.9:
                    a, b = (acc_a, acc_b) if rng.random() < 0.5 else (acc_b, acc_a)
                    emit("raw_id_merge_pairs", w.next_id("pair"), a, b,
                         fmt(0.9 + 0.1 * rng.random()), MERGE)

        # Activity events from the web and mobile trackers.
        weights = WEIGHTS_SPAMMER if spammer else WEIGHTS_SEEKER if seeker else WEIGHTS_BROWSER
        for acc, feed in person_accounts:
            if feed == PARTNER:
                continue
            tracker = EVENTS_WEB if feed == WEB else EVENTS_MOBILE
            n_events = rng.randint(0, 8) + (rng.randint(2, 8) if seeker or spammer else 0)
            kinds = rng.choices(EVENT_TYPES, weights, k=n_events)
            for kind in kinds:
                emit("raw_user_events", w.next_id("evt"), acc, kind,
                     ts(EPOCH_EVENTS, rng.randrange(181 * 86400)), tracker)

        # Labels: several sources label some accounts of a labelled person.
        if rng.random() < (0.05 if spammer else 0.4):
            for lab in LABELLERS:
                if rng.random() >= lab.share:
                    continue
                acc = rng.choice(person_accounts)[0]
                workers = rng.sample(range(1, lab.n_workers + 1), lab.votes)
                for worker in workers:
                    labeller = f"{lab.prefix}_{worker:04d}"
                    at = rng.randrange(60 * 86400)
                    right = rng.random() < lab.accuracy
                    answer = seeker if right else not seeker
                    emit("raw_job_search_labels", w.next_id("lbl"), acc, labeller,
                         "true" if answer else "false", fmt(rng.uniform(*lab.confidence)),
                         ts(EPOCH_LABELS, at), lab.source_id)
                    if rng.random() < 0.05:  # the labeller reviews and corrects the label
                        emit("raw_job_search_labels", w.next_id("lbl"), acc, labeller,
                             "true" if seeker else "false", fmt(rng.uniform(0.9, 1.0)),
                             ts(EPOCH_LABELS, at + 86400 + rng.randrange(86400)),
                             lab.source_id)

    # Community IP blacklist: most spammer IPs and some unrelated ones, each address once.
    listed = [a for a in spam_ip_pool if rng.random() < 0.7]
    listed += [ip(rng) for _ in range(max(5, n_users // 100))]
    for address in dict.fromkeys(listed):
        emit("raw_spam_ips", address, ts(EPOCH_EVENTS, rng.randrange(150 * 86400))[:10],
             SPAM_IPS)

    # Wrong links: the merge model also pairs unrelated accounts, mostly below the threshold.
    for _ in range(max(5, n_users // 40)):
        a, b = rng.sample(accounts, 2) if len(accounts) > 1 else (accounts[0], accounts[0])
        score = 0.9 + 0.1 * rng.random() if rng.random() < 0.05 else 0.3 + 0.55 * rng.random()
        emit("raw_id_merge_pairs", w.next_id("pair"), a, b, fmt(score), MERGE)

    w.close()
    return rows


def to_parquet(csv_dir: Path, out_dir: Path) -> None:
    """Convert the generated CSV files to typed Parquet files through DuckDB."""
    import duckdb

    out_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    for name, columns in SCHEMAS.items():
        types = ", ".join(f"'{c}': '{t}'" for c, t in columns)
        src = (csv_dir / f"{name}.csv").as_posix().replace("'", "''")
        dst = (out_dir / f"{name}.parquet").as_posix().replace("'", "''")
        con.execute(
            f"copy (select * from read_csv('{src}', header = true, columns = {{{types}}})) "
            f"to '{dst}' (format parquet)"
        )
    con.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1000, help="number of people (default 1000)")
    parser.add_argument("--out", type=Path, default=Path("seeds"), help="output folder")
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    if args.users < 1:
        parser.error("--users must be at least 1")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if args.format == "csv":
        rows = generate(args.users, args.out, args.seed)
    else:
        with tempfile.TemporaryDirectory(prefix="raw_csv_") as tmp:
            rows = generate(args.users, Path(tmp), args.seed)
            to_parquet(Path(tmp), args.out)
    for name, n in rows.items():
        log.info("%-24s %12d rows", name, n)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
