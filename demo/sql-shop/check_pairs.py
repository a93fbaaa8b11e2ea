#!/usr/bin/env python3
"""Execute every question/SQL pair against shop.sqlite and fail on any problem.

Usage: python3 check_pairs.py [FILE ...]
Default files: pairs.jsonl, pairs.csv, holdout-pairs.jsonl (next to this script).

A pair fails when:
  * the line is not valid JSON / the CSV row lacks question or sql;
  * the SQL is not a single read-only SELECT (or WITH ... SELECT);
  * SQLite reports an error while running it (the database is opened read-only);
  * it returns no rows, or only NULLs (every pair is meant to have an answer);
  * it reads a soft-delete table without filtering is_del (counted per table
    reference), unless the question is explicitly about deleted rows;
  * it uses date('now') or similar (the data is a fixed snapshot, see schema.sql);
  * the same question appears twice, or a holdout pair repeats a training pair.
Exit status 0 when every pair passes, 1 otherwise.
"""
import csv
import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DB = HERE / "shop.sqlite"
SOFT_DELETE_TABLES = ("X_77_User_Ref", "prd_cat_v2", "PRD_MSTR", "ORD_HDR", "ORD_LN")
DEFAULT_FILES = ("pairs.jsonl", "pairs.csv", "holdout-pairs.jsonl")


def load(path: Path):
    """Yields (location, question, sql) or (location, None, error message)."""
    if path.suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames != ["question", "sql"]:
                yield f"{path.name}:1", None, f"header must be question,sql, got {reader.fieldnames}"
                return
            for row in reader:
                loc = f"{path.name}:{reader.line_num}"
                if not row.get("question") or not row.get("sql") or None in row:
                    yield loc, None, "row needs exactly a question and an sql column"
                else:
                    yield loc, row["question"], row["sql"]
    else:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            loc = f"{path.name}:{n}"
            if not line.strip():
                yield loc, None, "empty line"
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                yield loc, None, f"invalid JSON: {e}"
                continue
            if set(obj) != {"question", "sql"} or not all(isinstance(obj[k], str) and obj[k].strip() for k in obj):
                yield loc, None, "record must be {\"question\": str, \"sql\": str}"
                continue
            yield loc, obj["question"], obj["sql"]


def lint(question: str, sql: str):
    body = sql.strip().rstrip(";")
    if ";" in body:
        yield "more than one statement"
    if not re.match(r"(?is)^\s*(select|with)\b", body):
        yield "not a SELECT query"
    if re.search(r"(?i)\b(insert|update|delete|drop|alter|create|replace|attach|pragma)\b", re.sub(r"'[^']*'", "''", body)):
        yield "contains a write or schema keyword"
    if re.search(r"(?i)'now'", body):
        yield "uses 'now'; the data is a snapshot taken on 2026-04-01"
    if "deleted" not in question.lower():
        refs = sum(len(re.findall(rf"(?i)\b{t}\b", body)) for t in SOFT_DELETE_TABLES)
        filters = len(re.findall(r"(?i)\bis_del\s*=\s*0\b", body))
        if filters < refs:
            yield f"reads soft-delete tables {refs} times but filters is_del = 0 only {filters} times"


def main(argv):
    if not DB.exists():
        subprocess.run([sys.executable, str(HERE / "make_db.py")], check=True)
    con = sqlite3.connect(f"file:{DB}?mode=ro", uri=True)
    files = [Path(a) for a in argv] or [HERE / f for f in DEFAULT_FILES]
    failures, seen_q, seen_sql, total = [], {}, {}, 0
    for path in files:
        holdout = "holdout" in path.name
        for loc, question, sql in load(path):
            total += 1
            if question is None:
                failures.append(f"{loc}: {sql}")
                continue
            key_q = " ".join(question.lower().split())
            key_sql = " ".join(sql.lower().split())
            if key_q in seen_q:
                failures.append(f"{loc}: question already at {seen_q[key_q]}")
            if holdout and key_sql in seen_sql:
                failures.append(f"{loc}: holdout SQL repeats {seen_sql[key_sql]}")
            seen_q.setdefault(key_q, loc)
            seen_sql.setdefault(key_sql, loc)
            for problem in lint(question, sql):
                failures.append(f"{loc}: {problem}: {question}")
            try:
                rows = con.execute(sql).fetchall()
            except sqlite3.Error as e:
                failures.append(f"{loc}: SQLite error {e}: {question}")
                continue
            if not rows:
                failures.append(f"{loc}: no rows: {question}")
            elif all(v is None for r in rows for v in r):
                failures.append(f"{loc}: only NULLs: {question}")
    for f in failures:
        print("FAIL", f)
    print(f"{total} pairs checked in {len(files)} files, {len(failures)} problems")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
