-- The test evaluations of one quality study run (@study_run; its own or recalled from earlier runs) on Shapes, one row per budget:
-- images seen, then for VQ-Diffusion and for VQ-AR the seed-mean FID (evaluator features) with
-- its min and max over seeds and the seed-mean colour-and-shape alignment with its min and max,
-- then the real-data floor FID, then (beyond the paper, one seed, empty at other budgets) the
-- grid-convolution VQ-Diffusion's FID and alignment and the causal-grid VQ-AR's.
WITH m AS (
  SELECT r.id, f.value AS family, s.value AS stage, CAST(i.value AS INTEGER) AS images
  FROM runs r
  JOIN tags t ON t.run_id = r.id AND ((t.key = 'study_run' AND t.value = @study_run) OR t.key = 'reused_by:' || @study_run)
  JOIN params s ON s.run_id = r.id AND s.key = 'stage' AND s.value IN ('test', 'grid-convolution')
  JOIN params f ON f.run_id = r.id AND f.key = 'family'
  JOIN params i ON i.run_id = r.id AND i.key = 'images_seen'
  WHERE r.status = 'FINISHED'),
v AS (
  SELECT m.images, CASE WHEN m.stage = 'test' THEN m.family ELSE 'grid-' || m.family END AS family,
         max(CASE WHEN x.key = 'fid' THEN x.value END) AS fid,
         max(CASE WHEN x.key = 'alignment/colour_and_shape' THEN x.value END) AS alignment
  FROM m JOIN metrics x ON x.run_id = m.id GROUP BY m.id)
SELECT images,
       avg(CASE WHEN family = 'diffusion' THEN fid END), min(CASE WHEN family = 'diffusion' THEN fid END),
       max(CASE WHEN family = 'diffusion' THEN fid END),
       avg(CASE WHEN family = 'diffusion' THEN alignment END), min(CASE WHEN family = 'diffusion' THEN alignment END),
       max(CASE WHEN family = 'diffusion' THEN alignment END),
       avg(CASE WHEN family = 'ar' THEN fid END), min(CASE WHEN family = 'ar' THEN fid END),
       max(CASE WHEN family = 'ar' THEN fid END),
       avg(CASE WHEN family = 'ar' THEN alignment END), min(CASE WHEN family = 'ar' THEN alignment END),
       max(CASE WHEN family = 'ar' THEN alignment END),
       (SELECT x.value FROM metrics x JOIN m ON m.id = x.run_id WHERE x.key = 'floor/fid' LIMIT 1),
       max(CASE WHEN family = 'grid-diffusion' THEN fid END), max(CASE WHEN family = 'grid-diffusion' THEN alignment END),
       max(CASE WHEN family = 'grid-ar' THEN fid END), max(CASE WHEN family = 'grid-ar' THEN alignment END)
FROM v GROUP BY images ORDER BY images;
