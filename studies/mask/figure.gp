# FID and alignment against the final mask rate: every model as a point, the seed mean as a line,
# the real-data floor dashed.
# Variables: data (tab-separated export of figure.sql), out (PNG), caption, profile.
set terminal pngcairo size 1300,600 font "sans,11"
set output out
set datafile separator "\t"
set multiplot layout 1,2 title "Mask-and-replace ablation: final mask rate (".profile." profile)\n{/*0.75 ".caption."}"
set xlabel "final mask rate γ̄_T (0 = replace-only, 1 = mask-only)"
set xrange [-0.05:1.05]
set grid
set key top center
set ylabel "FID (evaluator features), lower is better"
set yrange [0:*]
plot data using 1:5 with lines lw 2 lc rgb "#1f77b4" title "FID, mean over seeds", \
     ''   using 1:3 with points pt 7 ps 0.8 lc rgb "#1f77b4" title "FID, one model per seed", \
     ''   using 1:7 with lines dt 2 lw 2 lc rgb "#7f7f7f" title "real-data floor (same N)"
set ylabel "colour and shape match the caption (%), higher is better"
set yrange [0:100]
plot data using 1:(100*$6) with lines lw 2 lc rgb "#2ca02c" title "alignment, mean over seeds", \
     ''   using 1:(100*$4) with points pt 5 ps 0.8 lc rgb "#2ca02c" title "alignment, one model per seed"
unset multiplot
