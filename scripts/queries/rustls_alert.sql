-- rustls_alert: SCENARIOS.md section 2. Handshakes that failed on one side
-- while the peer never received an alert: the failing side closed the
-- transport with its alert unsent. Rows on the buggy acceptor path, none
-- on the fixed one.
-- Usage: sqlite3 trace.db < scripts/queries/rustls_alert.sql
.headers on
.mode column
SELECT f.run, f.node AS failed_side,
       printf('%.3f', f.time_ns / 1e6) AS failed_ms, f.detail AS reason,
       (SELECT group_concat(d.detail, '; ') FROM tls d
         WHERE d.run = f.run AND d.node = f.node
           AND d.event = 'alert_dropped') AS dropped
FROM tls f
WHERE f.event = 'handshake_failed'
  AND NOT EXISTS (SELECT 1 FROM tls a
                  WHERE a.run = f.run AND a.node <> f.node
                    AND a.event = 'alert_received')
  AND NOT EXISTS (SELECT 1 FROM tls a
                  WHERE a.run = f.run AND a.node = f.node
                    AND a.event = 'alert_received')
ORDER BY f.run, f.seq;
