-- FID and caption alignment against the final mask rate of one mask study run (@study_run), over
-- seeds: gamma, mean FID, min FID, max FID, mean alignment, min alignment, max alignment, seeds.
WITH m AS (
  SELECT r.id, CAST(g.value AS REAL) AS gamma
  FROM runs r
  JOIN tags t ON t.run_id = r.id AND t.key = 'study_run' AND t.value = @study_run
  JOIN params g ON g.run_id = r.id AND g.key = 'gamma_final'
  WHERE r.status = 'FINISHED'),
v AS (
  SELECT m.gamma, f.value AS fid, a.value AS alignment FROM m
  JOIN metrics f ON f.run_id = m.id AND f.key = 'fid'
  LEFT JOIN metrics a ON a.run_id = m.id AND a.key = 'alignment/colour_and_shape')
SELECT gamma, avg(fid), min(fid), max(fid), avg(alignment), min(alignment), max(alignment), count(*)
FROM v GROUP BY gamma ORDER BY gamma;
