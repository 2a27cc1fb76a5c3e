/*
 * The pod sandbox's placeholder process for ironkube's test images, built as a static
 * binary and shipped as registry.k8s.io/pause:3.10 (see docs/conformance/images.md).
 *
 * It holds the pod's namespaces open and does nothing else: it sleeps until a signal comes,
 * reaps any child that the shared PID namespace hands it, and exits with status 0 on
 * SIGINT or SIGTERM. `pause -v` prints its version.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PAUSE_VERSION
#define PAUSE_VERSION "3.10"
#endif

static void on_stop(int signo) {
    (void)signo;
    _exit(0);
}

static void on_child(int signo) {
    (void)signo;
    int saved = errno;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    errno = saved;
}

static void install(int signo, void (*handler)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = signo == SIGCHLD ? SA_NOCLDSTOP | SA_RESTART : 0;
    if (sigaction(signo, &sa, NULL) < 0) {
        perror("pause: sigaction");
        exit(1);
    }
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "-v") == 0) {
        printf("pause.c %s (ironkube)\n", PAUSE_VERSION);
        return 0;
    }
    if (getpid() != 1) {
        fprintf(stderr, "pause: warning: not running as PID 1\n");
    }
    install(SIGINT, on_stop);
    install(SIGTERM, on_stop);
    install(SIGCHLD, on_child);
    for (;;) {
        pause();
    }
}
