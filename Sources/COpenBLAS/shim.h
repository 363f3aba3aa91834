#include <cblas.h>
// OpenBLAS threading controls (declared in openblas_config.h / cblas.h on Debian).
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
// The kernel set a DYNAMIC_ARCH build chose for this CPU at load time (e.g. "SkylakeX", "Prescott").
char *openblas_get_corename(void);
