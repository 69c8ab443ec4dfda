-- FID and images per second of every setting of one reparam study run (@study_run; its own
-- measurements or recalled from earlier runs):
-- method (no spaces), sampling steps (VQ-AR at T, the most steps any setting takes), FID,
-- images per second at the throughput batch.
WITH study AS (
  SELECT r.id FROM runs r
  JOIN tags t ON t.run_id = r.id AND ((t.key = 'study_run' AND t.value = @study_run) OR t.key = 'reused_by:' || @study_run)
  WHERE r.status = 'FINISHED'
), longest AS (
  SELECT max(CAST(value AS INTEGER)) AS steps FROM params WHERE key = 'sample_steps' AND run_id IN (SELECT id FROM study)
)
SELECT replace(replace(m.value, ', ', '_'), ' ', '_') AS method,
       CASE WHEN fam.value = 'ar' THEN (SELECT steps FROM longest) ELSE CAST(s.value AS INTEGER) END AS steps,
       f.value AS fid,
       (SELECT x.value FROM metrics x WHERE x.run_id = r.id AND x.key LIKE 'throughput/batch_%/images_per_second'
        ORDER BY x.key DESC LIMIT 1) AS images_per_second
FROM runs r
JOIN params m ON m.run_id = r.id AND m.key = 'method'
JOIN params s ON s.run_id = r.id AND s.key = 'sample_steps'
JOIN params fam ON fam.run_id = r.id AND fam.key = 'family'
JOIN metrics f ON f.run_id = r.id AND f.key = 'fid'
WHERE r.id IN (SELECT id FROM study)
ORDER BY m.value, steps;
