-- The catalog the catalog tests list (scripts/test-databases.sh runs this as root on both
-- MariaDB servers; connreg_reader reads it through its global SELECT). Tests assert on these
-- names, so change them together with tests/unit/catalog_servers_test.cc and the e2e catalog
-- tests.

-- Tables, a view, comments and a procedure.
CREATE DATABASE cat_sales;
CREATE TABLE cat_sales.customers (
  id bigint NOT NULL PRIMARY KEY,
  name varchar(80) NOT NULL,
  email text COMMENT 'Where receipts go',
  created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP
) COMMENT 'People who buy';
CREATE TABLE cat_sales.orders (
  id bigint NOT NULL PRIMARY KEY,
  customer_id bigint NOT NULL,
  amount decimal(12,2) NOT NULL COMMENT 'In euros',
  placed_on date
) COMMENT 'One row per order';
CREATE VIEW cat_sales.order_totals AS
  SELECT customer_id, SUM(amount) AS total FROM cat_sales.orders GROUP BY customer_id;
CREATE PROCEDURE cat_sales.refresh_totals() COMMENT 'Recomputes totals' SELECT 1;
-- Functions are not listed.
CREATE FUNCTION cat_sales.order_count() RETURNS int READS SQL DATA
  RETURN (SELECT COUNT(*) FROM cat_sales.orders);

-- One column per type family of contract section 13. MariaDB prints json as longtext and
-- boolean as tinyint(1).
CREATE DATABASE cat_types;
CREATE TABLE cat_types.all_types (
  c_tinyint tinyint,
  c_smallint smallint,
  c_int int NOT NULL,
  c_bigint bigint unsigned,
  c_decimal decimal(12,2),
  c_float float,
  c_double double,
  c_varchar varchar(40),
  c_char char(3),
  c_text text,
  c_uuid uuid,
  c_enum enum('sad', 'ok', 'happy'),
  c_boolean boolean,
  c_datetime datetime,
  c_timestamp timestamp NULL,
  c_date date,
  c_time time,
  c_blob blob,
  c_varbinary varbinary(16),
  c_json json,
  c_geometry geometry,
  c_point point
);
ALTER TABLE cat_types.all_types MODIFY c_json json COMMENT 'Anything at all';

-- A database without objects is still a scope.
CREATE DATABASE cat_empty;

-- Names are kept exactly as spelled ("Cat Mixed" sorts before cat_* in byte order).
CREATE DATABASE `Cat Mixed`;
CREATE TABLE `Cat Mixed`.`Order Lines` (`Line No` int NOT NULL, `SKU` text);

GRANT EXECUTE ON PROCEDURE cat_sales.refresh_totals TO 'connreg_reader'@'%';
