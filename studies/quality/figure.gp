# FID (evaluator features) and caption alignment against training images seen (log scale): one
# line per family, seed mean with the range over seeds, the real-data floor dashed; the
# grid-convolution pair (beyond the paper, one seed) as open markers where it was run.
# Variables: data (tab-separated export of figure.sql), out (PNG), caption, profile.
set terminal pngcairo size 1300,600 font "sans,11"
set output out
set datafile separator "\t"
set multiplot layout 1,2 title "VQ-Diffusion vs VQ-AR at equal training compute and tuning (".profile." profile)\n{/*0.75 ".caption."}"
set logscale x 2
set xlabel "training images seen"
set format x "%.0s%c"
set grid
set key top right
set ylabel "FID (evaluator features), lower is better"
set yrange [0:*]
set offsets 0, 0, graph 0.35, 0
plot data using 1:2:3:4 with yerrorlines lw 2 pt 7 lc rgb "#1f77b4" title "VQ-Diffusion (mean, range over seeds)", \
     ''   using 1:8:9:10 with yerrorlines lw 2 pt 5 lc rgb "#ff7f0e" title "VQ-AR (mean, range over seeds)", \
     ''   using 1:14 with lines dt 2 lw 2 lc rgb "#7f7f7f" title "real-data floor (same N)", \
     ''   using 1:15 with points pt 6 ps 1.5 lw 2 lc rgb "#1f77b4" title "VQ-Diffusion, grid convolution (seed 0)", \
     ''   using 1:17 with points pt 4 ps 1.5 lw 2 lc rgb "#ff7f0e" title "VQ-AR, causal grid convolution (seed 0)"
set ylabel "colour and shape match the caption (%), higher is better"
set offsets 0, 0, 0, 0
set yrange [0:100]
set key top left
plot data using 1:(100*$5):(100*$6):(100*$7) with yerrorlines lw 2 pt 7 lc rgb "#1f77b4" title "VQ-Diffusion", \
     ''   using 1:(100*$11):(100*$12):(100*$13) with yerrorlines lw 2 pt 5 lc rgb "#ff7f0e" title "VQ-AR", \
     ''   using 1:(100*$16) with points pt 6 ps 1.5 lw 2 lc rgb "#1f77b4" title "VQ-Diffusion, grid convolution", \
     ''   using 1:(100*$18) with points pt 4 ps 1.5 lw 2 lc rgb "#ff7f0e" title "VQ-AR, causal grid convolution"
unset multiplot
