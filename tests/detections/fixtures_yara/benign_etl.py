"""Nightly ETL: copy yesterday's traffic counts into the warehouse."""
import csv
import sqlite3


def main() -> None:
    db = sqlite3.connect("/srv/warehouse/traffic.db")
    with open("/srv/ingest/traffic.csv", newline="") as f:
        db.executemany("INSERT INTO counts VALUES (?, ?, ?)", csv.reader(f))
    db.commit()


if __name__ == "__main__":
    main()
