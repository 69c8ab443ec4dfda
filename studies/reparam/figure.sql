-- FID and images per second of every setting of one reparam study run (@study_run; its own
-- measurements or recalled from earlier runs):
-- method (no spaces), sampling steps, FID, images per second at the throughput batch.
SELECT replace(replace(m.value, ', ', '_'), ' ', '_') AS method, CAST(s.value AS INTEGER) AS steps, f.value AS fid,
       (SELECT x.value FROM metrics x WHERE x.run_id = r.id AND x.key LIKE 'throughput/batch_%/images_per_second'
        ORDER BY x.key DESC LIMIT 1) AS images_per_second
FROM runs r
JOIN tags t ON t.run_id = r.id AND ((t.key = 'study_run' AND t.value = @study_run) OR t.key = 'reused_by:' || @study_run)
JOIN params m ON m.run_id = r.id AND m.key = 'method'
JOIN params s ON s.run_id = r.id AND s.key = 'sample_steps'
JOIN metrics f ON f.run_id = r.id AND f.key = 'fid'
WHERE r.status = 'FINISHED'
ORDER BY m.value, CAST(s.value AS INTEGER);
