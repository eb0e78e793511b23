-- V000002 creates ${signals_table}, backed by topic ${signals_topic}: one-minute candles per
-- product, emitted once per window when it closes.
--
-- Why: these are the `btc_usd_signals` records of DESIGN.md (window start/end, open, high,
-- low, close, volume, VWAP, trade count, first/last trade id), with the signaler's semantics:
--   * window [start, start + 1 minute) by exchange time (ROWTIME, from `time`);
--   * open/close = first/last trade by offset, which within a product's partition is trade-id
--     order (the ingestor publishes each product in trade-id order), i.e. (time, trade_id);
--   * volume = SUM(last_size); a grace period of 2 seconds admits late trades;
--   * EMIT FINAL writes each window once, after stream time passes its end plus the grace.
-- Heartbeats are read too, only to move stream time in a quiet market (so a window closes
-- without waiting for the next trade); a window with heartbeats only is dropped by HAVING.
-- WINDOWSTART/WINDOWEND and the product are copied into the value, so consumers never have to
-- decode ksqlDB's windowed key. docs/ksqldb.md explains each choice below.
--
-- No arithmetic ever sees a heartbeat's NULL price or size: ksqlDB's DECIMAL operators throw
-- on NULL (a processing-log error per heartbeat), so the notional reads a missing price or size
-- as '0' (a heartbeat adds 0 to SUM(price * size); it has no size, so adds nothing to VOLUME).
--
-- VWAP = SUM(price * size) / SUM(size), both sums exact DECIMALs, divided in DOUBLE and cast
-- HALF_UP to DECIMAL(28, 10): ksqlDB divides DECIMALs only when the quotient is exact
-- (RoundingMode.UNNECESSARY: "Rounding necessary" otherwise, so VWAP was always NULL). The
-- DOUBLE quotient is within 4e-16 relative of the exact one, so VWAP is within half a unit of
-- the 10th place plus that (under 1e-10 for a VWAP below 100,000) of the exact quotient.
--
-- RETENTION 7 DAYS (the raw topic's retention): EMIT FINAL forwards closed windows at most once
-- per wall-clock second, while processing a record, from the window store; by default that
-- store keeps a window only size + grace (62 s) of stream time, so over a backlog every window
-- but the newest was gone before it could be forwarded. Kept 7 days, a replay of the whole raw
-- topic loses none; the last windows go out with the next record (a live feed's heartbeat).
SET 'auto.offset.reset' = 'earliest';

CREATE TABLE IF NOT EXISTS ${signals_table}
  WITH (KAFKA_TOPIC = '${signals_topic}', KEY_FORMAT = 'KAFKA', VALUE_FORMAT = 'JSON')
  AS SELECT
    PRODUCT_KEY,
    AS_VALUE(PRODUCT_KEY) AS PRODUCT_ID,
    WINDOWSTART AS WINDOW_START,
    WINDOWEND AS WINDOW_END,
    CAST(EARLIEST_BY_OFFSET(PRICE) AS DECIMAL(28, 10)) AS `OPEN`,
    MAX(CAST(PRICE AS DECIMAL(28, 10))) AS `HIGH`,
    MIN(CAST(PRICE AS DECIMAL(28, 10))) AS `LOW`,
    CAST(LATEST_BY_OFFSET(PRICE) AS DECIMAL(28, 10)) AS `CLOSE`,
    SUM(CAST(LAST_SIZE AS DECIMAL(28, 10))) AS VOLUME,
    CASE WHEN SUM(CAST(LAST_SIZE AS DECIMAL(28, 10))) > 0 THEN
      CAST(
        CAST(SUM(CAST(IFNULL(PRICE, '0') AS DECIMAL(28, 10))
          * CAST(IFNULL(LAST_SIZE, '0') AS DECIMAL(28, 10))) AS DOUBLE)
        / CAST(SUM(CAST(LAST_SIZE AS DECIMAL(28, 10))) AS DOUBLE)
      AS DECIMAL(28, 10))
    END AS VWAP,
    COUNT(TRADE_ID) AS TRADE_COUNT,
    EARLIEST_BY_OFFSET(TRADE_ID) AS FIRST_TRADE_ID,
    LATEST_BY_OFFSET(TRADE_ID) AS LAST_TRADE_ID
  FROM ${raw_stream}
  WINDOW TUMBLING (SIZE 60 SECONDS, RETENTION 7 DAYS, GRACE PERIOD 2 SECONDS)
  WHERE `TYPE` = 'ticker' OR `TYPE` = 'heartbeat'
  GROUP BY PRODUCT_KEY
  HAVING COUNT(TRADE_ID) > 0
  EMIT FINAL;
