// glibc's malloc extensions (malloc_trim): not in Swift's Glibc module.
#include <malloc.h>
