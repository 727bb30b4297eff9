-- retransmitted_pings: echo pings that needed more than one transmission,
-- with how many attempts and when the first and last went out.
.headers on
.mode column
SELECT run, frames AS ping, count(*) AS transmissions,
       printf('%.3f', min(send_ns) / 1e6) AS first_ms,
       printf('%.3f', max(send_ns) / 1e6) AS last_ms
FROM (SELECT run, send_ns,
             substr(frames, 1, instr(frames, ' ') - 1) AS frames
      FROM packet WHERE ptype = 'ping' AND dup_of IS NULL)
GROUP BY run, frames
HAVING count(*) > 1
ORDER BY run, min(send_ns);
