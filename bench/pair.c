/* Interleaved timing for bench/run.sh's "pair" part: whole-process wall times of two or
 * more commands run in turn, round after round, and the median of each round's
 * difference from the first command.
 *
 *   pair ROUNDS NAME CMD ARGS... :: NAME CMD ARGS... [:: ...]
 *
 * hyperfine runs all of one command's runs, then all of the next one's; on the test VM
 * the machine's speed drifts by 30 % over such a run, so the difference of two medians
 * taken a minute apart moved by 1 ms from one run to the next (docs/performance.md,
 * "eleventh pass"). Here each round runs every command once, in an order that
 * turns by one each round, so drift cancels out of the per-round differences. Commands are started
 * with posix_spawn (stdin and stdout on /dev/null), ten warm-up rounds first; a command
 * that fails stops the run. Prints one markdown row per command:
 * | NAME | median ms | median of (this - first) ms |
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

#define MAX_COMMANDS 8

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *values, int n) {
    double *sorted = malloc(n * sizeof *sorted);
    memcpy(sorted, values, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, by_value);
    double m = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    free(sorted);
    return m;
}

/* Wall time of one run in ms, or a negative number when it could not run or failed. */
static double run(char **argv, posix_spawn_file_actions_t *actions) {
    struct timespec start, end;
    pid_t pid;
    int status;
    clock_gettime(CLOCK_MONOTONIC, &start);
    if (posix_spawn(&pid, argv[0], actions, NULL, argv, environ) != 0) return -1;
    if (waitpid(pid, &status, 0) < 0) return -1;
    clock_gettime(CLOCK_MONOTONIC, &end);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
    return (end.tv_sec - start.tv_sec) * 1e3 + (end.tv_nsec - start.tv_nsec) / 1e6;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: pair ROUNDS NAME CMD ARGS... [:: NAME CMD ARGS...]\n");
        return 2;
    }
    int rounds = atoi(argv[1]);
    char *names[MAX_COMMANDS];
    char **commands[MAX_COMMANDS];
    int k = 0;
    names[k] = argv[2];
    commands[k++] = argv + 3;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "::") != 0) continue;
        if (i + 2 >= argc || k == MAX_COMMANDS) {
            fprintf(stderr, "pair: each :: takes a NAME and a command (at most %d)\n",
                    MAX_COMMANDS);
            return 2;
        }
        argv[i] = NULL;
        names[k] = argv[i + 1];
        commands[k++] = argv + i + 2;
    }
    if (rounds < 1) {
        fprintf(stderr, "pair: ROUNDS must be at least 1\n");
        return 2;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    double *times[MAX_COMMANDS];
    for (int j = 0; j < k; j++) times[j] = malloc(rounds * sizeof(double));
    for (int round = -10; round < rounds; round++) {
        /* Every command in every position as often: the order turns by one each
         * round (and alternates for two). */
        for (int step = 0; step < k; step++) {
            int j = (step + (round + 10)) % k;
            double ms = run(commands[j], &actions);
            if (ms < 0) {
                fprintf(stderr, "pair: %s failed\n", commands[j][0]);
                return 1;
            }
            if (round >= 0) times[j][round] = ms;
        }
    }
    double *differences = malloc(rounds * sizeof(double));
    for (int j = 0; j < k; j++) {
        for (int i = 0; i < rounds; i++) differences[i] = times[j][i] - times[0][i];
        if (j == 0)
            printf("| %s | %.2f | |\n", names[j], median(times[j], rounds));
        else
            printf("| %s | %.2f | %+.2f |\n", names[j], median(times[j], rounds),
                   median(differences, rounds));
    }
    return 0;
}
