-- go_deadline: SCENARIOS.md section 4. Two symptoms:
--  spin:      handshake operations that ran after their endpoint's
--             handshake deadline had passed (the timed-out read retried)
--  no_fin:    a close() on an established connection (a SYN-ACK between
--             the two ends had arrived) whose endpoint never sent a FIN
--             afterwards
-- Rows on the buggy variants, none on the fixed one.
-- Usage: sqlite3 trace.db < scripts/queries/go_deadline.sql
.headers on
.mode column
SELECT d.run, d.node, 'spin' AS symptom,
       printf('%.3f', d.time_ns / 1e6) AS deadline_ms,
       count(*) AS handshake_ops_after_deadline
FROM tls d JOIN op o
  ON o.run = d.run AND o.node = d.node AND o.op_type = 'handshake'
 AND o.action = 'dequeue' AND o.time_ns >= d.time_ns
WHERE d.event = 'deadline'
GROUP BY d.run, d.node, d.seq
UNION ALL
SELECT c.run, c.node, 'no_fin', printf('%.3f', c.time_ns / 1e6), 0
FROM op c
WHERE c.op_type = 'close' AND c.action = 'complete'
  AND EXISTS (SELECT 1 FROM packet e
              WHERE e.run = c.run AND e.ptype = 'SYN-ACK'
                AND (e.src = c.node OR e.dst = c.node)
                AND e.deliver_ns IS NOT NULL AND e.deliver_ns >= 0
                AND e.deliver_ns <= c.time_ns)
  AND NOT EXISTS (SELECT 1 FROM packet p
                  WHERE p.run = c.run AND p.src = c.node
                    AND p.ptype LIKE '%FIN%' AND p.send_ns >= c.time_ns)
ORDER BY 1, 2;
