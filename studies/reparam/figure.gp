# FID and images per second against sampling steps for the reparameterized model (exact and
# reference skip posteriors), the directly parameterized model and VQ-AR (one point each).
# Variables: data (tab-separated export of figure.sql), out (PNG), caption, profile.
set terminal pngcairo size 1400,600 font "sans,11"
set output out
set datafile separator "\t"
methods = system("cut -f1 '".data."' | awk '!seen[$0]++' | tr '\n' ' '")
# A method's legend entry: its name with spaces for the underscores.
label(i) = system("echo ".word(methods, i)." | tr _ ' '")
set multiplot layout 1,2 title "Fast inference with the x0 reparameterization (".profile." profile)\n{/*0.8 ".caption."}"
set logscale x 2
set xlabel "sampling steps (network evaluations; VQ-AR plotted at T)"
set grid
set key bottom left font ",9"
set title "quality"
set ylabel "FID (evaluator features), lower is better"
plot for [i=1:words(methods)] data using (strcol(1) eq word(methods, i) ? $2 : NaN):3 with linespoints lw 2 pt 7 lc i title label(i) noenhanced
set title "speed"
set key bottom left
set logscale y 10
set ylabel "images per second"
plot for [i=1:words(methods)] data using (strcol(1) eq word(methods, i) ? $2 : NaN):4 with linespoints lw 2 pt 7 lc i title label(i) noenhanced
unset multiplot
