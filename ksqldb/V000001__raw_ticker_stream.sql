-- V000001 creates ${raw_stream}: the raw Coinbase feed in topic ${raw_topic} as a ksqlDB stream.
--
-- Why: every later statement reads the feed through this one declaration. The ingestor writes
-- Coinbase `ticker` and `heartbeat` messages exactly as received (JSON, key = product_id), so
-- the stream declares every ticker field plus the heartbeat's LAST_TRADE_ID; later migrations
-- select by TYPE. Prices and sizes stay STRING, exactly as sent; statements that compute CAST
-- them to DECIMAL. Backfilled tickers lack SEQUENCE, the 24h fields and the book top: those
-- columns are then NULL.
--
-- Event time: ROWTIME comes from the message's `time`, such as 2021-04-17T16:43:37.079420Z.
-- The Exchange sends six fractional digits; re-serialised captures trim trailing zeros
-- (.58496Z), so each fraction length is an optional section of the Java DateTimeFormatter
-- pattern, tried longest first (a section that does not match is skipped). ksqlDB timestamps
-- are milliseconds: microseconds are truncated, which never moves a trade across a window
-- boundary of whole milliseconds. Quotes inside the pattern are doubled ('' is one ').
CREATE STREAM IF NOT EXISTS ${raw_stream} (
  PRODUCT_KEY STRING KEY,
  `TYPE` STRING,
  `SEQUENCE` BIGINT,
  PRODUCT_ID STRING,
  PRICE STRING,
  OPEN_24H STRING,
  VOLUME_24H STRING,
  LOW_24H STRING,
  HIGH_24H STRING,
  VOLUME_30D STRING,
  BEST_BID STRING,
  BEST_BID_SIZE STRING,
  BEST_ASK STRING,
  BEST_ASK_SIZE STRING,
  SIDE STRING,
  `TIME` STRING,
  TRADE_ID BIGINT,
  LAST_SIZE STRING,
  LAST_TRADE_ID BIGINT
) WITH (
  KAFKA_TOPIC = '${raw_topic}',
  KEY_FORMAT = 'KAFKA',
  VALUE_FORMAT = 'JSON',
  TIMESTAMP = 'TIME',
  TIMESTAMP_FORMAT = 'yyyy-MM-dd''T''HH:mm:ss[.SSSSSS][.SSSSS][.SSSS][.SSS][.SS][.S]X'
);
