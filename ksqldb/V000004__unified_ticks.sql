-- V000004 creates ${unified_stream}, backed by topic ${unified_topic}: every trade tick with its
-- product's latest closed candle.
--
-- Why: this is `btc_usd_unified` of DESIGN.md, one record per tick for dashboards and SQL
-- consumers. It is a stream-table LEFT JOIN of ${raw_stream} (tickers only: heartbeats carry no
-- trade and do not belong here) with ${latest_candle_table}, on the product key both share.
-- A tick before its product's first candle closes gets NULL candle columns. The join sees the
-- table as it is when the tick is processed, so which candle a tick inside a window's grace
-- period meets depends on processing timing: use the signaler for anything that must replay
-- identically. Prices and sizes are CAST to exact DECIMALs. The join key (the product) is the
-- record's key, PRODUCT_KEY; AS_VALUE copies it into the value as PRODUCT_ID, so every record
-- names its product and trade id by itself, as every topic of the pipeline does.
SET 'auto.offset.reset' = 'earliest';

CREATE STREAM IF NOT EXISTS ${unified_stream}
  WITH (KAFKA_TOPIC = '${unified_topic}', KEY_FORMAT = 'KAFKA', VALUE_FORMAT = 'JSON')
  AS SELECT
    TICK.PRODUCT_KEY AS PRODUCT_KEY,
    AS_VALUE(TICK.PRODUCT_KEY) AS PRODUCT_ID,
    TICK.TRADE_ID AS TRADE_ID,
    TICK.`SEQUENCE` AS `SEQUENCE`,
    TICK.`TIME` AS `TIME`,
    TICK.SIDE AS SIDE,
    CAST(TICK.PRICE AS DECIMAL(28, 10)) AS PRICE,
    CAST(TICK.LAST_SIZE AS DECIMAL(28, 10)) AS LAST_SIZE,
    CAST(TICK.BEST_BID AS DECIMAL(28, 10)) AS BEST_BID,
    CAST(TICK.BEST_ASK AS DECIMAL(28, 10)) AS BEST_ASK,
    CANDLE.WINDOW_START AS CANDLE_START,
    CANDLE.WINDOW_END AS CANDLE_END,
    CANDLE.`OPEN` AS CANDLE_OPEN,
    CANDLE.`HIGH` AS CANDLE_HIGH,
    CANDLE.`LOW` AS CANDLE_LOW,
    CANDLE.`CLOSE` AS CANDLE_CLOSE,
    CANDLE.VOLUME AS CANDLE_VOLUME,
    CANDLE.VWAP AS CANDLE_VWAP,
    CANDLE.TRADE_COUNT AS CANDLE_TRADE_COUNT
  FROM ${raw_stream} TICK
  LEFT JOIN ${latest_candle_table} CANDLE ON TICK.PRODUCT_KEY = CANDLE.PRODUCT_ID
  WHERE TICK.`TYPE` = 'ticker'
  EMIT CHANGES;
