-- Seconds per image of every measurement run of one speed study run (@study_run):
-- batch, method (spaces as no-break spaces, so gnuplot's words() keeps names whole), grid side, seconds per image, extrapolated (0/1), weights note.
SELECT p.value AS batch, replace(m.value, ' ', char(160)) AS method, s.step AS grid, s.value AS seconds,
       coalesce(x.value, 0) AS extrapolated, coalesce(w.value, '') AS weights
FROM runs r
JOIN tags t ON t.run_id = r.id AND t.key = 'study_run' AND t.value = @study_run
JOIN params p ON p.run_id = r.id AND p.key = 'batch'
JOIN params m ON m.run_id = r.id AND m.key = 'method'
JOIN metrics s ON s.run_id = r.id AND s.key = 'seconds_per_image'
LEFT JOIN metrics x ON x.run_id = r.id AND x.key = 'extrapolated' AND x.step = s.step
LEFT JOIN params w ON w.run_id = r.id AND w.key = 'weights'
WHERE r.status = 'FINISHED'
ORDER BY CAST(p.value AS INTEGER), m.value, s.step;
