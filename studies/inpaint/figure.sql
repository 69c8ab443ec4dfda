-- The evaluations of one inpainting study run (@study_run), one row per region: the region, then
-- for VQ-Diffusion and for VQ-AR the fraction of edits right (the redrawn object's colour, shape,
-- size and relation for the first-object region; the whole caption for the others) and the
-- fraction of kept tokens unchanged.
WITH m AS (
  SELECT r.id, k.value AS mask, f.value AS family, r.start_ms
  FROM runs r
  JOIN tags t ON t.run_id = r.id AND t.key = 'study_run' AND t.value = @study_run
  JOIN params k ON k.run_id = r.id AND k.key = 'mask'
  JOIN params f ON f.run_id = r.id AND f.key = 'family'
  WHERE r.status = 'FINISHED'),
v AS (
  SELECT m.mask, m.family, min(m.start_ms) AS start_ms,
         max(CASE WHEN x.key IN ('alignment/object', 'alignment/caption') THEN x.value END) AS right_fraction,
         max(CASE WHEN x.key = 'kept_token_agreement' THEN x.value END) AS kept
  FROM m JOIN metrics x ON x.run_id = m.id GROUP BY m.id)
SELECT mask,
       max(CASE WHEN family = 'diffusion' THEN right_fraction END), max(CASE WHEN family = 'ar' THEN right_fraction END),
       max(CASE WHEN family = 'diffusion' THEN kept END), max(CASE WHEN family = 'ar' THEN kept END)
FROM v GROUP BY mask ORDER BY min(start_ms);
