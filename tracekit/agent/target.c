/* tracekit's probe target: prints its pid, then calls tk_work() LOOPS times.
 *
 *   target [LOOPS [DELAY_MS [WORK]]]
 *
 * tk_work(n) spins n*WORK iterations and returns 2n+1, so a uprobe sees the
 * argument 1..LOOPS and a uretprobe sees 3, 5, 7...  Built by tracekit on the
 * traced host itself, with -g so perf probe can name the argument. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static long work_scale = 1000;

__attribute__((noinline)) int tk_work(int n)
{
    volatile long acc = 0;
    for (long i = 0; i < n * work_scale; i++)
        acc += i;
    return 2 * n + 1;
}

int main(int argc, char **argv)
{
    int loops = argc > 1 ? atoi(argv[1]) : 5;
    int delay_ms = argc > 2 ? atoi(argv[2]) : 100;
    if (argc > 3)
        work_scale = atol(argv[3]);
    printf("pid %d\n", (int)getpid());
    fflush(stdout);
    for (int i = 1; i <= loops; i++) {
        tk_work(i);
        if (delay_ms > 0)
            usleep(delay_ms * 1000);
    }
    return 0;
}
