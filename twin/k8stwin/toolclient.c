/*
 * The client of a twin node's tool server (k8stwin/toolserver.py): runs one
 * emulated tool in a process forked from the server, which has the twin's
 * Python modules imported already, instead of starting a Python for it.
 *
 *   k8stwin-tool SOCKET DISPATCH TOOL [ARG...]
 *
 * (called by twin/bin/_dispatch; DISPATCH is the path it was started as).
 * It hands the server its stdin, stdout and stderr (SCM_RIGHTS), its argv,
 * environment, working directory and umask, forwards the signals a caller
 * sends (TERM, INT, HUP, QUIT, USR1, USR2) to the tool's process, and exits
 * as the tool did (its exit code, or the same signal). When the client dies
 * (SIGKILL on a timeout), the server kills the tool: it does not run on
 * behind its caller's back. When no server answers, it runs DISPATCH again
 * without the server (the plain Python start).
 *
 * Request: u32 length (sent with the three descriptors), then the payload:
 * "k8stwin-tool 1\0" umask(octal)\0 cwd\0 tool\0 argc\0 args...\0 envc\0 env...\0
 * Replies: "P<pid>\n" once the tool's process exists, "X<wait status>\n".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static volatile sig_atomic_t tool_pid = 0;
static volatile sig_atomic_t pending_sig = 0;

static void forward(int sig)
{
    if (tool_pid > 0)
        kill((pid_t)tool_pid, sig);
    else
        pending_sig = sig;
}

static void fallback(const char *dispatch, char **args)
{
    /* no server: the dispatcher again, told not to use one */
    unsetenv("K8STWIN_TOOL_SOCKET");
    execv(dispatch, args);
    fprintf(stderr, "k8stwin-tool: cannot run %s: %s\n", dispatch, strerror(errno));
    _exit(127);
}

struct buf {
    char *data;
    size_t len, cap;
};

static void put(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            perror("k8stwin-tool");
            _exit(127);
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len++] = '\0';
}

static void puts0(struct buf *b, const char *s) { put(b, s, strlen(s)); }

static void putnum(struct buf *b, long n, const char *fmt)
{
    char tmp[32];
    snprintf(tmp, sizeof tmp, fmt, n);
    puts0(b, tmp);
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: k8stwin-tool SOCKET DISPATCH TOOL [ARG...]\n");
        return 127;
    }
    const char *path = argv[1];
    const char *dispatch = argv[2];
    const char *tool = argv[3];
    /* DISPATCH ARG...: the dispatcher takes the tool's name from its $0 */
    argv[3] = argv[2];
    char **fallback_args = argv + 3;

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    if (fd < 0 || strlen(path) >= sizeof addr.sun_path)
        fallback(dispatch, fallback_args);
    strcpy(addr.sun_path, path);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0)
        fallback(dispatch, fallback_args);

    struct buf b = {0};
    mode_t mask = umask(0);
    umask(mask);
    char *cwd = getcwd(NULL, 0);
    puts0(&b, "k8stwin-tool 1");
    putnum(&b, (long)mask, "%lo");
    puts0(&b, cwd ? cwd : "/");
    puts0(&b, tool);
    putnum(&b, argc - 4, "%ld");
    for (int i = 4; i < argc; i++)
        puts0(&b, argv[i]);
    long envc = 0;
    for (char **e = environ; *e; e++)
        envc++;
    putnum(&b, envc, "%ld");
    for (char **e = environ; *e; e++)
        puts0(&b, *e);

    /* the length, with stdin, stdout and stderr */
    uint32_t len = (uint32_t)b.len;
    int fds[3] = {0, 1, 2};
    char control[CMSG_SPACE(sizeof fds)];
    memset(control, 0, sizeof control);
    struct iovec iov = {.iov_base = &len, .iov_len = sizeof len};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                         .msg_controllen = sizeof control};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof fds);
    memcpy(CMSG_DATA(cm), fds, sizeof fds);
    ssize_t sent;
    do
        sent = sendmsg(fd, &msg, MSG_NOSIGNAL);
    while (sent < 0 && errno == EINTR);
    if (sent != (ssize_t)sizeof len)
        fallback(dispatch, fallback_args); /* nothing ran yet */
    if (send_all(fd, b.data, b.len) < 0) {
        fprintf(stderr, "k8stwin-tool: the tool server went away: %s\n", strerror(errno));
        return 127;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward;
    int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);

    char line[64];
    size_t n = 0;
    for (;;) {
        ssize_t r = recv(fd, line + n, 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            fprintf(stderr, "k8stwin-tool: the tool server went away\n");
            return 127;
        }
        if (line[n] != '\n') {
            if (++n >= sizeof line - 1)
                n = 0;
            continue;
        }
        line[n] = '\0';
        n = 0;
        if (line[0] == 'P') {
            tool_pid = (sig_atomic_t)atol(line + 1);
            if (pending_sig)
                kill((pid_t)tool_pid, pending_sig);
        } else if (line[0] == 'X') {
            int status = atoi(line + 1);
            if (WIFEXITED(status))
                return WEXITSTATUS(status);
            if (WIFSIGNALED(status)) {
                int sig = WTERMSIG(status);
                signal(sig, SIG_DFL);
                raise(sig);
                return 128 + sig;
            }
            return 1;
        }
    }
}
