#!/usr/bin/env python3
"""Build shop.sqlite from schema.sql and seed.sql (Python 3 standard library only).

Usage: python3 make_db.py [--out PATH]
The database is rebuilt from scratch every time, so the result is reproducible.
"""
import argparse
import sqlite3
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def build(out: Path) -> None:
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        tmp.unlink()
    con = sqlite3.connect(tmp)
    try:
        con.execute("PRAGMA foreign_keys = ON")
        for name in ("schema.sql", "seed.sql"):
            con.executescript((HERE / name).read_text(encoding="utf-8"))
        problems = con.execute("PRAGMA foreign_key_check").fetchall()
        if problems:
            raise SystemExit(f"foreign key problems in seed.sql: {problems[:5]}")
        mismatched = con.execute(
            """SELECT h.ord_id FROM ORD_HDR h
               WHERE h.amt_net_cents <> (SELECT COALESCE(SUM(l.amt_net_cents), 0) FROM ORD_LN l
                                          WHERE l.ord_id = h.ord_id AND l.is_del = 0)"""
        ).fetchall()
        if mismatched:
            raise SystemExit(f"order totals do not match their lines: {mismatched[:5]}")
        wrong_quarter = con.execute(
            """SELECT h.ord_id FROM ORD_HDR h JOIN cal_fy_q c ON c.fy_q = h.fy_q
               WHERE date(h.ts_created) NOT BETWEEN c.dt_from AND c.dt_to"""
        ).fetchall()
        if wrong_quarter:
            raise SystemExit(f"orders whose fy_q does not match their date: {wrong_quarter[:5]}")
        con.commit()
        con.execute("VACUUM")
    finally:
        con.close()
    tmp.replace(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE / "shop.sqlite")
    args = ap.parse_args()
    build(args.out)
    con = sqlite3.connect(args.out)
    counts = {t: con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
              for t in ("X_77_User_Ref", "prd_cat_v2", "PRD_MSTR", "cal_fy_q", "ORD_HDR", "ORD_LN")}
    con.close()
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes): " + ", ".join(f"{t}={n}" for t, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
