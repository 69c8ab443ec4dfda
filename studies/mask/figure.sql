-- The evaluations of one mask study run (@study_run; its own or recalled from earlier runs), one row per model: gamma, seed, FID
-- (evaluator features), colour-and-shape alignment, then the seed means of its gamma, then the
-- real-data floor FID.
WITH m AS (
  SELECT r.id, CAST(g.value AS REAL) AS gamma, CAST(s.value AS INTEGER) AS seed
  FROM runs r
  JOIN tags t ON t.run_id = r.id AND ((t.key = 'study_run' AND t.value = @study_run) OR t.key = 'reused_by:' || @study_run)
  JOIN params g ON g.run_id = r.id AND g.key = 'gamma_final'
  JOIN params s ON s.run_id = r.id AND s.key = 'training_seed'
  WHERE r.status = 'FINISHED'),
v AS (
  SELECT m.gamma, m.seed, f.value AS fid, a.value AS alignment FROM m
  JOIN metrics f ON f.run_id = m.id AND f.key = 'fid'
  LEFT JOIN metrics a ON a.run_id = m.id AND a.key = 'alignment/colour_and_shape')
SELECT v.gamma, v.seed, v.fid, v.alignment,
       (SELECT avg(w.fid) FROM v w WHERE w.gamma = v.gamma),
       (SELECT avg(w.alignment) FROM v w WHERE w.gamma = v.gamma),
       (SELECT x.value FROM metrics x JOIN m ON m.id = x.run_id WHERE x.key = 'floor/fid' LIMIT 1)
FROM v ORDER BY v.gamma, v.seed;
