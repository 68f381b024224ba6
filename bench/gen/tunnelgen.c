/*
 * tunnelgen.c: the bench's load generator in C, for the rows where a generator in Node would compete with the
 * proxy for the same two cores (new tunnels per second, one request's round trip). Not part of hctunnel.
 * Loopback only: every address it is given must be 127.x.y.z, and it listens on 127.0.0.1 only.
 *
 *   tunnelgen echo [--ports 4] [--max-seconds 3600]
 *       TCP echo on N free loopback ports, one epoll loop. Prints {"pid":..,"ports":[..]} once listening;
 *       exits when stdin closes (the harness went away) or after --max-seconds.
 *   tunnelgen rate --target 127.0.0.1:P1,P2,.. [--proxy 127.0.0.1:P] [--clients 50] [--duration-ms 8000]
 *       N clients, each looping: connect (to the proxy, or directly to the next target), `CONNECT target`,
 *       read the 2xx head, write 100 B, read the 100 B echo, close. Targets rotate per tunnel. Prints one JSON
 *       line: tunnels, errors, seconds, rate, p50Us/p90Us/p99Us per tunnel, cpuSeconds (the measured window),
 *       cpuTotalSeconds, firstError.
 *   tunnelgen latency --origin 127.0.0.1:P [--proxy 127.0.0.1:P [--tunnel]] --requests N [--warmup 200]
 *       One kept-alive client: GET /small (absolute-form through a proxy), one at a time; p50/p90/p99/mean/max
 *       µs per request. A server that closes the connection costs a reconnect (counted, and that request's time
 *       includes the connect). With --tunnel the client first opens `CONNECT origin` through the proxy and
 *       sends origin-form requests inside the tunnel: the proxy only relays bytes (what the C relay can do too).
 *
 * BENCH_PROXY_AUTH=user:password adds `Proxy-Authorization: Basic ...` to every CONNECT and request, like the
 * Node generators (bench/lib/wire.ts).
 *
 * Build: cc -O2 -o /tmp/tunnelgen bench/gen/tunnelgen.c   (the harness does this into a temporary directory)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PAYLOAD_BYTES 100
#define MAX_TARGETS 64

static void die(const char *what) {
  fprintf(stderr, "tunnelgen: %s: %s\n", what, strerror(errno));
  exit(1);
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_s(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec / 1e6 + (double)u.ru_stime.tv_sec +
         (double)u.ru_stime.tv_usec / 1e6;
}

static const char *arg(int argc, char **argv, const char *name, const char *fallback) {
  for (int i = 2; i + 1 < argc; i++)
    if (strcmp(argv[i], name) == 0) return argv[i + 1];
  return fallback;
}

static int has_flag(int argc, char **argv, const char *name) {
  for (int i = 2; i < argc; i++)
    if (strcmp(argv[i], name) == 0) return 1;
  return 0;
}

/* "127.a.b.c:port" into addr; anything that is not a loopback IPv4 literal is refused. */
static struct sockaddr_in loopback(const char *text) {
  char host[64];
  int port = 0;
  struct sockaddr_in a = {.sin_family = AF_INET};
  if (sscanf(text, "%63[0-9.]:%d", host, &port) != 2 || port <= 0 || port > 65535 ||
      inet_pton(AF_INET, host, &a.sin_addr) != 1 || (ntohl(a.sin_addr.s_addr) >> 24) != 127) {
    fprintf(stderr, "tunnelgen: refusing %s: only 127.x.y.z:port (loopback) is allowed\n", text);
    exit(2);
  }
  a.sin_port = htons((uint16_t)port);
  return a;
}

static void authority(const struct sockaddr_in *a, char *out, size_t n) {
  char host[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
  snprintf(out, n, "%s:%u", host, ntohs(a->sin_port));
}

/* The Proxy-Authorization line for BENCH_PROXY_AUTH, or "". */
static const char *auth_line(void) {
  static char line[512];
  static int done = 0;
  if (done) return line;
  done = 1;
  const char *cred = getenv("BENCH_PROXY_AUTH");
  if (cred == NULL || strlen(cred) > 300) return line;
  static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char enc[420];
  size_t n = strlen(cred), o = 0;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)(unsigned char)cred[i] << 16;
    if (i + 1 < n) v |= (uint32_t)(unsigned char)cred[i + 1] << 8;
    if (i + 2 < n) v |= (uint32_t)(unsigned char)cred[i + 2];
    enc[o++] = b64[(v >> 18) & 63];
    enc[o++] = b64[(v >> 12) & 63];
    enc[o++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
    enc[o++] = i + 2 < n ? b64[v & 63] : '=';
  }
  enc[o] = 0;
  snprintf(line, sizeof line, "Proxy-Authorization: Basic %s\r\n", enc);
  return line;
}

/* Exit when stdin closes: the harness went away (even by SIGKILL), so no generator outlives it. */
static void watch_stdin(int ep) {
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
  epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
}
static void stdin_ready(void) {
  char b[256];
  ssize_t n = read(0, b, sizeof b);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) exit(3);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static double pct(const double *s, size_t n, double p) {
  if (n == 0) return 0;
  size_t i = (size_t)(p / 100 * (double)n);
  return s[i < n ? i : n - 1];
}

/* Growable array of samples in µs. */
struct samples {
  double *v;
  size_t n, cap;
};
static void sample(struct samples *s, double us) {
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 65536;
    s->v = realloc(s->v, s->cap * sizeof *s->v);
    if (s->v == NULL) die("realloc");
  }
  s->v[s->n++] = us;
}

static void json_string(const char *key, const char *value) {
  printf(",\"%s\":\"", key);
  for (const char *c = value; *c; c++) {
    if (*c == '"' || *c == '\\') putchar('\\');
    putchar((unsigned char)*c >= 0x20 ? *c : ' ');
  }
  putchar('"');
}

/* ------------------------------------------------------------------ echo */

static _Noreturn void echo_main(int argc, char **argv) {
  int nports = atoi(arg(argc, argv, "--ports", "4"));
  alarm((unsigned)atoi(arg(argc, argv, "--max-seconds", "3600")));
  if (nports < 1 || nports > MAX_TARGETS) nports = 4;
  int ep = epoll_create1(0);
  printf("{\"pid\":%d,\"ports\":[", getpid());
  for (int i = 0; i < nports; i++) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4096) != 0) die("listen");
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    printf("%s%u", i ? "," : "", ntohs(a.sin_port));
    /* Listeners are told from connections by data.u64 >= 1<<32. */
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (1ull << 32) | (uint64_t)fd};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  printf("]}\n");
  fflush(stdout);
  watch_stdin(ep);
  static char buf[65536];
  struct epoll_event evs[256];
  int one = 1;
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; i++) {
      uint64_t d = evs[i].data.u64;
      if (d == UINT64_MAX) {
        stdin_ready();
      } else if (d >> 32) {
        for (;;) {
          int c = accept4((int)(d & 0xffffffff), NULL, NULL, SOCK_NONBLOCK);
          if (c < 0) break;
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = (uint64_t)c};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
        }
      } else {
        int c = (int)d;
        for (;;) {
          ssize_t r = read(c, buf, sizeof buf);
          if (r > 0) {
            /* Echo payloads are small: a short write drops the rest (never seen at 100 B). */
            if (write(c, buf, (size_t)r) < 0 && errno != EAGAIN) {
              close(c);
              break;
            }
            continue;
          }
          if (r == 0 || errno != EAGAIN) close(c); /* close() also removes it from the epoll set */
          break;
        }
      }
    }
  }
}

/* ------------------------------------------------------------------ rate */

enum state { IDLE, CONNECTING, HEAD, ECHO, WAIT };

struct client {
  int fd;
  enum state st;
  int target;      /* index into targets */
  int got;         /* bytes of head (HEAD) or of echo (ECHO) so far */
  double t0;       /* when this tunnel started */
  double retry_at; /* WAIT: when to start again after an error */
  char head[1024];
};

static struct sockaddr_in targets[MAX_TARGETS];
static char target_text[MAX_TARGETS][32];
static int ntargets, next_target;
static struct sockaddr_in proxy;
static int via_proxy;
static char payload[PAYLOAD_BYTES];
static long errors;
static char first_error[200];

static void fail(int ep, struct client *c, const char *why, double now) {
  (void)ep;
  errors++;
  if (first_error[0] == 0) snprintf(first_error, sizeof first_error, "%s", why);
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  c->st = WAIT;
  c->retry_at = now + 0.005;
}

static void start(int ep, struct client *c, int idx, double now) {
  c->target = next_target++ % ntargets;
  c->got = 0;
  c->t0 = now;
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (c->fd < 0) return fail(ep, c, "socket() failed", now);
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const struct sockaddr_in *to = via_proxy ? &proxy : &targets[c->target];
  c->st = CONNECTING;
  struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = (uint64_t)idx};
  epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
  if (connect(c->fd, (const struct sockaddr *)to, sizeof *to) != 0 && errno != EINPROGRESS) {
    char why[100];
    snprintf(why, sizeof why, "connect: %s", strerror(errno));
    fail(ep, c, why, now);
  }
}

/* The socket is connected: send the CONNECT (or, direct, the payload) and wait for input. */
static void connected(int ep, struct client *c, int idx, double now) {
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) {
    char why[100];
    snprintf(why, sizeof why, "connect: %s", strerror(err));
    return fail(ep, c, why, now);
  }
  struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = (uint64_t)idx};
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
  if (via_proxy) {
    char req[700];
    const char *a = target_text[c->target];
    int n = snprintf(req, sizeof req, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", a, a, auth_line());
    if (write(c->fd, req, (size_t)n) != n) return fail(ep, c, "short write of CONNECT", now);
    c->st = HEAD;
  } else {
    if (write(c->fd, payload, PAYLOAD_BYTES) != PAYLOAD_BYTES) return fail(ep, c, "short write of payload", now);
    c->st = ECHO;
  }
}

/* Input on a tunnel: the CONNECT response head, then the echo. Returns 1 when the tunnel is done. */
static int readable(int ep, struct client *c, double now) {
  for (;;) {
    if (c->st == HEAD) {
      ssize_t r = read(c->fd, c->head + c->got, sizeof c->head - 1 - (size_t)c->got);
      if (r < 0 && errno == EAGAIN) return 0;
      if (r <= 0) return fail(ep, c, "proxy closed before answering CONNECT", now), 0;
      c->got += (int)r;
      c->head[c->got] = 0;
      char *end = strstr(c->head, "\r\n\r\n");
      if (end == NULL) {
        if (c->got >= (int)sizeof c->head - 1) return fail(ep, c, "CONNECT response head too large", now), 0;
        continue;
      }
      if (strncmp(c->head, "HTTP/1.", 7) != 0 || c->head[9] != '2') {
        char why[200];
        char *eol = strstr(c->head, "\r\n");
        *eol = 0;
        snprintf(why, sizeof why, "CONNECT refused: %.150s", c->head);
        return fail(ep, c, why, now), 0;
      }
      int early = c->got - (int)(end + 4 - c->head); /* echo bytes cannot come before our payload */
      if (early > 0) return fail(ep, c, "bytes after the 200 before the payload", now), 0;
      if (write(c->fd, payload, PAYLOAD_BYTES) != PAYLOAD_BYTES) return fail(ep, c, "short write of payload", now), 0;
      c->st = ECHO;
      c->got = 0;
    } else {
      char buf[4096];
      ssize_t r = read(c->fd, buf, sizeof buf);
      if (r < 0 && errno == EAGAIN) return 0;
      if (r <= 0) {
        char why[100];
        snprintf(why, sizeof why, "closed after %d of %d echoed bytes", c->got, PAYLOAD_BYTES);
        return fail(ep, c, why, now), 0;
      }
      c->got += (int)r;
      if (c->got >= PAYLOAD_BYTES) {
        close(c->fd);
        c->fd = -1;
        c->st = IDLE;
        return 1;
      }
    }
  }
}

static int rate_main(int argc, char **argv) {
  const char *tl = arg(argc, argv, "--target", NULL);
  if (tl == NULL) {
    fprintf(stderr, "tunnelgen rate: --target 127.0.0.1:P[,P2..] is required\n");
    return 2;
  }
  char list[2048];
  snprintf(list, sizeof list, "%s", tl);
  for (char *save = NULL, *t = strtok_r(list, ",", &save); t != NULL && ntargets < MAX_TARGETS; t = strtok_r(NULL, ",", &save)) {
    /* "127.0.0.1:5000" or, after the first, a bare port on the same host. */
    if (strchr(t, ':') == NULL && ntargets > 0) {
      targets[ntargets] = targets[0];
      targets[ntargets].sin_port = htons((uint16_t)atoi(t));
    } else targets[ntargets] = loopback(t);
    authority(&targets[ntargets], target_text[ntargets], sizeof target_text[ntargets]);
    ntargets++;
  }
  const char *px = arg(argc, argv, "--proxy", NULL);
  if (px != NULL) {
    proxy = loopback(px);
    via_proxy = 1;
  }
  int nclients = atoi(arg(argc, argv, "--clients", "50"));
  double duration = atof(arg(argc, argv, "--duration-ms", "8000")) / 1000;
  if (nclients < 1 || nclients > 5000) nclients = 50;
  alarm((unsigned)(duration + 30));
  memset(payload, 'd', sizeof payload);

  int ep = epoll_create1(0);
  watch_stdin(ep);
  struct client *cs = calloc((size_t)nclients, sizeof *cs);
  struct samples lat = {0};
  long done = 0;
  double cpu0 = cpu_s(), t0 = now_s(), end = t0 + duration;
  for (int i = 0; i < nclients; i++) {
    cs[i].fd = -1;
    start(ep, &cs[i], i, t0);
  }
  struct epoll_event evs[256];
  int active = nclients;
  while (active > 0) {
    double now = now_s();
    if (now > end + 5) break; /* a tunnel stuck after the end: leave it (counted nowhere) */
    int timeout = -1;
    for (int i = 0; i < nclients; i++)
      if (cs[i].st == WAIT) {
        if (now >= end) cs[i].st = IDLE, active--;
        else if (now >= cs[i].retry_at) start(ep, &cs[i], i, now);
        else timeout = 1;
      }
    if (active == 0) break;
    int n = epoll_wait(ep, evs, 256, timeout);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    now = now_s();
    for (int k = 0; k < n; k++) {
      uint64_t d = evs[k].data.u64;
      if (d == UINT64_MAX) {
        stdin_ready();
        continue;
      }
      struct client *c = &cs[d];
      if (c->st == CONNECTING) connected(ep, c, (int)d, now);
      else if ((c->st == HEAD || c->st == ECHO) && readable(ep, c, now)) {
        done++;
        sample(&lat, (now - c->t0) * 1e6);
        if (now < end) start(ep, c, (int)d, now);
        else active--;
      }
    }
    if (errors > 100000) break;
  }
  double seconds = now_s() - t0, cpu = cpu_s() - cpu0;
  qsort(lat.v, lat.n, sizeof *lat.v, cmp_double);
  printf("{\"tunnels\":%ld,\"errors\":%ld,\"seconds\":%.4f,\"rate\":%.1f,\"p50Us\":%.1f,\"p90Us\":%.1f,\"p99Us\":%.1f,"
         "\"cpuSeconds\":%.4f,\"cpuTotalSeconds\":%.4f,\"clients\":%d,\"targets\":%d",
         done, errors, seconds, (double)done / seconds, pct(lat.v, lat.n, 50), pct(lat.v, lat.n, 90), pct(lat.v, lat.n, 99), cpu,
         cpu_s(), nclients, ntargets);
  if (first_error[0]) json_string("firstError", first_error);
  printf("}\n");
  return errors > 100000 ? 1 : 0;
}

/* ------------------------------------------------------------------ latency */

static int lat_fd = -1;
static struct sockaddr_in lat_to;
static const char *lat_tunnel; /* "host:port" to CONNECT to first, or NULL */

static int lat_connect(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&lat_to, sizeof lat_to) != 0) die("connect");
  if (lat_tunnel != NULL) {
    char req[700], head[1024];
    int n = snprintf(req, sizeof req, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", lat_tunnel, lat_tunnel, auth_line());
    if (write(fd, req, (size_t)n) != n) die("write CONNECT");
    int got = 0;
    for (;;) { /* the 200's head; nothing follows it before our first request */
      ssize_t r = read(fd, head + got, sizeof head - 1 - (size_t)got);
      if (r <= 0) die("read CONNECT response");
      got += (int)r;
      head[got] = 0;
      if (strstr(head, "\r\n\r\n") != NULL) break;
    }
    if (strncmp(head, "HTTP/1.", 7) != 0 || head[9] != '2') {
      fprintf(stderr, "tunnelgen latency: CONNECT refused: %.80s\n", head);
      exit(1);
    }
  }
  return fd;
}

/* Read one response; returns its status (0: the connection closed before a whole response), the body's
 * length in *body and whether the server said it would close in *closing. */
static int lat_response(int fd, int *body, int *closing) {
  static char buf[65536];
  int got = 0;
  char *end = NULL;
  while (end == NULL) {
    ssize_t r = read(fd, buf + got, sizeof buf - 1 - (size_t)got);
    if (r <= 0) return 0;
    got += (int)r;
    buf[got] = 0;
    end = strstr(buf, "\r\n\r\n");
    if (end == NULL && got >= (int)sizeof buf - 1) return 0;
  }
  int status = atoi(buf + 9);
  int length = -1;
  *closing = buf[7] == '0';
  for (char *line = strstr(buf, "\r\n"); line != NULL && line < end; line = strstr(line + 2, "\r\n")) {
    if (strncasecmp(line + 2, "content-length:", 15) == 0) length = atoi(line + 17);
    else if (strncasecmp(line + 2, "connection:", 11) == 0) *closing = strncasecmp(line + 13, " close", 6) == 0 || strncasecmp(line + 13, "close", 5) == 0;
  }
  if (length < 0) return 0; /* the bench's origin always sends Content-Length */
  int have = got - (int)(end + 4 - buf);
  while (have < length) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r <= 0) return 0;
    have += (int)r;
  }
  *body = have;
  return status;
}

static int latency_main(int argc, char **argv) {
  const char *o = arg(argc, argv, "--origin", NULL);
  const char *rq = arg(argc, argv, "--requests", NULL);
  if (o == NULL || rq == NULL) {
    fprintf(stderr, "tunnelgen latency: --origin 127.0.0.1:P and --requests N are required\n");
    return 2;
  }
  struct sockaddr_in origin = loopback(o);
  const char *px = arg(argc, argv, "--proxy", NULL);
  lat_to = px != NULL ? loopback(px) : origin;
  int tunnel = px != NULL && has_flag(argc, argv, "--tunnel");
  long requests = atol(rq), warmup = atol(arg(argc, argv, "--warmup", "200"));
  alarm((unsigned)atoi(arg(argc, argv, "--max-seconds", "120")));
  static char a[32];
  char req[800];
  authority(&origin, a, sizeof a);
  if (tunnel) lat_tunnel = a;
  int absolute = px != NULL && !tunnel;
  int reqlen = snprintf(req, sizeof req, "GET %s%s/small HTTP/1.1\r\nHost: %s\r\nUser-Agent: hctunnel-bench\r\n%s\r\n",
                        absolute ? "http://" : "", absolute ? a : "", a, absolute ? auth_line() : "");
  double *s = malloc((size_t)requests * sizeof *s);
  long reconnects = 0, errs = 0;
  char first[120] = "";
  double cpu0 = 0, t0 = 0;
  for (long i = -warmup; i < requests; i++) {
    if (i == 0) {
      reconnects = 0;
      errs = 0;
      first[0] = 0;
      cpu0 = cpu_s();
      t0 = now_s();
    }
    double start = now_s();
    int status = 0, body = 0, closing = 0;
    for (int attempt = 0; attempt < 3 && status == 0; attempt++) {
      if (lat_fd < 0) {
        lat_fd = lat_connect();
        reconnects++;
      }
      if (write(lat_fd, req, (size_t)reqlen) != reqlen) status = 0;
      else status = lat_response(lat_fd, &body, &closing);
      if (status == 0 || closing) {
        close(lat_fd);
        lat_fd = -1;
      }
    }
    double us = (now_s() - start) * 1e6;
    if (status != 200 || body != 100) {
      errs++;
      if (first[0] == 0) snprintf(first, sizeof first, "response %d with %d body bytes", status, body);
      if (errs > 50 && errs * 20 > i + warmup) {
        fprintf(stderr, "tunnelgen latency: too many bad responses, first: %s\n", first);
        return 1;
      }
    }
    if (i >= 0) s[i] = us;
  }
  double seconds = now_s() - t0, cpu = cpu_s() - cpu0;
  double sum = 0;
  for (long i = 0; i < requests; i++) sum += s[i];
  qsort(s, (size_t)requests, sizeof *s, cmp_double);
  printf("{\"requests\":%ld,\"p50Us\":%.2f,\"p90Us\":%.2f,\"p99Us\":%.2f,\"meanUs\":%.2f,\"maxUs\":%.1f,\"reconnects\":%ld,"
         "\"errors\":%ld,\"seconds\":%.4f,\"cpuSeconds\":%.4f,\"cpuTotalSeconds\":%.4f",
         requests, pct(s, (size_t)requests, 50), pct(s, (size_t)requests, 90), pct(s, (size_t)requests, 99), sum / (double)requests,
         s[requests - 1], reconnects, errs, seconds, cpu, cpu_s());
  if (first[0]) json_string("firstError", first);
  printf("}\n");
  return 0;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc >= 2 && strcmp(argv[1], "echo") == 0) echo_main(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "rate") == 0) return rate_main(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "latency") == 0) return latency_main(argc, argv);
  fprintf(stderr, "usage: tunnelgen echo|rate|latency [options]   (see the comment at the top of tunnelgen.c)\n");
  return 2;
}
