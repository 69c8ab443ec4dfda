# FID and alignment against the final mask rate, mean over seeds with the range as error bars.
# Variables: data (tab-separated export of figure.sql), out (PNG), caption, profile.
set terminal pngcairo size 1000,600 font "sans,11"
set output out
set datafile separator "\t"
set title "Mask-and-replace ablation: final mask rate (".profile." profile)\n{/*0.75 ".caption."}"
set xlabel "final mask rate γ̄_T (0 = replace-only, 1 = mask-only)"
set ylabel "FID (evaluator features), lower is better"
set y2label "colour and shape match the caption (%)"
set ytics nomirror
set y2tics
set xrange [-0.05:1.05]
set grid
set key top center
plot data using 1:2:3:4 with yerrorlines lw 2 pt 7 lc rgb "#1f77b4" title "FID (mean, range over seeds)", \
     ''   using 1:(100*$5):(100*$6):(100*$7) axes x1y2 with yerrorlines lw 2 pt 5 dt 2 lc rgb "#2ca02c" title "alignment (mean, range)"
