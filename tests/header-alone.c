/* The public header compiles on its own, with nothing before it. */
#include <mediaindex.h>

int main(void)
{
    return mi_strerror(MI_OK) ? 0 : 1;
}
