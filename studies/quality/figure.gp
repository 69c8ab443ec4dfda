# Grouped bars: FID (evaluator features) of VQ-Diffusion, VQ-AR and the real-data floor per dataset.
# Variables: data (tab-separated export of figure.sql), out (PNG), caption, profile.
set terminal pngcairo size 1000,600 font "sans,11"
set output out
set datafile separator "\t"
set title "Image quality: VQ-Diffusion vs VQ-AR at matched size and training steps (".profile." profile)\n{/*0.75 ".caption."}"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set ylabel "FID (evaluator features), lower is better"
set xlabel "dataset"
set yrange [0:*]
set grid ytics
set key top right
plot data using 2:xtic(1) title "VQ-Diffusion" lc rgb "#1f77b4", \
     ''   using 3 title "VQ-AR" lc rgb "#ff7f0e", \
     ''   using 4 title "real-data floor (same N)" lc rgb "#7f7f7f"
