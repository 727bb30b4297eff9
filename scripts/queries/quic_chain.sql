-- quic_chain: SCENARIOS.md section 3. Certificate checks that failed,
-- with how many certificates the peer sent and the CRYPTO_ERROR the
-- connection was closed with. Rows when the server sent an incomplete
-- chain to a strict client, none otherwise.
-- Usage: sqlite3 trace.db < scripts/queries/quic_chain.sql
.headers on
.mode column
SELECT v.run, v.node, printf('%.3f', v.time_ns / 1e6) AS ms,
       v.code AS x509_error, v.detail,
       (SELECT printf('0x%x', c.code) FROM tls c
         WHERE c.run = v.run AND c.node = v.node
           AND c.event = 'close_sent') AS close_code
FROM tls v
WHERE v.event = 'verify_done' AND v.code <> 0
ORDER BY v.run, v.seq;
