# Redrawing a region: per region, the fraction of edits that match the caption and the fraction of
# kept tokens unchanged, VQ-Diffusion beside VQ-AR.
# Variables: data (tab-separated export of figure.sql), out (PNG), caption, profile.
set terminal pngcairo size 1300,600 font "sans,11"
set output out
set datafile separator "\t"
set multiplot layout 1,2 title "Inpainting: VQ-Diffusion vs VQ-AR (".profile." profile)\n{/*0.75 ".caption."}"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set yrange [0:115]
set ytics 0,20,100
set grid ytics
set key top right horizontal
set ylabel "edits right (%): redrawn object (first-object) or whole caption"
plot data using (100*$2):xtic(1) lc rgb "#1f77b4" title "VQ-Diffusion", \
     ''   using (100*$3) lc rgb "#ff7f0e" title "VQ-AR"
set ylabel "kept tokens unchanged (%)"
plot data using (100*$4):xtic(1) lc rgb "#1f77b4" title "VQ-Diffusion", \
     ''   using (100*$5) lc rgb "#ff7f0e" title "VQ-AR"
unset multiplot
