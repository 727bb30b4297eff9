-- truncation: SCENARIOS.md section 5. Readers that reached the end of the
-- stream without the peer's close_notify but told the application the
-- stream ended cleanly (the truncation attack succeeded), with the forged
-- segment that ended it. Rows on the buggy variant, none on the fixed one.
-- Usage: sqlite3 trace.db < scripts/queries/truncation.sql
.headers on
.mode column
SELECT e.run, e.node AS reader, printf('%.3f', e.time_ns / 1e6) AS eof_ms,
       e.detail,
       (SELECT p.ptype || ' ' || p.frames FROM packet p
         WHERE p.run = e.run AND p.dst = e.node AND p.frames LIKE '%forged%'
         ORDER BY p.seq LIMIT 1) AS forged
FROM tls e
WHERE e.event = 'eof' AND e.code = 2
ORDER BY e.run, e.seq;
