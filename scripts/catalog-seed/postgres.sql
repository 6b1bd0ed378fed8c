-- The catalog the catalog tests list (scripts/test-databases.sh runs this in the database
-- connreg_probe of both PostgreSQL servers, as connreg_writer). Tests assert on these names, so
-- change them together with tests/unit/catalog_servers_test.cc and the e2e catalog tests.
SET ROLE connreg_writer;

-- Tables, a view, a materialized view, a partitioned table, comments and a procedure.
CREATE SCHEMA cat_sales;
COMMENT ON SCHEMA cat_sales IS 'Sales data';
CREATE TABLE cat_sales.customers (
  id bigint PRIMARY KEY,
  name character varying(80) NOT NULL,
  email text,
  created_at timestamp with time zone NOT NULL DEFAULT now()
);
COMMENT ON TABLE cat_sales.customers IS 'People who buy';
COMMENT ON COLUMN cat_sales.customers.email IS 'Where receipts go';
CREATE TABLE cat_sales.orders (
  id bigint PRIMARY KEY,
  customer_id bigint NOT NULL REFERENCES cat_sales.customers,
  dropped_later text,
  amount numeric(12,2) NOT NULL,
  placed_on date
);
ALTER TABLE cat_sales.orders DROP COLUMN dropped_later;  -- a dropped column is not listed
COMMENT ON TABLE cat_sales.orders IS 'One row per order';
COMMENT ON COLUMN cat_sales.orders.amount IS 'In euros';
CREATE VIEW cat_sales.order_totals AS
  SELECT customer_id, sum(amount) AS total FROM cat_sales.orders GROUP BY customer_id;
COMMENT ON VIEW cat_sales.order_totals IS 'Spend per customer';
CREATE MATERIALIZED VIEW cat_sales.daily_orders AS
  SELECT placed_on, count(*) AS orders FROM cat_sales.orders GROUP BY placed_on;
-- A partitioned table is listed; its partitions are not.
CREATE TABLE cat_sales.events (id bigint, at timestamp without time zone NOT NULL)
  PARTITION BY RANGE (at);
CREATE TABLE cat_sales.events_2024 PARTITION OF cat_sales.events
  FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE PROCEDURE cat_sales.refresh_totals() LANGUAGE sql
  AS $$ REFRESH MATERIALIZED VIEW cat_sales.daily_orders $$;
COMMENT ON PROCEDURE cat_sales.refresh_totals() IS 'Refreshes daily_orders';
-- Neither functions, sequences nor indexes are listed.
CREATE FUNCTION cat_sales.order_count() RETURNS bigint LANGUAGE sql
  AS 'SELECT count(*) FROM cat_sales.orders';
CREATE SEQUENCE cat_sales.invoice_numbers;

-- One column per type family of contract section 13.
CREATE SCHEMA cat_types;
CREATE TYPE cat_types.mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE cat_types.all_types (
  c_smallint smallint,
  c_integer integer NOT NULL,
  c_bigint bigint,
  c_numeric numeric(12,2),
  c_real real,
  c_double double precision,
  c_varchar character varying(40),
  c_char character(3),
  c_text text,
  c_uuid uuid,
  c_enum cat_types.mood,
  c_boolean boolean,
  c_timestamp timestamp without time zone,
  c_timestamptz timestamp with time zone,
  c_date date,
  c_time time without time zone,
  c_bytea bytea,
  c_json json,
  c_jsonb jsonb,
  c_int_array integer[],
  c_text_array text[],
  c_point point
);
COMMENT ON COLUMN cat_types.all_types.c_jsonb IS 'Anything at all';

-- A schema without objects is still a scope.
CREATE SCHEMA cat_empty;

-- Names are kept exactly as spelled ("Cat Mixed" sorts before cat_* in byte order).
CREATE SCHEMA "Cat Mixed";
CREATE TABLE "Cat Mixed"."Order Lines" ("Line No" integer NOT NULL, "SKU" text);

-- The reader may not use this schema: it is left out of the reader's listing.
CREATE SCHEMA cat_hidden;
CREATE TABLE cat_hidden.secret_plans (id integer);

GRANT USAGE ON SCHEMA cat_sales, cat_types, cat_empty, "Cat Mixed" TO connreg_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA cat_sales, cat_types, "Cat Mixed" TO connreg_reader;
