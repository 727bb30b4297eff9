-- rustls_alert: SCENARIOS.md section 2. Handshakes that failed on a side
-- that produced an alert the peer never received: the alert was lost with
-- the connection when the transport closed. Rows on the buggy acceptor
-- path, none on the fixed one.
-- Usage: sqlite3 trace.db < scripts/queries/rustls_alert.sql
.headers on
.mode column
SELECT f.run, f.node AS failed_side,
       printf('%.3f', f.time_ns / 1e6) AS failed_ms, f.detail AS reason,
       a.detail AS alert,
       (SELECT d.detail FROM tls d
         WHERE d.run = f.run AND d.node = f.node
           AND d.event = 'alert_dropped') AS dropped
FROM tls f
JOIN tls a ON a.run = f.run AND a.node = f.node AND a.event = 'alert_sent'
WHERE f.event = 'handshake_failed'
  AND NOT EXISTS (SELECT 1 FROM tls r
                  WHERE r.run = f.run AND r.node <> f.node
                    AND r.event = 'alert_received')
ORDER BY f.run, f.seq;
