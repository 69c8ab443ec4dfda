-- FID (evaluator features) of each generator of one quality study run (@study_run), one row per
-- dataset: dataset, VQ-Diffusion FID, VQ-AR FID, real-data floor FID, VQ-Diffusion KID, VQ-AR KID.
WITH m AS (
  SELECT r.id, d.value AS dataset, f.value AS family
  FROM runs r
  JOIN tags t ON t.run_id = r.id AND t.key = 'study_run' AND t.value = @study_run
  JOIN params d ON d.run_id = r.id AND d.key = 'dataset'
  JOIN params f ON f.run_id = r.id AND f.key = 'family'
  WHERE r.status = 'FINISHED'),
v AS (
  SELECT m.dataset, m.family, x.key, x.value FROM m JOIN metrics x ON x.run_id = m.id
  WHERE x.key IN ('fid', 'kid', 'floor/fid'))
SELECT dataset,
       max(CASE WHEN family = 'diffusion' AND key = 'fid' THEN value END) AS diffusion_fid,
       max(CASE WHEN family = 'ar' AND key = 'fid' THEN value END) AS ar_fid,
       max(CASE WHEN key = 'floor/fid' THEN value END) AS floor_fid,
       max(CASE WHEN family = 'diffusion' AND key = 'kid' THEN value END) AS diffusion_kid,
       max(CASE WHEN family = 'ar' AND key = 'kid' THEN value END) AS ar_kid
FROM v GROUP BY dataset ORDER BY dataset DESC;
