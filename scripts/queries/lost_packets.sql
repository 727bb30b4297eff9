-- lost_packets: every packet the link did not deliver, with why, per run.
-- Usage: sqlite3 trace.db < scripts/queries/lost_packets.sql
.headers on
.mode column
SELECT run, id, src, dst, proto, ptype, frames,
       printf('%.3f', send_ns / 1e6) AS sent_ms, fate, reason
FROM packet
WHERE fate = 'lost'
ORDER BY run, seq;
