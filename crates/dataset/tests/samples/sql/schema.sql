-- Ember & Oak shop database
CREATE TABLE customers (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  email TEXT UNIQUE
);
CREATE TABLE orders (
  id INTEGER PRIMARY KEY,
  customer_id INTEGER REFERENCES customers(id),
  placed_at TEXT NOT NULL,
  total_cents INTEGER NOT NULL
);
INSERT INTO customers VALUES (1, 'Ana', 'ana@example.com');
