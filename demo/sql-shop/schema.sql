-- Hearth & Table: a small online and in-store kitchenware shop.
-- SQLite schema inherited from two earlier systems, so the names are awkward.
--
-- CONVENTIONS (every query in pairs.jsonl follows them):
--
-- 1. Soft delete. Tables with an is_del column never lose rows; a deleted row
--    has is_del = 1. By convention every query excludes them (is_del = 0) on
--    EVERY table it reads that has the column, unless the question is
--    explicitly about deleted rows.
--
-- 2. Money is stored as INTEGER cents in columns ending in _cents.
--    Report dollars as ROUND(x_cents / 100.0, 2).
--
-- 3. Fiscal year starts on April 1. FY2025 = 2025-04-01 .. 2026-03-31.
--    Q1 = Apr-Jun, Q2 = Jul-Sep, Q3 = Oct-Dec, Q4 = Jan-Mar (of the next
--    calendar year). ORD_HDR.fy_q holds the fiscal quarter of the order as
--    text like 'FY2025-Q2'; cal_fy_q lists every quarter with its dates.
--
-- 4. Timestamps (ts_*) are ISO-8601 text 'YYYY-MM-DD HH:MM:SS', shop local
--    time. Compare dates with date(ts_created) or with string ranges
--    (ts_created >= '2025-04-01' AND ts_created < '2025-07-01').
--
-- 5. Cancelled orders (ord_stat_cd = 'CXL') are treated as if they never
--    happened: they are left out of revenue, order counts, customer
--    activity and product sales, except in questions about cancellations
--    or order status. Revenue means SUM(ORD_HDR.amt_net_cents) over orders
--    that are not deleted and not cancelled. Net = after line discounts,
--    before tax and shipping. Order headers already exclude deleted lines
--    from amt_net_cents.
--
-- 6. The data is a snapshot taken on 2026-04-01. "Today" means 2026-04-01,
--    "this fiscal year" means FY2025, "last fiscal year" means FY2024.
--    Write dates literally; do not use date('now').

-- Customers. (The "77" was the old system's table number.)
CREATE TABLE X_77_User_Ref (
    usr_ref_id     INTEGER PRIMARY KEY,        -- customer id
    usr_nm_first   TEXT    NOT NULL,
    usr_nm_last    TEXT    NOT NULL,
    eml_addr       TEXT    NOT NULL UNIQUE,
    st_cd          TEXT    NOT NULL,           -- US state or Canadian province code, e.g. 'OR', 'BC'
    cntry_cd       TEXT    NOT NULL,           -- 'US' or 'CA'
    loy_tier_cd    TEXT    NOT NULL DEFAULT 'B', -- loyalty tier: 'B' bronze, 'S' silver, 'G' gold
    is_whl         INTEGER NOT NULL DEFAULT 0, -- 1 = wholesale (trade) account
    ts_created     TEXT    NOT NULL,           -- sign-up time
    is_del         INTEGER NOT NULL DEFAULT 0
);

-- Product categories, version 2 of the tree. parent_cat_id is NULL for top level.
CREATE TABLE prd_cat_v2 (
    cat_id         INTEGER PRIMARY KEY,
    cat_nm         TEXT    NOT NULL,
    parent_cat_id  INTEGER REFERENCES prd_cat_v2(cat_id),
    is_del         INTEGER NOT NULL DEFAULT 0
);

-- Products.
CREATE TABLE PRD_MSTR (
    prd_id           INTEGER PRIMARY KEY,
    sku_cd           TEXT    NOT NULL UNIQUE,
    prd_nm           TEXT    NOT NULL,
    cat_id           INTEGER NOT NULL REFERENCES prd_cat_v2(cat_id),
    list_px_cents    INTEGER NOT NULL,         -- current list price
    unit_cost_cents  INTEGER NOT NULL,         -- what the shop pays the supplier
    is_actv          INTEGER NOT NULL DEFAULT 1, -- 0 = no longer sold, still a real product
    ts_created       TEXT    NOT NULL,
    is_del           INTEGER NOT NULL DEFAULT 0
);

-- Fiscal calendar: one row per fiscal quarter. dt_from inclusive, dt_to inclusive.
CREATE TABLE cal_fy_q (
    fy_q     TEXT PRIMARY KEY,                 -- 'FY2025-Q2'
    fy       INTEGER NOT NULL,                 -- 2025
    q_no     INTEGER NOT NULL,                 -- 1..4
    dt_from  TEXT NOT NULL,                    -- '2025-07-01'
    dt_to    TEXT NOT NULL                     -- '2025-09-30'
);

-- Order headers.
CREATE TABLE ORD_HDR (
    ord_id          INTEGER PRIMARY KEY,
    usr_ref_id      INTEGER NOT NULL REFERENCES X_77_User_Ref(usr_ref_id),
    ts_created      TEXT    NOT NULL,          -- when the order was placed
    fy_q            TEXT    NOT NULL REFERENCES cal_fy_q(fy_q),
    ord_stat_cd     TEXT    NOT NULL,          -- 'PEND' pending, 'SHIP' shipped, 'DONE' delivered, 'CXL' cancelled
    chnl_cd         TEXT    NOT NULL,          -- 'WEB' online, 'POS' in store, 'WHL' wholesale
    amt_net_cents   INTEGER NOT NULL,          -- sum of the non-deleted lines' amt_net_cents
    amt_tax_cents   INTEGER NOT NULL,
    amt_ship_cents  INTEGER NOT NULL,
    is_del          INTEGER NOT NULL DEFAULT 0
);

-- Order lines.
CREATE TABLE ORD_LN (
    ord_id          INTEGER NOT NULL REFERENCES ORD_HDR(ord_id),
    ln_no           INTEGER NOT NULL,
    prd_id          INTEGER NOT NULL REFERENCES PRD_MSTR(prd_id),
    qty             INTEGER NOT NULL,
    unit_px_cents   INTEGER NOT NULL,          -- price charged per unit on that day
    disc_cents      INTEGER NOT NULL DEFAULT 0, -- discount on the whole line
    amt_net_cents   INTEGER NOT NULL,          -- qty * unit_px_cents - disc_cents
    is_del          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (ord_id, ln_no)
);

CREATE INDEX ix_ord_hdr_usr ON ORD_HDR(usr_ref_id);
CREATE INDEX ix_ord_hdr_ts ON ORD_HDR(ts_created);
CREATE INDEX ix_ord_ln_prd ON ORD_LN(prd_id);
