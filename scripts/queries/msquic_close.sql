-- msquic_close: SCENARIOS.md section 1. Application CONNECTION_CLOSE
-- frames (0x1d) sent while the sender's handshake was not confirmed, in a
-- datagram with no CONNECTION_CLOSE the peer could read (0x1c in an
-- Initial or Handshake packet): the close the peer cannot process. Rows on
-- the buggy close rule, none on the fixed one.
-- Usage: sqlite3 trace.db < scripts/queries/msquic_close.sql
.headers on
.mode column
SELECT p.run, p.src, printf('%.3f', p.send_ns / 1e6) AS sent_ms,
       p.ptype, p.pn, p.frames, p.hs_state, p.fate
FROM packet p
WHERE p.parent IS NOT NULL
  AND p.frames LIKE 'CONNECTION_CLOSE(0x1d)%'
  AND p.hs_state LIKE '%confirmed=0%'
  AND NOT EXISTS (SELECT 1 FROM packet s
                  WHERE s.run = p.run AND s.parent = p.parent
                    AND s.ptype IN ('initial', 'handshake')
                    AND s.frames LIKE '%CONNECTION_CLOSE(0x1c)%')
ORDER BY p.run, p.seq;
