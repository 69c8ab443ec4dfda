# Seconds per image against token-grid side, one line per method, one panel per batch size.
# Variables: data (tab-separated export of figure.sql), out (PNG), caption, profile.
set terminal pngcairo size 1400,640 font "sans,11"
set output out
set datafile separator "\t"
batches = system("cut -f1 '".data."' | awk '!seen[$0]++' | tr '\n' ' '")
methods = system("cut -f2 '".data."' | awk '!seen[$0]++' | tr '\n' ' '")
trained = system("awk -F'\t' 'match($6, /[0-9]+:trained/) { print $2 \" at \" substr($6, RSTART, RLENGTH - 8) }' '".data."' | sort -u | paste -sd ';' -")
weights = (strlen(trained) > 0 ? "trained weights: ".trained."; " : "no trained weights; ")."every other point: random weights of the same architecture"
set multiplot layout 1, words(batches) title "Generation time against resolution (".profile." profile)\n{/*0.8 ".caption."}\n{/*0.8 ".weights."}"
set logscale xy 2
set logscale y 10
set xlabel "token grid side (grid is side × side tokens)"
set ylabel "seconds per image"
set grid
set key top left font ",9"
do for [b in batches] {
    set title "batch ".b."  (open circles: extrapolated from a timed prefix)"
    plot for [i=1:words(methods)] data using ((strcol(1) eq b && strcol(2) eq word(methods, i)) ? $3 : NaN):4 \
             with linespoints lw 2 pt 7 ps 0.8 lc i title word(methods, i) noenhanced, \
         for [i=1:words(methods)] data using ((strcol(1) eq b && strcol(2) eq word(methods, i) && $5 > 0) ? $3 : NaN):4 \
             with points pt 6 ps 2.2 lc i notitle
}
unset multiplot
