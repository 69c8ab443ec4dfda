// SQLite, for the results database of the experiment harness (the model library does not use it).
#include <sqlite3.h>
