/*
 * pam-load-probe: the cost of loading a PAM stack in a fresh process, from C.
 *
 * sshd and login are C programs: unlike a Rust driver, they have not loaded libgcc_s (or any
 * Rust runtime) before the stack is loaded. For each iteration this forks a child that runs
 * pam_start_confdir + pam_end for SERVICE from CONFDIR and exits; the time is from fork to the
 * child's exit. Prints "p50 p90 p99 max" in microseconds.
 *
 * usage: pam-load-probe CONFDIR SERVICE ITERATIONS
 */
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int no_conversation(int count, const struct pam_message **messages,
                           struct pam_response **responses, void *data) {
    (void)count; (void)messages; (void)responses; (void)data;
    return PAM_CONV_ERR;
}

static long now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000L + t.tv_nsec / 1000;
}

static int by_value(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: pam-load-probe CONFDIR SERVICE ITERATIONS\n");
        return 2;
    }
    int iterations = atoi(argv[3]);
    if (iterations <= 0) return 2;
    long *latencies = calloc((size_t)iterations, sizeof *latencies);
    if (latencies == NULL) return 1;
    for (int i = 0; i < iterations; i++) {
        long start = now_us();
        pid_t pid = fork();
        if (pid == 0) {
            struct pam_conv conversation = { no_conversation, NULL };
            pam_handle_t *handle = NULL;
            int status = pam_start_confdir(argv[2], "u0000000", &conversation, argv[1], &handle);
            if (status == PAM_SUCCESS) pam_end(handle, status);
            _exit(status);
        }
        if (pid < 0) return 1;
        int status = 0;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != PAM_SUCCESS) {
            fprintf(stderr, "pam-load-probe: pam_start_confdir failed for %s\n", argv[2]);
            return 1;
        }
        latencies[i] = now_us() - start;
    }
    qsort(latencies, (size_t)iterations, sizeof *latencies, by_value);
    int last = iterations - 1;
    printf("%ld %ld %ld %ld\n", latencies[last * 50 / 100], latencies[last * 90 / 100],
           latencies[last * 99 / 100], latencies[last]);
    return 0;
}
