-- V000003 creates ${latest_candle_table}: each product's latest closed one-minute candle, keyed
-- by product (topic ${latest_candle_topic}), so ticks can be joined with it.
--
-- Why: ksqlDB cannot join a stream with a windowed table (its key is product + window), so the
-- candles are read back from ${signals_topic} as a plain stream (${signals_events_stream}; no
-- key columns are declared, which leaves the windowed key unread), re-keyed by PRODUCT_ID into
-- ${candles_by_product_stream}, and that topic is declared as a table: a table over a topic
-- keeps the latest value per key, which is the latest candle to close. Candles are final
-- (EMIT FINAL), so "latest by offset" is "latest window". The re-keyed topic inherits the
-- partition count of the raw topic, which keeps it co-partitioned with ${raw_stream}.
SET 'auto.offset.reset' = 'earliest';

CREATE STREAM IF NOT EXISTS ${signals_events_stream} (
  PRODUCT_ID STRING,
  WINDOW_START BIGINT,
  WINDOW_END BIGINT,
  `OPEN` DECIMAL(28, 10),
  `HIGH` DECIMAL(28, 10),
  `LOW` DECIMAL(28, 10),
  `CLOSE` DECIMAL(28, 10),
  VOLUME DECIMAL(28, 10),
  VWAP DECIMAL(28, 10),
  TRADE_COUNT BIGINT,
  FIRST_TRADE_ID BIGINT,
  LAST_TRADE_ID BIGINT
) WITH (KAFKA_TOPIC = '${signals_topic}', VALUE_FORMAT = 'JSON');

CREATE STREAM IF NOT EXISTS ${candles_by_product_stream}
  WITH (KAFKA_TOPIC = '${latest_candle_topic}', KEY_FORMAT = 'KAFKA', VALUE_FORMAT = 'JSON')
  AS SELECT *
  FROM ${signals_events_stream}
  PARTITION BY PRODUCT_ID
  EMIT CHANGES;

CREATE TABLE IF NOT EXISTS ${latest_candle_table} (
  PRODUCT_ID STRING PRIMARY KEY,
  WINDOW_START BIGINT,
  WINDOW_END BIGINT,
  `OPEN` DECIMAL(28, 10),
  `HIGH` DECIMAL(28, 10),
  `LOW` DECIMAL(28, 10),
  `CLOSE` DECIMAL(28, 10),
  VOLUME DECIMAL(28, 10),
  VWAP DECIMAL(28, 10),
  TRADE_COUNT BIGINT,
  FIRST_TRADE_ID BIGINT,
  LAST_TRADE_ID BIGINT
) WITH (KAFKA_TOPIC = '${latest_candle_topic}', KEY_FORMAT = 'KAFKA', VALUE_FORMAT = 'JSON');
