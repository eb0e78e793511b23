-- V000002 creates ${signals_table}, backed by topic ${signals_topic}: one-minute candles per
-- product, emitted once per window when it closes.
--
-- Why: these are the `btc_usd_signals` records of DESIGN.md (window start/end, open, high,
-- low, close, volume, VWAP, trade count), with the same semantics as the signaler's candles:
--   * window [start, start + 1 minute) by exchange time (ROWTIME, from `time`);
--   * open/close = first/last trade by offset, which within a product's partition is trade-id
--     order (the ingestor publishes each product in trade-id order), i.e. (time, trade_id);
--   * volume = SUM(last_size); VWAP = SUM(price * size) / SUM(size), in exact DECIMALs;
--   * a grace period of 2 seconds admits late trades; EMIT FINAL writes each window once, when
--     stream time passes its end plus the grace period.
-- Heartbeats are read too, but only to move stream time in a quiet market (so a window closes
-- without waiting for the next trade): they have no price, size or trade id, and every
-- aggregate here ignores NULLs. A window with heartbeats only is dropped by HAVING.
-- WINDOWSTART/WINDOWEND and the product are copied into the value, so consumers never have to
-- decode ksqlDB's windowed key.
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
    CAST(
      SUM(CAST(PRICE AS DECIMAL(28, 10)) * CAST(LAST_SIZE AS DECIMAL(28, 10)))
        / SUM(CAST(LAST_SIZE AS DECIMAL(28, 10)))
      AS DECIMAL(38, 18)
    ) AS VWAP,
    COUNT(TRADE_ID) AS TRADE_COUNT,
    EARLIEST_BY_OFFSET(TRADE_ID) AS FIRST_TRADE_ID,
    LATEST_BY_OFFSET(TRADE_ID) AS LAST_TRADE_ID
  FROM ${raw_stream}
  WINDOW TUMBLING (SIZE 60 SECONDS, GRACE PERIOD 2 SECONDS)
  WHERE `TYPE` = 'ticker' OR `TYPE` = 'heartbeat'
  GROUP BY PRODUCT_KEY
  HAVING COUNT(TRADE_ID) > 0
  EMIT FINAL;
